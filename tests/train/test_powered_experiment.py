"""scripts/powered_experiment.py end to end on the tiny model: results per unit, resume after a kill, summary.

Slow: it builds a 2-task dataset (embedding verification) and trains and scores 3 units.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "powered_experiment.py"


def _command(tiny_model_dir, tmp_path):
    return [sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
            "--model", str(tiny_model_dir), "--tasks", "sentiment,spam", "--seeds", "0", "--max_steps", "2",
            "--batch", "4", "--train_top_layers", "1", "--eval_examples", "6", "--max_instructions", "1",
            "--cosine_examples", "3", "--resamples", "200"]  # fmt: skip


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


@pytest.mark.slow
def test_runner_saves_units_resumes_after_a_kill_and_prints_intervals(tiny_model_dir, tmp_path):
    command = _command(tiny_model_dir, tmp_path)
    units = tmp_path / "out" / "units"
    # First sitting: kill the runner while the baseline trains (its training folder exists, unfinished).
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # fmt: skip
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "baseline-seed0: training:" in line:
            time.sleep(1.0)
            process.send_signal(signal.SIGTERM)
            break
    process.wait(timeout=120)
    assert (units / "base.json").is_file()
    assert not (units / "baseline-seed0.json").exists() and (units / "baseline-seed0.running").is_file()
    base_before = (units / "base.json").read_text()

    # Second sitting: skips the base model, redoes the interrupted unit, finishes, prints the summary.
    done = subprocess.run(command, check=False, env=_env(), capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "base: done earlier, skipped" in out
    assert "baseline-seed0: half-finished" in out
    assert (units / "base.json").read_text() == base_before  # not redone
    for name in ("baseline-seed0", "coin-seed0"):
        result = json.loads((units / f"{name}.json").read_text())
        assert result["train"]["seconds"] > 0 and not (units / f"{name}.running").exists()
        assert set(result["eval"]["predictions"]) == {"sentiment", "spam"}
        assert all(len(v) == 3 for v in result["eval"]["pooled_cosine"].values())
        assert (tmp_path / "work" / "train" / name / "train_complete.json").is_file()
    assert "accuracy, perturbed levels (PRIMARY)" in out and "coin - baseline [95% CI]" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_examples"] == 12
    for metric in ("primary", "clean", "flips", "cosine", "divergence"):
        ci = summary["coin_minus_baseline"][metric]
        assert ci["low"] <= ci["estimate"] <= ci["high"], metric
    for arm in ("base", "baseline", "coin"):  # accuracy per level, the primary being the perturbed levels' mean
        levels = summary["metrics"][arm]["levels"]
        assert list(levels) == ["clean", "character", "word", "sentence", "semantic"]
        assert levels["clean"]["mean"] == pytest.approx(summary["metrics"][arm]["clean"]["mean"])
    per_seed = summary["coin_minus_baseline"]["primary_per_seed"]
    assert list(per_seed) == ["0"]  # one paired seed: its difference is the interval's estimate
    assert per_seed["0"] == pytest.approx(summary["coin_minus_baseline"]["primary"]["estimate"])
    assert "Accuracy (%) by level" in out and "seed by seed" in out
    # held-out examples only: no suite example is an instance some training row uses
    import datasets

    trained = set(datasets.load_dataset(str(tmp_path / "work" / "dataset"), split="train")["instance_id"])
    suite = json.loads((tmp_path / "out" / "suite.json").read_text())
    assert all(not set(task["example_ids"]) & trained for task in suite["tasks"].values())

    # Third sitting with other settings: refused with one line naming what changed.
    refused = subprocess.run(command[:-2] + ["--eval_examples", "7"] + command[-2:], check=False, env=_env(),
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert refused.returncode != 0 and "eval_examples" in refused.stderr and "Traceback" not in refused.stderr


def _load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("powered_experiment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_level_accuracy_weights_tasks_equally_and_skips_missing_variants():
    from coin_train.consistency import prediction_table

    script = _load_script()
    levels = ("clean", "character", "word", "sentence", "semantic")
    # task a: 2 examples, 2 instructions; task b: 1 example, 1 instruction (the other is missing everywhere)
    predictions = {
        "a": {level: {"i1": ["x", "y"], "i2": ["x", "x"]} for level in levels},
        "b": {level: {"j1": ["p" if level == "clean" else "q"]} for level in levels},
    }
    table = prediction_table(predictions, {"a": ["x", "y"], "b": ["p"]}, {"a": ["x", "y"], "b": ["p", "q"]}, levels)
    accuracy = script.level_accuracy(table)
    assert list(accuracy) == list(levels)
    # task a: example 1 right under both instructions, example 2 under one: (1 + 0.5) / 2 = 0.75
    assert accuracy["clean"] == pytest.approx((0.75 + 1.0) / 2)  # task b right on clean
    assert accuracy["word"] == pytest.approx((0.75 + 0.0) / 2)  # task b wrong when perturbed



def test_reference_budget_keeps_the_preset_but_trains_at_the_runs_step_budget(tmp_path):
    script = _load_script()
    config = script.parse_args(["--preset", "reference", "--reference_budget", "--batch", "8", "--learning_rate", "5e-4"])
    command = script.train_command(config, script.Unit("coin", 0), "model", Path("data"), Path("out"))
    assert command[command.index("--preset") + 1] == "reference"
    assert command[command.index("--gradient_accumulation_steps") + 1] == "4"  # micro-batch 2 x 4 = 8 rows
    assert command[command.index("--learning-rate") + 1] == "0.0005"
    assert "--per-device-train-batch-size" not in command  # the preset's micro-batch of 2 stays
    plain = script.train_command(script.parse_args(["--preset", "reference"]), script.Unit("coin", 0), "m",
                                 Path("d"), Path("o"))  # fmt: skip
    assert "--gradient_accumulation_steps" not in plain and "--learning-rate" not in plain
    for argv in (["--reference_budget"], ["--preset", "reference", "--reference_budget", "--batch", "7"]):
        with pytest.raises(SystemExit):
            script.parse_args(argv)


def test_a_saved_run_from_before_a_new_setting_resumes_with_that_settings_default(tmp_path):
    script = _load_script()
    config = script.parse_args(["--out", str(tmp_path)])
    older = {key: value for key, value in config.identity().items() if key != "reference_budget"}
    (tmp_path / "config.json").write_text(json.dumps({"identity": older}))
    script.check_identity(config, tmp_path)  # no exit: the missing key reads as its default
    with pytest.raises(SystemExit, match="reference_budget"):
        script.check_identity(script.parse_args(["--out", str(tmp_path), "--preset", "reference",
                                                 "--reference_budget"]), tmp_path)  # fmt: skip
