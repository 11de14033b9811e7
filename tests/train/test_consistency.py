"""Per-example robustness metrics on hand-made predictions whose values are known."""

import numpy as np
import pytest

from coin_train.consistency import (
    INVALID,
    accuracy_per_example,
    cosine_rows,
    generalized_js_divergence,
    label_divergence,
    perturbation_flips,
    prediction_table,
)

LEVELS = ["clean", "word", "semantic"]
OPTIONS = {"t": ("yes", "no"), "u": ("a", "b", "c")}
GOLD = {"t": ["yes", "no", "yes"], "u": ["a", "c"]}
PREDICTIONS = {
    "t": {  # 3 examples, 2 instructions
        "clean": {"h0": ["yes", "no", "yes"], "h1": ["yes", "yes", "yes"]},
        "word": {"h0": ["yes", "no", "no"], "h1": ["yes", "yes", "yes"]},
        "semantic": {"h0": ["no", "no", "yes"]},  # h1@semantic could not be made: missing, not wrong
    },
    "u": {  # 2 examples, 1 instruction
        "clean": {"h0": ["a", "c"]},
        "word": {"h0": ["b", "oops"]},  # an answer outside the options
        "semantic": {"h0": ["a", "c"]},
    },
}


@pytest.fixture
def table():
    return prediction_table(PREDICTIONS, GOLD, OPTIONS, LEVELS)


def test_table_layout_missing_and_invalid(table):
    assert table.labels.shape == (5, 2, 3)
    assert table.tasks.tolist() == ["t", "t", "t", "u", "u"]
    assert table.gold.tolist() == [0, 1, 0, 0, 2]
    assert table.labels[4, 0, 1] == INVALID
    assert table.labels[0, 1, 2] < INVALID  # missing variant
    assert table.labels[3, 1].tolist() == [-2, -2, -2]  # task u has one instruction: padded


def test_accuracy_per_example_over_present_variants(table):
    # example 0 of t: word h0 yes (right), h1 yes (right), semantic h0 no (wrong) -> 2/3
    # example 1: gold no; word h0 no (right), h1 yes (wrong), semantic h0 no (right) -> 2/3
    assert accuracy_per_example(table, ["word", "semantic"]).tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 1 / 2, 1 / 2])
    assert accuracy_per_example(table, ["clean"]).tolist() == pytest.approx([1.0, 0.5, 1.0, 1.0, 1.0])


def test_perturbation_flips_compare_each_instruction_with_its_own_clean_prediction(table):
    # t ex0: h0 word same, h0 semantic flips, h1 word same -> 1/3; ex1: h0 same, h0 same, h1 same -> 0
    # t ex2: h0 word flips, h0 semantic same, h1 same -> 1/3; u ex0: word flips, semantic same -> 1/2
    # u ex1: word invalid (a flip), semantic same -> 1/2
    assert perturbation_flips(table).tolist() == pytest.approx([1 / 3, 0.0, 1 / 3, 0.5, 0.5])
    assert perturbation_flips(table, ["semantic"]).tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0, 0.0])


def test_generalized_js_divergence_known_values():
    assert generalized_js_divergence(np.array([[0.5, 0.5], [0.5, 0.5]])) == 0.0
    assert generalized_js_divergence(np.array([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(1.0)
    assert generalized_js_divergence(np.eye(4)) == pytest.approx(2.0)  # log2(4)
    # two of three variants agree: H([2/3, 1/3]) - 0
    expected = -(2 / 3 * np.log2(2 / 3) + 1 / 3 * np.log2(1 / 3))
    assert generalized_js_divergence(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])) == pytest.approx(expected)


def test_label_divergence_zero_when_perturbations_keep_the_label_counts():
    # every variant predicts 'yes' once and 'no' once (on different examples): same distribution
    preds = {"t": {"clean": {"h0": ["yes", "no"]}, "word": {"h0": ["no", "yes"]}}}
    flat = prediction_table(preds, {"t": ["yes", "no"]}, {"t": ("yes", "no")}, ["clean", "word"])
    assert label_divergence(flat) == 0.0
    assert perturbation_flips(flat).tolist() == [1.0, 1.0]  # ... although every prediction flipped


def test_label_divergence_of_the_fixture_by_hand(table):
    # task t, h0: clean [yes,no,yes] (2,1,0), word [yes,no,no] (1,2,0), semantic [no,no,yes] (1,2,0);
    # h1 has no semantic variant: its clean and word variants count, [yes,yes,yes] both -> 0.
    t_h0 = generalized_js_divergence(np.array([[2, 1, 0], [1, 2, 0], [1, 2, 0]]) / 3)
    # task u, h0 (options a, b, c + invalid): clean [a,c], word [b, invalid], semantic [a,c]
    u_h0 = generalized_js_divergence(np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]) / 2)
    assert label_divergence(table) == pytest.approx(((t_h0 + 0.0) / 2 + u_h0) / 2)  # task u: one instruction
    # a resample with repeats: only example 3 of task u, twice -> u's distributions from it alone
    u_only = generalized_js_divergence(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]], dtype=float))
    assert label_divergence(table, np.array([3, 3])) == pytest.approx(u_only)


