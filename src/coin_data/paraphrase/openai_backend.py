"""``openai:MODEL``: paraphrase with any OpenAI-compatible chat completions server.

Built on the official ``openai`` client (async). The server is ``base_url`` (else ``OPENAI_BASE_URL``,
else the OpenAI API); the key is read only from the ``OPENAI_API_KEY`` environment variable and never
stored in options, the cache, the dataset, its card or the logs.

How a build talks to the server:

- **One request per unique template** asks for k paraphrases as JSON (:mod:`.prompt`); identical
  templates share one call.
- **Cache first** (:mod:`coin_data.paraphrase.answer_cache`): an answered request is never asked again. Each reply is
  committed the moment it arrives (before a re-ask goes out), and each final answer too, so a killed
  build resumes where it stopped without any request body being answered twice.
- **Transport** (:mod:`.transport`): at most ``concurrency`` calls in flight and ``rpm`` starts per
  minute; every fault below the model's answer (429/5xx, timeout, dropped connection, a body that is
  not complete JSON, a response without choices) is retried with the same body, with backoff, up to
  ``max_retries`` times. When that budget is spent the template is *lost*: not cached, reported with its
  cause, and the build stops unless a partial dataset is allowed. 401/403 stop the build at once.
- **Structured output**: ``response_format`` ``json_schema`` by default; a server that rejects it
  (400/422, or a 500 naming ``response_format``) is asked again with ``json_object``, then with none, for
  the rest of the run.
- **Validation**: every whole answer is checked (:func:`.prompt.parse_answer`); an unparsable one is
  re-asked once (a different request: the first answer is quoted back). Every template ends with
  candidates, with a model-side failure reason the card counts, or lost.
- **Budget**: ``max_calls`` and ``max_cost`` are checked before every attempt; when one would be passed,
  the calls in flight finish, their answers are cached, and :class:`BudgetExhausted` is raised so that
  no dataset is written. Rerun with a larger budget to continue.

Example:
    >>> p = OpenAIParaphraser(model="gpt-4o-mini", base_url="http://127.0.0.1:8080/v1", cache_dir=None)
    >>> p.name
    'openai:gpt-4o-mini'
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

from coin_data.paraphrase import prompt
from coin_data.paraphrase.answer_cache import AnswerCache, CachedAnswer, CallRecord, cache_key
from coin_data.paraphrase.base import ParaphraseRequest, ParaphraserError, ParaphraseResult, ProgressFn, Usage
from coin_data.paraphrase.transport import (
    RESPONSE_FORMATS,
    Budget,
    OverBudget,
    Reply,
    RetryPolicy,
    Transport,
    TransportFailure,
    open_client,
    redact,
    server_name,
)

logger = logging.getLogger(__name__)

@dataclass
class OpenAIOptions:
    """Settings of the ``openai:MODEL`` backend (``BuildConfig.paraphraser_options``). No secrets here.

    Command: ``coin-data build --paraphraser openai:gpt-4o-mini --base-url http://127.0.0.1:8080/v1 --rpm 60``
    """

    # --- server -----------------------------------------------------------------
    base_url: str | None = field(
        default=None,
        metadata={"help": "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1. Default: OPENAI_BASE_URL, "
                  "else the OpenAI API. The key comes only from the OPENAI_API_KEY environment variable."},
    )
    timeout: float = field(default=60.0, metadata={"help": "Seconds before a call is abandoned and retried."})
    # --- sampling -----------------------------------------------------------------
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature (part of the cache key)."})
    max_tokens: int = field(
        default=1024, metadata={"help": "Completion token limit per call (cut further to about twice the shown "
                                "instruction per rewording asked for)."},
    )
    samples: int = field(
        default=0,
        metadata={"help": "Most answers sampled per template (0: openai 2k, hf k). openai: the first ask for k "
                  "rewordings, then, while fewer than k are usable (a small model answers the instruction or copies "
                  "it), top-ups with the next seeds; a model that answers k usable rewordings at once is asked once."},
    )
    response_format: str = field(
        default="none",
        metadata={"help": "'none' (default): plain-text rewrites of the shown instruction, what small models manage. "
                  "'json_schema' (schema-constrained) or 'json_object' (JSON mode) ask for {\"paraphrases\": [...]}; "
                  "a server that rejects one (400/422) gets the next; answers are validated either way."},
    )
    # --- robustness ---------------------------------------------------------------
    concurrency: int = field(default=8, metadata={"help": "Most calls in flight at once."})
    rpm: float | None = field(default=None, metadata={"help": "Most call starts per minute. Default: no limit."})
    max_retries: int = field(
        default=8,
        metadata={"help": "Retries per call (same body, with backoff) after a fault below the model's answer: "
                  "408/409/429, 5xx, timeout, dropped connection, body not complete JSON, no choices. When "
                  "they are spent the template is lost (the build stops unless a partial dataset is allowed)."},
    )
    backoff_base: float = field(default=1.0, metadata={"help": "First backoff in seconds; doubles per retry."})
    backoff_max: float = field(default=30.0, metadata={"help": "Longest backoff in seconds (before jitter)."})
    # --- cost -------------------------------------------------------------------
    price_in: float = field(default=0.0, metadata={"help": "USD per million prompt tokens (for cost figures)."})
    price_out: float = field(default=0.0, metadata={"help": "USD per million completion tokens."})
    max_cost: float | None = field(
        default=None, metadata={"help": "Stop (resumable, nothing written) before spending more than this (USD)."}
    )
    max_calls: int | None = field(
        default=None, metadata={"help": "Stop (resumable, nothing written) before making more API calls."}
    )
    # --- cache ------------------------------------------------------------------
    cache_dir: str | None = field(
        default=".coin-cache", metadata={"help": "Folder of the answer cache (SQLite); None or \"\" disables it."}
    )

    def __post_init__(self) -> None:
        if self.response_format not in RESPONSE_FORMATS:
            raise ValueError(f"response_format must be one of {RESPONSE_FORMATS}, got {self.response_format!r}")
        if self.samples < 0:
            raise ValueError(f"samples must be >= 0, got {self.samples}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.rpm is not None and self.rpm <= 0:
            raise ValueError(f"rpm must be > 0, got {self.rpm}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {self.timeout}")
        if min(self.price_in, self.price_out) < 0:
            raise ValueError("prices must be >= 0")
        if self.max_calls is not None and self.max_calls < 0:
            raise ValueError(f"max_calls must be >= 0, got {self.max_calls}")
        if self.max_cost is not None and self.max_cost < 0:
            raise ValueError(f"max_cost must be >= 0, got {self.max_cost}")

    def sample_count(self, k: int) -> int:
        """Most answers asked per template: ``samples``, or ``2k`` when 0.

        Example:
            >>> OpenAIOptions().sample_count(2), OpenAIOptions(samples=3).sample_count(2)
            (4, 3)
        """
        return self.samples or 2 * k

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for the given token counts at ``price_in`` / ``price_out`` per million.

        Example:
            >>> OpenAIOptions(price_in=0.15, price_out=0.6).cost(1_000_000, 500_000)
            0.45
        """
        return (prompt_tokens * self.price_in + completion_tokens * self.price_out) / 1e6


