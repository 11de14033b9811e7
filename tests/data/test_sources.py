"""The corpus loader: the embedded corpus is valid, and bad input names file, row and field."""

import json
import shutil
from pathlib import Path

import pytest

from coin_data.sources import (
    CLASSIFICATION,
    CorpusError,
    embedded_corpus_dir,
    load_corpus_dir,
    load_embedded_corpus,
)

GOOD_YAML = """\
name: toy
kind: classification
description: toy task
fields: [text]
options: ["yes", "no"]
target: "{label}"
templates:
  - id: t0
    text: |-
      Text: {text}
      Is it good?
      {options_}
heldout_templates:
  - id: h0
    text: |-
      Judge {text}.
      {options_}
"""


def write_task(folder: Path, yaml_text: str = GOOD_YAML, rows=None, name: str = "toy") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml_text, encoding="utf-8")
    rows = rows if rows is not None else [
        {"id": "toy-0", "text": "fine", "label": "yes"},
        {"id": "toy-1", "text": "bad", "label": "no"},
    ]
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def test_embedded_corpus_meets_the_contract():
    corpus = load_embedded_corpus()
    assert len(corpus.tasks) >= 12
    kinds = {spec.kind for spec in corpus.tasks.values()}
    assert kinds == {"classification", "generation"}
    for name, spec in corpus.tasks.items():
        assert len(spec.templates) >= 5, name
        assert len(spec.heldout_templates) >= 3, name
        instances = corpus.instances[name]
        assert len(instances) >= 40, name
        if spec.kind == CLASSIFICATION:
            assert {i.target for i in instances} == set(spec.options), name
            assert all(t.has_options for t in spec.templates), name
        held = {t.text for t in spec.heldout_templates}
        assert not held & {t.text for t in spec.templates}, f"{name}: held-out template reused for training"


def test_task_subset_and_unknown_task():
    corpus = load_embedded_corpus(["nli", "sentiment"])
    assert list(corpus.tasks) == ["nli", "sentiment"]
    with pytest.raises(CorpusError, match="unknown task\\(s\\) nope"):
        load_embedded_corpus(["nli", "nope"])


def test_scaled_copies_keep_group_and_get_new_ids():
    corpus = load_embedded_corpus(["spam"]).scaled(3)
    ids = [i.id for i in corpus.instances["spam"]]
    assert len(ids) == 3 * 88 and len(set(ids)) == len(ids)
    assert {i.group for i in corpus.instances["spam"]} == {i.id for i in load_embedded_corpus(["spam"]).instances["spam"]}


def test_custom_corpus_loads(tmp_path):
    corpus = load_corpus_dir(write_task(tmp_path))
    assert corpus.tasks["toy"].options == ("yes", "no")
    assert [i.target for i in corpus.instances["toy"]] == ["yes", "no"]
    assert corpus.instances["toy"][0].fields == {"text": "fine"}


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda y: y.replace("Is it good?", "Is {it} good?"), "unknown slot {it}"),
        (lambda y: y.replace("Is it good?", "Is it {text} good?"), "appears 2 times"),
        (lambda y: y.replace("Is it good?", "Is it good}?"), "malformed braces"),
        (lambda y: y.replace("      {options_}\nheld", "heldout_x: 1\nheld"), "need {options_}"),
        (lambda y: y.replace('options: ["yes", "no"]', "options: [yes, no]"), "quote answers"),
        (lambda y: y.replace("kind: classification", "kind: ranking"), "field 'kind'"),
        (lambda y: y.replace("name: toy", "name: other"), "field 'name'"),
        (lambda y: y.replace("  - id: h0", "  - id: t0"), "duplicate template id 't0'"),
        (lambda y: y.replace("fields: [text]\n", ""), "field 'fields'"),
        (lambda y: y + "  - {}\n", "heldout_templates[1] needs"),
        (lambda y: "name: [unclosed", "invalid YAML"),
    ],
)
def test_bad_task_file_names_file_and_problem(tmp_path, edit, message):
    write_task(tmp_path, edit(GOOD_YAML))
    with pytest.raises(CorpusError) as err:
        load_corpus_dir(tmp_path)
    assert str(tmp_path / "toy.yaml") in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "rows, line, message",
    [
        ([{"id": "a", "text": "x", "label": "yes"}, {"id": "b", "label": "no"}], 2, "field 'text' is missing"),
        ([{"id": "a", "text": "x", "label": "maybe"}], 1, "field 'label': 'maybe' is not one of"),
        ([{"id": "a", "text": "x", "label": "yes"}, {"id": "a", "text": "y", "label": "no"}], 2, "duplicate id 'a' (first at"),
        ([{"text": "x", "label": "yes"}], 1, "field 'id'"),
        ([["not", "an", "object"]], 1, "must be a JSON object"),
        ([{"id": "a", "text": "   ", "label": "yes"}], 1, "field 'text' is missing or not a non-empty string"),
    ],
)
def test_bad_instances_name_file_line_and_field(tmp_path, rows, line, message):
    write_task(tmp_path, rows=rows)
    with pytest.raises(CorpusError) as err:
        load_corpus_dir(tmp_path)
    assert f"{tmp_path / 'toy.jsonl'}:{line}:" in str(err.value)
    assert message in str(err.value)


def test_invalid_json_line(tmp_path):
    write_task(tmp_path)
    with open(tmp_path / "toy.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"id": "c", "text": \n')
    with pytest.raises(CorpusError, match=r"toy\.jsonl:3: invalid JSON"):
        load_corpus_dir(tmp_path)


def test_empty_and_non_utf8_files(tmp_path):
    write_task(tmp_path, rows=[])
    with pytest.raises(CorpusError, match=r"toy\.jsonl: no instances \(the file is empty\)"):
        load_corpus_dir(tmp_path)
    (tmp_path / "toy.jsonl").write_bytes(b'{"id": "a", "text": "caf\xe9", "label": "yes"}\n')
    with pytest.raises(CorpusError, match=r"toy\.jsonl:1: not valid UTF-8"):
        load_corpus_dir(tmp_path)
    (tmp_path / "toy.yaml").write_text("", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"toy\.yaml: file is empty"):
        load_corpus_dir(tmp_path)


def test_missing_folder_and_missing_instances_file(tmp_path):
    with pytest.raises(CorpusError, match="corpus folder not found"):
        load_corpus_dir(tmp_path / "nowhere")
    with pytest.raises(CorpusError, match="no <task>.yaml files"):
        load_corpus_dir(tmp_path)
    write_task(tmp_path)
    (tmp_path / "toy.jsonl").unlink()
    with pytest.raises(CorpusError, match=r"toy\.jsonl: file not found"):
        load_corpus_dir(tmp_path)


def test_duplicate_ids_across_tasks(tmp_path):
    shutil.copy(embedded_corpus_dir() / "spam.yaml", tmp_path / "spam.yaml")
    (tmp_path / "spam.jsonl").write_text(json.dumps({"id": "toy-0", "message": "hi", "label": "spam"}) + "\n")
    write_task(tmp_path)
    with pytest.raises(CorpusError, match="duplicate id 'toy-0'"):
        load_corpus_dir(tmp_path)