def test_cosine_rows_and_bad_predictions():
    assert cosine_rows([[3.0, 4.0]], [[3.0, 4.0]]).tolist() == pytest.approx([1.0])
    assert cosine_rows([[1.0, 0.0]], [[0.0, 2.0]]).tolist() == pytest.approx([0.0])
    with pytest.raises(ValueError, match="2 predictions for 3 examples"):
        prediction_table({"t": {"clean": {"h0": ["yes", "no"]}}}, {"t": ["yes", "no", "no"]}, {"t": ("yes", "no")}, ["clean"])
    with pytest.raises(ValueError, match="gold label 'maybe'"):
        prediction_table({"t": {"clean": {"h0": ["yes"]}}}, {"t": ["maybe"]}, {"t": ("yes", "no")}, ["clean"])


def test_pooled_states_read_the_last_real_token_whatever_the_padding(make_tiny_model, tiny_tokenizer):
    import torch

    from coin_train.consistency import pooled_states
    from coin_train.prompt_format import PromptFormat

    model, fmt = make_tiny_model(seed=0).eval(), PromptFormat()
    texts, targets = ["a short one", "a much longer instruction with many more words in it"], ["yes", "no"]
    batched = pooled_states(model, tiny_tokenizer, fmt, texts, targets, batch_size=2)  # right-padded together
    for row, (text, target) in enumerate(zip(texts, targets)):
        ids = fmt.encode(tiny_tokenizer, text, target)[0]
        with torch.no_grad():
            alone = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0, -1]
        assert np.allclose(batched[row], alone.numpy(), atol=1e-5)


def test_pooled_cosine_is_one_for_an_unchanged_variant_and_lower_for_a_changed_one(make_tiny_model, tiny_tokenizer):
    from coin_data.templates import parse_template
    from coin_train.consistency import pooled_cosine_per_example
    from coin_train.prompt_format import PromptFormat
    from coin_train.suites import Example, InstructionVariant, Suite, SuiteTask

    def variant(vid, source, level, text):
        return InstructionVariant(vid, source, level, parse_template(text, "t", vid))

    clean = "Is this review positive or negative? {review}\n{options_}"
    examples = [Example("e0", {"review": "great food"}, "yes"), Example("e1", {"review": "cold soup"}, "no")]
    same = SuiteTask("same", ("yes", "no"), examples, [variant("h0", "h0", "clean", clean), variant("h0@word", "h0", "word", clean)])
    other = SuiteTask("other", ("yes", "no"), examples, [
        variant("h0", "h0", "clean", clean),
        variant("h0@semantic", "h0", "semantic", "Tell me, zebra quartz umbrella, the mood here. {review}\n{options_}")])
    suite = Suite("s", ("clean", "word", "semantic"), [same, other])
    cosine = pooled_cosine_per_example(make_tiny_model(seed=0).eval(), tiny_tokenizer, PromptFormat(), suite, max_examples=5)
    assert cosine["same"] == pytest.approx([1.0, 1.0], abs=1e-5)
    assert len(cosine["other"]) == 2 and all(-1.0 <= c < 0.9999 for c in cosine["other"])
