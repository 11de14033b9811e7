"""Stock phrases of field text in FLAN template recovery (issue 15 follow-up).

A phrase that many values of a field share (``X said "..." to the Y``, ``it is well known that ...``,
``What has a ...``) used to become template text: a cluster of its own that took other templates' rows,
or a specific copy of a true template, sometimes without a report. Every row here is rendered by
``flan_fresh.py`` (tuning seeds) or by this file from templates and values written for these tests.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from coin_data.sources.flan import flan_corpus, read_flan_files
from coin_data.sources.flan_edges import _whole_word, adjacent_word_notes, recurring_edge_notes
from coin_data.sources.flan_skeleton import _GAP, _Cluster, _tokens
from coin_data.sources.flan_stock import Evidence, general_form, settle_stock, stock_text_notes

_spec = importlib.util.spec_from_file_location("flan_fresh", Path(__file__).with_name("flan_fresh.py"))
fresh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fresh)


def _score(tmp_path: Path, rows: list[dict], tasks=None) -> tuple[dict, object]:
    path = fresh.write_jsonl(tmp_path / "fixture_train.jsonl", rows)
    truth = {f"{path}:{line}": row["truth"] for line, row in enumerate(rows, start=1)}
    rows_by_task = read_flan_files([path])
    corpus = flan_corpus(rows_by_task)
    return fresh.score(rows_by_task, truth, corpus, tasks), corpus


def _skeleton(text: str) -> list[object]:
    """``"[{}] said"`` -> tokens with a gap for each ``{}``."""
    return [_GAP if t == "\x01" else t for t in _tokens(text.replace("{}", "\x01"))]


def _text(skeleton) -> str:
    return "".join("{}" if t is _GAP else t for t in skeleton)


# --- the pieces --------------------------------------------------------------------------------------


def test_text_that_other_values_carry_goes_into_the_slot_and_template_text_stays():
    values = ['Ann said "hi" to the cat.', 'Bo said "yo" to the dog.', 'Cy said "no" to the ox.',
              "In a large bowl, stir it.", "In a large bowl, chop it.", "In a large bowl, soak it."]
    evidence = Evidence(values)
    # between two slots: a phrase inside other values; next to a slot: a phrase other values start with
    assert _text(general_form(_skeleton('Read: {} said "{} to the {}\nReply.'), evidence, 3)) == "Read: {}\nReply."
    assert _text(general_form(_skeleton("Recipe: In a large bowl, {}\nName it."), evidence, 3)) == "Recipe: {}\nName it."
    # labels, line breaks and text no value carries stay template text; so does text too few values carry
    assert _text(general_form(_skeleton("Question: {}\nPassage: {}"), evidence, 3)) == "Question: {}\nPassage: {}"
    assert _text(general_form(_skeleton('Read: {} said "{}'), evidence, 4)) == 'Read: {} said "{}'


def test_a_cluster_held_together_by_a_stock_phrase_is_dissolved_and_its_rows_go_home():
    rng = random.Random(0)
    masked, truth = [], []
    for template, (head, tail) in enumerate([("Question: ", "\nAnswer briefly."), ("Read this: ", "\nThen reply.")]):
        for n in range(8):
            said = f'{rng.choice(["Ann", "Bo", "Cy"])} said "{n}" to the {rng.choice(["cat", "ox"])}.' if n % 2 else ""
            masked.append(f"{head}Story {n} of {rng.random():.3f}. {said}{tail}")
            truth.append(template)
    clusters = [_Cluster(_skeleton("Question: {}\nAnswer briefly."), [i for i in range(16) if truth[i] == 0 and i % 2 == 0]),
                _Cluster(_skeleton("Read this: {}\nThen reply."), [i for i in range(16) if truth[i] == 1 and i % 2 == 0]),
                _Cluster(_skeleton('{} said "{}" to the {}'), [i for i in range(16) if i % 2])]
    settled, loose = settle_stock(clusters, masked, 3)
    assert loose == [] and len(settled) == 2
    for cluster in settled:
        assert len({truth[i] for i in cluster.members}) == 1 and len(cluster.members) == 8


def test_a_slot_edge_never_cuts_a_word():
    assert _whole_word(["Which one?", "What now?", "Who came?"], "Wh", "", at_end=False) == "Wh"
    assert _whole_word(["(a)", "(b)"], "(", "", at_end=False) == ""  # a bracket before a letter may be cut off
    assert _whole_word(["it ends.)", "so it goes.)"], ".)", "", at_end=True) == ""


def test_notes_for_recurring_edges_and_stock_text_next_to_a_slot():
    ends = [[f"claim {n}) and answer{'.' if n % 2 else '!'}"] for n in range(8)]
    plain = [[f"{word} holds {n}."] for n, word in enumerate(["Rain", "Snow", "Wind", "Fog", "Hail", "Sun", "Ice", "Mist"])]
    notes = recurring_edge_notes([ends, plain], [[0], [0]])
    assert len(notes[0]) == 1 and "') and answer!'" in notes[0][0] and notes[1] == []
    # the same recurring starts in every template of a field are the field's (What has ... / Why does ...)
    riddles = [[f"{'What has' if n % 2 else 'Why does'} a thing {n}?"] for n in range(8)]
    assert recurring_edge_notes([riddles, riddles], [[0], [0]]) == [[], []]
    said = [[f'Ann said "{n}" to the ox.'] for n in range(4)]
    notes = stock_text_notes([["Read: ", " to the ox."], ["Text: ", ""]], [[["Bo went"]] * 4, said])
    expected = "text ' to the ox.' next to a slot also ends 4 values of other templates; kept as template text"
    assert notes == [[expected], []]
    # a template left without rows gets no notes (it used to raise IndexError)
    assert adjacent_word_notes([["Text: The ", ""], ["Passage: ", ""]], [[], [["The end."]]], [[], [0]]) == [[], []]


# --- end to end on the fixtures (tuning seeds) ------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 15])
def test_stock_phrases_in_field_text_are_recovered_or_reported(tmp_path, seed):
    score, _ = _score(tmp_path, fresh.make_stock_rows(seed), fresh.STOCK_TASKS)
    assert score["misses_unreported"] == 0
    assert score["templates"] == score["templates_total"] and score["rows"] == score["rows_total"]
    assert score["templates_extra"] == 0


def test_a_stock_phrase_every_row_of_a_template_carries_is_recovered_or_reported(tmp_path):
    score, corpus = _score(tmp_path, fresh.make_stock_rows(1, always=("riddle", 1)), fresh.STOCK_TASKS)
    assert score["misses_unreported"] == 0
    flagged = [e for e in corpus.induction.ambiguous_templates() if e.task == "riddle"]
    assert any("What has a" in note for e in flagged for note in e.notes)


@pytest.mark.parametrize("seed", [247, 365])
def test_fresh_fixtures_where_stock_phrases_took_a_template(tmp_path, seed):
    # 247: every row of one template carried ' said "...' (extra slots, merged and reported);
    # 365: the labelled line break '?\nPassage: ' was lost by alignment and 'Wh' cut off every question
    score, corpus = _score(tmp_path, fresh.make_rows(seed))
    assert score["templates"] == score["templates_total"] and score["rows"] == score["rows_total"]
    assert score["misses_unreported"] == 0 and score["templates_extra"] == 0
    notes = [n for e in corpus.induction.ambiguous_templates() for n in e.notes]
    assert all("read as field text" in n for n in notes)

