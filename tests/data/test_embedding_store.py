"""The on-disk embedding cache (``--embedding-cache``): exact vectors back, per model, nothing half-written
trusted after a kill, and a rebuild over a warm cache that embeds nothing and writes the same bytes."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from coin_data.build import BuildConfig, build_to_folder
from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder
from coin_data.verify.embedding_store import EmbeddingStore


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_store_gives_back_the_exact_bits_for_its_model_only(tmp_path):
    vectors = np.random.default_rng(0).standard_normal((3, 384)).astype(np.float32)
    store = EmbeddingStore(tmp_path, "model-a")
    store.put_many(["one", "two", "three"], vectors)
    got = store.get_many(["three", "missing", "one"])
    assert list(got) == ["three", "one"]
    assert got["three"].tobytes() == vectors[2].tobytes() and got["one"].tobytes() == vectors[0].tobytes()
    assert EmbeddingStore(tmp_path, "model-b").get_many(["one"]) == {}
    store.put_many(["one"], np.zeros((1, 384), dtype=np.float32))  # an existing key keeps its first vector
    assert EmbeddingStore(tmp_path, "model-a").get_many(["one"])["one"].tobytes() == vectors[0].tobytes()


def test_a_row_of_the_wrong_length_is_not_trusted(tmp_path):
    store = EmbeddingStore(tmp_path, "m")
    store._db.execute("INSERT INTO vectors VALUES (?, ?, ?)", (store.key("cut"), 384, b"\0" * 100))
    assert store.get_many(["cut"]) == {}


def test_a_batch_killed_before_its_commit_is_not_there(tmp_path):
    code = (
        "import sys, time, numpy as np\n"
        "from coin_data.verify.embedding_store import EmbeddingStore\n"
        f"store = EmbeddingStore({str(tmp_path)!r}, 'm')\n"
        "store.put_many(['kept'], np.ones((1, 4), np.float32))\n"
        "store._db.execute('BEGIN IMMEDIATE')\n"
        "store._db.executemany('INSERT INTO vectors VALUES (?, ?, ?)',\n"
        "                      [(store.key(f's{n}'), 4, np.ones(4, np.float32).tobytes()) for n in range(5000)])\n"
        "print('written', flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    store = EmbeddingStore(tmp_path, "m")
    assert len(store) == 1 and list(store.get_many(["kept", "s0", "s4999"])) == ["kept"]


def test_cache_reads_the_store_before_the_model(tmp_path):
    first = EmbeddingCache(SentenceTransformerEmbedder(), store=EmbeddingStore(tmp_path, "m"))
    vectors = first.embed(["a red apple", "a green pear", "a red apple"])
    assert first.strings_embedded == 2 and first.strings_from_store == 0

    class NoModel:
        name = "m"

        def encode(self, texts):
            raise AssertionError(f"embedded {texts} again")

    second = EmbeddingCache(NoModel(), store=EmbeddingStore(tmp_path, "m"))
    again = second.embed(["a green pear", "a red apple"])
    assert second.strings_embedded == 0 and second.strings_from_store == 2
    assert again.tobytes() == vectors[[1, 0]].tobytes()


def test_bounded_cache_scores_in_batches_like_one_call():
    pairs = [(f"the {n % 7} cat", f"the {n % 5} dog") for n in range(40)]
    left, right = [a for a, _ in pairs], [b for _, b in pairs]
    whole = EmbeddingCache(SentenceTransformerEmbedder()).cosine(left, right)
    batched = EmbeddingCache(SentenceTransformerEmbedder(), max_strings=3, batch_strings=4)
    assert batched.cosine(left, right) == pytest.approx(whole, abs=1e-5)
    assert len(batched._vectors) == 3  # memory held the bound after every batch


@pytest.mark.parametrize("shard_rows", [None, 60])
def test_rebuild_over_a_warm_cache_embeds_nothing_and_writes_the_same_bytes(tmp_path, monkeypatch, shard_rows):
    config = BuildConfig(tasks=("spam",), shard_rows=shard_rows, embedding_cache=str(tmp_path / "cache"))
    cold = build_to_folder(config, tmp_path / "cold")
    build_to_folder(BuildConfig(tasks=("spam",), shard_rows=shard_rows), tmp_path / "plain")
    assert cold.stats.embedding_strings > 100 and cold.stats.embedding_from_cache == 0

    def no_model(self, texts):
        raise AssertionError(f"a warm rebuild embedded {len(texts)} strings")

    monkeypatch.setattr(SentenceTransformerEmbedder, "encode", no_model)
    warm = build_to_folder(config, tmp_path / "warm")
    assert warm.stats.embedding_strings == 0
    assert warm.stats.embedding_from_cache >= cold.stats.embedding_strings
    cold_files = _files(tmp_path / "cold")
    assert len(cold_files) >= (4 if shard_rows else 3)
    assert _files(tmp_path / "warm") == cold_files
    assert _files(tmp_path / "plain") == cold_files  # a cold cache changes nothing: the same batches are embedded


def test_streamed_build_reads_what_it_forgot_back_from_its_scratch_store(tmp_path, monkeypatch):
    import coin_data.build as build_module

    whole = build_to_folder(BuildConfig(tasks=("spam",)), tmp_path / "whole")
    monkeypatch.setattr(build_module, "STREAMED_CACHE_STRINGS", 20)  # memory forgets almost at once
    monkeypatch.setattr(build_module, "STREAMED_BATCH_STRINGS", 16)
    small = build_to_folder(BuildConfig(tasks=("spam",), shard_rows=60), tmp_path / "small")
    # every distinct string embedded once, as in memory; what was forgotten came back from disk
    assert small.stats.embedding_strings == whole.stats.embedding_strings
    assert small.stats.embedding_from_cache > 100
    assert not list(tmp_path.rglob("*.sqlite")) and not list(tmp_path.rglob(".embeddings"))


def test_a_vector_costs_little_more_than_its_bytes_on_disk(tmp_path):
    store = EmbeddingStore(tmp_path, "m")
    vectors = np.random.default_rng(1).standard_normal((2000, 384)).astype(np.float32)
    for start in range(0, 2000, 500):
        store.put_many([f"text {n}" for n in range(start, start + 500)], vectors[start : start + 500])
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert store.path.stat().st_size / 2000 < 1.25 * 384 * 4  # 4.7 KB a vector with overflow pages
