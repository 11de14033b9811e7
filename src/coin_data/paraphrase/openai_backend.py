"""``openai:MODEL``: paraphrase with any OpenAI-compatible chat completions server.

Built on the official ``openai`` client (async). The server is ``base_url`` (else ``OPENAI_BASE_URL``,
else the OpenAI API); the key is read only from the ``OPENAI_API_KEY`` environment variable and never
stored in options, the cache, the dataset, its card or the logs.

How a build talks to the server:

- **One request per unique template** asks for k paraphrases as JSON (:mod:`.prompt`); identical
  templates share one call.
- **Cache first** (:mod:`coin_data.cache`): an answered request is never asked again; each answer is
  committed as soon as it arrives, so a killed build resumes where it stopped.
- **Limits**: at most ``concurrency`` calls in flight and ``rpm`` call starts per minute.
- **Retries**: 408/409/429, 5xx, timeouts and dropped connections are retried up to ``max_retries``
  times with exponential backoff and full jitter; a ``Retry-After`` (or ``retry-after-ms``) header sets
  the wait instead. Other 4xx fail the template (401/403 stop the build: the key is wrong).
- **Structured output**: ``response_format`` ``json_schema`` by default; a server that rejects it
  (400/422, or a 500 naming ``response_format``) is asked again with ``json_object``, then with none, for the rest of the run.
- **Validation**: every answer is checked (:func:`.prompt.parse_answer`); a parse failure is re-asked
  once. Every template ends with candidates or with a failure reason the card counts.
- **Budget**: ``max_calls`` and ``max_cost`` are checked before every call; when one would be passed, the
  calls in flight finish, their answers are cached, and :class:`BudgetExhausted` is raised so that no
  dataset is written. Rerun with a larger budget to continue.

Example:
    >>> p = OpenAIParaphraser(model="gpt-4o-mini", base_url="http://127.0.0.1:8080/v1", cache_dir=None)
    >>> p.name
    'openai:gpt-4o-mini'
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

from coin_data.cache import AnswerCache, CachedAnswer, CallRecord, cache_key
from coin_data.paraphrase import prompt
from coin_data.paraphrase.base import ParaphraseRequest, ParaphraserError, ParaphraseResult, ProgressFn, Usage

logger = logging.getLogger(__name__)

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
# Sent when a custom server is used and no key is set: local servers (llama.cpp, vLLM) ignore it.
NO_KEY = "sk-no-key-required"
RETRY_STATUSES = frozenset({408, 409, 429})
FATAL_STATUSES = frozenset({401, 403})
RESPONSE_FORMATS = ("json_schema", "json_object", "none")
# A server asking to wait longer than this is treated as down for this build.
MAX_RETRY_AFTER = 600.0


@dataclass
class OpenAIOptions:
    """Settings of the ``openai:MODEL`` backend (``BuildConfig.paraphraser_options``). No secrets here.

    Command: ``coin-data build --paraphraser openai:gpt-4o-mini --base-url http://127.0.0.1:8080/v1 --rpm 60``
    """

    # --- server -----------------------------------------------------------------
    base_url: str | None = field(
        default=None,
        metadata={"help": "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1. None: OPENAI_BASE_URL, "
                  "else the OpenAI API. The key comes only from the OPENAI_API_KEY environment variable."},
    )
    timeout: float = field(default=60.0, metadata={"help": "Seconds before a call is abandoned and retried."})
    # --- sampling -----------------------------------------------------------------
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature (part of the cache key)."})
    max_tokens: int = field(default=1024, metadata={"help": "Completion token limit per call."})
    response_format: str = field(
        default="none",
        metadata={"help": "'none' (default): plain-text rewrites of the shown instruction, what small models manage. "
                  "'json_schema' (schema-constrained) or 'json_object' (JSON mode) ask for {\"paraphrases\": [...]}; "
                  "a server that rejects one (400/422) gets the next; answers are validated either way."},
    )
    # --- robustness ---------------------------------------------------------------
    concurrency: int = field(default=8, metadata={"help": "Most calls in flight at once."})
    rpm: float | None = field(default=None, metadata={"help": "Most call starts per minute; None: no limit."})
    max_retries: int = field(
        default=4, metadata={"help": "Retries per call on 429, 5xx, timeouts and dropped connections."}
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

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for the given token counts at ``price_in`` / ``price_out`` per million.

        Example:
            >>> OpenAIOptions(price_in=0.15, price_out=0.6).cost(1_000_000, 500_000)
            0.45
        """
        return (prompt_tokens * self.price_in + completion_tokens * self.price_out) / 1e6


