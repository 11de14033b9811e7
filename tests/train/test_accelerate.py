"""``coin-train train`` under ``accelerate launch``, two CPU processes on gloo, with the accelerate
configs shipped in ``docs/accelerate/`` (made CPU-sized): DDP, FSDP2 and DeepSpeed ZeRO-2/3 split
every global batch between the processes, gather the contrastive candidates, compute the loss and
gradients of one process holding the whole global batch, log and save once, and save a model that reloads.

The launches take 30 s to several minutes each on two cores: they are in the slow suite
(``pytest -m slow``); the DeepSpeed ones need ``pip install deepspeed`` (they are skipped without it).
The config files and the CPU fallback are checked in the default suite.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from coin_train.config import launched_without_accelerator

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "docs" / "accelerate"
WORKER = Path(__file__).with_name("accelerate_worker.py")
WORLD, ROWS_PER_PROCESS, STEPS = 2, 4, 4  # 16 instances x 2 rows = 32 rows = 4 global batches of 2 x 4
SETTINGS = {"temperature": 0.05, "contrastive_weight": 1000.0, "balance": "cap", "pooling": "last"}


def has_accelerator() -> bool:
    return torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()


@pytest.mark.parametrize("name, engine", [("single-gpu.yaml", "NO"), ("ddp-8gpu.yaml", "MULTI_GPU"),
                                          ("fsdp2-8gpu.yaml", "FSDP"), ("deepspeed-zero3-8gpu.yaml", "DEEPSPEED")])
def test_shipped_accelerate_configs_parse(name, engine, tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / name))
    assert str(config.distributed_type) == f"DistributedType.{engine}"
    assert config.num_processes == (1 if engine == "NO" else 8) and config.num_machines == 1
    assert config.mixed_precision == "bf16" and not config.use_cpu
    if engine == "FSDP":
        assert config.fsdp_config["fsdp_version"] == 2
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # a from_pretrained folder
    if engine == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == 3 and config.deepspeed_config["zero3_save_16bit_model"]
    cpu = load_config_from_file(str(cpu_variant(CONFIGS / name, tmp_path)))  # what the launch tests run
    assert (cpu.num_processes, cpu.use_cpu, cpu.distributed_type) == (WORLD, True, config.distributed_type)


def test_launched_processes_without_accelerator_train_on_cpu(monkeypatch):
    # accelerate's multi-GPU/FSDP/DeepSpeed launchers do not pass `use_cpu: true` on; CoinConfig turns
    # use_cpu on when this is true, else every process would train alone. (A CoinConfig cannot be built
    # here with WORLD_SIZE=2: it would wait for the second process; the launch tests below build it.)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launched_without_accelerator() is False
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert launched_without_accelerator() is False
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched_without_accelerator() is not has_accelerator()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_variant(config_file: Path, folder: Path) -> Path:
    """The shipped config with two CPU processes on a free port (all other settings kept)."""
    config = yaml.safe_load(config_file.read_text())
    config.update(num_processes=WORLD, use_cpu=True, mixed_precision="no", main_process_port=free_port())
    path = folder / config_file.name
    path.write_text(yaml.safe_dump(config))
    return path


def launch(config_file: Path, tmp_path: Path, model_dir: Path, dataset_dir: Path, env: dict | None = None,
           timeout: int = 600):
    """Run the worker under `accelerate launch`; return (stdout, records per rank, output folder)."""
    records, output = tmp_path / "records", tmp_path / "out"
    records.mkdir()
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_file), str(WORKER),
               str(records), "--model", str(model_dir), "--dataset", str(dataset_dir), "--output-dir", str(output),
               "--max-steps", str(STEPS), "--per-device-train-batch-size", str(ROWS_PER_PROCESS),
               "--max-length", "64", "--gather_across_devices", "true", "--logging_steps", "1",
               "--max_grad_norm", "0", "--disable_tqdm", "true", "--report_to", "none", "--seed", "7",
               *[f"--{key}={value}" for key, value in SETTINGS.items()]]
    run_env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    proc = subprocess.run(command, check=False, env=run_env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in proc.stderr  # transformers saw the processes
    ranks = [json.loads((records / f"rank{rank}.json").read_text()) for rank in range(WORLD)]
    grads = [torch.load(records / f"grads{rank}.pt") for rank in range(WORLD)]
    return proc.stdout, ranks, grads, output


def one_process_step(model_dir: Path, features: list[dict], pad_token_id: int):
    """Loss and gradients of the same step on one process holding the whole global batch, in float64."""
    from transformers import AutoModelForCausalLM

    from coin_train.data import CoinCollator
    from coin_train.losses import CoinLoss

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64)
    loss_fn = CoinLoss(temperature=SETTINGS["temperature"], weight=SETTINGS["contrastive_weight"],
                       balance=SETTINGS["balance"], pooling=SETTINGS["pooling"])
    out = loss_fn(model, CoinCollator(pad_token_id)(features))
    out.loss.backward()
    return out, {name: p.grad for name, p in model.named_parameters()}


def check_data_parallel_run(stdout, ranks, grads, output, model_dir, tiny_tokenizer):
    from transformers import AutoModelForCausalLM

    from coin_train.prompt_format import PromptFormat

    # Both processes joined one run (not two runs of one process each).
    assert [r["world_size"] for r in ranks] == [WORLD, WORLD]
    # Every global batch is split: the processes train on different rows at every step, and over the
    # epoch the steps cover each of the 32 rows exactly once.
    assert [len(r["batches"]) for r in ranks] == [STEPS, STEPS]
    for step in range(STEPS):
        batch0, batch1 = (set(r["batches"][step]) for r in ranks)
        assert len(batch0) == len(batch1) == ROWS_PER_PROCESS and not batch0 & batch1, step
    seen = [key for r in ranks for batch in r["batches"] for key in batch]
    assert len(seen) == len(set(seen)) == WORLD * ROWS_PER_PROCESS * STEPS

    # The first step equals one process on the global batch: the mean of the processes' losses is its
    # loss, and the gradient the optimizer sees (averaged over processes) is its gradient.
    features = ranks[0]["first_features"] + ranks[1]["first_features"]
    reference, reference_grads = one_process_step(model_dir, features, tiny_tokenizer.pad_token_id)
    assert reference.loss.item() > reference.gen_loss.item()  # the contrastive term is there (and capped)
    assert sum(r["first_loss"] for r in ranks) / WORLD == pytest.approx(reference.loss.item(), rel=1e-5)
    assert grads[0].keys() == grads[1].keys() == reference_grads.keys()
    # The processes compute in float32 and the reference in float64 (with Llama's RMSNorm computing in
    # float32 inside): they agree to float32 rounding scaled by each gradient's magnitude.
    eps32 = torch.finfo(torch.float32).eps
    for name, expected in reference_grads.items():
        scale = expected.abs().max().item()
        for rank in range(WORLD):
            worst = (grads[rank][name].double() - expected).abs().max().item()
            assert worst <= 128 * eps32 * scale, (name, rank, worst, scale)  # observed: up to 13 eps32

    # Logged and saved once, by the main process; the processes end with the same weights.
    logged = [line for line in stdout.splitlines() if "'contrastive_accuracy'" in line]
    assert len(logged) == STEPS, stdout
    assert stdout.count("trained 4 steps") == 1
    assert [r["should_save"] for r in ranks] == [True, False]
    assert ranks[0]["saves"] >= 1 and ranks[1]["saves"] == 0
    assert ranks[0]["checksum"] == pytest.approx(ranks[1]["checksum"], rel=1e-12)
    history = json.loads((output / "trainer_state.json").read_text())["log_history"]
    assert [entry["step"] for entry in history if "loss" in entry] == list(range(1, STEPS + 1))

    # The saved model reloads, trained: its weights are the processes' final weights.
    model = AutoModelForCausalLM.from_pretrained(output, dtype=torch.float64)
    weights = list(model.parameters())
    checksum = [sum(w.sum().item() for w in weights), sum(w.square().sum().item() for w in weights)]
    assert checksum == pytest.approx(ranks[0]["checksum"], rel=1e-9)
    initial = AutoModelForCausalLM.from_pretrained(model_dir)
    assert not torch.equal(initial.lm_head.weight, model.lm_head.weight.float())
    assert PromptFormat.load(output) == PromptFormat()


@pytest.mark.slow
def test_ddp_with_accelerate_launch(tmp_path, tiny_model_dir, coin_dataset_dir, tiny_tokenizer):
    config = cpu_variant(CONFIGS / "ddp-8gpu.yaml", tmp_path)
    stdout, ranks, grads, output = launch(config, tmp_path, tiny_model_dir, coin_dataset_dir)
    assert [r["wrapped_as"] for r in ranks] == ["DistributedDataParallel"] * WORLD
    assert [r["fsdp"] for r in ranks] == [False, False]
    check_data_parallel_run(stdout, ranks, grads, output, tiny_model_dir, tiny_tokenizer)


@pytest.mark.slow
def test_fsdp2_with_accelerate_launch(tmp_path, tiny_model_dir, coin_dataset_dir, tiny_tokenizer):
    config = cpu_variant(CONFIGS / "fsdp2-8gpu.yaml", tmp_path)
    # accelerate runs FSDP only on GPUs; the worker lets its state take FSDP on CPU (see its docstring).
    stdout, ranks, grads, output = launch(config, tmp_path, tiny_model_dir, coin_dataset_dir,
                                          env={"COIN_TEST_FSDP_ON_CPU": "1"})
    assert [r["fsdp"] for r in ranks] == [True, True]
    assert [r["distributed_type"] for r in ranks] == ["DistributedType.FSDP"] * WORLD
    assert [r["wrapped_as"] for r in ranks] == ["FSDPLlamaForCausalLM"] * WORLD  # sharded by fully_shard
    check_data_parallel_run(stdout, ranks, grads, output, tiny_model_dir, tiny_tokenizer)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_with_accelerate_launch(stage, tmp_path, tiny_model_dir, coin_dataset_dir, tiny_tokenizer):
    pytest.importorskip("deepspeed", reason="DeepSpeed is optional: pip install deepspeed")
    config = yaml.safe_load(cpu_variant(CONFIGS / "deepspeed-zero3-8gpu.yaml", tmp_path).read_text())
    config["deepspeed_config"]["zero_stage"] = stage
    (tmp_path / "zero.yaml").write_text(yaml.safe_dump(config))
    # DeepSpeed's CPU accelerator compiles its shared-memory op on first use (minutes, then cached).
    stdout, ranks, grads, output = launch(tmp_path / "zero.yaml", tmp_path, tiny_model_dir, coin_dataset_dir,
                                          timeout=1200)
    assert [r["deepspeed"] for r in ranks] == [True, True]
    assert [r["wrapped_as"] for r in ranks] == ["DeepSpeedEngine"] * WORLD
    check_data_parallel_run(stdout, ranks, grads, output, tiny_model_dir, tiny_tokenizer)
