"""Fixtures shared by the coin_data tests."""

from __future__ import annotations

import pytest

from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder


@pytest.fixture(scope="session")
def embedder():
    """The bundled all-MiniLM-L6-v2, loaded once per test session."""
    return SentenceTransformerEmbedder()


@pytest.fixture
def cache(embedder):
    """A fresh embedding cache (fresh counters) over the shared model."""
    return EmbeddingCache(embedder)
