"""The build pipeline end to end: contract, counts, determinism, atomic writes, failures."""

import json
import re
from pathlib import Path

import datasets
import pytest

from coin_data import build as build_module
from coin_data import schema
from coin_data.build import BuildConfig, input_text, run_build
from coin_data.hub.card import source_options
from coin_data.hub.layout import OutputExistsError, write_dataset
from coin_data.hub.stats import dataset_stats
from coin_data.paraphrase import ParaphraseResult
from coin_data.paraphrase.base import TemplatesLost
from coin_data.sources import Instance, load_embedded_corpus
from coin_data.templates import parse_template
from coin_data.verify import VERDICTS

TASKS = ("sentiment", "summarize")


@pytest.fixture(scope="module")
def result():
    return run_build(BuildConfig(tasks=TASKS, paraphrases_per_template=2, seed=0))


def test_columns_and_splits(result):
    assert set(result.dataset) == {"train", "validation"}
    for split in result.dataset.values():
        assert split.column_names == list(schema.COLUMNS)
        assert split.features == schema.FEATURES
    train_ids = set(result.dataset["train"][schema.INSTANCE_ID])
    validation_ids = set(result.dataset["validation"][schema.INSTANCE_ID])
    assert train_ids and validation_ids and not train_ids & validation_ids
    corpus = load_embedded_corpus()
    expected = sum(max(1, round(0.1 * len(corpus.instances[task]))) for task in TASKS)  # 10% of each task's instances
    assert len(validation_ids) == expected == 9 + 5  # 88 sentiment and 48 summarize instances


def test_call_counts(result):
    stats = result.stats
    assert stats.templates == 12  # 2 tasks x 6 templates
    assert stats.paraphrase_calls == stats.templates * 2
    assert sum(stats.verdicts.values()) == stats.candidates == len(result.candidates)
    assert stats.verdicts["kept"] > 0


def test_embedding_calls_equal_unique_strings(result):
    scored = [row for row in result.candidates if row[schema.VERDICT] in ("kept", "not_equivalent")]
    templates = {parse_template(r[schema.ORIGINAL_TEMPLATE]).masked_text() for r in scored}
    templates |= {parse_template(r[schema.CANDIDATE]).masked_text() for r in scored}
    inputs = set()
    for split in result.dataset.values():
        for row in split:
            inputs.add(input_text(Instance("", "", json.loads(row[schema.FIELDS]), "")))
            negative_fields = parse_template(row[schema.ORIGINAL_TEMPLATE]).invert(row[schema.NEGATIVE])
            inputs.add(input_text(Instance("", "", negative_fields, "")))
    assert result.stats.embedding_strings == len(templates | inputs)


def test_rows_are_consistent(result):
    kept = [r for r in result.candidates if r[schema.VERDICT] == "kept"]
    kept_keys = {(r[schema.TASK], r[schema.TEMPLATE_ID], r[schema.PARAPHRASE_ID]) for r in kept}
    train = result.dataset["train"]
    assert {(r[schema.TASK], r[schema.TEMPLATE_ID], r[schema.PARAPHRASE_ID]) for r in train} == kept_keys
    assert len(set(train[schema.ID])) == len(train)
    for row in train.select(range(0, len(train), 37)):
        fields = json.loads(row[schema.FIELDS])
        original = parse_template(row[schema.ORIGINAL_TEMPLATE])
        paraphrase = parse_template(row[schema.PARAPHRASED_TEMPLATE])
        assert original.invert(row[schema.ORIGINAL]) == fields
        assert paraphrase.invert(row[schema.PARAPHRASED]) == fields
        assert row[schema.ORIGINAL] != row[schema.PARAPHRASED]
        assert row[schema.NEGATIVE_SOURCE] == "same_template"
        assert row[schema.NEGATIVE_TARGETS] != row[schema.TARGETS]
        assert original.invert(row[schema.NEGATIVE]) not in (None, fields)  # same template, other input
        assert row[schema.SIMILARITY] >= result.config.verify.threshold
        assert row[schema.PARAPHRASE_SOURCE] == "rules"


