"""Every bad input to ``coin-train`` from issue 13's table: the first line a user sees and the exit code.

Runs the CLI in-process (fast), and through a real subprocess where the process matters (a traceback on
stderr, Ctrl-C). "The Hub cannot be reached" is made real and deterministic by pointing the Hub endpoint
at a closed loopback port and the Hub cache at an empty folder.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner

from coin_data import schema
from coin_train.cli import main, resume_command

pytestmark = pytest.mark.usefixtures("torch_single_thread")

QUIET = ["--use_cpu", "--disable_tqdm", "true", "--report_to", "none", "--dataloader_num_workers", "0"]
SHORT = ["--max-steps", "1", "--per-device-train-batch-size", "2", "--max-length", "64", *QUIET]
CLOSED_PORT = "http://127.0.0.1:9"  # nothing listens on the discard port: connection refused at once
SRC = str(Path(__file__).resolve().parents[2] / "src")


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def first_line(result) -> str:
    return result.output.strip().splitlines()[0]


def error_line(result) -> str:
    """The error a user sees: the last line, after at most progress bars (datasets' "Generating ..."); no
    traceback and no other error text."""
    lines = result.output.strip().splitlines()
    assert "Traceback" not in result.output and sum(line.startswith("Error:") for line in lines) == 1, result.output
    return lines[-1]


@pytest.fixture
def hub_unreachable(monkeypatch, tmp_path):
    """The Hub endpoint is a closed loopback port and the Hub cache is empty."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", CLOSED_PORT)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


# --- models ----------------------------------------------------------------------------------
def test_readme_hub_model_offline_is_one_line_at_once(hub_unreachable, coin_dataset_dir, tmp_path):
    start = time.perf_counter()
    result = invoke("train", "--model", "HuggingFaceTB/SmolLM2-135M-Instruct", "--dataset", coin_dataset_dir,
                    "--output-dir", tmp_path / "out", *SHORT)
    seconds = time.perf_counter() - start
    assert result.exit_code == 1
    assert error_line(result) == (
        "Error: HuggingFaceTB/SmolLM2-135M-Instruct: not a local folder, and the Hub cannot be reached to download "
        "it (nor is it in the local Hub cache); offline, use the bundled model 'smollm2' (--model smollm2) or a "
        "local folder written by save_pretrained")
    assert len(result.output.strip().splitlines()) == 1
    assert seconds < 10  # was 55 s of retries
    assert not (tmp_path / "out").exists()  # nothing written for a run that never started


def test_a_hub_model_in_the_local_cache_is_used_when_the_hub_is_unreachable(
        hub_unreachable, tiny_model_dir, coin_dataset_dir, tmp_path):
    from huggingface_hub import constants

    snapshot = Path(constants.HF_HUB_CACHE) / "models--org--tiny" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    out = tmp_path / "out"
    result = invoke("train", "--model", "org/tiny", "--dataset", coin_dataset_dir, "--output-dir", out, "--lora",
                    *SHORT)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "org/tiny"


def test_smollm2_alias_is_accepted_by_train_as_by_eval(monkeypatch, tiny_model_dir, coin_dataset_dir, tmp_path):
    # The alias resolves to $COIN_CACHE_DIR/SmolLM2-135M-Instruct once converted; a tiny model stands in
    # for the converted copy there (the real 135M model is exercised by the slow tests).
    bundled = tmp_path / "cache" / "SmolLM2-135M-Instruct"
    shutil.copytree(tiny_model_dir, bundled)
    monkeypatch.setenv("COIN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    result = invoke("train", "--model", "smollm2", "--dataset", coin_dataset_dir, "--output-dir", out, "--lora",
                    *SHORT)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(bundled)


def test_local_looking_model_path_is_checked_before_any_hub_call(monkeypatch, coin_dataset_dir, tmp_path):
    from coin_train import sources

    monkeypatch.setattr(sources, "ask_hub", lambda *a: pytest.fail("a local path must not reach the Hub"))
    result = invoke("train", "--model", "./no_such_model", "--dataset", coin_dataset_dir, "--output-dir",
                    tmp_path / "out", *SHORT)
    assert result.exit_code == 1
    assert error_line(result) == ("Error: ./no_such_model: no such folder (give a folder written by save_pretrained, "
                                  "a Hub id, or 'smollm2' for the bundled SmolLM2-135M-Instruct)")


