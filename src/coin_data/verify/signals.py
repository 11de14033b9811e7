"""Optional equivalence signals: stronger than the offline defaults, each needing a model.

==============  ==========================================================================================
signal          how it judges a pair (original, candidate)
==============  ==========================================================================================
``nli``         a sentence-transformers ``CrossEncoder`` NLI model scores entailment in both directions;
                the pair agrees when the weaker direction is at least ``threshold`` (a paraphrase entails
                and is entailed by its original)
``judge``       an LLM is asked whether the two instructions request the same output for every input;
                ``openai:MODEL`` (any OpenAI-compatible server) or ``hf:MODEL`` (local causal LM)
``behaviour``   a causal LM answers a few probe inputs under both instructions (greedy, a few tokens);
                any different answer is a disagreement
==============  ==========================================================================================

All three are switched on from :class:`coin_data.verify.VerifyConfig` by naming a model, load lazily,
and answer through one small protocol: ``check(templates, candidate_texts, originals, candidates)``
returns one :class:`SignalResult` per pair (``originals``/``candidates`` are the masked texts). A pair a
signal disagrees with is rejected, and the verdict's reason names the signal.

Example:
    >>> nli = NLISignal("cross-encoder/nli-deberta-v3-base")     # loads nothing yet
    >>> nli.signal, nli.threshold
    ('nli', 0.5)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from coin_data.templates import Template

# Inputs for the behaviour signal's probes: short, neutral, usable for any text slot.
PROBE_TEXTS = (
    "The new library opens on Monday and stays open until nine in the evening.",
    "I waited forty minutes for a cold pizza, and the driver was rude.",
    "Water boils at a lower temperature on a high mountain than at sea level.",
    "The committee approved the budget after a long debate about school funding.",
    "She forgot her umbrella, so she got soaked on the way to the station.",
)
PROBE_OPTIONS = ("yes", "no")

JUDGE_PROMPT = (
    "You compare two instructions given to an assistant. Words in braces, like {{text}}, stand for inputs "
    "that will be filled in later.\n\nInstruction A:\n{a}\n\nInstruction B:\n{b}\n\n"
    "For every possible input, would a correct answer to A also be a correct answer to B, and the reverse? "
    "Answer with one word: SAME or DIFFERENT."
)


@dataclass(frozen=True)
class SignalResult:
    """One signal's judgement of one pair.

    Attributes:
        agrees: True when the signal finds the pair equivalent (or cannot tell).
        score: the number recorded in ``Verdict.signals`` (probability, agreement share, or 1/0).
        reason: a short line used when the signal rejects.
    """

    agrees: bool
    score: float | None
    reason: str


class Signal(Protocol):
    signal: str

    def check(
        self, templates: Sequence[Template], candidate_texts: Sequence[str], originals: Sequence[str],
        candidates: Sequence[str],
    ) -> list[SignalResult]: ...


# --- NLI cross-encoder -----------------------------------------------------------------------------


class NLISignal:
    """Bidirectional entailment with a ``sentence_transformers.CrossEncoder`` NLI model.

    Args:
        model: model name or folder; its config must name an ``entailment`` label.
        threshold: minimum entailment probability in the weaker direction.
        batch_size: pairs per forward pass.
        scorer: ``f(pairs) -> (n, labels) probabilities`` to use instead of loading ``model`` (tests).
        labels: label names in ``scorer``'s column order (with ``scorer`` only).
    """

    signal = "nli"

    def __init__(
        self, model: str, threshold: float = 0.5, batch_size: int = 16,
        scorer: Callable[[list[tuple[str, str]]], np.ndarray] | None = None, labels: Sequence[str] | None = None,
    ):
        self.model = model
        self.threshold = threshold
        self.batch_size = batch_size
        self._scorer = scorer
        self._labels = tuple(labels) if labels else None

    @cached_property
    def cross_encoder(self):
        from sentence_transformers import CrossEncoder

        return CrossEncoder(self.model)

    @property
    def labels(self) -> tuple[str, ...]:
        if self._labels is None:
            id2label = self.cross_encoder.model.config.id2label
            self._labels = tuple(str(id2label[i]).lower() for i in range(len(id2label)))
        return self._labels

    def entailment_index(self) -> int:
        """Column of the entailment probability.

        Raises:
            ValueError: the model names no ``entailment`` label (it is not an NLI model).
        """
        for i, name in enumerate(self.labels):
            if name.lower().startswith("entail"):
                return i
        raise ValueError(f"NLI model {self.model!r} has no 'entailment' label (labels: {list(self.labels)})")

    def probabilities(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """``(n, labels)`` class probabilities for (premise, hypothesis) pairs."""
        if self._scorer is not None:
            return np.asarray(self._scorer(pairs), dtype=np.float64)
        return np.asarray(
            self.cross_encoder.predict(pairs, batch_size=self.batch_size, apply_softmax=True, show_progress_bar=False),
            dtype=np.float64,
        )

    def check(self, templates, candidate_texts, originals, candidates) -> list[SignalResult]:
        if not originals:
            return []
        column = self.entailment_index()
        forward = self.probabilities(list(zip(originals, candidates)))[:, column]
        backward = self.probabilities(list(zip(candidates, originals)))[:, column]
        results = []
        for f, b in zip(forward, backward):
            weaker = float(min(f, b))
            results.append(SignalResult(
                weaker >= self.threshold, round(weaker, 6),
                f"entailment {weaker:.2f} < {self.threshold} (original->candidate {f:.2f}, back {b:.2f})",
            ))
        return results


# --- LLM judge ---------------------------------------------------------------------------------------


class JudgeSignal:
    """Ask an LLM whether two instructions request the same output for every input.

    Args:
        spec: ``openai:MODEL`` or ``hf:MODEL`` (``hf:smollm2`` is the bundled SmolLM2-135M-Instruct).
        base_url: endpoint for ``openai:`` (default ``OPENAI_BASE_URL``, else OpenAI); the key is read only
            from ``OPENAI_API_KEY``.
        client: an ``openai.OpenAI`` client to use instead of building one.
        timeout: seconds per call (``openai:``).

    An answer that is neither SAME nor DIFFERENT does not reject (score ``None``); the raw answer is kept
    in the reason.
    """

    signal = "judge"

    def __init__(self, spec: str, base_url: str | None = None, client: Any = None, timeout: float = 60.0):
        backend, _, model = spec.partition(":")
        if backend not in ("openai", "hf") or not model:
            raise ValueError(f"judge {spec!r}: use 'openai:MODEL' or 'hf:MODEL'")
        self.backend, self.model = backend, model
        self.base_url = base_url
        self.timeout = timeout
        self._client = client

    @cached_property
    def client(self):
        if self._client is not None:
            return self._client
        import openai

        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL")
        key = os.environ.get("OPENAI_API_KEY") or ("sk-no-key-required" if base_url else None)
        return openai.OpenAI(base_url=base_url, api_key=key, timeout=self.timeout, max_retries=2)

    @cached_property
    def _local(self) -> "_LocalLM":
        return _LocalLM(self.model)

    def ask(self, prompt: str) -> str:
        """The judge's raw answer to one prompt."""
        if self.backend == "openai":
            reply = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": prompt}], temperature=0, max_tokens=4
            )
            return reply.choices[0].message.content or ""
        return self._local.generate([prompt], max_new_tokens=4, chat=True)[0]

    def check(self, templates, candidate_texts, originals, candidates) -> list[SignalResult]:
        results = []
        for a, b in zip(originals, candidates):
            answer = self.ask(JUDGE_PROMPT.format(a=a, b=b))
            verdict = parse_judgement(answer)
            if verdict is None:
                results.append(SignalResult(True, None, f"unclear answer {answer.strip()[:40]!r}"))
            else:
                results.append(SignalResult(verdict, 1.0 if verdict else 0.0, "says the instructions differ"))
        return results


