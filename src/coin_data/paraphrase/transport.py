"""The wire side of ``openai:MODEL``: limits, the call budget, retries with backoff, fault classification.

Everything that can go wrong *below* the model's answer is a transport fault, and every transport fault
is retried with the same request body, with backoff, within one bounded attempt budget
(``max_retries + 1`` attempts per logical call):

- ``408``, ``409``, ``429``, ``5xx``: that HTTP status (``Retry-After`` sets the wait);
- ``timeout``: no answer within ``timeout`` seconds (a stalled server or proxy);
- ``connection``: refused, dropped or reset, or closed before the whole body arrived;
- ``truncated_body``: a 200 whose body is not complete JSON (a proxy or a restarting server cut it);
- ``no_choices``: a 200 whose JSON is not a chat completion with ``choices`` (a proxy's error page);
- ``invalid_response``: a body the client could not validate.

Only when the budget is spent does a call fail, with its cause (``retries_exhausted: <cause>``); a
status that retrying cannot change (400, 404, 413 ...) fails at once as ``http_<status>``, and 401/403
stop the build (the key is wrong). A model answer that arrives whole but is unusable (malformed,
refusal ...) is *not* a transport fault: the backend decides about it (:mod:`.prompt`).

The ``openai`` client's own retries must stay off (``max_retries=0``): it would otherwise repeat
timeouts, dropped connections and 5xx up to its own count inside each of our attempts, multiplying
the two budgets, and it would not retry a truncated body at all.

Example:
    >>> classify_error(json.JSONDecodeError("Unterminated string", '{"id": "x', 7))
    ('truncated_body', True)
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from coin_data.paraphrase.base import ParaphraserError

logger = logging.getLogger(__name__)

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
# Sent when a custom server is used and no key is set: local servers (llama.cpp, vLLM) ignore it.
NO_KEY = "sk-no-key-required"
RETRY_STATUSES = frozenset({408, 409, 429})
FATAL_STATUSES = frozenset({"401", "403"})
RESPONSE_FORMATS = ("json_schema", "json_object", "none")
# A server asking to wait longer than this is treated as down for this build.
MAX_RETRY_AFTER = 600.0


class TransportFailure(Exception):
    """A call that got no answer: its attempt budget is spent, or its status cannot change on a retry.

    Attributes:
        reason: what the template's result records (``retries_exhausted: timeout``, ``http_400`` ...).
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OverBudget(Exception):
    """The call budget (``max_calls`` / ``max_cost``) refused the next attempt."""


class NoChoices(Exception):
    """A 200 whose JSON body is not a chat completion with ``choices``."""


@dataclass
class Reply:
    """The usable part of one chat completion: the first choice's text and the token counts."""

    content: str | None
    refusal: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class RetryPolicy:
    """How often and how long to retry a call (defaults and help: the ``OpenAIOptions`` fields of these names)."""

    max_retries: int
    backoff_base: float
    backoff_max: float


