"""Rows -> views -> batches: label masks, truncation, dropped rows, negatives, groups, collator shapes."""

import logging

import datasets
import pytest

from coin_data import schema
from coin_train.data import (
    GROUP_ID,
    NEGATIVE_GROUP_ID,
    CoinCollator,
    encode_dataset,
    fit_view,
    ids_column,
    load_coin_dataset,
    prompt_length_column,
)
from coin_train.losses import IGNORE_INDEX, NO_GROUP
from coin_train.prompt_format import PromptFormat


def as_dataset(rows):
    return datasets.Dataset.from_list(rows, features=schema.FEATURES)


@pytest.fixture(scope="module")
def encoded(coin_rows, tiny_tokenizer):
    return encode_dataset(as_dataset(coin_rows), tiny_tokenizer, PromptFormat(), max_length=64)


def test_views_are_prompt_then_target_then_eos(encoded, coin_rows, tiny_tokenizer):
    fmt = PromptFormat()
    row, source = encoded[0], coin_rows[0]
    prompt = fmt.encode_prompt(tiny_tokenizer, source[schema.ORIGINAL])
    target = tiny_tokenizer(source[schema.TARGETS], add_special_tokens=False)["input_ids"]
    assert row[ids_column("original")] == prompt + target + [tiny_tokenizer.eos_token_id]
    assert row[prompt_length_column("original")] == len(prompt)
    assert tiny_tokenizer.decode(row[ids_column("paraphrase")][row[prompt_length_column("paraphrase")]:]) == (
        source[schema.TARGETS] + tiny_tokenizer.eos_token)


def test_rows_of_one_instance_share_a_group_and_negatives_point_to_their_instance(encoded, coin_rows):
    assert len(encoded) == len(coin_rows)
    groups = encoded[GROUP_ID]
    assert groups[0] == groups[1] != groups[2]  # rows 0, 1: paraphrase 0 and 1 of instance 0
    by_text = {row[schema.ORIGINAL]: g for row, g in zip(coin_rows, groups)}
    for row, neg_group in zip(coin_rows, encoded[NEGATIVE_GROUP_ID]):
        expected = by_text[row[schema.NEGATIVE]] if row[schema.NEGATIVE] else NO_GROUP
        assert neg_group == expected


def test_rows_without_a_negative_have_an_empty_negative_view(encoded, coin_rows):
    for row, ids in zip(coin_rows, encoded[ids_column("negative")]):
        assert (len(ids) > 0) == row[schema.NEGATIVE_SOURCE].startswith("same_template")
    assert any(len(ids) == 0 for ids in encoded[ids_column("negative")])


def test_negative_source_none_wins_over_a_stray_negative_text(tiny_tokenizer, make_coin_rows):
    rows = make_coin_rows(3)
    rows[0][schema.NEGATIVE_SOURCE] = "none:too_similar"  # text still there, but flagged unusable
    out = encode_dataset(as_dataset(rows), tiny_tokenizer, max_length=64)
    assert out[0][ids_column("negative")] == []


def test_truncation_cuts_the_target_never_all_of_it(tiny_tokenizer, make_coin_rows):
    assert fit_view([1, 2, 3], [7, 8, 9], 4) == [1, 2, 3, 7]
    assert fit_view([1, 2, 3], [7, 8, 9], 3) is None
    assert fit_view([1], [], 8) is None
    rows = make_coin_rows(2)
    rows[0][schema.TARGETS] = "positive " * 30
    out = encode_dataset(as_dataset(rows), tiny_tokenizer, max_length=48)
    first = out[0]
    for view in ("original", "paraphrase"):
        ids, n_prompt = first[ids_column(view)], first[prompt_length_column(view)]
        assert len(ids) == 48 and len(ids) - n_prompt >= 1


def test_rows_that_cannot_fit_are_dropped_with_a_counted_warning(tiny_tokenizer, make_coin_rows, caplog):
    rows = make_coin_rows(5)  # 10 rows
    long = "word " * 200
    rows[2][schema.PARAPHRASED] = long  # only the paraphrase is too long: the row still goes
    rows[7][schema.ORIGINAL] = long
    rows[4][schema.NEGATIVE] = long  # a too-long negative goes alone
    with caplog.at_level(logging.WARNING, logger="coin_train.data"):
        out = encode_dataset(as_dataset(rows), tiny_tokenizer, max_length=64)
    assert len(out) == 8
    assert "dropped 2 of 10 rows" in caplog.text
    assert "dropped 1 of 10 hard negatives" in caplog.text
    kept_ids = [r for i, r in enumerate(rows) if i not in (2, 7)]
    assert out[3][ids_column("negative")] == [] and kept_ids[3] is rows[4]


def test_no_row_fitting_is_an_error(tiny_tokenizer, make_coin_rows):
    with pytest.raises(ValueError, match="no row fits"):
        encode_dataset(as_dataset(make_coin_rows(1)), tiny_tokenizer, max_length=3)


