"""Sharded, streamed builds (``shard_rows``): the same rows as the in-memory build, byte-identical reruns,
atomic writes when killed, and every reader of a built folder (stats, mine, publish checks, coin-train)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import yaml

from coin_data import schema
from coin_data.build import BuildConfig, build_to_folder
from coin_data.hub import layout
from coin_data.hub.publish import check_folder
from coin_data.hub.remine import mine_dataset
from coin_data.hub.stats import dataset_stats

TASKS = ("spam", "sentiment")
SHARD = 50


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    single = build_to_folder(BuildConfig(tasks=TASKS), root / "single")
    sharded = build_to_folder(BuildConfig(tasks=TASKS, shard_rows=SHARD), root / "sharded")
    return root, single, sharded


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_sharded_folder_has_hub_names_and_a_card_that_loads(folders):
    root, single, sharded = folders
    rows = sharded.stats.rows
    assert rows == single.stats.rows and rows["train"] > 4 * SHARD
    n_train = -(-rows["train"] // SHARD)
    files = _files(root / "sharded")
    assert [f for f in files if f.startswith("data/train")] == [
        f"data/train-{k:05d}-of-{n_train:05d}.parquet" for k in range(n_train)
    ]
    meta = yaml.safe_load((root / "sharded" / "README.md").read_text().split("---\n")[1])
    default = meta["configs"][0]["data_files"]
    assert default[0] == {"split": "train", "path": f"data/train-*-of-{n_train:05d}.parquet"}
    info = {s["name"]: s["num_examples"] for s in meta["dataset_info"][0]["splits"]}
    assert info == rows
    sizes = [pq_rows(root / "sharded" / f) for f in files if f.startswith("data/train")]
    assert sizes[:-1] == [SHARD] * (n_train - 1) and sum(sizes) == rows["train"]


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


def test_sharded_rows_equal_the_single_file_rows(folders, monkeypatch):
    root, _, _ = folders
    monkeypatch.chdir(root)
    one, many = datasets.load_dataset("single"), datasets.load_dataset("sharded")
    assert {s: len(d) for s, d in many.items()} == {s: len(d) for s, d in one.items()}
    for split in one:
        for a, b in zip(one[split].to_list(), many[split].to_list()):
            # Negative scores come from embeddings batched per shard: equal to float32 rounding.
            assert b.pop(schema.NEGATIVE_SIMILARITY) == pytest.approx(a.pop(schema.NEGATIVE_SIMILARITY), abs=1e-5)
            assert a == b


def test_streamed_result_reads_the_written_rows(folders):
    _, single, sharded = folders
    first = next(iter(sharded.dataset["train"]))
    assert first[schema.ID] == single.dataset["train"][0][schema.ID]


def test_same_seed_and_shard_size_give_byte_identical_files(tmp_path):
    config = BuildConfig(tasks=("spam",), paraphrases_per_template=2, seed=3, shard_rows=40)
    build_to_folder(config, tmp_path / "a")
    build_to_folder(config, tmp_path / "b")
    files = _files(tmp_path / "a")
    assert files == _files(tmp_path / "b") and len(files) > 4
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_rows_held_as_arrow_chunks_of_any_size_write_the_same_bytes(tmp_path, monkeypatch):
    from coin_data import assemble

    config = BuildConfig(tasks=("spam",), paraphrases_per_template=2, seed=3, shard_rows=40)
    build_to_folder(config, tmp_path / "a")
    monkeypatch.setattr(assemble, "_ARROW_CHUNK_ROWS", 7)  # chunks cut inside every shard, not at its edges
    build_to_folder(config, tmp_path / "b")
    files = _files(tmp_path / "a")
    assert files == _files(tmp_path / "b") and len(files) > 4
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_in_memory_result_written_in_shards_matches_the_streamed_folder(tmp_path, folders):
    root, single, _ = folders
    single.config.shard_rows = SHARD
    try:
        layout.write_dataset(single, tmp_path / "cut")
    finally:
        single.config.shard_rows = None
    assert _files(tmp_path / "cut") == _files(root / "sharded")


def test_failure_mid_stream_leaves_nothing(tmp_path, monkeypatch):
    write = layout.ShardWriter.__call__
    calls = []

    def failing(self, split, table):
        calls.append(split)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return write(self, split, table)

    monkeypatch.setattr(layout.ShardWriter, "__call__", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        build_to_folder(BuildConfig(tasks=("spam",), shard_rows=20), tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_killed_sharded_build_leaves_nothing_complete_looking(tmp_path):
    out = tmp_path / "ds"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    args = [sys.executable, "-m", "coin_data.cli", "build", "-q", "--tasks", "spam", "--scale", "40",
            "--shard-rows", "20", "--out", str(out)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not list(tmp_path.glob(".ds.partial-*/data/train-*")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        assert list(tmp_path.glob(".ds.partial-*/data/train-*")), "no shard was written within 240 s"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    assert all(p.name.startswith(".ds.partial-") for p in tmp_path.iterdir())
    assert not list(tmp_path.rglob("README.md")) and not list(tmp_path.rglob("*-of-*.parquet"))
    # the next build deletes the leftovers of the killed one
    build_to_folder(BuildConfig(tasks=("spam",), shard_rows=20), out)
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_stats_reads_every_shard(folders):
    root, _, _ = folders
    one, many = dataset_stats(root / "single"), dataset_stats(root / "sharded")
    for key in ("rows", "tasks", "negatives", "views", "verdicts"):
        assert many.get(key) == one.get(key), key


def test_mine_keeps_the_shards_and_fills_every_row(folders, tmp_path):
    root, _, sharded = folders
    mine_dataset(root / "single", tmp_path / "one")
    mine_dataset(root / "sharded", tmp_path / "many")
    assert _files(tmp_path / "many") == _files(root / "sharded")
    one = datasets.load_dataset(str(tmp_path / "one"))
    many = datasets.load_dataset(str(tmp_path / "many"))
    for split in one:
        assert len(many[split]) == sharded.stats.rows[split]
        assert many[split][schema.MINED_NEGATIVE_SOURCE] == one[split][schema.MINED_NEGATIVE_SOURCE]
        assert many[split][schema.MINED_NEGATIVE] == one[split][schema.MINED_NEGATIVE]
    assert all(source is not None for source in many["train"][schema.MINED_NEGATIVE_SOURCE])


def test_publish_uploads_every_shard_to_a_loopback_hub(folders, tmp_path, monkeypatch):
    import importlib.util
    import secrets

    import huggingface_hub

    from coin_data.hub.publish import publish

    if "hub_server" not in sys.modules:  # by path, registered as test_publish.py does (tests/ is no package)
        spec = importlib.util.spec_from_file_location("hub_server", Path(__file__).parents[1] / "hub_server.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["hub_server"] = module
        spec.loader.exec_module(module)
    hub_server = sys.modules["hub_server"]
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)  # the double has no Xet
    root, _, _ = folders
    listed = [name for name, _ in check_folder(root / "sharded")]
    assert listed == _files(root / "sharded")
    token = "hf_coin_test_" + secrets.token_hex(16)
    with hub_server.HubServer(token=token) as hub:
        publish(root / "sharded", "coin-org/sharded", token=token, endpoint=hub.url)
        assert hub.files("coin-org/sharded") == [".gitattributes", *listed]
        for name in listed:
            assert hub.file_bytes("coin-org/sharded", name) == (root / "sharded" / name).read_bytes()


def test_coin_train_loads_a_sharded_folder(folders):
    from coin_train.data import load_coin_dataset

    root, _, sharded = folders
    loaded = load_coin_dataset(str(root / "sharded"), splits=("train", "validation"))
    assert {split: len(ds) for split, ds in loaded.items()} == sharded.stats.rows


def test_bounded_embedding_cache_forgets_the_oldest_and_embeds_them_again():
    from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder

    cache = EmbeddingCache(SentenceTransformerEmbedder(), max_strings=2)
    first = cache.embed(["red apple", "green pear", "blue sky"])
    assert first.shape == (3, 384) and cache.strings_embedded == 3
    assert list(cache._vectors) == ["green pear", "blue sky"]  # the oldest went
    again = cache.embed(["blue sky", "red apple"])
    assert cache.strings_embedded == 4  # only the forgotten one was embedded again
    assert again[1] == pytest.approx(first[0], abs=1e-5)
    assert len(cache._vectors) == 2