class BudgetExhausted(ParaphraserError):
    """``max_calls`` or ``max_cost`` was reached; answers so far are cached and a rerun continues."""


class _TransportFailure(Exception):
    """A call that could not get an answer (after its retries); the template fails, nothing is cached."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _OverBudget(Exception):
    """Raised inside a request when the budget refuses its next call."""


# --- limits -----------------------------------------------------------------------------


class RateLimiter:
    """Space call starts at least ``60 / rpm`` seconds apart (no limit when ``rpm`` is ``None``).

    Example:
        >>> asyncio.run(RateLimiter(None).wait())
    """

    def __init__(self, rpm: float | None):
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + self.interval  # claimed before sleeping: one event loop, no race
        await asyncio.sleep(start - now)


class Budget:
    """Call and cost limits, checked before each call.

    A call reserves its estimated cost until its real cost is known, so concurrent calls cannot jointly
    overshoot ``max_cost`` by more than the estimates' error.

    Example:
        >>> b = Budget(max_calls=1, max_cost=None)
        >>> b.reserve(0.0), b.reserve(0.0)
        (True, False)
    """

    def __init__(self, max_calls: int | None, max_cost: float | None):
        self.max_calls, self.max_cost = max_calls, max_cost
        self.calls, self.spent, self.reserved = 0, 0.0, 0.0
        self.exhausted = False

    def reserve(self, estimated_cost: float) -> bool:
        """Claim one call with ``estimated_cost``; ``False`` (and exhausted from then on) when over a limit."""
        over_calls = self.max_calls is not None and self.calls + 1 > self.max_calls
        over_cost = self.max_cost is not None and self.spent + self.reserved + estimated_cost > self.max_cost
        if self.exhausted or over_calls or over_cost:
            self.exhausted = True
            return False
        self.calls += 1
        self.reserved += estimated_cost
        return True

    def settle(self, estimated_cost: float, actual_cost: float) -> None:
        """Replace a call's reservation with its actual cost."""
        self.reserved = max(0.0, self.reserved - estimated_cost)
        self.spent += actual_cost


