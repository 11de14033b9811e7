"""A loopback OpenAI-compatible chat completions server that injects faults at set rates.

A real HTTP server (``ThreadingHTTPServer`` on 127.0.0.1, a free port, a background thread) speaking
``POST /v1/chat/completions`` and ``GET /v1/models``. The ``openai`` client runs unmodified against it,
so tests exercise the wire protocol, timeouts, dropped connections and headers for real.

Its "model" rewords the template it finds between ``<template>`` tags deterministically (a lead-in
sentence plus a few word swaps outside the ``{slots}``) and returns ``{"paraphrases": [...]}`` with the
number asked for ("Write exactly K"), so a healthy run yields paraphrases the build keeps.

Faults (:class:`Faults`), each at its own rate:

=================  ========================================================================
transport          drawn per (request body, attempt): ``rate_limit`` (429 + Retry-After),
                   ``server_error`` (500), ``unavailable`` (503 + Retry-After), ``slow``
                   (answers after ``slow_seconds``, past the client's timeout), ``drop`` (closes
                   the connection without an answer), ``truncated`` (200 whose JSON body is cut
                   short, Content-Length matching the cut: a proxy that relays a broken answer),
                   ``cut`` (200 whose headers promise the whole body, then the connection
                   closes halfway), ``no_choices`` (200 with a JSON body that has no ``choices``)
content            drawn per request body (so a repeated request gets the same answer):
                   ``malformed`` (truncated JSON), ``refusal``, ``slot_break`` (renames a slot),
                   ``executed`` (answers the instruction instead of rewording it)
=================  ========================================================================

Every request is recorded (:class:`Call`). The Authorization header is reduced to whether it matched
the expected key; the server keeps no copy of it and writes nothing to disk.

``stall_after=N`` holds every request after the N-th successful answer until :meth:`ChatServer.release`,
then drops it unanswered: a test can SIGKILL a client at a moment when answers are known to be committed
and further calls are in flight.

Example:
    >>> import openai
    >>> with ChatServer() as server:
    ...     client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
    ...     reply = client.chat.completions.create(model="fake", messages=[
    ...         {"role": "user", "content": "Write exactly 1 paraphrase(s).\\n<template>\\nQ: {q}\\n</template>"}])
    ...     server.outcomes()
    Counter({'ok': 1})
"""

from __future__ import annotations

import hashlib
import json
import random
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TRANSPORT_FAULTS = ("rate_limit", "server_error", "unavailable", "slow", "drop", "truncated", "cut", "no_choices")
CONTENT_FAULTS = ("malformed", "refusal", "slot_break", "executed")
_TEMPLATE = re.compile(r"<template>\n(.*?)\n</template>", re.DOTALL)
_K = re.compile(r"Write exactly (\d+)")
_SLOT = re.compile(r"(\{\{|\}\}|\{[A-Za-z_][A-Za-z0-9_]*\})")
LEAD_INS = (
    "Please handle the following task.",
    "Here is something for you to do.",
    "Take a careful look at this.",
    "Your job is described below.",
    "Work through the following request.",
)
SWAPS = (
    ("What is", "Which is"), ("Is this", "Would you say this is"), ("Read", "Go through"),
    ("tell me", "say"), ("text", "passage"), ("Decide", "Determine"), ("question", "query"),
    ("answer", "reply"), ("following", "next"), ("Pick", "Choose"), ("short", "brief"),
)


@dataclass
class Faults:
    """Fault rates (each 0-1; transport rates and content rates each sum to at most 1)."""

    rate_limit: float = 0.0
    server_error: float = 0.0
    unavailable: float = 0.0
    slow: float = 0.0
    drop: float = 0.0
    truncated: float = 0.0
    cut: float = 0.0
    no_choices: float = 0.0
    malformed: float = 0.0
    refusal: float = 0.0
    slot_break: float = 0.0
    executed: float = 0.0
    retry_after: float = 0.05  # seconds, sent in the Retry-After header of a 429 or 503
    slow_seconds: float = 2.0

    @classmethod
    def mixed(cls, total: float, **extra) -> "Faults":
        """``total`` spread evenly over every fault, transport and content."""
        share = total / (len(TRANSPORT_FAULTS) + len(CONTENT_FAULTS))
        return cls(**{name: share for name in TRANSPORT_FAULTS + CONTENT_FAULTS}, **extra)

    @classmethod
    def transport(cls, total: float, **extra) -> "Faults":
        """``total`` spread evenly over the transport faults only: every fault comes from the wire, none
        from the model (what a fault-injecting proxy in front of a healthy server produces)."""
        share = total / len(TRANSPORT_FAULTS)
        return cls(**{name: share for name in TRANSPORT_FAULTS}, **extra)


@dataclass
class Call:
    """One request as the server saw it."""

    body: str  # sha256 of the request's model, messages and seed (identifies a logical call)
    attempt: int  # 1 for the first time this body arrived, 2 for its first retry, ...
    outcome: str  # ok | rate_limit | server_error | ... | truncated | malformed | refusal | ... | stalled
    template: str | None
    reask: bool
    authorized: bool
    started: float
    ended: float = 0.0


