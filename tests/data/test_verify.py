"""Equivalence verification: one verdict per candidate with its signals, each unique string embedded once,
the file interface and the labelled report."""

import json
import math

import pytest

from coin_data.templates import parse_template
from coin_data.verify import (
    Verdict,
    VerifyConfig,
    VerifyInputError,
    read_pairs,
    report_file,
    score_verdicts,
    surface_verdict,
    verify_candidates,
    verify_file,
)

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
        "Review: {review}\nIs this review long?\n{options_}",  # not equivalent: another task
        "Review: {review}\nIs this review positive or neutral?\n{options_}",  # not equivalent: label words
    ]
    verdicts = verify_candidates([(T, c) for c in candidates], cache)
    assert [v.verdict for v in verdicts] == [
        "kept", "empty", "slot_changed", "duplicate", "too_similar", "too_short", "too_long", "not_equivalent",
        "not_equivalent",
    ]
    # Structural checks decide before any model runs; every candidate past them carries its scores.
    assert all(math.isnan(verdicts[i].similarity) and verdicts[i].signals == {} for i in (1, 2, 5, 6))
    assert all(verdicts[i].similarity >= 0.75 for i in (0, 3, 4))
    assert verdicts[3].equivalent and verdicts[4].equivalent and not verdicts[3].kept
    assert "missing slot {review}" in verdicts[2].reason
    assert (verdicts[7].deciding, verdicts[8].deciding) == ("combiner", "lexdiff")
    assert verdicts[7].reason.startswith("combiner p(equivalent)") and "'long'" in verdicts[7].reason
    assert verdicts[8].reason.startswith("lexdiff label_change")
    assert set(verdicts[0].signals) == {"embedding", "lexdiff", "combiner"}
    assert verdicts[0].signals["lexdiff"]["findings"] == [] and 0.5 < verdicts[0].signals["combiner"] <= 1


def test_a_duplicate_is_counted_per_template_not_across_tasks_that_share_its_text(cache):
    # two collections' tasks may use the very same template text; each task's rows need their own paraphrase
    other_task = parse_template(T.text, "movie_reviews", "t0")
    candidate = "Review: {review}\nTell me if the review is positive or negative in tone.\n{options_}"
    verdicts = verify_candidates([(T, candidate), (other_task, candidate), (T, candidate)], cache)
    assert [v.verdict for v in verdicts] == ["kept", "kept", "duplicate"]


@pytest.mark.parametrize(
    "candidate, deciding",
    [
        ("Review: {review}\nIs this review not positive or negative?\n{options_}", "lexdiff"),
        ("Review: {review}\nIs the first sentence of this review positive or negative?\n{options_}", "lexdiff"),
        ("Review: {review}\nIs this review long or short?\n{options_}", "lexdiff"),
        ("Review: {review}\nIs this review positive or negative toward the staff?\n{options_}", "combiner"),
    ],
)
def test_small_meaning_changes_are_rejected(cache, candidate, deciding):
    verdict = verify_candidates([(T, candidate)], cache)[0]
    assert (verdict.verdict, verdict.deciding) == ("not_equivalent", deciding), verdict.reason
    assert verdict.similarity > 0.65  # far above any threshold a plain cosine check could use


@pytest.mark.parametrize(
    "candidate",
    [
        "{review}\nWould you say the writer of this review felt positive or negative?\n{options_}",
        "Review: {review}\nPlease tell me: is this review positive or negative?\n{options_}",
        "Review: {review}\nIs this critique positive or negative?\n{options_}",  # WordNet synonym swap
    ],
)
def test_rewordings_are_kept(cache, candidate):
    verdict = verify_candidates([(T, candidate)], cache)[0]
    assert verdict.verdict == "kept", verdict.reason


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
    plain = VerifyConfig(signals=("embedding",), threshold=0.75)
    changed = [(T, "Review: {review}\nIs this review long or short?\n{options_}")]
    assert verify_candidates(pair, cache, plain)[0].deciding == "embedding"
    assert verify_candidates(changed, cache, VerifyConfig(signals="embedding,lexdiff"))[0].deciding == "lexdiff"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 1.5}, "threshold"), ({"near_duplicate": 0}, "near_duplicate"),
        ({"min_length_ratio": 1.2}, "length ratios"), ({"signals": ("embedding", "nli")}, "unknown signal"),
        ({"signals": ("lexdiff",)}, "'embedding' signal is required"),
        ({"signals": ("embedding", "combiner")}, "needs 'lexdiff'"), ({"behaviour_probes": 0}, "behaviour_probes"),
    ],
)
def test_invalid_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VerifyConfig(**kwargs)