# --- errors and backoff ----------------------------------------------------------------


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a server asks for in ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date).

    Example:
        >>> retry_after_seconds({"retry-after": "2"}), retry_after_seconds({"retry-after-ms": "250"})
        (2.0, 0.25)
    """
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def backoff_seconds(retry: int, base: float, cap: float, rng: random.Random, retry_after: float | None = None) -> float:
    """Wait before retry number ``retry`` (0-based): the server's ``retry_after`` if given, else full jitter.

    Full jitter (uniform in ``[0, min(cap, base * 2**retry)]``) spreads clients that failed together.

    Example:
        >>> backoff_seconds(3, 1.0, 30.0, random.Random(0), retry_after=5.0)
        5.0
        >>> 0 <= backoff_seconds(3, 1.0, 30.0, random.Random(0)) <= 8.0
        True
    """
    if retry_after is not None:
        return retry_after
    return rng.uniform(0.0, min(cap, base * 2**retry))


def classify_error(error: BaseException) -> tuple[str, bool]:
    """``(status, retryable)`` for an exception from the openai client.

    Example:
        >>> classify_error(asyncio.TimeoutError())
        ('timeout', True)
    """
    import openai

    if isinstance(error, (openai.APITimeoutError, asyncio.TimeoutError, TimeoutError)):
        return "timeout", True
    if isinstance(error, openai.APIConnectionError):
        return "connection", True
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        return str(status), status in RETRY_STATUSES or status >= 500
    if isinstance(error, openai.APIResponseValidationError):
        return "invalid_response", True
    return type(error).__name__, False


def redact(text: str) -> str:
    """``text`` with the API key (if one is set) replaced by ``***``: for anything logged or stored.

    Example:
        >>> redact("no key here")
        'no key here'
    """
    key = os.environ.get(API_KEY_ENV)
    return text.replace(key, "***") if key and len(key) >= 4 else text


# --- the backend ---------------------------------------------------------------------------


@dataclass
class _Outcome:
    """What one unique request produced: the cached answer plus this run's spending."""

    answer: CachedAnswer
    usage: Usage = field(default_factory=Usage)


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
        self._rng = random.Random()

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
        budget = Budget(self.options.max_calls, self.options.max_cost)
        try:
            if todo:
                async with self._client() as client:
                    state = _RunState(client, cache, budget, asyncio.Semaphore(self.options.concurrency),
                                      RateLimiter(self.options.rpm), self.options.response_format)
                    answers = await _gather_or_cancel(
                        [self._answer_one(state, key, req, n, progress) for key, req, n in todo])
                outcomes.update({key: answer for (key, _, _), answer in zip(todo, answers)})
        finally:
            if cache is not None:
                cache.close()
        missing = sum(1 for outcome in outcomes.values() if outcome is None)
        if missing:
            raise BudgetExhausted(self._budget_message(budget, len(groups), missing))
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
                )
        return results  # type: ignore[return-value]

    def _budget_message(self, budget: Budget, unique: int, missing: int) -> str:
        limits = []
        if self.options.max_calls is not None:
            limits.append(f"--max-calls {self.options.max_calls}")
        if self.options.max_cost is not None:
            limits.append(f"--max-cost {self.options.max_cost}")
        where = f" in {self.options.cache_dir}" if self.options.cache_dir else ""
        return (
            f"budget reached ({', '.join(limits)}): {budget.calls} call(s) made, ${budget.spent:.4f} spent; "
            f"{unique - missing} of {unique} template request(s) answered and cached{where}, {missing} left. "
            "No dataset was written. Run the same command with a larger budget to continue from the cache."
        )

    # --- one request ----------------------------------------------------------------

    async def _answer_one(
        self, state: "_RunState", key: str, request: ParaphraseRequest, n_templates: int, progress: ProgressFn | None
    ) -> _Outcome | None:
        """Ask, validate, re-ask once on a parse failure; cache the final answer. ``None`` when over budget."""
        usage = Usage()
        try:
            first_text, refusal = await self._call(state, key, request, prompt.build_messages(request), usage)
            first = prompt.parse_answer(first_text, request, refusal)
            second = None
            if first.retry_parse:
                messages = prompt.reask_messages(request, first_text or "", f"{first.failure}: {first.detail}")
                try:
                    second_text, refusal = await self._call(state, key, request, messages, usage)
                    second = prompt.parse_answer(second_text, request, refusal)
                except (_OverBudget, _TransportFailure):
                    if not first.candidates:  # nothing to fall back on: unanswered (budget) or failed
                        raise
            answer = prompt.final_answer(first, second)
            answer = await self._top_up(state, key, request, answer, usage)
        except _OverBudget:
            return None
        except _TransportFailure as failure:
            logger.warning("%s: no answer (%s); not cached, a rerun retries it", request.template.where, failure.reason)
            _report(progress, n_templates)
            return _Outcome(CachedAnswer([], failure.reason, requests=usage.requests), usage)
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
        if state.cache is not None:
            state.cache.put(key, stored)
        _report(progress, n_templates)
        return _Outcome(stored, usage)

    async def _top_up(
        self, state: "_RunState", key: str, request: ParaphraseRequest, answer: prompt.Answer, usage: Usage
    ) -> prompt.Answer:
        """Sample again, with the next seed, for the rewordings still missing (at most k - 1 more calls).

        A strong model answers k rewordings at once and never gets here; a small one often gives one usable
        rewording or none (it answered the instruction), and a fresh sample is its best chance. A transport
        failure or the budget ends the top-up; what was gathered so far stands.
        """
        for extra in range(1, request.k):
            missing = request.k - len(answer.candidates)
            if missing <= 0 or answer.failure in (prompt.REFUSAL,):
                break
            sample = replace(request, seed=request.seed + extra)
            try:
                text, refusal = await self._call(state, key, sample, prompt.build_messages(sample, count=missing), usage)
            except (_OverBudget, _TransportFailure):
                if not answer.candidates:
                    raise
                break
            answer = prompt.combine_samples([answer, prompt.parse_answer(text, request, refusal)], request.k)
        return answer

    async def _call(
        self, state: "_RunState", key: str, request: ParaphraseRequest, messages: list[dict], usage: Usage
    ) -> tuple[str | None, str | None]:
        """One logical call with its retries; returns ``(content, refusal)``.

        Raises:
            _OverBudget: the budget refused an attempt.
            _TransportFailure: no answer after the retries, or a non-retryable status.
        """
        options = self.options
        estimated = options.cost(*prompt.estimate_request_tokens(request))
        retry = 0
        while True:
            if not state.budget.reserve(estimated):
                raise _OverBudget()
            started = time.monotonic()
            try:
                async with state.slots:
                    await state.limiter.wait()
                    response_format = state.response_format  # read late: an earlier call may have downgraded it
                    response = await self._create(state.client, request, messages, response_format)
            except Exception as error:  # the openai client's errors, timeouts, dropped connections
                state.budget.settle(estimated, 0.0)
                status, retryable = classify_error(error)
                usage.requests += 1
                self._log_call(state, CallRecord(key, status, seconds=time.monotonic() - started))
                if status in {str(s) for s in FATAL_STATUSES}:
                    raise ParaphraserError(
                        f"the server at {options.base_url or os.environ.get(BASE_URL_ENV) or 'api.openai.com'} "
                        f"rejected the credentials (HTTP {status}); check the {API_KEY_ENV} environment variable"
                    ) from None
                if _about_format(status, error) and state.downgrade(response_format):
                    continue  # the server lacks this structured-output form: ask again with the next one
                if not retryable:
                    raise _TransportFailure(f"http_{status}") from None
                if retry == options.max_retries:
                    raise _TransportFailure(f"retries_exhausted: {status}") from None
                headers = getattr(getattr(error, "response", None), "headers", None)
                wait = backoff_seconds(retry, options.backoff_base, options.backoff_max, self._rng,
                                       retry_after_seconds(headers))
                if wait > MAX_RETRY_AFTER:
                    raise _TransportFailure(f"retry_after_too_long: {status}") from None
                logger.info("%s: %s, retry %d/%d in %.2fs", request.template.where, status, retry + 1,
                            options.max_retries, wait)
                retry += 1
                await asyncio.sleep(wait)
                continue
            return self._account(state, key, response, estimated, usage, time.monotonic() - started)

    def _account(
        self, state: "_RunState", key: str, response: Any, estimated: float, usage: Usage, seconds: float
    ) -> tuple[str | None, str | None]:
        """Record a successful call's tokens and cost; return its ``(content, refusal)``."""
        prompt_tokens = (getattr(response.usage, "prompt_tokens", None) or 0) if response.usage else 0
        completion_tokens = (getattr(response.usage, "completion_tokens", None) or 0) if response.usage else 0
        cost = self.options.cost(prompt_tokens, completion_tokens)
        state.budget.settle(estimated, cost)
        usage.add(Usage(requests=1, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost=cost))
        self._log_call(state, CallRecord(key, "ok", prompt_tokens, completion_tokens, cost, seconds))
        if not response.choices:
            return None, None
        message = response.choices[0].message
        return message.content, getattr(message, "refusal", None)

    async def _create(self, client: Any, request: ParaphraseRequest, messages: list[dict], response_format: str) -> Any:
        options = self.options
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": options.temperature,
            "max_tokens": options.max_tokens,
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
            },
        }

    def _open_cache(self) -> AnswerCache | None:
        return AnswerCache(self.options.cache_dir) if self.options.cache_dir else None

    def _client(self) -> Any:
        import openai

        base_url = self.options.base_url or os.environ.get(BASE_URL_ENV)
        api_key = os.environ.get(API_KEY_ENV)
        if not api_key and not base_url:
            raise ParaphraserError(
                f"set the {API_KEY_ENV} environment variable (or use --base-url for a server that needs no key)"
            )
        # Retries are ours (bounded, logged, budgeted), so the client's own are off.
        return openai.AsyncOpenAI(
            api_key=api_key or NO_KEY, base_url=base_url, timeout=self.options.timeout, max_retries=0
        )

    def _log_call(self, state: "_RunState", record: CallRecord) -> None:
        if state.cache is not None:
            state.cache.log_call(record)

    def __repr__(self) -> str:
        # Options only: the key never lives on this object.
        return f"OpenAIParaphraser(model={self.model!r}, options={asdict(self.options)!r})"


