"""External row sources: templates files on JSONL/CSV/Parquet/Hub rows, Alpaca-style rows, column maps."""

import csv
import json
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner

from coin_data import schema
from coin_data.build import BuildConfig, load_corpus, split_instances
from coin_data.cli import main
from coin_data.sources import (
    CLASSIFICATION,
    CorpusError,
    alpaca_corpus,
    apply_column_map,
    external_rows,
    load_templates_file,
    parse_column_map,
    read_rows,
    templates_corpus,
)

TEMPLATES = """\
name: sentiment_ext
kind: classification
fields: [review]
options: ["negative", "positive"]
target: "{label}"
templates:
  - id: t0
    text: |-
      Review: {review}
      Positive or negative?
      {options_}
  - id: t1
    text: |-
      How does the writer feel about it? {review}
      {options_}
"""

ROWS = [
    {"review": "The blender died after a week.", "label": 0},
    {"review": "Lovely soft towels, would buy again.", "label": 1},
    {"review": "Arrived broken and late.", "label": 0},
    {"review": "Great value for the price.", "label": 1},
]


def write_rows(folder: Path, rows: list[dict], kind: str) -> Path:
    """``rows`` as a JSONL, CSV or Parquet file in ``folder``."""
    path = folder / f"rows.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        datasets.Dataset.from_list(rows).to_parquet(str(path))
    return path


@pytest.fixture
def templates_file(tmp_path) -> Path:
    path = tmp_path / "sentiment_ext.yaml"
    path.write_text(TEMPLATES)
    return path


# --- templates files ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
def test_templates_file_applies_to_local_rows(templates_file, tmp_path, kind):
    path = write_rows(tmp_path, ROWS, kind)
    specs = load_templates_file(templates_file)
    corpus = templates_corpus(specs, read_rows(path))
    spec = corpus.tasks["sentiment_ext"]
    assert spec.kind == CLASSIFICATION and [t.template_id for t in spec.templates] == ["t0", "t1"]
    instances = corpus.instances["sentiment_ext"]
    # integer labels (class labels, as in Hub datasets; digits in CSV) index the answer set
    assert [i.target for i in instances] == ["negative", "positive"] * 2
    assert instances[1].fields == {"review": "Lovely soft towels, would buy again."}
    assert instances[0].id == "sentiment_ext-000000"


def test_labels_outside_the_answer_set_name_file_row_and_field(templates_file, tmp_path):
    path = write_rows(tmp_path, [{"review": "Fine.", "label": 7}], "csv")
    with pytest.raises(CorpusError, match=r"rows\.csv:2: field 'label': '7' is not one of"):
        templates_corpus(load_templates_file(templates_file), read_rows(path))


def test_missing_field_names_file_row_and_field(templates_file, tmp_path):
    path = write_rows(tmp_path, [{"review": "ok", "label": 1}, {"text": "wrong column", "label": 0}], "jsonl")
    with pytest.raises(CorpusError, match=r"rows\.jsonl:2: field 'review' is missing"):
        templates_corpus(load_templates_file(templates_file), read_rows(path))


def test_multi_task_file_routes_rows_by_task_column(tmp_path):
    two = {"tasks": [
        {"name": "yn", "kind": "classification", "fields": ["q"], "options": ["yes", "no"], "target": "{a}",
         "templates": [{"id": "t0", "text": "Answer yes or no: {q}\n{options_}"}]},
        {"name": "echo", "kind": "generation", "fields": ["text"], "target": "{text}",
         "templates": [{"id": "t0", "text": "Repeat after me: {text}"}]},
    ]}
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(two))
    rows = [("r1", {"task": "yn", "q": "Is ice cold?", "a": "yes"}), ("r2", {"task": "echo", "text": "hello"})]
    corpus = templates_corpus(load_templates_file(path), rows)
    assert sorted(corpus.tasks) == ["echo", "yn"] and corpus.instances["echo"][0].target == "hello"
    with pytest.raises(CorpusError, match=r"r3: field 'task': 'other' is not a task"):
        templates_corpus(load_templates_file(path), [("r3", {"task": "other", "q": "x", "a": "yes"})])
    only = templates_corpus(load_templates_file(path), rows, tasks=["yn"])
    assert list(only.tasks) == ["yn"]


def test_embedded_corpus_is_one_templates_file_per_task():
    from coin_data.sources import embedded_corpus_dir, load_embedded_corpus

    folder = embedded_corpus_dir()
    specs = load_templates_file(folder / "spam.yaml")
    corpus = templates_corpus(specs, read_rows(folder / "spam.jsonl"))
    embedded = load_embedded_corpus(["spam"])
    assert corpus.tasks["spam"] == embedded.tasks["spam"]
    assert [(i.id, i.fields, i.target) for i in corpus.instances["spam"]] == [
        (i.id, i.fields, i.target) for i in embedded.instances["spam"]]


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(CorpusError, match="unsupported file type '.txt'"):
        list(read_rows(tmp_path / "x.txt") if (tmp_path / "x.txt").write_text("a") else [])
    broken = tmp_path / "bad.jsonl"
    broken.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2: invalid JSON"):
        list(read_rows(broken))
    with pytest.raises(CorpusError, match="file not found"):
        list(read_rows(tmp_path / "none.parquet"))


# --- column maps and Hub-style datasets ----------------------------------------------------------------


