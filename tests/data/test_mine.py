"""The miner: exact blockwise search, the false-negative guard, bounded memory, and `coin-data mine`."""

import json
import shutil
import subprocess
import sys
import textwrap
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from coin_data import schema
from coin_data.cli import main
from coin_data.negatives import (
    MINED,
    NONE_ALL_REJECTED,
    NONE_NO_CANDIDATE,
    REJECT_CROSS_ENCODER,
    REJECT_MARGIN,
    REJECT_PARAPHRASE_LEVEL,
    MineConfig,
    RescoreTexts,
    mine_negatives,
    search_exact,
)
from coin_data.negatives.search import _block_shape


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def brute_force(queries, corpus, k, gq, gc, exclude):
    scores = queries @ corpus.T
    scores[gq[:, None] == gc[None, :]] = -np.inf
    scores[np.arange(len(queries)), exclude] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def test_blockwise_search_equals_brute_force_across_many_blocks():
    rng = np.random.default_rng(0)
    corpus = unit(rng.normal(size=(2500, 8)))
    queries = unit(rng.normal(size=(600, 8)))
    gq, gc = rng.integers(0, 40, 600), rng.integers(0, 40, 2500)
    exclude = rng.integers(0, 2500, 600)
    # block_mb=1 -> 1024-row corpus blocks and 256-query blocks: several of each, merged top-k
    scores, indices = search_exact(queries, corpus, 7, gq, gc, exclude, block_mb=1)
    want_scores, want_indices = brute_force(queries, corpus, 7, gq, gc, exclude)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert (indices == want_indices).mean() > 0.999  # ties between equal floats may swap
    assert not (gc[indices] == gq[:, None]).any()
    assert not (indices == exclude[:, None]).any()


def test_missing_neighbours_are_minus_one():
    vectors = np.eye(3, dtype=np.float32)
    scores, indices = search_exact(vectors, vectors, 5, np.array([0, 0, 1]), np.array([0, 0, 1]))
    assert indices[0].tolist() == [2, -1, -1, -1, -1]
    assert np.isinf(scores[0, 1:]).all()


def test_block_shape_bounds_the_score_block():
    for nq, nc, mb in [(10**6, 10**6, 256), (100_000, 100_000, 64), (50, 10**6, 16), (10**6, 300, 8)]:
        corpus_block, query_block = _block_shape(nq, nc, mb)
        assert corpus_block * query_block * 4 <= max(mb * 2**20, corpus_block * 4)
        assert 1 <= query_block <= nq and 1 <= corpus_block <= nc


# --- the guard ---------------------------------------------------------------------------------------


def guarded_setup():
    """Anchor 0 (task 0) with a verified paraphrase at cosine 0.90 and candidates of other tasks."""
    anchor = np.array([[1.0, 0, 0, 0]], dtype=np.float32)
    corpus = unit(np.array([
        [1.0, 0.0, 0.0, 0.0],    # 0: the anchor itself (task 0)
        [0.98, 0.2, 0.0, 0.0],   # 1: a paraphrase hiding in task 1: cosine 0.98 >= 0.75
        [0.87, 0.49, 0.0, 0.0],  # 2: cosine 0.87, within 0.05 of the positive 0.90
        [0.6, 0.8, 0.0, 0.0],    # 3: cosine 0.60: a hard negative
        [0.1, 0.0, 0.99, 0.0],   # 4: far away
    ]))
    return anchor, corpus, [0], [0, 1, 2, 3, 4]


def test_known_paraphrase_among_candidates_is_never_chosen():
    anchor, corpus, ga, gc = guarded_setup()
    found = mine_negatives(anchor, corpus, ga, gc, positive_scores=[0.90],
                           config=MineConfig(accept_threshold=0.75, margin=0.05))
    assert found.index.tolist() == [3]
    assert found.score[0] == pytest.approx(0.6, abs=1e-3)
    assert found.reasons() == [MINED]
    # the paraphrase (row 1, 0.98) and row 2 (0.87) reach the paraphrase level; the anchor's own task is skipped
    assert found.rejected == Counter({REJECT_PARAPHRASE_LEVEL: 2})


