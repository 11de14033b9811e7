"""The report's arithmetic on hand-made predictions, and the files it writes."""

from __future__ import annotations

import json
import math

import pytest

from coin_data.templates import parse_template
from coin_train.evaluate import INVALID
from coin_train.report import build_report, markdown_report, model_metrics, task_level_metrics, write_report
from coin_train.suites import Example, InstructionVariant, Suite, SuiteTask

GOLD = ["pos", "neg", "pos", "neg"]


def test_accuracy_mean_population_std_worst_and_flip_rate():
    m = task_level_metrics({"a": ["pos", "neg", "pos", "neg"],   # 4/4
                            "b": ["pos", "neg", "neg", "neg"],   # 3/4
                            "c": ["neg", "neg", "neg", INVALID]},  # 1/4
                           GOLD)  # fmt: skip
    assert m["per_instruction"] == {"a": 1.0, "b": 0.75, "c": 0.25}
    assert m["mean"] == pytest.approx(2 / 3)
    # population std (ddof 0): sqrt(((1-2/3)^2 + (3/4-2/3)^2 + (1/4-2/3)^2) / 3)
    assert m["std"] == pytest.approx(math.sqrt(((1 / 3) ** 2 + (1 / 12) ** 2 + (5 / 12) ** 2) / 3))
    assert (m["worst"], m["worst_instruction"]) == (0.25, "c")
    # examples 0, 2, 3 get different predictions from some instruction; example 1 is "neg" everywhere
    assert m["flip_rate"] == 0.75
    assert m["invalid_rate"] == pytest.approx(1 / 12)
    assert (m["n_instructions"], m["n_examples"]) == (3, 4)


def test_one_instruction_has_no_spread_and_no_flips():
    m = task_level_metrics({"a": ["pos", "pos", "pos", "pos"]}, GOLD)
    assert (m["mean"], m["std"], m["flip_rate"], m["worst"]) == (0.5, 0.0, 0.0, 0.5)


def test_ties_for_worst_instruction_resolve_by_name():
    assert task_level_metrics({"b": ["neg"] * 4, "a": ["neg"] * 4}, GOLD)["worst_instruction"] == "a"


def test_mismatched_lengths_and_empty_levels_are_errors():
    with pytest.raises(ValueError, match="3 predictions for 4 examples"):
        task_level_metrics({"a": ["pos"] * 3}, GOLD)
    with pytest.raises(ValueError, match="no instruction variants"):
        task_level_metrics({}, GOLD)


PREDICTIONS = {
    "t1": {"clean": {"h0": GOLD, "h1": GOLD},  # 1.0, 1.0
           "word": {"h0": ["pos", "neg", "neg", "neg"], "h1": ["neg", "neg", "neg", "neg"]}},  # 0.75, 0.5
    "t2": {"clean": {"h0": ["pos", "pos", "pos", "pos"]},  # 0.5
           "word": {}},  # the perturbation could not be made: no variant
}  # fmt: skip


def test_drop_versus_clean_and_averages_over_tasks_levels_and_overall():
    r = model_metrics(PREDICTIONS, {"t1": GOLD, "t2": GOLD}, ["clean", "word"])
    t1 = r["tasks"]["t1"]
    assert t1["clean"]["drop"] == 0.0 and t1["word"]["mean"] == 0.625 and t1["word"]["drop"] == 0.375
    assert t1["word"]["flip_rate"] == 0.25  # only example 0 changes (pos vs neg)
    assert r["tasks"]["t2"]["word"] is None  # no variant: null, left out of averages
    assert r["levels"]["clean"]["mean"] == pytest.approx(0.75)  # (1.0 + 0.5) / 2
    assert r["levels"]["word"]["mean"] == pytest.approx(0.625)  # t1 only
    assert r["levels"]["word"]["drop"] == pytest.approx(0.375)
    assert r["overall"]["mean"] == pytest.approx((0.75 + 0.625) / 2)
    assert r["overall"]["drop"] == pytest.approx(0.375)  # perturbed levels only
    assert r["overall"]["std"] == pytest.approx((0.0 + 0.125) / 2)


def _suite(levels=("clean", "word")) -> Suite:
    template = parse_template("Text: {text}\nPositive or negative?\n{options_}", "t1", "h0")
    examples = [Example(f"e{i}", {"text": f"x{i}"}, y) for i, y in enumerate(GOLD)]
    tasks = [SuiteTask(name, ("pos", "neg"), examples, [InstructionVariant("h0", "h0", "clean", template)],
                       skipped=[{"instruction": "h0", "level": "word", "reason": "no synonym"}] if name == "t2" else [])
             for name in ("t1", "t2")]  # fmt: skip
    return Suite("toy", tuple(levels), tasks, {"seed": 0})


def test_report_files_hold_every_model_side_by_side(tmp_path):
    results = [{"name": "coin", "model": "out/coin", "predictions": PREDICTIONS, "seconds": 2.0},
               {"name": "base", "model": "out/base", "predictions": PREDICTIONS, "seconds": 4.0}]  # fmt: skip
    report = build_report(_suite(), results, {"mode": "rank"})
    assert report["schema_version"] == 1 and [m["name"] for m in report["models"]] == ["coin", "base"]
    assert report["models"][0]["predictions_made"] == 20 and report["models"][0]["examples_per_second"] == 10.0
    paths = write_report(report, tmp_path / "out")
    loaded = json.loads(paths["json"].read_text())
    assert loaded["models"][1]["levels"]["word"]["mean"] == pytest.approx(0.625)
    assert loaded["suite"]["tasks"]["t2"]["skipped"][0]["reason"] == "no synonym"
    table = paths["markdown"].read_text()
    assert "| level | coin acc | base acc |" in table
    assert "| word | 62.5 ± 12.5 | 62.5 ± 12.5 |" in table
    assert "| t1 | word | 2 | 62.5 ± 12.5 | 50.0 (h1) | 37.5 | 25.0 | 0.0 |" in table
    assert "| t2 | word | 0 | – |" in table and "t2 h0 @ word: no synonym" in table
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"


def test_markdown_shows_a_missing_clean_level_as_a_dash():
    predictions = {"t1": {"word": {"h0": GOLD}}, "t2": {"word": {"h0": GOLD}}}
    report = build_report(_suite(levels=("word",)), [{"name": "m", "model": "m", "predictions": predictions}], {"mode": "rank"})
    assert report["models"][0]["tasks"]["t1"]["word"]["drop"] is None and report["models"][0]["overall"]["drop"] is None
    assert "| word | 100.0 ± 0.0 | 100.0 / – / 0.0 |" in markdown_report(report)


def test_report_never_imports_the_scorer():
    """evaluate -> report, one way (issue 14): importing the report must not pull in the scoring module."""
    import subprocess
    import sys

    code = "import sys, coin_train.report; print('coin_train.evaluate' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
