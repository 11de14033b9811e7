"""Equivalence verification: one verdict per candidate, each unique string embedded once, file interface."""

import json
import math

import pytest

from coin_data.templates import parse_template
from coin_data.verify import VerifyConfig, VerifyInputError, read_pairs, surface_verdict, verify_candidates, verify_file

T = parse_template("Review: {review}\nIs this review positive or negative?\n{options_}", "sentiment", "t0")


def test_each_check_gives_its_verdict(cache):
    candidates = [
        "Review: {review}\nTell me if the review is positive or negative in tone.\n{options_}",  # kept
        "",  # empty
        "Review: the text\nIs this review positive or negative?\n{options_}",  # slot dropped
        "Review: {review}\nTell me if the review is positive or negative in tone.\n{options_}",  # duplicate
        "Review: {review}\nIs this review positive or negative ?\n{options_}",  # too similar
        "{review}\nSign?\n{options_}",  # too short
        "Review: {review}\nRead the review very carefully, think about the tone of every sentence, the words "
        "chosen, the overall attitude of the writer and any irony, then tell me whether the review is "
        "positive or negative.\n{options_}",  # too long
        "Review: {review}\nTranslate this review into French and count its verbs.\n{options_}",  # not equivalent
    ]
    verdicts = verify_candidates([(T, c) for c in candidates], cache)
    assert [v.verdict for v in verdicts] == [
        "kept", "empty", "slot_changed", "duplicate", "too_similar", "too_short", "too_long", "not_equivalent",
    ]
    assert verdicts[0].similarity >= 0.75 and verdicts[-1].similarity < 0.75
    assert all(math.isnan(v.similarity) for v in verdicts[1:7])
    assert "missing slot {review}" in verdicts[2].reason


def test_each_unique_string_embedded_once(cache):
    good = "Review: {review}\nTell me if the review is positive or negative in tone.\n{options_}"
    other = "Review: {review}\nIs the sentiment of this review positive or negative?\n{options_}"
    verify_candidates([(T, good), (T, other)], cache)
    assert cache.strings_embedded == 3  # the original once, two candidates
    verify_candidates([(T, good), (T, other)], cache)
    assert cache.strings_embedded == 3


def test_threshold_is_configurable(cache):
    pair = [(T, "Review: {review}\nTell me if the review is positive or negative in tone.\n{options_}")]
    assert verify_candidates(pair, cache, VerifyConfig(threshold=0.999))[0].verdict == "not_equivalent"
    assert verify_candidates(pair, cache, VerifyConfig(threshold=0.1))[0].verdict == "kept"


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"near_duplicate": 0}, {"min_length_ratio": 1.2}])
def test_invalid_config(kwargs):
    with pytest.raises(ValueError):
        VerifyConfig(**kwargs)


def test_surface_checks_need_no_model():
    assert surface_verdict(T, "Review: {review}\nPositive or negative, would you say?\n{options_}", VerifyConfig()) is None


def test_verify_file_adds_columns(tmp_path, cache):
    src = tmp_path / "pairs.jsonl"
    rows = [
        {"original": "Summarize the article in one sentence.", "paraphrase": "Give a one-sentence summary of the article.", "tag": 1},
        {"original": "Text: {text}\nWhat is the topic?", "paraphrase": "What is the topic?", "tag": 2},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    counts = verify_file(src, tmp_path / "out.jsonl", cache)
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["tag"] for r in out] == [1, 2]
    assert out[0]["verdict"] == "kept" and 0.75 <= out[0]["similarity"] <= 1
    assert out[1]["verdict"] == "slot_changed" and out[1]["similarity"] is None
    assert counts == {"kept": 1, "slot_changed": 1}


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"original": "a"}\n', "pairs.jsonl:1: field 'paraphrase' is missing"),
        (b'{"original": "a", "paraphrase": "b"}\n{oops\n', "pairs.jsonl:2: invalid JSON"),
        (b'{"original": "a {x", "paraphrase": "b"}\n', "pairs.jsonl:1: field 'original'"),
        (b"", "no rows"),
        (b'{"original": "caf\xe9"}', "not valid UTF-8"),
    ],
)
def test_verify_input_errors(tmp_path, content, message):
    src = tmp_path / "pairs.jsonl"
    src.write_bytes(content)
    with pytest.raises(VerifyInputError, match=message):
        read_pairs(src)