# --- limits ----------------------------------------------------------------------------------


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
    """Call and cost limits, checked before each attempt.

    An attempt reserves its estimated cost until its real cost is known, so concurrent calls cannot
    jointly overshoot ``max_cost`` by more than the estimates' error.

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

    def stop_message(self, unique: int, missing: int, cache_dir: str | None) -> str:
        """What a build stopped by this budget tells the user (``missing`` of ``unique`` requests unanswered).

        Example:
            >>> Budget(max_calls=2, max_cost=None).stop_message(5, 3, None).split(";")[0]
            'budget reached (--max-calls 2): 0 call(s) made, $0.0000 spent'
        """
        limits = [f"--max-calls {self.max_calls}"] if self.max_calls is not None else []
        limits += [f"--max-cost {self.max_cost}"] if self.max_cost is not None else []
        where = f" in {cache_dir}" if cache_dir else ""
        return (
            f"budget reached ({', '.join(limits)}): {self.calls} call(s) made, ${self.spent:.4f} spent; "
            f"{unique - missing} of {unique} template request(s) answered and cached{where}, {missing} left. "
            "No dataset was written. Run the same command with a larger budget to continue from the cache."
        )


# --- faults and backoff --------------------------------------------------------------------


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
    """``(cause, retryable)`` for an exception raised while getting one chat completion.

    Example:
        >>> classify_error(asyncio.TimeoutError())
        ('timeout', True)
    """
    import openai

    timeouts, transports = _http_errors()
    if isinstance(error, (openai.APITimeoutError, asyncio.TimeoutError, TimeoutError, *timeouts)):
        return "timeout", True
    if isinstance(error, (openai.APIConnectionError, ConnectionError, *transports)):
        return "connection", True
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        return str(status), status in RETRY_STATUSES or status >= 500
    if isinstance(error, openai.APIResponseValidationError):
        return "invalid_response", True
    # The client parses a 200's body with json.loads and lets its error through unwrapped.
    if isinstance(error, (json.JSONDecodeError, UnicodeDecodeError)):
        return "truncated_body", True
    if isinstance(error, NoChoices):
        return "no_choices", True
    return type(error).__name__, False


def _http_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """The HTTP library's timeout and transport errors, in case one escapes the client unwrapped.

    openai 3 speaks through ``httpx2``, earlier releases through ``httpx``.
    """
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        return (module.TimeoutException,), (module.TransportError,)
    return (), ()


def read_reply(response: Any) -> Reply:
    """The first choice's content, refusal and the token counts of a chat completion.

    Raises:
        NoChoices: the body parsed as JSON but carries no choice with a message (e.g. a proxy's error).
    """
    choices = getattr(response, "choices", None)
    message = getattr(choices[0], "message", None) if isinstance(choices, list) and choices else None
    if message is None:
        raise NoChoices(f"a 200 without choices: {str(response)[:200]}")
    usage = getattr(response, "usage", None)
    return Reply(
        content=getattr(message, "content", None),
        refusal=getattr(message, "refusal", None),
        prompt_tokens=(getattr(usage, "prompt_tokens", None) or 0) if usage else 0,
        completion_tokens=(getattr(usage, "completion_tokens", None) or 0) if usage else 0,
    )


def redact(text: str) -> str:
    """``text`` with the API key (if one is set) replaced by ``***``: for anything logged or stored.

    Example:
        >>> redact("no key here")
        'no key here'
    """
    key = os.environ.get(API_KEY_ENV)
    return text.replace(key, "***") if key and len(key) >= 4 else text


def server_name(base_url: str | None) -> str:
    """The server a run talks to: ``base_url``, else ``OPENAI_BASE_URL``, else the OpenAI API."""
    return base_url or os.environ.get(BASE_URL_ENV) or "api.openai.com"


def open_client(base_url: str | None, timeout: float) -> Any:
    """An ``openai.AsyncOpenAI`` for ``base_url`` (else ``OPENAI_BASE_URL``) with its own retries off.

    The key is read from ``OPENAI_API_KEY`` here and handed to the client only.

    Raises:
        ParaphraserError: neither a key nor a custom server is set.
    """
    import openai

    base_url = base_url or os.environ.get(BASE_URL_ENV)
    api_key = os.environ.get(API_KEY_ENV)
    if not api_key and not base_url:
        raise ParaphraserError(
            f"set the {API_KEY_ENV} environment variable (or use --base-url for a server that needs no key)")
    # Retries are ours (bounded, logged, budgeted, and they cover cut-off bodies): the client's own would
    # repeat inside each of our attempts and multiply the two counts.
    return openai.AsyncOpenAI(api_key=api_key or NO_KEY, base_url=base_url, timeout=timeout, max_retries=0)


# --- one run's transport -------------------------------------------------------------------

# Called once per attempt with (status, reply or None, seconds, cost): the backend logs it.
AttemptLog = Callable[[str, "Reply | None", float, float], None]


class Transport:
    """What the concurrent calls of one paraphrase run share on the wire.

    Args:
        policy: retries and backoff.
        budget: call and cost limits.
        concurrency: most calls in flight.
        rpm: most call starts per minute (``None``: no limit).
        response_format: the structured-output form to start with (see :meth:`downgrade`).
        price: ``(prompt_tokens, completion_tokens) -> USD``.
        server: the server's address, for the message when it rejects the key.
    """

    def __init__(self, policy: RetryPolicy, budget: Budget, concurrency: int, rpm: float | None,
                 response_format: str, price: Callable[[int, int], float], server: str):
        self.policy, self.budget, self.price, self.server = policy, budget, price, server
        self.slots = asyncio.Semaphore(concurrency)
        self.limiter = RateLimiter(rpm)
        self.response_format = response_format
        self.rng = random.Random()  # jitter only spaces attempts in time; it never reaches the output

    async def send(self, create: Callable[[str], Awaitable[Any]], estimated: float, log: AttemptLog,
                   where: str = "") -> Reply:
        """One logical call: attempts with the same body until one brings a whole chat completion.

        Args:
            create: ``response_format -> awaitable response``; called once per attempt with the same body.
            estimated: the call's estimated cost (reserved against the budget per attempt).
            log: told about every attempt.
            where: names the template in log lines.

        Returns:
            The reply (its content may still be an unusable answer: that is for the caller to judge).

        Raises:
            OverBudget: the budget refused an attempt.
            TransportFailure: the attempt budget is spent, or the status cannot change on a retry.
            ParaphraserError: the server rejected the credentials (401/403).
        """
        retry = 0
        while True:
            if not self.budget.reserve(estimated):
                raise OverBudget()
            started = time.monotonic()
            try:
                async with self.slots:
                    await self.limiter.wait()
                    response_format = self.response_format  # read late: another call may have downgraded it
                    reply = read_reply(await create(response_format))
            except Exception as error:  # the client's errors, timeouts, dropped connections, cut bodies
                self.budget.settle(estimated, 0.0)
                cause, retryable = classify_error(error)
                log(cause, None, time.monotonic() - started, 0.0)
                if cause in FATAL_STATUSES:
                    raise ParaphraserError(
                        f"the server at {self.server} rejected the credentials (HTTP {cause}); "
                        f"check the {API_KEY_ENV} environment variable") from None
                if _about_format(cause, error) and self.downgrade(response_format):
                    continue  # the server lacks this structured-output form: ask again with the next one
                wait = self._wait(cause, retryable, retry, error)
                logger.info("%s: %s, retry %d/%d in %.2fs", where, cause, retry + 1, self.policy.max_retries, wait)
                retry += 1
                await asyncio.sleep(wait)
                continue
            cost = self.price(reply.prompt_tokens, reply.completion_tokens)
            self.budget.settle(estimated, cost)
            log("ok", reply, time.monotonic() - started, cost)
            return reply

    def _wait(self, cause: str, retryable: bool, retry: int, error: BaseException) -> float:
        """Seconds before the next attempt, or :class:`TransportFailure` when there is none."""
        if not retryable:
            raise TransportFailure(f"http_{cause}") from None
        if retry >= self.policy.max_retries:
            raise TransportFailure(f"retries_exhausted: {cause}") from None
        headers = getattr(getattr(error, "response", None), "headers", None)
        wait = backoff_seconds(retry, self.policy.backoff_base, self.policy.backoff_max, self.rng,
                               retry_after_seconds(headers))
        if wait > MAX_RETRY_AFTER:
            raise TransportFailure(f"retry_after_too_long: {cause}") from None
        return wait

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