@dataclass
class _RunState:
    """What the concurrent requests of one ``paraphrase`` call share."""

    client: Any
    cache: AnswerCache | None
    budget: Budget
    slots: asyncio.Semaphore
    limiter: RateLimiter
    response_format: str = "json_schema"

    def downgrade(self, rejected: str) -> bool:
        """After a 400/422 to ``rejected``, use the next weaker structured-output form; ``False`` if none is left.

        Servers differ: llama-cpp-python knows only ``json_object`` (with a schema), some know neither. The
        answer is validated either way, so a weaker form costs only more parse failures.
        """
        if self.response_format != rejected:
            return True  # another request already moved on: just ask again
        if rejected == RESPONSE_FORMATS[-1]:
            return False
        self.response_format = RESPONSE_FORMATS[RESPONSE_FORMATS.index(rejected) + 1]
        logger.warning("the server rejected response_format %r; using %r from now on", rejected, self.response_format)
        return True


def _about_format(status: str, error: BaseException) -> bool:
    """Whether an error rejects the structured-output form (not, say, a prompt that is too long).

    A 400/422 naming ``response_format`` or JSON; or a 500 naming ``response_format`` (llama-cpp-python
    answers its request-validation errors with 500).
    """
    if status not in ("400", "422", "500"):
        return False
    text = f"{error} {getattr(error, 'body', '')}".lower()
    return "response_format" in text or (status != "500" and "json" in text)


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