def fake_paraphrases(template: str, k: int) -> list[str]:
    """k deterministic rewordings of ``template`` that keep every slot.

    Example:
        >>> fake_paraphrases("Text: {text}\\nWhat is the topic?\\n{options_}", 1)[0]
        'Please handle the following task.\\nText: {text}\\nWhich is the topic?\\n{options_}'
    """
    parts = _SLOT.split(template)
    for index in range(0, len(parts), 2):  # even indices are literal text, odd ones slots
        for old, new in SWAPS:
            parts[index] = parts[index].replace(old, new)
    body = "".join(parts)
    return [f"{LEAD_INS[i % len(LEAD_INS)]}\n{body}" for i in range(k)]


def request_message(messages: list[dict]) -> tuple[str, bool]:
    """The user message that asks for the paraphrases, and whether a re-ask follows it.

    It is the last user message holding ``<template>``: earlier ones may be worked examples.

    Example:
        >>> request_message([{"role": "user", "content": "<template>\\nA\\n</template>"},
        ...                  {"role": "assistant", "content": "B"}, {"role": "user", "content": "again"}])
        ('<template>\\nA\\n</template>', True)
    """
    users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
    at = max((i for i, text in enumerate(users) if "<template>" in text), default=0)
    return (users[at] if users else ""), len(users) > at + 1