def test_empty_model_folder(coin_dataset_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("train", "--model", empty, "--dataset", coin_dataset_dir, "--output-dir", tmp_path / "out",
                    *SHORT)
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: {empty}: not a saved model, no config.json or adapter_config.json (it is "
                                  "empty); give a folder written by save_pretrained or `coin-train train`")


def test_model_folder_without_a_tokenizer(tiny_model_dir, coin_dataset_dir, tmp_path):
    weights_only = tmp_path / "weights-only"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, weights_only / name)
    result = invoke("train", "--model", weights_only, "--dataset", coin_dataset_dir, "--output-dir",
                    tmp_path / "out", *SHORT)
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: {weights_only}: cannot load its tokenizer (")
    assert "Traceback" not in result.output


# --- datasets ---------------------------------------------------------------------------------
def _dataset_folder(root: Path, table) -> Path:
    (root / "data").mkdir(parents=True)
    table.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    return root


def test_missing_dataset_path_fails_at_once(monkeypatch, tiny_model_dir, tmp_path):
    from coin_train import sources

    monkeypatch.setattr(sources, "ask_hub", lambda *a: pytest.fail("a local path must not reach the Hub"))
    result = invoke("train", "--model", tiny_model_dir, "--dataset", "./nope", "--output-dir", tmp_path / "out",
                    *SHORT)
    assert result.exit_code == 1
    assert error_line(result) == ("Error: ./nope: no such dataset folder or file (build one with `coin-data build "
                                  "--out ./nope`, or give a Hub dataset id)")


def test_hub_dataset_offline(hub_unreachable, tiny_model_dir, tmp_path):
    result = invoke("train", "--model", tiny_model_dir, "--dataset", "org/coin-data", "--output-dir",
                    tmp_path / "out", *SHORT)
    assert result.exit_code == 1
    assert error_line(result).startswith("Error: org/coin-data: not a local folder, and the Hub cannot be reached")


def test_corrupt_parquet_is_named(tiny_model_dir, coin_dataset_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(coin_dataset_dir, broken)
    bad = broken / "data" / "train-00000-of-00001.parquet"
    bad.write_bytes(b"not parquet at all")
    result = invoke("train", "--model", tiny_model_dir, "--dataset", broken, "--output-dir", tmp_path / "out", *SHORT)
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: {bad}: not a readable parquet file (Parquet magic bytes")
    assert error_line(result).endswith("rebuild the dataset (coin-data build) or remove the file")


def test_zero_row_dataset(coin_rows, tiny_model_dir, tmp_path):
    folder = _dataset_folder(tmp_path / "zero", datasets.Dataset.from_list(coin_rows, features=schema.FEATURES)
                             .select([]))
    result = invoke("train", "--model", tiny_model_dir, "--dataset", folder, "--output-dir", tmp_path / "out", *SHORT)
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: {folder}/data/train-00000-of-00001.parquet: the file has no rows; "
                                  "rebuild the dataset (coin-data build) or remove it")


def test_zero_row_jsonl_file(tiny_model_dir, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("")
    result = invoke("train", "--model", tiny_model_dir, "--dataset", rows, "--output-dir", tmp_path / "out", *SHORT)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: {rows}: the file has no rows; give a file with rows or remove it"


def test_dataset_folder_without_data_files_or_without_the_train_split(tiny_model_dir, coin_dataset_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("train", "--model", tiny_model_dir, "--dataset", empty, "--output-dir", tmp_path / "out", *SHORT)
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: {empty}: no data files in the folder (parquet, jsonl, json or csv); build "
                                  f"a dataset with `coin-data build --out {empty}`")
    validation_only = tmp_path / "validation-only"
    (validation_only / "data").mkdir(parents=True)
    shutil.copy(coin_dataset_dir / "data" / "validation-00000-of-00001.parquet", validation_only / "data")
    result = invoke("train", "--model", tiny_model_dir, "--dataset", validation_only, "--output-dir",
                    tmp_path / "out", *SHORT)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: {validation_only}: no split 'train' (has: validation)"


def test_dataset_missing_a_column_names_it(coin_rows, tiny_model_dir, tmp_path):
    table = datasets.Dataset.from_list(coin_rows, features=schema.FEATURES).remove_columns(schema.PARAPHRASED)
    folder = _dataset_folder(tmp_path / "no-paraphrase", table)
    result = invoke("train", "--model", tiny_model_dir, "--dataset", folder, "--output-dir", tmp_path / "out", *SHORT)
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: {folder} [train]: missing column(s) 'paraphrased_instruction' (has: ")


def test_no_row_fits_max_length(tiny_model_dir, coin_dataset_dir, tmp_path):
    result = invoke("train", "--model", tiny_model_dir, "--dataset", coin_dataset_dir, "--output-dir",
                    tmp_path / "out", *SHORT, "--max-length", "3")
    assert result.exit_code == 1
    assert error_line(result) == "Error: no row fits in max_length=3: all 32 prompts are too long"


def _load_hub_server():
    """Import tests/hub_server.py by path (tests/ is no package)."""
    import importlib.util

    if "hub_server" not in sys.modules:
        spec = importlib.util.spec_from_file_location("hub_server", Path(__file__).parents[1] / "hub_server.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["hub_server"] = module
        spec.loader.exec_module(module)
    return sys.modules["hub_server"]


def test_hub_dataset_id_is_checked_against_a_reachable_hub(monkeypatch, tiny_model_dir, tmp_path):
    from huggingface_hub import HfApi, constants

    from coin_train.sources import check_hub_repo

    with _load_hub_server().HubServer(token="hf_test_token") as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        HfApi(endpoint=hub.url, token="hf_test_token").create_repo("org/coin-data", repo_type="dataset")
        assert check_hub_repo("org/coin-data", "dataset", "dataset") is True
        result = invoke("train", "--model", tiny_model_dir, "--dataset", "org/no-such-data", "--output-dir",
                        tmp_path / "out", *SHORT)
    assert result.exit_code == 1
    assert error_line(result) == ("Error: org/no-such-data: no such folder, and no dataset of that name on the Hub "
                                  "(a private one needs a token: HF_TOKEN or `hf auth login`)")


# --- adapters trained from a relative path ------------------------------------------------------
def test_adapter_from_a_relative_model_path_evaluates_from_another_folder(
        hub_unreachable, monkeypatch, tiny_model_dir, coin_dataset_dir, tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    shutil.copytree(tiny_model_dir, work / "tiny")
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    result = invoke("train", "--model", "tiny", "--dataset", coin_dataset_dir, "--output-dir", "adapter", "--lora",
                    *SHORT)
    assert result.exit_code == 0, result.output
    adapter = work / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(work / "tiny")

    monkeypatch.chdir(elsewhere)
    result = invoke("eval", "--model", "./no_such_model", "--out", "eval")
    assert result.exit_code == 1
    assert error_line(result) == ("Error: cannot evaluate: ./no_such_model: no such folder (give a folder written "
                                  "by save_pretrained, a Hub id, or 'smollm2' for the bundled SmolLM2-135M-Instruct)")
    assert "suite" not in result.output  # refused before the suite is built
    eval_args = ["eval", "--model", adapter, "--out", "eval", "--tasks", "sentiment", "--levels", "clean",
                 "--max-examples", "2", "--max-instructions", "1"]
    result = invoke(*eval_args)
    assert result.exit_code == 0, result.output
    assert (elsewhere / "eval" / "report.json").is_file()

    # An adapter written by an older version, with the base model as a relative path: found from the
    # adapter's folder or its parents (where training ran), so it still evaluates from elsewhere ...
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps(config | {"base_model_name_or_path": "tiny"}))
    result = invoke(*eval_args)
    assert result.exit_code == 0, result.output
    # ... and one that is found nowhere is one clear line naming the file to edit.
    (adapter / "adapter_config.json").write_text(json.dumps(config | {"base_model_name_or_path": "./gone/tiny"}))
    result = invoke(*eval_args)
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: cannot evaluate: {adapter} is a LoRA adapter whose base model cannot be found: "
        f"{adapter / 'adapter_config.json'}: base_model_name_or_path './gone/tiny' is a relative folder found "
        "neither next to the adapter nor here; set it to the base model's absolute path or Hub id")


# --- flags and values ------------------------------------------------------------------------
@pytest.mark.parametrize("extra, message", [
    (["--learning_rat", "1e-3"], "Error: unknown option(s): --learning_rat 1e-3 (see coin-train train --help-all)"),
    (["--learning-rat", "1e-3"], "Error: unknown option(s): --learning-rat 1e-3 (see coin-train train --help-all)"),
    (["--max-steps", "0"], "Error: invalid setting: max_steps must be >= 1 (or -1: train num_train_epochs), got 0"),
    (["--per-device-train-batch-size", "0"], "Error: invalid setting: per_device_train_batch_size must be >= 1, got 0"),
    (["--learning-rate", "-1"], "Error: invalid setting: learning_rate must be >= 0, got -1.0"),
    (["--num-train-epochs", "0"], "Error: invalid setting: num_train_epochs must be > 0, got 0.0"),
    (["--lora_alpha", "0"], "Error: invalid setting: lora_alpha must be > 0, got 0"),
    (["--max_train_samples", "0"], "Error: invalid setting: max_train_samples must be >= 1, got 0"),
])  # fmt: skip
def test_abbreviated_flags_and_out_of_range_values_are_refused(tiny_model_dir, coin_dataset_dir, tmp_path,
                                                               extra, message):
    result = invoke("train", "--model", tiny_model_dir, "--dataset", coin_dataset_dir, "--output-dir",
                    tmp_path / "out", *QUIET, *extra)
    assert result.exit_code != 0
    assert error_line(result) == message
    assert not (tmp_path / "out").exists()


def test_report_to_without_its_package(monkeypatch, tiny_model_dir, coin_dataset_dir, tmp_path):
    for package in ("tensorboard", "tensorboardX"):  # as if not installed: imports of them fail
        monkeypatch.setitem(sys.modules, package, None)
    result = invoke("train", "--model", tiny_model_dir, "--dataset", coin_dataset_dir, "--output-dir",
                    tmp_path / "out", "--use_cpu", "--report_to", "tensorboard")
    assert result.exit_code == 1
    assert error_line(result) == ("Error: invalid setting: --report_to tensorboard needs the tensorboard package: "
                                  "pip install 'coin-toolkit[tensorboard]' (or choose another --report_to, or none)")



# --- output folders and resuming ----------------------------------------------------------------
def _train(model, data, out, *extra):
    return invoke("train", "--model", model, "--dataset", data, "--output-dir", out, "--per-device-train-batch-size",
                  "2", "--max-length", "64", "--save_strategy", "steps", "--save_steps", "2", *QUIET, *extra)


def test_used_output_dir_needs_overwrite_and_resume_stays_in_its_run(tiny_model_dir, coin_dataset_dir, tmp_path):
    out = tmp_path / "out"
    assert _train(tiny_model_dir, coin_dataset_dir, out, "--max-steps", "4").exit_code == 0
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]

    result = _train(tiny_model_dir, coin_dataset_dir, out, "--max-steps", "2")
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: {out}: not empty (")
    assert error_line(result).endswith("pass --overwrite_output_dir to replace it, --resume-from-checkpoint latest "
                                       "to continue its run, or another --output-dir")

    # A checkpoint of another run left in the folder is never resumed.
    stray = out / "checkpoint-6"
    shutil.copytree(out / "checkpoint-4", stray)
    (stray / "coin_run.json").write_text(json.dumps({"run_id": "another-run"}))
    result = _train(tiny_model_dir, coin_dataset_dir, out, "--max-steps", "5", "--resume-from-checkpoint", "latest")
    assert result.exit_code == 0, result.output
    assert first_line(result) == f"resuming from {out / 'checkpoint-4'} (step 4 of the run in {out})"
    assert "trained 5 steps" in result.output

    result = _train(tiny_model_dir, coin_dataset_dir, out, "--max-steps", "5", "--resume-from-checkpoint", "latest",
                    "--overwrite_output_dir")
    assert result.exit_code == 1 and error_line(result).startswith("Error: --overwrite_output_dir deletes the run")

    # --overwrite_output_dir: the previous run, its checkpoints included, is gone.
    result = _train(tiny_model_dir, coin_dataset_dir, out, "--max-steps", "2", "--overwrite_output_dir")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2


def test_overwrite_refuses_a_folder_that_is_not_a_run(tiny_model_dir, coin_dataset_dir, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    result = _train(tiny_model_dir, coin_dataset_dir, folder, "--max-steps", "1", "--overwrite_output_dir")
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: {folder}: holds files that are not from a training run (thesis.tex); "
                                  "--overwrite_output_dir only replaces a previous run: choose another --output-dir")
    assert (folder / "thesis.tex").read_text() == "precious"


def test_resume_latest_without_a_checkpoint(tiny_model_dir, coin_dataset_dir, tmp_path):
    result = _train(tiny_model_dir, coin_dataset_dir, tmp_path / "fresh", "--max-steps", "1",
                    "--resume-from-checkpoint", "latest")
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: {tmp_path / 'fresh'}: no checkpoint of its run to resume from")


def test_resume_command_drops_overwrite_and_an_older_resume():
    argv = ["train", "--config", "run.yaml", "--resume-from-checkpoint", "out/checkpoint-2", "--overwrite_output_dir",
            "true", "--lr_scheduler_type", "cosine", "--output-dir", "my out"]
    assert resume_command(argv) == ("coin-train train --config run.yaml --lr_scheduler_type cosine --output-dir "
                                    "'my out' --resume-from-checkpoint latest")


# --- through a real process -------------------------------------------------------------------
def _cli_env(tmp_path: Path) -> dict:
    return os.environ | {"PYTHONPATH": SRC, "HF_ENDPOINT": CLOSED_PORT, "HF_HUB_CACHE": str(tmp_path / "hub-cache"),
                         "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "coin_train.cli", *[str(a) for a in args]]


def test_subprocess_offline_hub_model_prints_one_line_and_no_traceback(coin_dataset_dir, tmp_path):
    done = subprocess.run(_cli("train", "--model", "HuggingFaceTB/SmolLM2-135M-Instruct", "--dataset",
                               coin_dataset_dir, "--output-dir", tmp_path / "out", *SHORT),
                          check=False, env=_cli_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(
        "Error: HuggingFaceTB/SmolLM2-135M-Instruct: not a local folder, and the Hub cannot be reached")
    assert "Traceback" not in done.stderr and "Retrying" not in done.stderr


def test_ctrl_c_prints_the_resume_command_that_continues_the_run(tiny_model_dir, coin_dataset_dir, tmp_path):
    out = tmp_path / "out"
    args = ["train", "--model", tiny_model_dir, "--dataset", coin_dataset_dir, "--output-dir", out,
            "--max-steps", "100000", "--per-device-train-batch-size", "2", "--max-length", "64",
            "--save_strategy", "steps", "--save_steps", "2", *QUIET]
    process = subprocess.Popen(_cli(*args), env=_cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 240
        while not (out / "checkpoint-2" / "coin_run.json").is_file():
            assert process.poll() is None and time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Interrupted; the last checkpoint is "))
    assert lines[at].endswith(". Resume with:") and "Traceback" not in stderr
    command = shlex.split(lines[at + 1])
    assert command[:2] == ["coin-train", "train"] and command[-2:] == ["--resume-from-checkpoint", "latest"]
    step = int(lines[at].split("(step ")[1].split(")")[0])
    assert (out / f"checkpoint-{step}").is_dir()

    result = invoke(*command[1:], "--max-steps", str(step + 1))  # the printed command, one step further
    assert result.exit_code == 0, result.output
    assert first_line(result) == f"resuming from {out / f'checkpoint-{step}'} (step {step} of the run in {out})"
    assert f"trained {step + 1} steps" in result.output


def test_a_checkpoint_whose_save_was_cut_short_is_never_resumed(tmp_path):
    from coin_train.outputs import checkpoints, write_run_id

    for step, complete in ((2, True), (4, False)):  # checkpoint-4: interrupted before trainer_state.json
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        write_run_id(folder, "run-1")
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert checkpoints(tmp_path, "run-1") == [(2, tmp_path / "checkpoint-2")]


def test_interrupted_before_the_first_checkpoint_says_there_is_nothing_to_resume(tmp_path):
    from coin_train.cli import _interrupted
    from coin_train.config import CoinConfig

    out = tmp_path / "out"
    config = CoinConfig(output_dir=str(out), save_steps=50, use_cpu=True)
    assert _interrupted(config, "run-1", ["train"]) == (
        "Interrupted before the first checkpoint (one is saved every 50 steps (--save_steps)); nothing to resume. "
        "Start again with the same command.")
    out.mkdir()
    (out / "coin_run.json").write_text('{"run_id": "run-1"}')
    assert _interrupted(config, "run-1", ["train"]).endswith(
        "Start again with the same command and --overwrite_output_dir.")
