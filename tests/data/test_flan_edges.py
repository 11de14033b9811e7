"""FLAN template recovery that knows when it is unsure (issue 15): slot edges, ambiguity, patterns files.

Every row here is rendered by this file (or by ``flan_fresh.py``) from templates written for these tests,
with invented field text; a template is "right" when its text is exactly the one the rows came from.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
from pathlib import Path

import pytest

from coin_data.card import induction_section
from coin_data.cli import induction_summary
from coin_data.sources.flan import FlanRow, flan_corpus, load_flan_corpus
from coin_data.sources.flan_assemble import pair_fields
from coin_data.sources.flan_edges import settle_edges
from coin_data.sources.flan_patterns import load_patterns_file, place
from coin_data.sources import CorpusError
from coin_data.templates import parse_template

_spec = importlib.util.spec_from_file_location("flan_fresh", Path(__file__).with_name("flan_fresh.py"))
fresh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fresh)

WORDS = ["amber", "basil", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "juniper", "kelp",
         "lagoon", "marble", "nutmeg", "opal", "pewter", "quartz", "russet", "saffron", "tundra", "umber", "velvet"]


def _phrase(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _rows(task_templates: dict[str, list[str]], make, per_template: int = 12, seed: int = 0) -> dict:
    """``task -> FlanRows`` rendered from the templates with field values from ``make(field, rng)``."""
    rng = random.Random(seed)
    out = {}
    for task, templates in task_templates.items():
        rows = []
        for index, text in enumerate(templates):
            template = parse_template(text, task, f"t{index}")
            for n in range(per_template):
                fields = {name: make(name, rng) for name in template.field_slots}
                rows.append(FlanRow(template.render(fields, ["yes", "no"]), rng.choice(["yes", "no"]),
                                    f"{task}:{index}:{n}"))
        rng.shuffle(rows)
        out[task] = rows
    return out


def _texts(corpus, task: str) -> set[str]:
    """Recovered template texts with slot names blanked."""
    return {re.sub(r"\{[a-z_0-9]+\}", "{}", e.text) for e in corpus.induction.tasks[task].templates}


def _blank(templates: list[str]) -> set[str]:
    return {re.sub(r"\{[a-z_0-9]+\}", "{}", t) for t in templates}


# --- glued characters: a '?' ending every question, a ')' ending every title ---------------------------


def _field(name: str, rng: random.Random) -> str:
    if name == "question":  # always ends with '?' glued to a varying word
        return f"{_phrase(rng, 1).capitalize()} {rng.choice(['does', 'can', 'will'])} {_phrase(rng, 3)}?"
    if name == "title":  # always ends with ')' glued to a varying year
        return f"{_phrase(rng, 2).title()} ({rng.randint(1900, 2020)})"
    if name == "claim":  # no final punctuation
        return _phrase(rng, 4)
    return f"{_phrase(rng, 6).capitalize()}. {_phrase(rng, 5).capitalize()}."


def test_a_question_mark_every_question_ends_with_stays_in_the_value():
    templates = ["Question: {question}\nContext: {text}\nAnswer:",
                 "{text}\n\nReply to this: {question}",
                 "Read this.\n{text}\nThen answer: \"{question}\""]
    corpus = flan_corpus(_rows({"qa": templates}, _field))
    assert _texts(corpus, "qa") == _blank(templates)
    questions = [v for inst in corpus.instances["qa"] for v in inst.fields.values() if len(v) < 60]
    assert len(questions) == len(corpus.instances["qa"]) and all(q.endswith("?") for q in questions)
    assert corpus.induction.recovered == corpus.induction.rows and not corpus.induction.ambiguous_templates()


def test_a_closing_bracket_of_every_title_stays_in_the_value_and_brackets_around_it_are_template_text():
    templates = ["Film: {title}\nReview: {text}\nDid the critic like it?\n{options_}",
                 "Review of ({title}): {text}\nPositive?\n{options_}",
                 "What did the critic think of {title}?\n\n{text}\n{options_}"]
    corpus = flan_corpus(_rows({"film": templates}, _field))
    assert _texts(corpus, "film") == _blank(templates)
    titles = [v for inst in corpus.instances["film"] for v in inst.fields.values() if "(" in v]
    assert len(titles) == len(corpus.instances["film"]) and all(re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+ \(\d{4}\)", title) for title in titles)


def test_a_question_mark_the_template_adds_is_template_text():
    # natural-questions style: some templates write '{question}?' around questions that carry no '?'
    def field(name, rng):
        return f"{_phrase(rng, 4)}" if name == "question" else _field(name, rng)

    templates = ["Question: {question}?\nAnswer:", "{question}?\n\nGive a short answer.",
                 "Answer the following question:\n\n{question}", "Please answer this: {question}"]
    corpus = flan_corpus(_rows({"nq": templates}, field))
    assert _texts(corpus, "nq") == _blank(templates)
    assert not any(v.endswith("?") for inst in corpus.instances["nq"] for v in inst.fields.values())


# --- quotes, brackets, dashes around values; a constant prefix shared by every value ---------------------


def test_quotes_brackets_and_dashes_around_values_are_template_text():
    templates = ["Is \"{claim}\" supported by the passage?\n{text}\n{options_}",
                 "Passage: {text}\nClaim: [{claim}]\nSupported?\n{options_}",
                 "{text}\n\nDecide whether -{claim}- follows.\n{options_}",
                 "Check this claim -- {claim} -- against the text.\n{text}\n{options_}"]
    corpus = flan_corpus(_rows({"claims": templates}, _field))
    assert _texts(corpus, "claims") == _blank(templates)
    claims = [v for inst in corpus.instances["claims"] for v in inst.fields.values() if "." not in v]
    assert len(claims) == len(corpus.instances["claims"]) and all(re.fullmatch(r"[a-z ]+", c) for c in claims)


def test_a_constant_prefix_shared_by_every_value_becomes_template_text():
    # the alignment left "Consider the question " inside the slot: every value of it starts with that
    texts = [["", " A yes or no would answer it.\n", ""], ["Question: ", "\nText: ", ""]]
    rng = random.Random(1)
    questions = [[f"{w} {_phrase(rng, 3)}?" for w in WORDS[:10]], [f"{w} {_phrase(rng, 3)}?" for w in WORDS[10:20]]]
    values = [[[f"Consider the question {q}", _phrase(rng, 6)] for q in questions[0]],
              [[q, _phrase(rng, 6)] for q in questions[1]]]
    settled = settle_edges(texts, values, pair_fields)
    assert settled.texts[0] == ["Consider the question ", " A yes or no would answer it.\n", ""]
    assert settled.notes == [[], []]


def test_templates_that_differ_only_in_punctuation_stay_apart():
    templates = ["Here is a question: {question} Answer it briefly.\n\n{text}",
                 "Here is a question: {question} Answer it briefly!\n\n{text}",
                 "Summarize the text -- {text}",
                 "Summarize the text: \"{text}\"",
                 "Summarize the text: \"{text}\"."]
    corpus = flan_corpus(_rows({"mixed": templates}, _field, per_template=14))
    assert _texts(corpus, "mixed") >= _blank(templates)


# --- ambiguity is reported, not accepted silently -----------------------------------------------------


def test_an_edge_no_other_template_decides_is_reported_as_ambiguous():
    # one template only: nothing tells whether '?' is the template's or every question's
    rows = _rows({"solo": ["Quick quiz: {question}\nAnswer in one word."]}, _field)
    corpus = flan_corpus(rows)
    report = corpus.induction
    [entry] = report.ambiguous_templates()
    assert entry.task == "solo" and entry.rows == 12
    assert any("'?'" in note and "kept in the value" in note for note in entry.notes)
    assert report.recovered == 0 and report.ambiguous == 12  # kept, but not counted as recovered
    assert re.sub(r"\{\w+\}", "{}", entry.text) == "Quick quiz: {}\nAnswer in one word."  # never split a token
    card = "\n".join(induction_section(report))
    assert "Rows recovered exactly: 0 of 12" in card and "1 ambiguous templates" in card
    assert "| solo | t0 | 12 |" in card and "glued to the varying text" in card
    assert induction_summary(report) == "0 of 12 exactly; 12 rows under 1 ambiguous template (solo/t0; see the card)"


def test_fresh_fixtures_are_recovered_exactly_and_every_miss_is_reported(tmp_path):
    rows = fresh.make_rows(seed=101)
    path = fresh.write_jsonl(tmp_path / "fresh_train.jsonl", rows)
    truth = {f"{path}:{line}": row["truth"] for line, row in enumerate(rows, start=1)}
    corpus = load_flan_corpus(data_files=[path])
    from coin_data.sources.flan import read_flan_files

    score = fresh.score(read_flan_files([path]), truth, corpus)
    assert score["templates"] >= 0.98 * score["templates_total"]
    assert score["rows"] >= 0.98 * score["rows_total"]
    assert score["misses_unreported"] == 0 and score["noise_reported"] == score["noise_total"]


# --- the collection's own templates (--templates FILE) ------------------------------------------------

FLAN_STYLE = '''"""Templates in the layout of FLAN's flan/templates.py (written for this test)."""
import os
raise SystemExit("this file must be read, never run")