def test_config_fields_have_help_and_describe_themselves():
    from dataclasses import fields

    assert all(f.metadata.get("help") for f in fields(VerifyConfig))
    assert VerifyConfig().active_signals == ("embedding", "lexdiff", "combiner")
    described = VerifyConfig(nli_model="m", judge="openai:j").describe()
    assert "NLI `m`" in described and "LLM judge `openai:j`" in described and "nli + judge" in described


def test_surface_checks_need_no_model():
    assert surface_verdict(T, "Review: {review}\nPositive or negative, would you say?\n{options_}", VerifyConfig()) is None
    # Short instructions may grow a few words without counting as "too long".
    short = parse_template("Summarize the text: {text}")
    assert surface_verdict(short, "Write a short summary of the text: {text}", VerifyConfig()) is None
    assert surface_verdict(short, "Write a short summary of the text: {text}",
                           VerifyConfig(max_length_ratio=2.0)).verdict == "too_long"


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
    assert out[0]["deciding"] == "combiner" and out[0]["signals"]["embedding"] == pytest.approx(out[0]["similarity"])
    assert out[1]["verdict"] == "slot_changed" and out[1]["similarity"] is None and out[1]["signals"] == {}
    assert counts == {"kept": 1, "slot_changed": 1}


def test_report_scores_labels_by_kind(tmp_path, cache):
    src = tmp_path / "labelled.jsonl"
    rows = [
        {"original": "Answer in at most five words: {q}", "paraphrase": "Keep your answer to five words or fewer: {q}",
         "label": "equivalent", "kind": "reword", "split": "heldout"},
        {"original": "Answer in at most five words: {q}", "paraphrase": "Answer in at least five words: {q}",
         "label": "changed", "kind": "quantity", "split": "heldout"},
        {"original": "Is the claim true? {claim}", "paraphrase": "Is the claim false? {claim}",
         "label": "changed", "kind": "antonym", "split": "fit"},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = report_file(src, cache, split="heldout", out_path=tmp_path / "out.jsonl")
    assert (report.n, report.accuracy, report.balanced_accuracy, report.precision, report.recall) == (2, 1.0, 1.0, 1.0, 1.0)
    assert report.by_kind["quantity"] == {"label": "changed", "n": 1, "judged_equivalent": 0, "rejected": 1,
                                          "accuracy": 1.0}
    assert report.deciding == {"lexdiff": 1}
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2
    text = report.format()
    assert "balanced accuracy 1.000" in text and "quantity" in text and "antonym" not in text
    with pytest.raises(VerifyInputError, match="no rows with split 'test'"):
        report_file(src, cache, split="test")
    with pytest.raises(VerifyInputError, match="row 1: field 'label'"):
        score_verdicts([{"label": "same"}], [Verdict("kept", "")])


def test_verify_command_report(tmp_path):
    from click.testing import CliRunner

    from coin_data.cli import main

    src = tmp_path / "labelled.jsonl"
    src.write_text(json.dumps({"original": "Is the claim true? {claim}", "paraphrase": "Is the claim false? {claim}",
                               "label": "changed", "kind": "antonym"}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["verify", str(src), "--report", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["changed_rejected"] == 1.0 and report["by_kind"]["antonym"]["rejected"] == 1
    assert report["verifier"].startswith("signals embedding + lexdiff + combiner")
    result = CliRunner().invoke(main, ["verify", str(src), "--report", "--signals", "embedding", "--threshold", "0.5"])
    assert result.exit_code == 0 and "judged equivalent" in result.output  # a cosine of ~0.9 keeps the antonym
    assert "antonym           changed         1      1         0     0.000" in result.output
    result = CliRunner().invoke(main, ["verify"])
    assert result.exit_code == 2 and "give IN.jsonl" in result.output
    result = CliRunner().invoke(main, ["verify", str(src), "--signals", "magic"])
    assert result.exit_code == 1 and "unknown signal" in result.output


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
