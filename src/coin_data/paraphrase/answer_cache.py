"""A content-addressed cache of paraphrase answers that survives crashes and makes reruns free.

One SQLite file (``<cache_dir>/paraphrase.sqlite``) in WAL mode with three tables:

- ``answers``: the final outcome of one request, keyed by a hash of everything that determines it
  (backend, model, prompt version, template text, k, protected words, sampling parameters, seed). A rerun
  finds the answer and makes no call.
- ``calls``: one row per API call (attempts and re-asks included) with its status and token usage, so
  spending is accounted per call even when a build stops before finishing.
- ``replies``: the raw reply to each request body that got one, so a build killed between a first
  answer and its re-ask never pays for (or gets a different) first answer again.

Every write is its own transaction, committed before the next call starts, so a build killed with
SIGKILL loses at most the calls in flight; started again, it asks only for what is missing. Only what
the server answered is stored: a transport failure (rate limit, timeout, cut-off body, retries
exhausted) is not, so a rerun tries again. Nothing secret goes in: keys are hashes of request content, and API keys are never part
of a request's content.

Example:
    >>> import tempfile
    >>> cache = AnswerCache(tempfile.mkdtemp())
    >>> key = cache_key({"backend": "openai", "model": "m", "template": "Q: {q}", "k": 2})
    >>> cache.get(key) is None
    True
    >>> cache.put(key, CachedAnswer(["Question: {q}"], None, prompt_tokens=10, completion_tokens=5))
    >>> cache.get(key).candidates
    ['Question: {q}']
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

CACHE_FILE = "paraphrase.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    candidates TEXT NOT NULL,
    failure TEXT,
    detail TEXT NOT NULL DEFAULT '',
    requests INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    request TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_key ON calls (key);
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    content TEXT,
    refusal TEXT,
    created REAL NOT NULL
);
"""


def cache_key(parts: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``parts`` (sorted keys, no whitespace).

    Args:
        parts: everything that determines an answer; values must be JSON-serialisable.

    Returns:
        64 hex characters.

    Example:
        >>> cache_key({"a": 1, "b": [2]}) == cache_key({"b": [2], "a": 1})
        True
    """
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class CachedAnswer:
    """The stored final outcome of one request.

    Attributes:
        candidates: the candidate templates (empty when the request failed).
        failure: ``None``, or the failure name (``refusal``, ``slot_changed`` ...).
        detail: a short explanation of the failure.
        requests, prompt_tokens, completion_tokens, cost: what producing it cost (all its calls).
        request: a description of the request (template, k, model), for people reading the cache.
    """

    candidates: list[str]
    failure: str | None = None
    detail: str = ""
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    request: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallRecord:
    """One API call as logged in the ``calls`` table."""

    key: str
    status: str  # "ok", or what went wrong: "429", "500", "timeout", "connection", ...
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    seconds: float = 0.0


class AnswerCache:
    """The SQLite answer cache in ``cache_dir`` (created if missing).

    Safe to share between threads of one process (one connection behind a lock) and between processes
    (SQLite's WAL locking).

    Args:
        cache_dir: folder holding ``paraphrase.sqlite``.
    """

    def __init__(self, cache_dir: str | Path):
        self.path = Path(cache_dir) / CACHE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL loses no committed transaction on a process kill (only on power loss) and is much faster.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def get(self, key: str) -> CachedAnswer | None:
        """The stored answer for ``key``, or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT candidates, failure, detail, requests, prompt_tokens, completion_tokens, cost, request "
                "FROM answers WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        candidates, failure, detail, requests, prompt_tokens, completion_tokens, cost, request = row
        return CachedAnswer(
            json.loads(candidates), failure, detail, requests, prompt_tokens, completion_tokens, cost, json.loads(request)
        )

    def put(self, key: str, answer: CachedAnswer) -> None:
        """Store (or replace) the final answer for ``key``; committed on return."""
        values = (
            key,
            json.dumps(answer.candidates, ensure_ascii=False),
            answer.failure,
            answer.detail,
            answer.requests,
            answer.prompt_tokens,
            answer.completion_tokens,
            answer.cost,
            json.dumps(answer.request, ensure_ascii=False, sort_keys=True),
            time.time(),
        )
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def log_call(self, record: CallRecord) -> None:
        """Append one API call to the ``calls`` table; committed on return."""
        values = (
            record.key,
            record.status,
            record.prompt_tokens,
            record.completion_tokens,
            record.cost,
            record.seconds,
            time.time(),
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO calls (key, status, prompt_tokens, completion_tokens, cost, seconds, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                values,
            )

    def put_reply(self, key: str, content: str | None, refusal: str | None) -> None:
        """Store the raw reply to the request body hashed as ``key``; committed on return."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)", (key, content, refusal, time.time()))

    def get_reply(self, key: str) -> tuple[str | None, str | None] | None:
        """``(content, refusal)`` stored for the request body hashed as ``key``, or ``None``."""
        with self._lock:
            row = self._db.execute("SELECT content, refusal FROM replies WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], row[1])

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM answers WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def spending(self) -> dict[str, float]:
        """Totals over every logged call: ``calls``, ``ok_calls``, ``prompt_tokens``, ``completion_tokens``, ``cost``.

        Example:
            >>> import tempfile
            >>> AnswerCache(tempfile.mkdtemp()).spending()["calls"]
            0
        """
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(status = 'ok'), 0), COALESCE(SUM(prompt_tokens), 0), "
                "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost), 0) FROM calls"
            ).fetchone()
        names = ("calls", "ok_calls", "prompt_tokens", "completion_tokens", "cost")
        return dict(zip(names, row))

    def close(self) -> None:
        """Close the connection (the data is already committed)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> "AnswerCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
