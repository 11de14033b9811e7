"""Embeddings on disk, so that a rerun (or another build of the same inputs) embeds nothing it embedded before.

One SQLite file, ``<folder>/embeddings.sqlite`` (WAL mode), with one row per (model, text): the key is the
first 16 bytes of the SHA-256 of ``model + "\\x1f" + text``, the value the float32 vector as bytes and its
length (about 1.7 KB on disk per 384-float vector). Texts themselves are not stored. Every
:meth:`EmbeddingStore.put_many` is one transaction: a build killed while writing leaves the batch out
entirely (SQLite rolls it back when the file is next opened), never half of it, and a row whose bytes do
not match its length is ignored (and embedded again).

The vectors are the exact bits the model gave when they were first embedded, so a build that reads them
writes the same bytes as the build that stored them. They are not necessarily the bits a cold build of a
different shape would compute: the model's batching moves the last bits (see ``docs/scale.md``).

Example:
    >>> import tempfile
    >>> store = EmbeddingStore(tempfile.mkdtemp(), "all-MiniLM-L6-v2")
    >>> store.put_many(["a cat"], np.ones((1, 3), dtype=np.float32))
    >>> store.get_many(["a dog", "a cat"])["a cat"].tolist(), len(store)
    ([1.0, 1.0, 1.0], 1)
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Sequence

import numpy as np

STORE_FILE = "embeddings.sqlite"
SCHEMA_VERSION = 1
_LOOKUP_CHUNK = 500  # keys per SELECT (SQLite allows 999 parameters by default on older builds)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    key BLOB PRIMARY KEY,
    dimension INTEGER NOT NULL,
    vector BLOB NOT NULL
);
"""
# 8 KB pages hold four 384-float rows each: about 1.7 KB on disk per vector (WITHOUT ROWID, or 4 KB pages,
# put every vector on an overflow page of its own: 4.7 KB).
_PAGE_SIZE = 8192


class EmbeddingStore:
    """The on-disk embeddings of one model in ``folder`` (created if missing); safe to share between processes.

    Args:
        folder: folder holding ``embeddings.sqlite``.
        model: the model's name or path, part of every key (another model never reads these vectors).
    """

    def __init__(self, folder: str | Path, model: str):
        self.path = Path(folder) / STORE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.model = model
        self._db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        self._db.execute(f"PRAGMA page_size={_PAGE_SIZE}")  # takes effect only when the file is new
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL loses no committed transaction on a process kill (only on power loss) and is much faster.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def key(self, text: str) -> bytes:
        """The 16-byte key of ``text`` under this store's model."""
        return hashlib.sha256(f"{self.model}\x1f{text}".encode("utf-8")).digest()[:16]

    def get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of ``texts`` (those found, in the order given), as read-only float32 arrays."""
        keys = {self.key(text): text for text in texts}
        found: dict[bytes, np.ndarray] = {}
        ordered = list(keys)
        for start in range(0, len(ordered), _LOOKUP_CHUNK):
            chunk = ordered[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, dimension, blob in self._db.execute(
                f"SELECT key, dimension, vector FROM vectors WHERE key IN ({marks})", chunk
            ):
                if len(blob) == 4 * dimension:  # anything else is not a vector this module wrote: embed again
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return {keys[key]: found[key] for key in ordered if key in found}

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text in one transaction (committed on return; existing keys are kept)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(texts) != len(vectors):
            raise ValueError(f"put_many needs one vector per text, got {len(texts)} texts and {len(vectors)} vectors")
        rows = [(self.key(text), vector.shape[0], vector.tobytes()) for text, vector in zip(texts, vectors)]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?, ?)", rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def close(self) -> None:
        """Close the database (further use raises)."""
        self._db.close()