def test_same_seed_gives_byte_identical_files(tmp_path):
    config = BuildConfig(tasks=("spam",), paraphrases_per_template=2, seed=3)
    first = write_dataset(run_build(config), tmp_path / "a")
    second = write_dataset(run_build(config), tmp_path / "b")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert [str(f) for f in files] == [
        "README.md",
        "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet",
        "templates/train-00000-of-00001.parquet",
    ]
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_written_folder_loads_with_load_dataset(tmp_path, result, monkeypatch):
    out = write_dataset(result, tmp_path / "coin-flan-paraphrased")
    monkeypatch.chdir(tmp_path)
    loaded = datasets.load_dataset("coin-flan-paraphrased")
    assert {split: len(ds) for split, ds in loaded.items()} == result.stats.rows
    assert loaded["train"][0] == result.dataset["train"][0]
    card = (out / "README.md").read_text()
    assert "## Candidate verdicts" in card and f"| kept | {result.stats.verdicts['kept']} |" in card
    candidates = datasets.load_dataset("coin-flan-paraphrased", "templates")["train"]
    assert len(candidates) == len(result.candidates)


def test_scale_multiplies_rows_not_calls():
    small = run_build(BuildConfig(tasks=("spam",), paraphrases_per_template=1))
    big = run_build(BuildConfig(tasks=("spam",), paraphrases_per_template=1, scale=3))
    assert big.stats.paraphrase_calls == small.stats.paraphrase_calls
    assert big.stats.embedding_strings == small.stats.embedding_strings
    assert sum(big.stats.rows.values()) == 3 * sum(small.stats.rows.values())


def test_existing_output_is_refused_and_overwrite_replaces(tmp_path, result):
    out = write_dataset(result, tmp_path / "ds")
    # the Python API names its own argument, not the CLI's flag (issue 13)
    with pytest.raises(OutputExistsError, match="already exists; pass overwrite=True to replace it"):
        write_dataset(result, out)
    (out / "stale.txt").write_text("old")
    write_dataset(result, out, overwrite=True)
    assert not (out / "stale.txt").exists() and (out / "README.md").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_build_to_folder_refuses_an_existing_folder_before_building(tmp_path, monkeypatch):
    """Issue 13: the README snippet failed only after the whole build, naming a CLI flag."""
    import coin_data.build as build

    out = tmp_path / "ds"
    out.mkdir()

    def must_not_run(*args, **kwargs):  # a spy: the refusal has to come before any build work
        raise AssertionError("run_build was called although the output folder exists")

    monkeypatch.setattr(build, "run_build", must_not_run)
    with pytest.raises(OutputExistsError) as refused:
        build.build_to_folder(BuildConfig(tasks=("spam",)), out)
    assert str(refused.value) == f"{out}: already exists; pass overwrite=True to replace it"
    assert refused.value.cli_message == f"{out}: already exists; pass --overwrite to replace it"