def test_margin_rejects_candidates_close_to_the_positive():
    anchor, corpus, ga, gc = guarded_setup()
    # a lenient acceptance level leaves only the margin rule to catch row 2 (0.87 > 0.90 - 0.05)
    found = mine_negatives(anchor, corpus, ga, gc, positive_scores=[0.90],
                           config=MineConfig(accept_threshold=0.99, margin=0.05))
    assert found.index.tolist() == [3]
    assert found.rejected == Counter({REJECT_MARGIN: 2})  # rows 1 (0.98) and 2 (0.87)


def test_reasons_when_nothing_is_mined():
    anchor, corpus, _, _ = guarded_setup()
    nothing_else = mine_negatives(anchor, corpus, [0], [0] * 5, positive_scores=[0.9])
    assert nothing_else.reasons() == [NONE_NO_CANDIDATE] and nothing_else.index.tolist() == [-1]
    all_close = mine_negatives(anchor, corpus[:3], [0], [0, 1, 2], positive_scores=[0.9])
    assert all_close.reasons() == [NONE_ALL_REJECTED] and np.isnan(all_close.score[0])
    assert all_close.counts() == Counter({NONE_ALL_REJECTED: 1})


def test_cross_encoder_rescoring_rejects_and_reorders():
    anchor, corpus, ga, gc = guarded_setup()
    texts = RescoreTexts(anchors=["anchor"], corpus=["a0", "a1", "a2", "near", "far"], positives=["para"])
    calls = []

    def rescorer(pairs):
        calls.append(list(pairs))
        # the cross-encoder finds "near" as close as the paraphrase (a false negative) and prefers "far"
        table = {"near": 0.95, "far": 0.40, "para": 0.90}
        return np.array([table[candidate] for _, candidate in pairs], dtype=np.float32)

    found = mine_negatives(anchor, corpus, ga, gc, positive_scores=[0.90], rescorer=rescorer, texts=texts,
                           config=MineConfig(accept_threshold=0.75, margin=0.05, cross_encoder="fake"))
    assert found.index.tolist() == [4]
    assert found.score[0] == pytest.approx(0.40)
    assert found.rejected[REJECT_CROSS_ENCODER] == 1
    assert ("anchor", "para") in calls[0]  # the positive is rescored too


def test_faiss_index_agrees_with_exact_search():
    pytest.importorskip("faiss", reason="optional: pip install faiss-cpu")
    rng = np.random.default_rng(1)
    corpus = unit(rng.normal(size=(4000, 32)))
    queries = unit(corpus[:200] + 0.3 * rng.normal(size=(200, 32)))
    groups = rng.integers(0, 50, 4000)
    exact = mine_negatives(queries, corpus, groups[:200], groups, config=MineConfig(index="exact"))
    approx = mine_negatives(queries, corpus, groups[:200], groups, config=MineConfig(index="faiss", nprobe=64))
    assert approx.index_used == "faiss" and exact.index_used == "exact"
    assert (approx.index == exact.index).mean() >= 0.95