class BudgetExhausted(ParaphraserError):
    """``max_calls`` or ``max_cost`` was reached; answers so far are cached and a rerun continues."""


# --- the backend ---------------------------------------------------------------------------


@dataclass
class _Outcome:
    """What one unique request produced: the cached answer plus this run's spending."""

    answer: CachedAnswer
    usage: Usage = field(default_factory=Usage)
    lost: bool = False


@dataclass
class _Run:
    """What the concurrent requests of one ``paraphrase`` call share."""

    client: Any
    cache: AnswerCache | None
    transport: Transport


class OpenAIParaphraser:
    """Paraphrase templates with an OpenAI-compatible chat completions server.

    Args:
        model: model name sent to the server.
        **options: fields of :class:`OpenAIOptions`.
    """

    backend = "openai"

    def __init__(self, model: str, **options: Any):
        self.model = model
        self.options = OpenAIOptions(**options)
        self.name = f"{self.backend}:{model}"

    # --- public API ---------------------------------------------------------------

    def request_key(self, request: ParaphraseRequest) -> str:
        """The cache key of ``request``: backend, model, prompt version, template, k, sampling, seed."""
        return cache_key(self._key_parts(request))

    def estimate(self, requests: Sequence[ParaphraseRequest]) -> prompt.CallEstimate:
        """Calls and tokens a build would spend (cached requests are free), without calling anything.

        Example:
            >>> from coin_data.templates import parse_template
            >>> p = OpenAIParaphraser("m", cache_dir=None, price_in=1.0, price_out=1.0)
            >>> p.estimate([ParaphraseRequest(parse_template("Q: {q}"), k=2)]).calls
            1
        """
        cache = self._open_cache()
        unique = {self.request_key(r): r for r in requests}
        missing = [r for key, r in unique.items() if cache is None or key not in cache]
        if cache is not None:
            cache.close()
        tokens = [prompt.estimate_request_tokens(r) for r in missing]
        prompt_tokens, completion_tokens = sum(t[0] for t in tokens), sum(t[1] for t in tokens)
        return prompt.CallEstimate(
            templates=len(requests),
            unique=len(unique),
            cached=len(unique) - len(missing),
            calls=len(missing),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=self.options.cost(prompt_tokens, completion_tokens),
        )

    def paraphrase(
        self, requests: Sequence[ParaphraseRequest], progress: ProgressFn | None = None
    ) -> list[ParaphraseResult]:
        """Return one result per request, in order (see the module docstring for what happens).

        A template whose calls got no answer comes back with ``lost=True`` and the cause as its failure.

        Raises:
            BudgetExhausted: ``max_calls`` / ``max_cost`` reached; answers so far are cached.
            ParaphraserError: no credentials, or the server rejected them (401/403).
        """
        return _run_coroutine(lambda: self._paraphrase_all(list(requests), progress))

    # --- orchestration ------------------------------------------------------------

    async def _paraphrase_all(
        self, requests: list[ParaphraseRequest], progress: ProgressFn | None
    ) -> list[ParaphraseResult]:
        cache = self._open_cache()
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(self.request_key(request), []).append(index)
        outcomes: dict[str, _Outcome | None] = {}
        todo = []
        for key, indices in groups.items():
            cached = cache.get(key) if cache is not None else None
            if cached is not None:
                outcomes[key] = _Outcome(cached, Usage(cached=True))
                _report(progress, len(indices))
            else:
                todo.append((key, requests[indices[0]], len(indices)))
        options = self.options
        budget = Budget(options.max_calls, options.max_cost)
        try:
            if todo:
                async with open_client(options.base_url, options.timeout) as client:
                    policy = RetryPolicy(options.max_retries, options.backoff_base, options.backoff_max)
                    transport = Transport(policy, budget, options.concurrency, options.rpm, options.response_format,
                                          options.cost, server_name(options.base_url))
                    run = _Run(client, cache, transport)
                    # Templates, not just calls, are let in `concurrency` at a time and in order: a template's
                    # re-ask and top-ups follow its first answer, so the progress bar moves from the start.
                    gate = asyncio.Semaphore(options.concurrency)
                    answers = await _gather_or_cancel(
                        [self._gated(gate, run, key, req, n, progress) for key, req, n in todo])
                outcomes.update({key: answer for (key, _, _), answer in zip(todo, answers)})
        finally:
            if cache is not None:
                cache.close()
        missing = sum(1 for outcome in outcomes.values() if outcome is None)
        if missing:
            raise BudgetExhausted(budget.stop_message(len(groups), missing, options.cache_dir))
        return self._results(requests, groups, outcomes)

    def _results(
        self, requests: list[ParaphraseRequest], groups: dict[str, list[int]], outcomes: dict[str, "_Outcome | None"]
    ) -> list[ParaphraseResult]:
        results: list[ParaphraseResult | None] = [None] * len(requests)
        for key, indices in groups.items():
            outcome = outcomes[key]
            for position, index in enumerate(indices):
                # Spending is reported once per call, on the first template that shares it.
                usage = outcome.usage if position == 0 else Usage(cached=outcome.usage.cached)
                results[index] = ParaphraseResult(
                    request=requests[index],
                    candidates=list(outcome.answer.candidates),
                    source=self.name,
                    failure=outcome.answer.failure,
                    usage=usage,
                    lost=outcome.lost,
                )
        return results  # type: ignore[return-value]

    # --- one request ----------------------------------------------------------------

    async def _gated(self, gate: asyncio.Semaphore, run: _Run, key: str, request: ParaphraseRequest,
                     n_templates: int, progress: ProgressFn | None) -> _Outcome | None:
        async with gate:
            return await self._answer_one(run, key, request, n_templates, progress)

    async def _answer_one(
        self, run: _Run, key: str, request: ParaphraseRequest, n_templates: int, progress: ProgressFn | None
    ) -> _Outcome | None:
        """Ask, validate, re-ask once on a parse failure; cache the final answer. ``None`` when over budget."""
        usage = Usage()
        try:
            first_reply = await self._ask(run, key, request, prompt.build_messages(request), usage)
            first = prompt.parse_answer(first_reply.content, request, first_reply.refusal)
            second = None
            if first.retry_parse:
                usage.reasks[first.failure] = usage.reasks.get(first.failure, 0) + 1
                messages = prompt.reask_messages(request, first_reply.content or "", f"{first.failure}: {first.detail}")
                # A re-ask that gets no answer loses the template even when the first answer had some
                # candidates: keeping them would make the output depend on where the faults fell.
                second_reply = await self._ask(run, key, request, messages, usage)
                second = prompt.parse_answer(second_reply.content, request, second_reply.refusal)
            answer = prompt.final_answer(first, second)
            answer = await self._top_up(run, key, request, answer, usage)
        except OverBudget:
            return None
        except TransportFailure as failure:
            logger.warning("%s: lost, no answer (%s); not cached, a rerun asks again",
                           request.template.where, failure.reason)
            _report(progress, n_templates)
            return _Outcome(CachedAnswer([], failure.reason, requests=usage.requests), usage, lost=True)
        stored = CachedAnswer(
            candidates=answer.candidates,
            failure=answer.failure,
            detail=redact(answer.detail),
            requests=usage.requests,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=usage.cost,
            request={"model": self.model, "template": request.template.text, "k": request.k},
        )
        if answer.failure:
            logger.info("%s: %s (%s)", request.template.where, answer.failure, redact(answer.detail))
        if run.cache is not None:
            run.cache.put(key, stored)
        _report(progress, n_templates)
        return _Outcome(stored, usage)

    async def _top_up(self, run: _Run, key: str, request: ParaphraseRequest, answer: prompt.Answer,
                      usage: Usage) -> prompt.Answer:
        """Sample again, with the next seed, for the rewordings still missing (``samples - 1`` more calls at most).

        A strong model answers k rewordings at once and never gets here; a small one often gives one usable
        rewording or none (it answered the instruction or copied it), and a fresh sample is its best chance. Like a
        re-ask, a top-up that gets no answer loses the template (the output must not depend on where
        transport faults fell); each sample's reply is cached under its own body, seed included.
        """
        for extra in range(1, self.options.sample_count(request.k)):
            missing = request.k - len(answer.candidates)
            if missing <= 0 or answer.failure == prompt.REFUSAL:
                break
            sample = replace(request, seed=request.seed + extra)
            reply = await self._ask(run, key, sample, prompt.build_messages(sample, count=missing), usage)
            answer = prompt.combine_samples([answer, prompt.parse_answer(reply.content, request, reply.refusal)],
                                            request.k)
        return answer

    async def _ask(self, run: _Run, key: str, request: ParaphraseRequest, messages: list[dict], usage: Usage) -> Reply:
        """The reply to one request body: from the cache's replies, else from the server (then stored at once).

        Raises:
            OverBudget, TransportFailure: see :meth:`.transport.Transport.send`.
        """
        body_key = cache_key({"answer": key, "messages": messages, "seed": request.seed})
        stored = run.cache.get_reply(body_key) if run.cache is not None else None
        if stored is not None:
            return Reply(*stored)

        def log(status: str, reply: Reply | None, seconds: float, cost: float) -> None:
            tokens = (reply.prompt_tokens, reply.completion_tokens) if reply else (0, 0)
            usage.add(Usage(requests=1, prompt_tokens=tokens[0], completion_tokens=tokens[1], cost=cost,
                            faults={} if reply else {status: 1}))
            if run.cache is not None:
                run.cache.log_call(CallRecord(key, status, *tokens, cost, seconds))

        estimated = self.options.cost(*prompt.estimate_request_tokens(request))
        reply = await run.transport.send(
            lambda response_format: self._create(run.client, request, messages, response_format),
            estimated, log, request.template.where)
        if run.cache is not None:  # committed before anything else happens: a kill cannot lose it
            run.cache.put_reply(body_key, reply.content, reply.refusal)
        return reply

    async def _create(self, client: Any, request: ParaphraseRequest, messages: list[dict], response_format: str) -> Any:
        options = self.options
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": options.temperature,
            "max_tokens": prompt.answer_token_limit(request, request.k, options.max_tokens, response_format != "none"),
            "seed": request.seed,
        }
        schema = prompt.json_schema(request.k)
        if response_format == "json_schema":  # OpenAI, vLLM, llama.cpp's own server
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "paraphrases", "schema": schema, "strict": True},
            }
        elif response_format == "json_object":  # JSON mode; the schema key is read by llama-cpp-python
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        # asyncio.wait_for backs up the client's own timeout: a server that trickles bytes slowly
        # could otherwise hold a call far past it.
        return await asyncio.wait_for(client.chat.completions.create(**kwargs), timeout=options.timeout + 5)

    # --- plumbing ---------------------------------------------------------------------

    def _key_parts(self, request: ParaphraseRequest) -> dict[str, Any]:
        options = self.options
        return {
            "backend": self.backend,
            "model": self.model,
            "prompt_version": prompt.PROMPT_VERSION,
            **request.cache_parts(),
            "sampling": {
                "temperature": options.temperature,
                "max_tokens": options.max_tokens,
                "response_format": options.response_format,
                "samples": options.sample_count(request.k),
            },
        }

    def _open_cache(self) -> AnswerCache | None:
        return AnswerCache(self.options.cache_dir) if self.options.cache_dir else None

    def __repr__(self) -> str:
        # Options only: the key never lives on this object.
        return f"OpenAIParaphraser(model={self.model!r}, options={asdict(self.options)!r})"


def _report(progress: ProgressFn | None, n: int) -> None:
    if progress is not None:
        progress(n)


async def _gather_or_cancel(coroutines: list) -> list:
    """``asyncio.gather`` that, when one coroutine raises (e.g. rejected credentials), cancels the others
    and waits for them before re-raising, so nothing still writes to the cache afterwards."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _run_coroutine(factory):
    """Run ``factory()`` to completion, also from code that already runs an event loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