def parse_judgement(answer: str) -> bool | None:
    """``True`` for SAME, ``False`` for DIFFERENT, ``None`` when the answer says neither.

    Example:
        >>> parse_judgement(" Same."), parse_judgement("DIFFERENT"), parse_judgement("maybe")
        (True, False, None)
    """
    words = re.findall(r"[a-z]+", answer.lower())
    if not words:
        return None
    if words[0] in ("same", "equivalent", "yes"):
        return True
    if words[0] in ("different", "not", "no"):
        return False
    return None


# --- behavioural agreement ------------------------------------------------------------------------------


class BehaviourSignal:
    """A reference causal LM answers probe inputs under both instructions; any difference rejects.

    Args:
        model: ``smollm2``, a local folder or a Hub id (``AutoModelForCausalLM``).
        probes: probe inputs per pair (slots are filled from :data:`PROBE_TEXTS`, the options block with
            :data:`PROBE_OPTIONS`; an instruction without slots is asked once).
        max_new_tokens: greedy tokens compared per answer.
    """

    signal = "behaviour"

    def __init__(self, model: str, probes: int = 3, max_new_tokens: int = 8):
        self.model = model
        self.probes = probes
        self.max_new_tokens = max_new_tokens

    @cached_property
    def _local(self) -> "_LocalLM":
        return _LocalLM(self.model)

    def probe_prompts(self, template: Template, candidate_text: str) -> list[tuple[str, str]]:
        """``(original prompt, candidate prompt)`` per probe, both rendered with the same inputs.

        Example:
            >>> from coin_data.templates import parse_template
            >>> BehaviourSignal("m", probes=2).probe_prompts(parse_template("Topic of {text}?"), "{text}: topic?")[0]
            ('Topic of The new library opens on Monday and stays open until nine in the evening.?', 'The new library opens on Monday and stays open until nine in the evening.: topic?')
        """
        from coin_data.templates import parse_template

        candidate = parse_template(candidate_text)
        rounds = self.probes if template.field_slots else 1
        options = list(PROBE_OPTIONS) if template.has_options else None
        prompts = []
        for k in range(rounds):
            fields = {name: PROBE_TEXTS[(k + j) % len(PROBE_TEXTS)] for j, name in enumerate(template.field_slots)}
            prompts.append((template.render(fields, options), candidate.render(fields, options)))
        return prompts

    def check(self, templates, candidate_texts, originals, candidates) -> list[SignalResult]:
        per_pair = [self.probe_prompts(t, c) for t, c in zip(templates, candidate_texts)]
        flat = [prompt for prompts in per_pair for pair in prompts for prompt in pair]
        answers = iter(self._local.generate(flat, max_new_tokens=self.max_new_tokens, chat=True))
        results = []
        for prompts in per_pair:
            same = 0
            first_difference = ""
            for _ in prompts:
                a, b = _normalise(next(answers)), _normalise(next(answers))
                if a == b:
                    same += 1
                elif not first_difference:
                    first_difference = f"{a[:30]!r} vs {b[:30]!r}"
            share = same / len(prompts)
            results.append(SignalResult(
                same == len(prompts), round(share, 4),
                f"answers differ on {len(prompts) - same}/{len(prompts)} probes ({first_difference})",
            ))
        return results