def test_failure_while_writing_leaves_nothing(tmp_path, result, monkeypatch):
    def broken_card(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("coin_data.hub.layout.render_card", broken_card)
    with pytest.raises(RuntimeError, match="disk full"):
        write_dataset(result, tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


class _FlakyBackend:
    """A backend double: fails every other template, so failures must reach the stats and the table."""

    name = "flaky"

    def paraphrase(self, requests, progress=None):
        results = []
        for index, request in enumerate(requests):
            if index % 2:
                results.append(ParaphraseResult(request, [], self.name, failure="refusal"))
            else:
                text = "Please do this.\n" + request.template.text.replace("?", ", if you would?")
                results.append(ParaphraseResult(request, [text], self.name))
        return results


def test_backend_failures_are_counted_not_dropped(monkeypatch):
    monkeypatch.setattr(build_module, "get_paraphraser", lambda spec, **options: _FlakyBackend())
    result = run_build(BuildConfig(tasks=("spam",), paraphrases_per_template=1))
    assert result.stats.failed_templates == {"refusal": 3}
    failed = [r for r in result.candidates if r[schema.VERDICT] == "paraphrase_failed"]
    assert len(failed) == 3 and {r[schema.REASON] for r in failed} == {"refusal"}
    assert result.stats.templates_without_paraphrase >= 3
    assert set(result.dataset["train"][schema.PARAPHRASE_SOURCE]) == {"flaky"}
    # every verdict a build records is a documented one (VERDICTS used to lack paraphrase_failed)
    assert set(result.candidates[schema.VERDICT]) <= set(VERDICTS)


class _LosingBackend(_FlakyBackend):
    """A backend double whose every other template got no answer from the server (lost)."""

    def paraphrase(self, requests, progress=None):
        results = super().paraphrase(requests, progress)
        for result in results[1::2]:
            result.failure, result.lost = "retries_exhausted: timeout", True
        return results


def test_lost_templates_stop_the_build_unless_partial_is_allowed(monkeypatch):
    monkeypatch.setattr(build_module, "get_paraphraser", lambda spec, **options: _LosingBackend())
    with pytest.raises(TemplatesLost, match=r"3 of 6 template\(s\) lost: .*\(retries_exhausted: timeout 3\)"):
        run_build(BuildConfig(tasks=("spam",), paraphrases_per_template=1))
    result = run_build(BuildConfig(tasks=("spam",), paraphrases_per_template=1, allow_partial=True))
    assert result.stats.lost_templates == {"retries_exhausted: timeout": 3} and not result.stats.failed_templates
    lost = [r for r in result.candidates if r[schema.VERDICT] == "paraphrase_failed"]
    assert {r[schema.REASON] for r in lost} == {"retries_exhausted: timeout"} and len(lost) == 3


def test_task_without_other_targets_says_so(tmp_path):
    (tmp_path / "same.yaml").write_text(
        "name: same\nkind: generation\nfields: [text]\ntarget: '{out}'\ntemplates:\n"
        "  - id: t0\n    text: |-\n      Rewrite the following sentence in plain words for a child.\n      {text}\n"
    )
    rows = [{"id": f"s{i}", "text": f"sentence number {i}", "out": "same"} for i in range(20)]
    (tmp_path / "same.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_build(BuildConfig(corpus=str(tmp_path), paraphrases_per_template=2))
    rows = result.dataset["train"]
    assert len(rows) > 0
    assert set(rows[schema.NEGATIVE_SOURCE]) == {"none:no_instance_with_other_target"}
    assert set(rows[schema.NEGATIVE]) == {None}
    assert result.stats.negatives == {"none:no_instance_with_other_target": sum(result.stats.rows.values())}


@pytest.mark.parametrize("kwargs", [{"paraphrases_per_template": 0}, {"validation_fraction": 1.0}, {"scale": 0}])
def test_invalid_config(kwargs):
    with pytest.raises(ValueError):
        BuildConfig(**kwargs)


def test_build_without_rows_writes_nothing(tmp_path, monkeypatch):
    class Refuses:
        name = "refuses"

        def paraphrase(self, requests, progress=None):
            return [ParaphraseResult(r, [], self.name, failure="refusal") for r in requests]

    monkeypatch.setattr(build_module, "get_paraphraser", lambda spec, **options: Refuses())
    result = run_build(BuildConfig(tasks=("spam",), paraphrases_per_template=1))
    from coin_data.hub.layout import EmptyDatasetError

    with pytest.raises(EmptyDatasetError, match="kept no paraphrase"):
        write_dataset(result, tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_empty_validation_split_is_written_without_a_file_and_stats_reads_it(tmp_path):
    # one instance: every row goes to train, the validation split is empty (issue 14: stats failed on it)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.yaml").write_text(
        "name: one\nkind: generation\nfields: [text]\ntarget: '{out}'\ntemplates:\n"
        "  - id: t0\n    text: |-\n      Rewrite the following sentence in plain words for a child.\n      {text}\n"
    )
    (corpus / "one.jsonl").write_text(json.dumps({"id": "s0", "text": "a long sentence", "out": "short"}) + "\n")
    result = run_build(BuildConfig(corpus=str(corpus), paraphrases_per_template=2))
    assert len(result.dataset["validation"]) == 0 and len(result.dataset["train"]) > 0
    out = write_dataset(result, tmp_path / "out")
    assert not (out / "data" / "validation-00000-of-00001.parquet").exists()
    report = dataset_stats(out)
    assert report["rows"] == {"train": len(result.dataset["train"]), "validation": 0}


def test_reproduce_line_keeps_mine_negatives_for_the_default_corpus():
    # issue 14: the card's Reproduce line dropped --mine-negatives when the source was the embedded corpus
    assert "--mine-negatives" in source_options(BuildConfig(mine_negatives=True))
    assert "--mine-negatives" not in source_options(BuildConfig())
    assert "--mine-negatives" in source_options(BuildConfig(source="alpaca", data_files=("a.json",),
                                                            mine_negatives=True))


def test_build_stage_comments_are_in_pipeline_order():
    text = Path(build_module.__file__).read_text(encoding="utf-8")
    stages = [int(n) for n in re.findall(r"^# --- stage (\d)", text, flags=re.M)]
    assert stages == sorted(stages) == list(range(1, len(stages) + 1)) and len(stages) == 5
