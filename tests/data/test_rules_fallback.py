"""Tests for the rules paraphraser's fallback pass (coin_data.paraphrase.rules.fallback_rewrites and the
generator's fifth pass): it runs only for templates no other pass gave a candidate, and its candidates pass
the verifier's surface and ``too_similar`` checks. Every template here is invented for the tests."""

from __future__ import annotations

import random

import pytest

from coin_data.paraphrase import ParaphraseRequest
from coin_data.paraphrase.rules import RulesParaphraser, fallback_rewrites as fr, generator, syntactic
from coin_data.templates import parse_template
from coin_data.verify import VerifyConfig
from coin_data.verify.verifier import surface_verdict, usefulness_verdict

# Templates whose question is led by a phrase or asked with "How would you": the first four passes give none.
NO_CANDIDATE_BEFORE = [
    "{story}\nFrom the story, could the hero have won?\n{options_}",
    '{report}\nAfter this report, is "{verdict}" the fair verdict for the case?\n{options_}',
    "How would you cook the dish below? {recipe}\n{options_}",
    'In the poem "{poem}", which line mentions "{thing}"?\n{options_}',
]


def _outputs(rewrite, lines, paraphraser, seeds=12):
    return {tuple(rewrite(lines, syntactic._Context(paraphraser.lexicon, random.Random(s), None)) or ()) for s in
            range(seeds)}  # fmt: skip


def test_front_question_moves_a_leading_phrase_after_its_question(rules_paraphraser):
    assert _outputs(fr.front_question, ["{p}", "From the text, can it be that {h}?"], rules_paraphraser) == {
        ("{p}", "Can it be that {h} from the text?")}
    # not for a phrase holding a slot (its slot would move past the question's), a question of two clauses,
    # a question ending in a preposition, or a phrase that no preposition opens
    for line in ['In the poem "{p}", which line is it?', "On a scale of 1-3, where 1 is low, how good is it?",
                 "From the list, what is it asking about?", "Honestly, is it good?", "From this, it is good?"]:
        assert fr.front_question([line], syntactic._Context(rules_paraphraser.lexicon, random.Random(0), None)) is None


def test_wrap_led_and_how_modal(rules_paraphraser):
    wrapped = _outputs(fr.wrap_led, ['In the poem "{p}", which line is it?'], rules_paraphraser)
    assert ('Tell me: in the poem "{p}", which line is it?',) in wrapped
    assert all(line[0].endswith('in the poem "{p}", which line is it?') for line in wrapped)
    assert fr.wrap_led(["Which line is it?"], syntactic._Context(rules_paraphraser.lexicon, random.Random(0), None)) is None
    assert _outputs(fr.how_modal, ["How would you fix the bug below? {code}"], rules_paraphraser) == {
        ("Explain how you would fix the bug below: {code}",), ("Tell me how you would fix the bug below: {code}",),
        ("Describe how you would fix the bug below: {code}",)}
    assert _outputs(fr.how_modal, ["{code}", "How can you fix it?"], rules_paraphraser) >= {
        ("{code}", "Explain how you can fix it.")}


@pytest.mark.parametrize("text", NO_CANDIDATE_BEFORE)
def test_fallback_gives_candidates_the_verifier_does_not_call_too_similar(rules_paraphraser, before_fallback, text):
    request = ParaphraseRequest(parse_template(text, "t", "t0"), 2)
    assert before_fallback(request) == []
    candidates = rules_paraphraser.candidates(request)
    assert len(candidates) == 2
    for candidate in candidates:
        assert generator.candidate_problem(request.template, candidate) is None
        assert surface_verdict(request.template, candidate, VerifyConfig()) is None
        assert usefulness_verdict(request.template, candidate, VerifyConfig()) is None
        assert generator.instruction_overlap(request.template, candidate) < 0.95


def test_fallback_does_not_run_when_an_earlier_pass_gave_a_candidate(rules_paraphraser, before_fallback, monkeypatch):
    served = ParaphraseRequest(parse_template("{text}\nIs this review positive or negative?\n{options_}", "t", "t1"), 2)
    stages = []
    search = rules_paraphraser._search
    monkeypatch.setattr(rules_paraphraser, "_search", lambda r, rng, chosen, stage: (
        stages.append(stage), search(r, rng, chosen, stage))[1])
    assert rules_paraphraser.candidates(served) == before_fallback(served)
    assert generator._FALLBACK not in stages
    # fewer than k but not none: the earlier candidate stays alone, the fallback is not asked
    stages.clear()
    monkeypatch.setattr(rules_paraphraser, "_search", lambda r, rng, chosen, stage: (
        stages.append(stage), chosen or ["Only one."])[1])
    assert rules_paraphraser.candidates(served) == ["Only one."]
    assert stages == list(range(generator._FALLBACK))


def test_fallback_gate_is_the_verifiers_overlap():
    paraphraser = RulesParaphraser(use_wordnet=False)
    short = parse_template("Read the passage and tell me whether the claim holds: {p}", "t", "t0")
    one_word = "Read the passage and tell me whether the claim stands: {p}"  # overlap 0.9, one word changed
    assert not paraphraser._acceptable(short, one_word, [], ())
    assert paraphraser._acceptable(short, one_word, [], (), fallback=True)
    long = parse_template("Read the passage below with care, then tell me in a few words whether the claim that "
                          "the writer makes in it holds: {p}", "t", "t1")  # fmt: skip
    one_of_many = long.text.replace("holds", "stands")
    assert generator.instruction_overlap(long, one_of_many) >= 0.95
    assert usefulness_verdict(long, one_of_many, VerifyConfig()) is not None
    assert not paraphraser._acceptable(long, one_of_many, [], (), fallback=True)
    with pytest.raises(ValueError, match="fallback_overlap"):
        RulesParaphraser(fallback_overlap=0.0)