def test_missing_column_is_named(tiny_tokenizer):
    bad = datasets.Dataset.from_dict({schema.ORIGINAL: ["a"], schema.TARGETS: ["b"]})
    with pytest.raises(schema.SchemaError, match="'paraphrased_instruction'"):
        encode_dataset(bad, tiny_tokenizer)


def test_a_dataset_with_only_the_reference_columns_trains(tiny_tokenizer, make_coin_rows):
    rows = make_coin_rows(2)
    bare = datasets.Dataset.from_dict({c: [r[c] for r in rows] for c in schema.TRAINING_COLUMNS})
    out = encode_dataset(bare, tiny_tokenizer, max_length=64)
    assert len(out) == 4 and all(ids == [] for ids in out[ids_column("negative")])
    assert out[GROUP_ID][0] == out[GROUP_ID][1]  # same original prompt -> same instance


def test_load_coin_dataset_reads_the_hub_layout_and_names_missing_splits(coin_dataset_dir):
    loaded = load_coin_dataset(str(coin_dataset_dir), splits=("train", "validation"))
    assert set(loaded) == {"train", "validation"} and len(loaded["train"]) == 32
    with pytest.raises(KeyError, match="no split 'test'"):
        load_coin_dataset(str(coin_dataset_dir), splits=("test",))


@pytest.mark.parametrize("side", ["right", "left"])
def test_collator_stacks_all_views_with_masks_and_positions(encoded, side):
    features = [encoded[i] for i in range(4)]
    batch = CoinCollator(pad_token_id=0, padding_side=side)(features)
    n_neg = sum(1 for f in features if f[ids_column("negative")])
    views = [f[ids_column(v)] for v in ("original", "paraphrase") for f in features]
    views += [f[ids_column("negative")] for f in features if f[ids_column("negative")]]
    prompt_lengths = [f[prompt_length_column(v)] for v in ("original", "paraphrase") for f in features]
    prompt_lengths += [f[prompt_length_column("negative")] for f in features if f[ids_column("negative")]]
    length = max(map(len, views))
    assert batch["input_ids"].shape == (8 + n_neg, length)
    assert batch["group_ids"].tolist() == [f[GROUP_ID] for f in features]
    assert batch["negative_group_ids"].shape == (n_neg,)
    for row, (ids, n_prompt) in enumerate(zip(views, prompt_lengths)):
        mask = batch["attention_mask"][row]
        assert mask.sum().item() == len(ids)
        real = mask.bool()
        assert batch["input_ids"][row][real].tolist() == ids
        assert batch["position_ids"][row][real].tolist() == list(range(len(ids)))
        assert batch["labels"][row][real].tolist() == [IGNORE_INDEX] * n_prompt + ids[n_prompt:]
        assert (batch["labels"][row][~real] == IGNORE_INDEX).all()
        pads = (~real).nonzero().flatten().tolist()
        if pads:  # padding sits on the requested side
            assert (pads[0] == len(ids)) if side == "right" else (pads[-1] == length - len(ids) - 1)


def test_collator_can_leave_out_negatives_and_round_lengths(encoded):
    features = [encoded[i] for i in range(3)]
    batch = CoinCollator(pad_token_id=0, include_negatives=False, pad_to_multiple_of=16)(features)
    assert batch["input_ids"].shape[0] == 6 and batch["input_ids"].shape[1] % 16 == 0
    assert batch["negative_group_ids"].shape == (0,)
    with pytest.raises(ValueError, match="padding_side"):
        CoinCollator(pad_token_id=0, padding_side="middle")


def test_prompt_format_template_chat_and_round_trip(tiny_tokenizer, tmp_path):
    fmt = PromptFormat()
    assert fmt.render_prompt("Q {x}?") == "Q {x}?\n\n### Response:\n"  # braces in instructions are safe
    ids, n_prompt = fmt.encode(tiny_tokenizer, "Is it good?", "positive")
    assert ids[:n_prompt] == tiny_tokenizer("Is it good?\n\n### Response:\n")["input_ids"]
    assert ids[-1] == tiny_tokenizer.eos_token_id
    chat = PromptFormat(chat_template=True, system_prompt="Be brief.")
    assert chat.render_prompt("Hi", tiny_tokenizer) == "Be brief.\n<|user|>Hi\n<|assistant|>"
    assert chat.save(tmp_path).name == "coin_prompt.json"
    assert PromptFormat.load(tmp_path) == chat
    with pytest.raises(ValueError, match="exactly once"):
        PromptFormat(template="no slot {target}")
    with pytest.raises(ValueError, match="end with"):
        PromptFormat(template="{prompt} {target} trailing")
    with pytest.raises(ValueError, match="chat template"):
        chat.render_prompt("Hi", None)
