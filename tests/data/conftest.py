"""Fixtures shared by the coin_data tests."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from coin_data.paraphrase import ParaphraseRequest
from coin_data.paraphrase.rules import RulesParaphraser, generator, lexical
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


@pytest.fixture(scope="session")
def rules_paraphraser(tmp_path_factory: pytest.TempPathFactory) -> RulesParaphraser:
    """One paraphraser with WordNet loaded, shared by the session (loading WordNet takes seconds).

    If nltk does not already find WordNet, it is built from the Debian files into a temporary root,
    so the tests never write into the user's home.
    """
    patch = pytest.MonkeyPatch()
    patch.setenv("COIN_NLTK_DATA", str(tmp_path_factory.mktemp("nltk_data")))
    paraphraser = RulesParaphraser()
    paraphraser.lexicon  # load now, inside the patched environment
    patch.undo()
    return paraphraser


@pytest.fixture(scope="session")
def before_fallback(rules_paraphraser: RulesParaphraser):
    """The candidates a request gets from the rules passes before the fallback (run as ``candidates`` runs them)."""

    def run(request: ParaphraseRequest) -> list[str]:
        chosen: list[str] = []
        for stage, suffix in enumerate(generator._PASSES[: generator._FALLBACK]):
            rng = random.Random(lexical._request_seed(request.template.text + suffix, request.seed))
            chosen = rules_paraphraser._search(request, rng, chosen, stage)
        return chosen

    return run
