"""``coin-train train`` end to end: on a folder made by ``coin-data build``, with LoRA, a YAML config,
the baseline, resuming, and clear errors."""

import json

import datasets
import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

from coin_data import schema
from coin_train.cli import main, parse_settings
from coin_train.modeling import load_for_inference
from coin_train.prompt_format import PromptFormat

pytestmark = pytest.mark.usefixtures("torch_single_thread")

QUIET = ["--use_cpu", "--disable_tqdm", "true", "--report_to", "none", "--dataloader_num_workers", "0"]


def run(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def built_dataset(tmp_path_factory):
    """A dataset folder written by the real `coin-data build` (offline rules paraphraser, one task)."""
    from coin_data.cli import main as coin_data

    out = tmp_path_factory.mktemp("built") / "coin-flan-paraphrased"
    result = CliRunner().invoke(coin_data, ["build", "--out", str(out), "--tasks", "sentiment", "-k", "1", "-q"])
    assert result.exit_code == 0, result.output
    return out


def history(output_dir) -> list[dict]:
    return json.loads((output_dir / "trainer_state.json").read_text())["log_history"]


def test_help_teaches_with_the_exact_command():
    top = run("--help").output
    assert "coin-train train --model HuggingFaceTB/SmolLM2-135M-Instruct" in top
    train_help = run("train", "--help").output
    assert train_help.index("coin-train train --model") < train_help.index("--no-contrastive")
    assert "--help-all" in train_help and "accelerate launch" in train_help
    everything = run("train", "--help-all").output
    for option in ("--temperature", "--lora_r", "--gather_across_devices", "--per_device_train_batch_size"):
        assert option in everything


def test_train_on_a_coin_data_build_and_reload(built_dataset, tiny_model_dir, tmp_path):
    out = tmp_path / "coin"
    result = run("train", "--model", str(tiny_model_dir), "--dataset", str(built_dataset), "--output-dir", str(out),
                 "--max-steps", "3", "--per-device-train-batch-size", "4", "--max-length", "256",
                 "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1", *QUIET)
    assert result.exit_code == 0, result.output
    assert "trained 3 steps" in result.output and str(out) in result.output
    for name in ("config.json", "model.safetensors", "tokenizer.json", "coin_prompt.json", "trainer_state.json"):
        assert (out / name).is_file(), name
    assert (out / "checkpoint-2" / "model.safetensors").is_file()
    logs = [entry for entry in history(out) if "gen_loss" in entry]
    assert len(logs) == 3 and all(entry["contrastive_loss"] > 0 for entry in logs)

    trained = AutoModelForCausalLM.from_pretrained(out)
    initial = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.equal(trained.model.layers[0].self_attn.q_proj.weight,
                           initial.model.layers[0].self_attn.q_proj.weight)
    model, tokenizer, fmt = load_for_inference(out)
    assert fmt == PromptFormat() and tokenizer.pad_token_id is not None and not model.training


def test_lora_from_a_yaml_config_baseline_resume_and_continue_the_adapter(coin_dataset_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "lora"
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {{model_name_or_path: {tiny_model_dir}}}\n"
        "lora: {use_lora: true, lora_r: 4, lora_alpha: 8, lora_target_modules: 'q_proj,v_proj'}\n"
        f"data: {{dataset_name_or_path: {coin_dataset_dir}, max_length: 64}}\n"
        f"training: {{output_dir: {out}, max_steps: 2, per_device_train_batch_size: 4, logging_steps: 1,\n"
        "           save_strategy: steps, save_steps: 2, learning_rate: 1.0e-3}\n")
    result = run("train", "--config", str(config), "--no-contrastive", *QUIET)
    assert result.exit_code == 0, result.output
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]
    assert all(entry["loss"] == pytest.approx(entry["gen_loss"], rel=1e-3)
               for entry in history(out) if "gen_loss" in entry and "loss" in entry)  # baseline: no contrastive term
    reloaded = AutoModelForCausalLM.from_pretrained(out)  # base from adapter_config + the adapter
    assert any("lora_" in name for name, _ in reloaded.named_parameters())

    # Resume to step 4 (command line wins over the YAML file).
    result = run("train", "--config", str(config), "--no-contrastive", "--max-steps", "4",
                 "--resume-from-checkpoint", "latest", *QUIET)
    assert result.exit_code == 0, result.output
    assert "trained 4 steps" in result.output

    # An adapter folder given as --model continues that adapter.
    result = run("train", "--model", str(out), "--dataset", str(coin_dataset_dir), "--output-dir",
                 str(tmp_path / "continued"), "--max-steps", "1", "--max-length", "64", *QUIET)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "continued" / "adapter_config.json").is_file()


def test_errors_name_the_problem(coin_dataset_dir, tiny_model_dir, tmp_path):
    result = run("train", "--dataset", str(coin_dataset_dir), "--output-dir", str(tmp_path))
    assert result.exit_code != 0 and "model_name_or_path is required" in result.output
    result = run("train", "--model", str(tiny_model_dir), "--dataset", str(coin_dataset_dir), "--bogus", "1")
    assert result.exit_code != 0 and "unknown option(s): --bogus" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("temprature: 0.1\n")
    result = run("train", "--config", str(bad))
    assert result.exit_code != 0 and "unknown setting(s) temprature" in result.output

    broken = tmp_path / "broken"
    (broken / "data").mkdir(parents=True)
    datasets.Dataset.from_dict({schema.ORIGINAL: ["a"], schema.TARGETS: ["b"]}).to_parquet(
        str(broken / "data" / "train-00000-of-00001.parquet"))
    result = run("train", "--model", str(tiny_model_dir), "--dataset", str(broken), "--output-dir",
                 str(tmp_path / "o"), *QUIET)
    assert result.exit_code != 0 and "'paraphrased_instruction'" in result.output


def test_memory_savers_are_on_by_default_and_can_be_turned_off():
    required = {"model_name_or_path": "m", "dataset_name_or_path": "d", "output_dir": "out"}
    _, lora, _, config = parse_settings(required, [])
    assert config.pack_views and lora.lora_fuse_dropout
    _, lora, _, config = parse_settings(required, ["--no_pack_views", "--no_lora_fuse_dropout"])
    assert not config.pack_views and not lora.lora_fuse_dropout
