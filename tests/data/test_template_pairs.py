"""Pairs from the project's own templates (coin_data.verify.template_pairs): labels, slots, splits, seeds.

The groups in the first tests are invented here; the last tests read the real embedded corpus and the
FLAN-style file (no model is loaded: partners are then picked in seeded order).
"""

from collections import Counter
from pathlib import Path

import pytest
import yaml

from coin_data.sources import load_embedded_corpus
from coin_data.templates import parse_template
from coin_data.verify.template_pairs import (
    SAME_TASK_TASKS,
    TemplateGroup,
    by_position,
    family_of,
    flan_tuning_groups,
    other_task_pairs,
    own_template_pairs,
    same_task_pairs,
)

FLAN = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "flan_style_templates.yaml"

SPAM = TemplateGroup("spam", "spam", ("Is {message} spam?\n{options_}", "Message: {message}\nSpam or not?\n{options_}"))
TOPIC = TemplateGroup("topic", "topic", ("What topic is {text} about?\n{options_}", "Topic of {text}?\n{options_}"))
SENTIMENT = TemplateGroup("sentiment", "sentiment", ("Is {review} positive?\n{options_}",))
TWEET = TemplateGroup("tweet_like", family_of("tweet_like"), ("Tweet: {tweet}\nMood?\n{options_}",))
NLI = TemplateGroup("nli", "nli", ("Premise: {premise}\nHypothesis: {hypothesis}\nFollows?\n{options_}",))
SUMMARY = TemplateGroup("summarize", "summarize", ("Summarize {text}.",))


def test_slots_are_renamed_by_position_and_options_kept():
    assert by_position("{b} then {a}, again {b}\n{options_}") == "{x1} then {x2}, again {x1}\n{options_}"
    assert by_position("Literal {{braces}} and {text}") == "Literal {{braces}} and {x1}"


def test_other_task_pairs_join_families_of_the_same_shape_only():
    groups = [SPAM, TOPIC, SENTIMENT, TWEET, NLI, SUMMARY]
    family = {by_position(t): g.family for g in groups for t in g.texts}
    rows = other_task_pairs(groups, per_template=10)
    assert rows and all(r["label"] == "changed" and r["kind"] == "other_task" and r["split"] == "fit" for r in rows)
    for row in rows:
        a, b = parse_template(row["original"]), parse_template(row["paraphrase"])
        assert set(a.slots) == set(b.slots)  # the same slots after renaming: no slot check decides the pair
        assert family[row["original"]] == row["family"] != family[row["paraphrase"]]
    texts = {(r["original"], r["paraphrase"]) for r in rows}
    # sentiment and tweet_like share a family: never paired; the two-slot NLI template and the
    # generation template without options have no partner of their shape.
    assert ("Is {x1} positive?\n{options_}", "Tweet: {x1}\nMood?\n{options_}") not in texts
    assert ("Tweet: {x1}\nMood?\n{options_}", "Is {x1} positive?\n{options_}") not in texts
    assert not any("Premise" in a + b or "Summarize" in a + b for a, b in texts)
    # a pair of texts is made once, in either order
    assert len({frozenset(p) for p in texts}) == len(texts)


def test_partners_above_the_floor_come_first_and_the_cap_holds():
    def score(a, b):  # invented: only the topic templates clear the floor against spam
        return 0.8 if "opic" in a + b else 0.2

    rows = other_task_pairs([SPAM, TOPIC, SENTIMENT], score=score, floor=0.5, per_template=1)
    first = [r for r in rows if r["task_type"] == "spam"]
    assert [("opic" in r["paraphrase"]) for r in first] == [True, True]
    assert Counter(r["original"] for r in rows).most_common(1)[0][1] == 1


def test_pairs_are_deterministic():
    groups = [SPAM, TOPIC, SENTIMENT, TWEET]
    assert other_task_pairs(groups) == other_task_pairs(list(groups))


def test_same_task_pairs_only_for_the_listed_tasks():
    rows = same_task_pairs([SPAM, SUMMARY, TemplateGroup("summarize", "summarize", ("A {x}.", "B {x}."))])
    assert [(r["original"], r["paraphrase"], r["label"]) for r in rows] == [
        ("Is {x1} spam?\n{options_}", "Message: {x1}\nSpam or not?\n{options_}", "equivalent")]


def test_flan_heldout_splits_are_refused():
    with pytest.raises(ValueError, match="tuning splits"):
        flan_tuning_groups(FLAN, splits=("tune", "heldout"))
    tasks = {g.task for g in flan_tuning_groups(FLAN)}
    assert "sst_like" in tasks and "arc_like" in tasks and "anli_like" not in tasks


def test_own_material_gives_both_labels():
    rows = own_template_pairs(load_embedded_corpus(), FLAN)
    kinds = Counter((r["kind"], r["label"]) for r in rows)
    # 8 classification tasks x 15 pairs of their six templates
    assert kinds[("same_task", "equivalent")] == 15 * len(SAME_TASK_TASKS)
    assert kinds[("other_task", "changed")] > 200
    every = yaml.safe_load(FLAN.read_text(encoding="utf-8"))["tasks"]
    heldout = {t["name"] for t in every if t["split"] not in ("tune", "tune2")}
    heldout_texts = {by_position(text) for t in every if t["name"] in heldout for text in t["templates"]}
    assert heldout and not any(r["task_type"] in heldout for r in rows)
    assert not any({r["original"], r["paraphrase"]} & heldout_texts for r in rows)
    assert rows == own_template_pairs(load_embedded_corpus(), FLAN)