# pylint: disable=line-too-long
PATTERNS = {
    "claims": [
        ("Is \\"{claim}\\" supported by the passage?\\n{text}\\n{options_}", "{answer}"),
        ("Passage: {text}\\nClaim: [{claim}]\\nSupported?\\n{options_}", "{answer}"),
        ("Passage: {text}\\nClaim: [{claim}]\\nSupported?\\n{options_}", "{answer}"),
        ("{claim} and {text}\\n{options_}", "{answer}"),
        ("Write a claim" + " about the text.\\n{text}", "{claim}"),
        ("Is {claim} the same as {claim}?", "{answer}"),
    ],
}
OTHER = {"not": "patterns"}
'''


def test_a_flan_templates_module_is_read_with_ast_and_never_run(tmp_path):
    path = tmp_path / "templates.py"
    path.write_text(FLAN_STYLE)
    patterns = load_patterns_file(path)
    assert list(patterns) == ["claims"]
    claims = patterns["claims"]
    assert len(claims) == 4  # the exact duplicate is dropped, and the one using a slot twice (no slot lock)
    assert claims[3].inputs == "Write a claim about the text.\n{text}" and claims[3].target_names == ("claim",)


def test_rows_are_matched_against_the_patterns_exactly_and_induction_is_the_fallback(tmp_path):
    path = tmp_path / "templates.py"
    path.write_text(FLAN_STYLE)
    listed = ["Is \"{claim}\" supported by the passage?\n{text}\n{options_}",
              "Passage: {text}\nClaim: [{claim}]\nSupported?\n{options_}"]
    unlisted = ["{text}\n\nDecide whether -{claim}- follows.\n{options_}",
                "Check this claim -- {claim} -- against the text.\n{text}\n{options_}"]
    rows = _rows({"claims": listed + unlisted}, _field)
    corpus = flan_corpus(rows, patterns=load_patterns_file(path))
    info = corpus.induction.tasks["claims"]
    by_method = {}
    for entry in info.templates:
        by_method.setdefault(entry.method, set()).add(re.sub(r"\{[a-z_0-9]+\}", "{}", entry.text))
    assert by_method["patterns_file"] == _blank(listed)
    assert by_method["induced"] == _blank(unlisted)
    spec = corpus.tasks["claims"]  # the patterns file names the fields
    assert set(spec.fields) == {"claim", "text"} and spec.options == ("yes", "no")
    assert corpus.induction.recovered == corpus.induction.rows == 48


def test_a_split_that_fits_two_ways_is_reported(tmp_path):
    path = tmp_path / "patterns.json"
    path.write_text(json.dumps({"pairs": [["{first} and {second}\nSame thing?", "{answer}"]]}))
    rows = {"pairs": [FlanRow("salt and pepper\nSame thing?", "no", "r0"),
                      FlanRow("salt and pepper and oil\nSame thing?", "no", "r1")]}
    corpus = flan_corpus(rows, patterns=load_patterns_file(path))
    [entry] = corpus.induction.ambiguous_templates()
    assert entry.ambiguous_rows == 1 and corpus.induction.recovered == 1 and corpus.induction.ambiguous == 1
    assert place(["", " and ", "\nSame thing?"], "salt and pepper and oil\nSame thing?") == ["salt", "pepper and oil"]


def test_yaml_list_of_patterns_and_bad_files_name_the_file(tmp_path):
    good = tmp_path / "patterns.yaml"
    good.write_text("- task: qa\n  inputs: 'Q: {question}'\n  targets: '{answer}'\n")
    assert load_patterns_file(good)["qa"][0].names == ("question",)
    bad = tmp_path / "bad.py"
    bad.write_text("PATTERNS = {'qa': [(make_template(), '{answer}')]}\n")
    with pytest.raises(CorpusError, match=r"bad.py:1: only string literals"):
        load_patterns_file(bad)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"qa": [["Q: {question", "{answer}"]]}))
    with pytest.raises(CorpusError, match=r"broken.json: task 'qa' entry 0: inputs has malformed braces"):
        load_patterns_file(broken)


def test_a_template_whose_text_recurs_inside_other_field_values_is_reported():
    from coin_data.sources.flan_edges import field_text_notes

    # a stock phrase of the field text ("said ... to the") read as a template of its own
    texts = [["[", "]\n", " said \"", "\" to the ", "\nReply briefly."], ["Question: ", "\nPassage: ", "\nAnswer:"]]
    values = [[["Why?", "Ann", "hi", "harbor."]] * 4,
              [["Who?", "Ann said \"hi\" to the harbor."], ["What?", "Bo said \"no\" to the kelp."],
               ["How?", "Cy said \"yes\" to the dune."], ["When?", "The opal shone."]]]
    notes = field_text_notes(texts, values)
    assert len(notes[0]) == 2 and "' said \"'" in notes[0][0] and notes[1] == []


@pytest.fixture
def shared_model(embedder, monkeypatch):
    """The build uses the session's already loaded all-MiniLM-L6-v2 (loading it again is slow)."""
    from coin_data import build

    monkeypatch.setattr(build, "SentenceTransformerEmbedder", lambda model=None, **_: embedder)


def test_cli_build_with_a_patterns_file_reports_exact_and_ambiguous_rows(tmp_path, shared_model):
    from click.testing import CliRunner

    from coin_data.cli import main

    templates = ["Is \"{claim}\" supported by the passage?\n{text}\n{options_}",
                 "Passage: {text}\nClaim: [{claim}]\nSupported?\n{options_}"]
    rows = [{"inputs": r.inputs, "targets": r.targets, "task": "claims"}
            for r in _rows({"claims": templates}, _field)["claims"]]
    rows.append({"inputs": "Quick check: salt and pepper and oil\nSame?", "targets": "no", "task": "pairs"})
    rows.append({"inputs": "Quick check: salt and pepper\nSame?", "targets": "yes", "task": "pairs"})
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    patterns = tmp_path / "patterns.json"
    patterns.write_text(json.dumps({"claims": [[t, "{answer}"] for t in templates],
                                    "pairs": [["Quick check: {first} and {second}\nSame?", "{answer}"]]}))
    out = tmp_path / "out"
    done = CliRunner().invoke(main, ["build", "--source", "flan", "--data-files", str(data), "--templates",
                                     str(patterns), "-k", "1", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "flan rows recovered" in done.output
    assert "25 of 26 exactly; 1 rows under 1 ambiguous template (pairs/t0; see the card)" in done.output
    card = (out / "README.md").read_text()
    assert "| claims | t0 | 12 | patterns_file | no |" in card
    assert "1 rows split more than one way" in card