def test_memory_stays_bounded_without_a_full_score_matrix(tmp_path):
    # 20k x 20k float32 scores would be 1.6 GB; with 16 MB blocks the process must stay far below that.
    script = textwrap.dedent(
        """
        import json, resource
        import numpy as np, torch
        from coin_data.negatives import search_exact
        torch.set_num_threads(2)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(20000, 8)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        torch.ones(1) @ torch.ones(1)  # warm up torch's allocator before measuring
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scores, idx = search_exact(x, x, 10, exclude=np.arange(len(x)), block_mb=16)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"grew_mb": (after - before) / 1024, "shape": list(idx.shape)}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [20000, 10]
    assert result["grew_mb"] < 300, result  # a full matrix would add 1600 MB


# --- build and `coin-data mine` ------------------------------------------------------------------------

TASKS_YAML = """\
tasks:
  - name: polarity
    kind: classification
    fields: [text]
    options: ["positive", "negative"]
    target: "{label}"
    templates:
      - {id: t0, text: "Is the sentiment of this review positive or negative?\\n{text}\\n{options_}"}
      - {id: t1, text: "Review: {text}\\nDid the writer like the product?\\n{options_}"}
  - name: rating
    kind: classification
    fields: [text]
    options: ["good", "bad"]
    target: "{label}"
    templates:
      - {id: t0, text: "Would you say this review is good or bad?\\n{text}\\n{options_}"}
      - {id: t1, text: "Here is a customer review: {text}\\nRate the product as good or bad.\\n{options_}"}
"""


# words only the *other* task's templates use: a mined negative comes from another task
OTHER_TASK_WORDS = {"polarity": ("good or bad",), "rating": ("positive or negative", "Did the writer like")}


@pytest.fixture(scope="module", autouse=True)
def shared_model(embedder):
    """Builds and `coin-data mine` use the session's already loaded all-MiniLM-L6-v2 (loading is slow)."""
    from coin_data import build
    from coin_data.verify import embedding as embed

    with pytest.MonkeyPatch.context() as patch:
        for module in (build, embed):
            patch.setattr(module, "SentenceTransformerEmbedder", lambda model=None, **_: embedder)
        yield


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_model):
    """A tiny two-task dataset built without mining (templates source), written in the Hub layout."""
    from coin_data.build import BuildConfig, run_build
    from coin_data.hub.layout import write_dataset

    root = tmp_path_factory.mktemp("mine")
    (root / "tasks.yaml").write_text(TASKS_YAML)
    rows = []
    for i in range(10):
        rows.append({"task": "polarity", "text": f"The kettle number {i} {'works well' if i % 2 else 'broke fast'}.",
                     "label": i % 2})
        rows.append({"task": "rating", "text": f"Lamp model {i} {'shines bright' if i % 2 else 'flickers'}.",
                     "label": "good" if i % 2 else "bad"})
    (root / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = BuildConfig(source="templates", templates=str(root / "tasks.yaml"),
                         data_files=(str(root / "rows.jsonl"),), paraphrases_per_template=1, license="cc-by-4.0")
    result = run_build(config)
    return root, write_dataset(result, root / "plain"), result


def test_build_without_mining_has_null_mined_columns(built):
    _, _, result = built
    train = result.dataset["train"]
    assert train.column_names == list(schema.COLUMNS)
    assert set(train[schema.MINED_NEGATIVE_SOURCE]) == {None}
    assert set(train[schema.MINED_NEGATIVE]) == {None}


def test_build_with_mining_fills_columns_and_card(built):
    from coin_data.build import BuildConfig, run_build
    from coin_data.hub.layout import write_dataset

    root, _, plain = built
    config = BuildConfig(source="templates", templates=str(root / "tasks.yaml"),
                         data_files=(str(root / "rows.jsonl"),), paraphrases_per_template=1, mine_negatives=True)
    result = run_build(config)
    rows = [row for split in result.dataset.values() for row in split]
    assert len(rows) == sum(len(s) for s in plain.dataset.values())
    for row in rows:
        source = row[schema.MINED_NEGATIVE_SOURCE]
        assert source is not None
        if source.startswith("mined:"):
            # same input slot name -> the other task's template is applied to this row's own input
            assert source == "mined:same_instance"
            fields = json.loads(row[schema.FIELDS])
            assert fields["text"] in row[schema.MINED_NEGATIVE]
            assert row[schema.MINED_NEGATIVE] != row[schema.ORIGINAL]
            assert row[schema.MINED_NEGATIVE_TARGETS] is None
            assert row[schema.MINED_NEGATIVE_SIMILARITY] < config.mining.accept_threshold
            other_task_words = OTHER_TASK_WORDS[row[schema.TASK]]
            assert any(words in row[schema.MINED_NEGATIVE] for words in other_task_words)
    assert sum(result.stats.mined.values()) == len(rows)
    card = (write_dataset(result, root / "mined-build") / "README.md").read_text()
    assert "## Mined negatives" in card and "mined_negative_source" in card
    # the user's own rows and templates, no --license: the card does not claim one
    assert "\nlicense: unknown\n" in card and "Rebuild with `--license ID`" in card


def test_mine_command_adds_columns_to_a_built_folder(built, tmp_path):
    import datasets

    _, folder, _ = built
    out = tmp_path / "mined"
    stale = tmp_path / ".mined.partial-killed"  # what a killed earlier run leaves behind
    (stale / "data").mkdir(parents=True)
    done = CliRunner().invoke(main, ["mine", str(folder), "--out", str(out), "--margin", "0.05"])
    assert done.exit_code == 0, done.output
    assert not stale.exists()  # removed, as `coin-data build` removes its own (issue 14)
    assert "Wrote" in done.output and "mined:" in done.output
    ds = datasets.load_dataset(str(out))
    sources = Counter(ds["train"][schema.MINED_NEGATIVE_SOURCE])
    assert sources and all(s.startswith(("mined:", "none:")) for s in sources)
    assert sum(n for s, n in sources.items() if s.startswith("mined:")) > 0
    card = (out / "README.md").read_text()
    assert card.count("## Mined negatives") == 1
    # the license given to the build survives re-mining, in the YAML and in the body
    assert "\nlicense: cc-by-4.0\n" in (folder / "README.md").read_text() and "\nlicense: cc-by-4.0\n" in card
    assert "`cc-by-4.0`, as given with `--license`" in card
    # the input folder is untouched, and refusing to overwrite it is the default
    assert set(datasets.load_dataset(str(folder))["train"][schema.MINED_NEGATIVE_SOURCE]) == {None}
    again = CliRunner().invoke(main, ["mine", str(folder), "--out", str(out)])
    assert again.exit_code != 0 and "already exists" in again.output


def test_guard_threshold_is_one_setting_for_build_api_cli_and_mine(built, tmp_path):
    """Issue 14: `build --mine-negatives` guarded at the verifier's 0.5 while the API and `mine` used 0.75."""
    from coin_data.build import BuildConfig
    from coin_data.negatives.search import MineConfig

    root, folder, _ = built
    level = MineConfig().accept_threshold
    assert BuildConfig(mine_negatives=True).mining.accept_threshold == level == 0.75
    # the CLI build, with the verifier's own --threshold given: the guard keeps its one default
    out = tmp_path / "cli-mined"
    done = CliRunner().invoke(main, ["build", "--source", "templates", "--templates", str(root / "tasks.yaml"),
                                     "--data-files", str(root / "rows.jsonl"), "-k", "1", "--threshold", "0.5",
                                     "--mine-negatives", "--out", str(out), "-q"])
    assert done.exit_code == 0, done.output
    assert f"at least {level} (paraphrase level)" in (out / "README.md").read_text()
    # --mine-threshold sets it, and `coin-data mine --threshold` is the same setting with the same default
    out = tmp_path / "cli-mined-0.9"
    done = CliRunner().invoke(main, ["build", "--source", "templates", "--templates", str(root / "tasks.yaml"),
                                     "--data-files", str(root / "rows.jsonl"), "-k", "1", "--mine-negatives",
                                     "--mine-threshold", "0.9", "--out", str(out), "-q"])
    assert done.exit_code == 0, done.output
    assert "at least 0.9 (paraphrase level)" in (out / "README.md").read_text()
    mine_default = next(p.default for p in main.commands["mine"].params if p.name == "threshold")
    build_default = next(p.default for p in main.commands["build"].params if p.name == "mine_threshold")
    assert mine_default == build_default == level


def test_mine_command_refuses_a_folder_without_targets(built, tmp_path):
    """Issue 13: a folder without `targets` was mined with exit 0 and null targets."""
    import pyarrow.parquet as pq

    _, folder, _ = built
    broken = tmp_path / "no-targets"
    shutil.copytree(folder, broken)
    shard = next((broken / "data").glob("train-*.parquet"))
    table = pq.read_table(shard)
    pq.write_table(table.drop_columns([schema.TARGETS]), shard)
    out = tmp_path / "mined"
    done = CliRunner().invoke(main, ["mine", str(broken), "--out", str(out)])
    assert done.exit_code == 1 and "Traceback" not in done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {shard}: missing column(s) 'targets' (has: ")
    assert not out.exists()