def test_column_map_parsing_and_errors():
    assert parse_column_map("input=context, output=response") == {"input": "context", "output": "response"}
    assert parse_column_map('{"output": "answer"}') == {"output": "answer"}
    assert parse_column_map(None) == {}
    with pytest.raises(CorpusError, match="expected ours=theirs"):
        parse_column_map("input")
    rows = apply_column_map([("f:2", {"prompt": "p"})], {"instruction": "prompt", "output": "completion"})
    with pytest.raises(CorpusError, match=r"f:2: column 'completion' \(from --column-map\) is missing"):
        list(rows)


def test_hf_source_streams_a_dataset_through_a_column_map(tmp_path):
    # A local dataset folder stands in for a Hub id: the same streaming load_dataset code path.
    folder = tmp_path / "dolly-like"
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_list([
        {"prompt": "Name a primary colour.", "context": "", "response": "Red"},
        {"prompt": "Summarise the text.", "context": "Cats sleep a lot.", "response": "Cats nap."},
        {"prompt": "Name a primary colour.", "context": "", "response": "Blue"},
    ]).to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    config = BuildConfig(source="hf", dataset=str(folder), split="train",
                         column_map={"instruction": "prompt", "input": "context", "output": "response"})
    corpus = load_corpus(config)
    assert len(corpus.tasks) == 2  # the colour instruction repeats: one task, two instances
    colour = next(name for name, spec in corpus.tasks.items() if "colour" in spec.templates[0].text)
    assert [i.target for i in corpus.instances[colour]] == ["Red", "Blue"]
    assert all(name.startswith("hf_") for name in corpus.tasks)
    with pytest.raises(CorpusError, match="cannot read the dataset"):
        list(external_rows(dataset=str(tmp_path / "missing")))


# --- Alpaca-style rows -----------------------------------------------------------------------------------

ALPACA = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, sleep, move."},
    {"instruction": "Translate the sentence to French.", "input": "I like tea.", "output": "J'aime le thé."},
    {"instruction": "Classify the sentiment of the tweet.", "input": "Best day ever!", "output": "positive"},
    {"instruction": "Translate the sentence to French.", "input": "The cat sleeps.", "output": "Le chat dort."},
    {"instruction": "Write a {haiku} about rain.", "input": "", "output": "Soft rain on the roof"},
    {"instruction": "Translate the sentence to French.", "input": "Good night.", "output": "Bonne nuit."},
]


def test_alpaca_rows_become_slotless_instruction_templates():
    corpus = alpaca_corpus([(f"a.json[{i}]", row) for i, row in enumerate(ALPACA)])
    texts = sorted(spec.templates[0].text for spec in corpus.tasks.values())
    assert texts == [
        "Classify the sentiment of the tweet.\n\n{input}",
        "Give three tips for staying healthy.",
        "Translate the sentence to French.\n\n{input}",
        "Write a {{haiku}} about rain.",  # literal braces are kept literal
    ]
    translate = next(n for n, s in corpus.tasks.items() if "French" in s.templates[0].text)
    assert [i.fields["input"] for i in corpus.instances[translate]] == ["I like tea.", "The cat sleeps.", "Good night."]
    haiku = next(s for s in corpus.tasks.values() if "haiku" in s.templates[0].text)
    assert haiku.templates[0].render({}) == "Write a {haiku} about rain."


def test_alpaca_errors_name_the_row():
    with pytest.raises(CorpusError, match=r"a.json\[1\]: field 'output' is missing"):
        alpaca_corpus([("a.json[0]", ALPACA[0]), ("a.json[1]", {"instruction": "Do it.", "input": ""})])


def test_single_instance_tasks_still_fill_the_validation_split():
    corpus = alpaca_corpus([(f"r{i}", {"instruction": f"Task number {i}.", "output": "ok"}) for i in range(200)])
    splits = [split_instances(rows, 0.1) for rows in corpus.instances.values()]
    validation = sum(len(s["validation"]) for s in splits)
    assert 10 <= validation <= 30  # about 10% of 200, decided by a hash of the instance


@pytest.fixture
def shared_model(embedder, monkeypatch):
    """The build uses the session's already loaded all-MiniLM-L6-v2 (loading it again is slow)."""
    from coin_data import build

    monkeypatch.setattr(build, "SentenceTransformerEmbedder", lambda model=None, **_: embedder)


def test_cli_builds_alpaca_offline_with_mined_negatives(tmp_path, shared_model):
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps(ALPACA))  # a JSON array, as the Alpaca release ships
    out = tmp_path / "coin-alpaca"
    done = CliRunner().invoke(main, ["build", "--source", "alpaca", "--data-files", str(path), "-k", "1",
                                     "--mine-negatives", "--out", str(out), "-q"])
    assert done.exit_code == 0, done.output
    ds = datasets.load_dataset(str(out))
    rows = [row for split in ds.values() for row in split]
    assert rows and all(row[schema.ORIGINAL].strip() for row in rows)
    assert all(row[schema.MINED_NEGATIVE_SOURCE] is not None for row in rows)
    # the French instruction repeats with other outputs: same-template negatives exist within a split
    translate = [row for row in ds["train"] if "French" in row[schema.ORIGINAL]]
    assert translate and all(row[schema.NEGATIVE_SOURCE] == "same_template" for row in translate)
    mined = [row for row in rows if row[schema.MINED_NEGATIVE_SOURCE].startswith("mined:")]
    assert mined and all(row[schema.MINED_NEGATIVE] != row[schema.ORIGINAL] for row in mined)
    card = (out / "README.md").read_text()
    assert "Alpaca-style rows" in card and "## Mined negatives" in card
    assert "\nlicense: cc-by-nc-4.0\n" in card and "non-commercial use only" in card