class ChatServer:
    """The server; use as a context manager (starts on enter, stops on exit).

    Args:
        faults: fault rates; ``None`` answers every request correctly.
        seed: seeds the fault draws.
        api_key: when set, requests without ``Authorization: Bearer <api_key>`` get 401.
        latency: seconds each answered request takes (to observe concurrency).
        stall_after: hold requests after this many successful answers (see the module docstring).
        formats: the ``response_format`` types accepted (others get llama-cpp-python's 500 naming it).
    """

    def __init__(self, faults: Faults | None = None, seed: int = 0, api_key: str | None = None,
                 latency: float = 0.0, stall_after: int | None = None,
                 formats: tuple[str, ...] = ("json_schema", "json_object", "none")):
        self.faults = faults or Faults()
        self.formats = formats
        self.rejected_formats: list[str] = []
        self.seed = seed
        self._api_key = api_key
        self.latency = latency
        self.stall_after = stall_after
        self.calls: list[Call] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._attempts: Counter = Counter()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> "ChatServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def release(self) -> None:
        """Let stalled requests go (they are dropped unanswered) and stop stalling."""
        self.stall_after = None
        self._release.set()

    # --- what happened -------------------------------------------------------------------

    def outcomes(self) -> Counter:
        """Count of calls per outcome."""
        with self._lock:
            return Counter(call.outcome for call in self.calls)

    def successes(self) -> Counter:
        """Successful answers (HTTP 200 delivered in time, any content) per request body."""
        with self._lock:
            return Counter(call.body for call in self.calls if call.outcome in ("ok", *CONTENT_FAULTS))

    def attempts(self) -> Counter:
        """Number of times each request body arrived."""
        with self._lock:
            return Counter(call.body for call in self.calls)

    def waiting(self) -> int:
        """Requests currently stalled."""
        with self._lock:
            return sum(1 for call in self.calls if call.outcome == "stalled" and not call.ended)

    # --- answering -----------------------------------------------------------------------

    def _decide(self, body: str) -> tuple[int, str]:
        """``(attempt, outcome)`` for a request: transport faults per attempt, content faults per body."""
        with self._lock:
            self._attempts[body] += 1
            attempt = self._attempts[body]
        transport = _draw(random.Random(f"{self.seed}:{body}:{attempt}").random(), self.faults, TRANSPORT_FAULTS)
        content = _draw(random.Random(f"{self.seed}:{body}").random(), self.faults, CONTENT_FAULTS)
        return attempt, transport or content or "ok"

    def _answer(self, request: dict, outcome: str) -> dict:
        messages = request.get("messages") or []
        first, _ = request_message(messages)
        template_match, k_match = _TEMPLATE.search(first), _K.search(first)
        template = template_match.group(1) if template_match else first
        k = int(k_match.group(1)) if k_match else 1
        if outcome == "malformed":
            content = '{"paraphrases": ["' + template[:20]
        elif outcome == "refusal":
            content = "I'm sorry, but I can't help with that request."
        elif outcome == "slot_break":
            renamed = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", r"{\1_renamed}", template, count=1)
            content = json.dumps({"paraphrases": fake_paraphrases(renamed, k)})
        elif outcome == "executed":
            content = json.dumps({"paraphrases": ["The answer is yes."] * k})
        else:
            content = json.dumps({"paraphrases": fake_paraphrases(template, k)})
        prompt_tokens = max(1, sum(len(m.get("content") or "") for m in messages) // 4)
        completion_tokens = max(1, len(content) // 4)
        return {
            "id": "chatcmpl-" + hashlib.sha1(content.encode()).hexdigest()[:12],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "test"}]})
                else:
                    self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                    return
                try:
                    request = json.loads(raw)
                except ValueError:  # a body cut short (a client killed while sending)
                    self._json(400, {"error": {"message": "invalid JSON body", "type": "invalid_request_error"}})
                    return
                authorized = server._api_key is None or self.headers.get("Authorization") == f"Bearer {server._api_key}"
                messages = request.get("messages") or []
                # model + messages + seed: a top-up sample re-sends the same messages with the next seed
                body = hashlib.sha256(json.dumps([request.get("model"), messages, request.get("seed")],
                                                 sort_keys=True).encode()).hexdigest()
                format_type = (request.get("response_format") or {}).get("type", "none")
                if format_type not in server.formats:  # what llama-cpp-python answers (500, not 422)
                    message = ("1 validation error: {'type': 'literal_error', 'loc': ('body', 'response_format', "
                               f"'type'), 'msg': 'Input should be one of {server.formats}'}}")
                    self._json(500, {"error": {"message": message, "type": "internal_server_error"}})
                    with server._lock:
                        server.rejected_formats.append(format_type)
                    return
                attempt, outcome = server._decide(body)
                first_user, reask = request_message(messages)
                match = _TEMPLATE.search(first_user)
                call = Call(body, attempt, outcome, match.group(1) if match else None, reask=reask,
                            authorized=authorized, started=time.monotonic())
                with server._lock:
                    if server.stall_after is not None and sum(
                            c.outcome in ("ok", *CONTENT_FAULTS) for c in server.calls) >= server.stall_after:
                        call.outcome = outcome = "stalled"
                    server.calls.append(call)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._respond(request, outcome, authorized)
                finally:
                    with server._lock:
                        server.in_flight -= 1
                        call.ended = time.monotonic()

            def _respond(self, request: dict, outcome: str, authorized: bool) -> None:
                faults = server.faults
                if not authorized:
                    self._json(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                               "code": "invalid_api_key"}})
                elif outcome == "stalled":
                    server._release.wait()
                    self.close_connection = True
                elif outcome == "rate_limit":
                    self._json(429, {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}},
                               {"Retry-After": f"{faults.retry_after:g}"})
                elif outcome == "server_error":
                    self._json(500, {"error": {"message": "internal error", "type": "server_error"}})
                elif outcome == "unavailable":
                    self._json(503, {"error": {"message": "overloaded", "type": "server_error"}},
                               {"Retry-After": f"{faults.retry_after:g}"})
                elif outcome == "truncated":
                    data = json.dumps(server._answer(request, "ok")).encode()
                    self._send(200, data[: len(data) // 2])
                elif outcome == "cut":
                    data = json.dumps(server._answer(request, "ok")).encode()
                    self._send(200, data[: len(data) // 2], length=len(data))
                    self.close_connection = True
                elif outcome == "no_choices":
                    self._json(200, {"error": {"message": "upstream closed", "type": "proxy_error"}})
                elif outcome == "drop":
                    self.close_connection = True  # no status line: the client sees a dropped connection
                elif outcome == "slow":
                    time.sleep(faults.slow_seconds)
                    self._json(200, server._answer(request, "ok"))
                else:
                    if server.latency:
                        time.sleep(server.latency)
                    self._json(200, server._answer(request, outcome))

            def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
                self._send(status, json.dumps(payload).encode(), headers)

            def _send(self, status: int, data: bytes, headers: dict | None = None, length: int | None = None) -> None:
                """Write a response; ``length`` other than ``len(data)`` announces more bytes than are sent."""
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data) if length is None else length))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    self.close_connection = True

        return Handler


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connections when a client opens many at once: they would
    # show up as client timeouts that the server never saw.
    request_queue_size = 128


def _draw(u: float, faults: Faults, names: tuple[str, ...]) -> str | None:
    """The fault that ``u`` (uniform in [0, 1)) falls on, or ``None``."""
    edge = 0.0
    for name in names:
        edge += getattr(faults, name)
        if u < edge:
            return name
    return None


# --- killing a client mid-run ----------------------------------------------------------------------
def wait_for(condition, timeout: float, what: str) -> None:
    """Poll ``condition`` every 50 ms; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def kill_when(command: list[str], ready, timeout: float, what: str) -> subprocess.Popen:
    """Run ``command``, SIGKILL it once ``ready()`` holds (e.g. answers committed and calls held in flight by
    the server), and return the finished process; its output is discarded."""
    proc = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(ready, timeout, what)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc


def kill_build_then_resume(server: ChatServer, args: list[str], out, committed, timeout: float, what: str, resume):
    """Run ``coin-data <args>`` in a subprocess against ``server``, SIGKILL it once ``committed()`` holds while
    the server holds further calls in flight, check that no dataset folder (not even a partial one) is left
    at ``out``, release the server, and return ``resume(args)`` (the same build run again)."""
    proc = kill_when([sys.executable, "-m", "coin_data.cli", *args], lambda: server.waiting() >= 1 and committed(),
                     timeout, what)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))  # no half-written dataset
    server.release()
    return resume(args)
