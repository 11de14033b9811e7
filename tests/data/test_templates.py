"""Templates: parsing, rendering, slot lock and inversion."""

import pytest

from coin_data.templates import (
    OPTIONS_SLOT,
    TemplateError,
    parse_template,
    render_options,
    slot_lock_violation,
)

NLI = "Premise: {premise}\nHypothesis: {hypothesis}\nDoes the premise entail the hypothesis?\n{options_}"
OPTIONS = ["yes", "it is not possible to tell", "no"]
FIELDS = {"premise": "A dog runs {fast} in the park.", "hypothesis": "An animal is outside."}


def test_parse_lists_slots_in_order():
    t = parse_template(NLI, "nli", "t0", allowed_fields=["premise", "hypothesis"], require_all_fields=True)
    assert t.slots == ("premise", "hypothesis", OPTIONS_SLOT)
    assert t.field_slots == ("premise", "hypothesis")
    assert t.has_options
    assert "Does the premise entail" in t.literal_text and "{" not in t.literal_text


def test_render_fills_slots_and_options_block():
    text = parse_template(NLI).render(FIELDS, OPTIONS)
    assert text == (
        "Premise: A dog runs {fast} in the park.\nHypothesis: An animal is outside.\n"
        "Does the premise entail the hypothesis?\nOPTIONS:\n- yes\n- it is not possible to tell\n- no"
    )


def test_literal_braces_render_as_braces():
    t = parse_template("Return JSON like {{\"a\": 1}} for {text}.")
    assert t.slots == ("text",)
    assert t.render({"text": "x"}) == 'Return JSON like {"a": 1} for x.'


@pytest.mark.parametrize(
    "text, message",
    [
        ("Text: {text\nTopic?", "malformed braces"),
        ("Text: text}\nTopic?", "malformed braces"),
        ("{text} and again {text}", "appears 2 times"),
        ("Text: {txt}", "unknown slot {txt}"),
        ("Text: {text!r}", "format spec or conversion"),
        ("Text: {text:>10}", "format spec or conversion"),
        ("   ", "empty"),
    ],
)
def test_malformed_templates_name_task_and_template(text, message):
    with pytest.raises(TemplateError) as err:
        parse_template(text, task="topic", template_id="t3", allowed_fields=["text"])
    assert "task 'topic' template 't3'" in str(err.value)
    assert message in str(err.value)


def test_missing_field_slot_is_an_error_when_required():
    with pytest.raises(TemplateError, match="field 'hypothesis' has no slot"):
        parse_template("Premise: {premise}", "nli", "t9", allowed_fields=["premise", "hypothesis"], require_all_fields=True)


def test_render_without_value_names_field():
    with pytest.raises(TemplateError, match="task 'nli' template 't0': no value for field 'hypothesis'"):
        parse_template(NLI, "nli", "t0").render({"premise": "p"}, OPTIONS)


def test_render_options_without_options_is_an_error():
    with pytest.raises(TemplateError, match="no options"):
        parse_template(NLI).render(FIELDS, None)


def test_options_block_format():
    assert render_options(["a", "b"]) == "OPTIONS:\n- a\n- b"


@pytest.mark.parametrize(
    "candidate, expected",
    [
        ("Does {premise} imply {hypothesis}?\n{options_}", None),  # reordered is fine
        ("Hypothesis: {hypothesis}\nPremise: {premise}\nEntailed?\n{options_}", None),
        ("Does the premise entail {hypothesis}?\n{options_}", "missing slot {premise}"),
        ("Does {premise} entail {hypothesis}?", "missing slot {options_}"),
        ("{premise} {hypothesis} {claim}\n{options_}", "unexpected slot {claim}"),
        ("{premise} {premise} {hypothesis}\n{options_}", "slot {premise} repeated"),
        ("{premise} {hypothesis\n{options_}", "malformed braces"),
        ("{premise} {hypothesis} {options_}\nOPTIONS:\n- yes", "options block written out"),
    ],
)
def test_slot_lock(candidate, expected):
    violation = slot_lock_violation(parse_template(NLI), candidate)
    if expected is None:
        assert violation is None
    else:
        assert expected in violation


def test_invert_round_trip_with_options():
    t = parse_template(NLI)
    assert t.invert(t.render(FIELDS, OPTIONS), OPTIONS) == FIELDS


def test_invert_without_known_options_still_matches_block():
    t = parse_template(NLI)
    assert t.invert(t.render(FIELDS, OPTIONS)) == FIELDS


def test_invert_multiline_fields_and_mismatch():
    t = parse_template("Passage: {passage}\nQuestion: {question}\nAnswer:")
    fields = {"passage": "Line one.\nLine two.", "question": "Why?"}
    assert t.invert(t.render(fields)) == fields
    assert t.invert("Something else entirely") is None


def test_masked_text_drops_options_and_keeps_slot_names():
    assert parse_template(NLI).masked_text() == (
        "Premise: {premise} Hypothesis: {hypothesis} Does the premise entail the hypothesis?"
    )