def _normalise(answer: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", answer.lower()))


class _LocalLM:
    """Greedy generation with a local causal LM (loaded on first use, left-padded batches)."""

    def __init__(self, model: str, batch_size: int = 8):
        self.model = model
        self.batch_size = batch_size

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        from coin_data.models import resolve_model

        tokenizer = AutoTokenizer.from_pretrained(resolve_model(self.model))
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    @cached_property
    def lm(self):
        from transformers import AutoModelForCausalLM

        from coin_data.models import resolve_model

        return AutoModelForCausalLM.from_pretrained(resolve_model(self.model)).eval()

    def generate(self, prompts: Sequence[str], max_new_tokens: int, chat: bool) -> list[str]:

        texts = [
            self.tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                               add_generation_prompt=True)
            if chat and getattr(self.tokenizer, "chat_template", None) else p
            for p in prompts
        ]
        from coin_data.models import generate_new_tokens

        prompts = self.tokenizer(texts)["input_ids"]
        new = generate_new_tokens(self.lm, prompts, self.tokenizer.pad_token_id, self.batch_size, sort_by_length=False,
                                  max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id)
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)


# --- one instance per model per process (models are expensive to load) ----------------------------------


@lru_cache(maxsize=4)
def get_nli(model: str, threshold: float = 0.5) -> NLISignal:
    """The shared :class:`NLISignal` for ``model``."""
    return NLISignal(model, threshold)


@lru_cache(maxsize=4)
def get_judge(spec: str, base_url: str | None = None) -> JudgeSignal:
    """The shared :class:`JudgeSignal` for ``spec``."""
    return JudgeSignal(spec, base_url)


@lru_cache(maxsize=4)
def get_behaviour(model: str, probes: int = 3) -> BehaviourSignal:
    """The shared :class:`BehaviourSignal` for ``model``."""
    return BehaviourSignal(model, probes)


__all__ = [
    "BehaviourSignal", "JudgeSignal", "NLISignal", "SignalResult", "get_behaviour", "get_judge",
    "get_nli", "parse_judgement",
]
