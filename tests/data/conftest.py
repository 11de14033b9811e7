"""Fixtures shared by the coin_data tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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


def benchmark_module(name: str):
    """``benchmarks/<name>.py``, imported by path (benchmarks are not a package)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark():
    """:func:`benchmark_module`, for tests that start what a benchmark starts (the llama.cpp server)."""
    return benchmark_module


@pytest.fixture(scope="session")
def yield_module():
    """``benchmarks/yield.py``: the paraphrase-yield measurement."""
    return benchmark_module("yield")
