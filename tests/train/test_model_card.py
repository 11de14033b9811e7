"""What a training run leaves next to the model: the model card (README.md), the settings (coin_config.json),
the eval table in the card after ``coin-train eval``, and tensorboard event files with ``--report_to``."""

import json
import sys

import pytest
import transformers
import yaml
from click.testing import CliRunner

from coin_train.card import (
    CARD_MARKER,
    EVAL_END,
    EVAL_START,
    card_metadata,
    dataset_figures,
    final_metrics,
    hub_id,
    split_front_matter,
)
from coin_train.cli import main

pytestmark = pytest.mark.usefixtures("torch_single_thread")

QUIET = ["--use_cpu", "--disable_tqdm", "true", "--dataloader_num_workers", "0"]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def built_dataset(tmp_path_factory):
    """A dataset folder written by the real `coin-data build` (offline rules paraphraser, one task): its card
    is the one whose figures the model card must repeat."""
    from coin_data.cli import main as coin_data

    out = tmp_path_factory.mktemp("built") / "coin-flan-paraphrased"
    result = CliRunner().invoke(coin_data, ["build", "--out", str(out), "--tasks", "sentiment", "-k", "1", "-q"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def lora_run(built_dataset, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "coin-lora"
    result = run("train", "--model", str(tiny_model_dir), "--dataset", str(built_dataset), "--output-dir", str(out),
                 "--lora", "--lora_r", "4", "--lora_alpha", "8", "--temperature", "0.1", "--contrastive-weight", "2",
                 "--balance", "fixed", "--max-steps", "3", "--per-device-train-batch-size", "4", "--max-length", "128",
                 "--logging_steps", "1", "--save_strategy", "steps", "--save_steps", "2",
                 "--hub_token", "hf_never_written_anywhere_123", "--report_to", "none", *QUIET)
    assert result.exit_code == 0, result.output
    return out


def card_of(folder):
    return split_front_matter((folder / "README.md").read_text(encoding="utf-8"))


def test_lora_card_replaces_peft_template_and_reports_the_run(lora_run, built_dataset, tiny_model_dir):
    meta, body = card_of(lora_run)
    assert meta["library_name"] == "peft" and meta["model_name"] == "coin-lora"
    assert {"lora", "coin", "contrastive-instruction-tuning"} <= set(meta["tags"])
    assert "base_model" not in meta and "datasets" not in meta  # local paths are not Hub ids
    assert "[More Information Needed]" not in body and CARD_MARKER in body  # not peft's empty template
    assert f"`{tiny_model_dir}`" in body and "LoRA adapter (peft)" in body

    # The dataset's own card figures are repeated as they are there.
    data_meta, data_body = split_front_matter((built_dataset / "README.md").read_text(encoding="utf-8"))
    splits = {s["name"]: s["num_examples"] for s in data_meta["dataset_info"][0]["splits"]}
    assert f"| rows | train {splits['train']}, validation {splits['validation']} |" in body
    similarity = data_body.split("## Similarity of kept paraphrases\n\n")[1].splitlines()[0]
    assert similarity.startswith("n=") and f"| kept paraphrase similarity | {similarity} |" in body
    assert f"| license | {data_meta['license']} |" in body

    # CoIN settings as given on the command line.
    for row in ("| temperature | 0.1 |", "| contrastive_weight (w) | 2 |", "| balance | fixed |", "| pooling | last |",
                "| LoRA | r=4, alpha=8, dropout=0.05, targets q_proj,k_proj,v_proj,o_proj |", "| objective | L_gen + w * L_ctr |"):
        assert row in body, row

    # Final losses: the last logged value of each metric, as in trainer_state.json.
    history = json.loads((lora_run / "trainer_state.json").read_text())["log_history"]
    last = [entry for entry in history if "gen_loss" in entry][-1]
    for name in ("loss", "gen_loss", "contrastive_loss", "contrastive_accuracy"):
        assert f"| {name} | {last[name]:.4g} |" in body, name
    assert "after 3 optimizer steps" in body
    assert f"| train_loss | {history[-1]['train_loss']:.4g} |" in body
    assert EVAL_START in body and "Not evaluated yet" in body


def test_settings_json_has_every_field_and_versions_but_no_token(lora_run, tiny_model_dir, built_dataset):
    settings = json.loads((lora_run / "coin_config.json").read_text())
    from dataclasses import fields

    from coin_train.config import CoinConfig, DataArguments, LoraArguments, ModelArguments

    for section, cls in (("model", ModelArguments), ("lora", LoraArguments), ("data", DataArguments),
                         ("training", CoinConfig)):
        assert {f.name for f in fields(cls) if f.init} <= set(settings[section]), section
    assert settings["model"]["model_name_or_path"] == str(tiny_model_dir)
    assert settings["data"]["dataset_name_or_path"] == str(built_dataset)
    assert settings["lora"]["lora_r"] == 4 and settings["lora"]["use_lora"] is True
    assert settings["training"]["temperature"] == 0.1 and settings["training"]["balance"] == "fixed"
    assert settings["training"]["hub_token"] == "<HUB_TOKEN>"
    assert settings["versions"]["transformers"] == transformers.__version__ and settings["versions"]["peft"]
    for path in lora_run.rglob("*"):  # the token reaches no file of the run, checkpoints included
        if path.is_file():
            assert b"hf_never_written_anywhere_123" not in path.read_bytes(), path


def test_every_checkpoint_gets_its_own_card_and_settings(lora_run):
    checkpoint = lora_run / "checkpoint-2"
    meta, body = card_of(checkpoint)
    assert meta["library_name"] == "peft" and "after 2 optimizer steps" in body
    assert json.loads((checkpoint / "coin_config.json").read_text())["lora"]["lora_r"] == 4


def test_full_model_gets_a_card_too(built_dataset, tiny_model_dir, tmp_path):
    out = tmp_path / "coin-full"
    result = run("train", "--model", str(tiny_model_dir), "--dataset", str(built_dataset), "--output-dir", str(out),
                 "--no-contrastive", "--max-steps", "2", "--per-device-train-batch-size", "4", "--max-length", "128",
                 "--logging_steps", "1", "--report_to", "none", *QUIET)
    assert result.exit_code == 0, result.output
    meta, body = card_of(out)
    assert meta["library_name"] == "transformers" and "lora" not in meta["tags"]
    assert "a fine-tuned version of" in body and "| LoRA | no (all weights trained) |" in body
    assert "| objective | L_gen only (baseline, --no-contrastive) |" in body
    assert json.loads((out / "coin_config.json").read_text())["training"]["contrastive"] is False


def test_eval_fills_the_cards_results_section(lora_run, tiny_model_dir, tmp_path):
    before = (lora_run / "README.md").read_text()
    result = run("eval", "--model", str(lora_run), "--compare", str(tiny_model_dir), "--suite", "default",
                 "--tasks", "sentiment", "--levels", "clean,word", "--max-examples", "4", "--max-instructions", "2",
                 "--out", str(tmp_path / "eval"))
    assert result.exit_code == 0, result.output
    assert f"updated the results section of {lora_run / 'README.md'}" in result.output
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    mine = report["models"][0]
    after = (lora_run / "README.md").read_text()
    section = after[after.index(EVAL_START):after.index(EVAL_END)]
    for level in ("clean", "word"):
        stats = mine["levels"][level]
        assert f"| {level} | {100 * stats['mean']:.1f} ± {100 * stats['std']:.1f} |" in section
    assert f"`{report['models'][1]['name']}` {100 * report['models'][1]['overall']['mean']:.1f}" in section
    assert "Not evaluated yet" not in after
    # Everything outside the section is unchanged; the compared model (not trained here) got no card.
    assert after[:after.index(EVAL_START)] == before[:before.index(EVAL_START)]
    assert after[after.index(EVAL_END):] == before[before.index(EVAL_END):]
    assert not (tiny_model_dir / "README.md").exists()


def test_tensorboard_event_files_hold_the_three_losses(coin_dataset_dir, tiny_model_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    result = run("train", "--model", str(tiny_model_dir), "--dataset", str(coin_dataset_dir), "--output-dir", str(out),
                 "--max-steps", "3", "--per-device-train-batch-size", "4", "--max-length", "64", "--logging_steps", "1",
                 "--report_to", "tensorboard", *QUIET)
    assert result.exit_code == 0, result.output
    event_dirs = {path.parent for path in out.rglob("events.out.tfevents.*")}
    assert len(event_dirs) == 1
    events = EventAccumulator(str(event_dirs.pop()))
    events.Reload()
    history = [e for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "gen_loss" in e]
    for name in ("loss", "gen_loss", "contrastive_loss", "contrastive_accuracy"):
        scalars = events.Scalars(f"train/{name}")
        assert [s.step for s in scalars] == [1, 2, 3], name
        assert [s.value for s in scalars] == pytest.approx([e[name] for e in history], rel=1e-6), name



# --- pure parts ----------------------------------------------------------------------------------------------
def test_metadata_uses_hub_ids_only():
    meta = card_metadata({"hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "is_adapter": True,
                          "license": "apache-2.0"}, "alice/coin-flan-paraphrased", "coin", "apache-2.0")
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["datasets"] == ["alice/coin-flan-paraphrased"] and meta["license"] == "apache-2.0"
    assert meta["tags"][:2] == ["base_model:adapter:HuggingFaceTB/SmolLM2-135M-Instruct", "lora"]
    full = card_metadata({"hub_id": None, "is_adapter": False}, "./local-data", "coin", None)
    assert full["library_name"] == "transformers" and not {"base_model", "datasets", "license"} & set(full)
    yaml.safe_load(yaml.safe_dump(meta))  # serialisable as the front matter


def test_hub_id_rules(tmp_path):
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "model").mkdir()
    assert hub_id("smollm2") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hub_id("alice/coin") == "alice/coin"
    assert hub_id(str(tmp_path / "org" / "model")) is None  # an existing folder is local, even if it looks like one
    assert hub_id("no-owner") is None and hub_id(None) is None


def test_final_metrics_keeps_the_last_value_of_each():
    history = [{"loss": 3.0, "gen_loss": 2.0, "contrastive_loss": 1.0, "contrastive_accuracy": 0.25, "step": 1},
               {"eval_loss": 2.5, "eval_contrastive_accuracy": 0.5, "step": 1},
               {"loss": 2.0, "gen_loss": 1.5, "contrastive_loss": 0.5, "contrastive_accuracy": 0.75, "step": 2},
               {"train_loss": 2.5, "train_runtime": 1.0, "step": 2}]
    assert final_metrics(history) == {"loss": 2.0, "gen_loss": 1.5, "contrastive_loss": 0.5,
                                      "contrastive_accuracy": 0.75, "train_loss": 2.5, "eval_loss": 2.5,
                                      "eval_contrastive_accuracy": 0.5}


def test_dataset_without_a_card_has_no_figures(coin_dataset_dir):
    assert dataset_figures(str(coin_dataset_dir)) == {}
    assert dataset_figures("alice/not-in-the-cache") == {}
