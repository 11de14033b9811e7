"""Test helper, run by ``tests/train/test_accelerate.py`` under ``accelerate launch``: the real
``coin-train train`` command, with a record of what each process did.

    accelerate launch --config_file CONFIG tests/train/accelerate_worker.py RECORD_DIR [coin-train train options]

Each process writes ``RECORD_DIR/rank{R}.json``: how accelerate wrapped the model, the rows of every
micro-batch it trained on, the features and the loss of its first micro-batch, whether it saved, and a
checksum of its final weights; and ``RECORD_DIR/grads{R}.pt``: the gradients of the first step as the
optimizer sees them (full tensors, gathered from the shards under FSDP and DeepSpeed ZeRO).

FSDP on a machine without GPUs: torch's FSDP2 runs on CPU with gloo, but accelerate's state takes
FSDP only on GPU-like devices and runs the launch as DDP. With ``COIN_TEST_FSDP_ON_CPU=1`` this helper
lets accelerate's state take FSDP on CPU (one patched method, :func:`allow_fsdp_on_cpu`), so that the
run goes through accelerate's FSDP2 preparation, sharded training and full-state-dict saving as on GPUs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from transformers import TrainerCallback

import coin_train.trainer as trainer_module
from coin_train.cli import main
from coin_train.data import VIEWS, ids_column


def allow_fsdp_on_cpu() -> None:
    """Let accelerate's state take FSDP when the processes train on CPU (it only does so on GPUs)."""
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    original_init = AcceleratorState.__init__

    def init(self, *args, fsdp_plugin=None, **kwargs):
        original_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP  # what accelerate does for MULTI_GPU
            self.fsdp_plugin = fsdp_plugin
            PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    AcceleratorState.__init__ = init


def row_key(feature: dict) -> str:
    """A row's identity: the token ids of its views (two rows of one instance share the original)."""
    return "|".join(",".join(map(str, feature[ids_column(view)])) for view in VIEWS)


def full(tensor: torch.Tensor) -> torch.Tensor:
    """A plain CPU copy of a tensor or of a sharded DTensor (a collective under FSDP: every rank calls it)."""
    if hasattr(tensor, "full_tensor"):
        tensor = tensor.full_tensor()
    return tensor.detach().cpu().clone()


class RecordingCollator:
    """Wraps the trainer's collator and keeps the rows of every micro-batch it builds."""

    def __init__(self, collator, record: dict):
        self.collator, self.record = collator, record

    def __call__(self, features: list[dict]):
        self.record["batches"].append([row_key(f) for f in features])
        if "first_features" not in self.record:
            self.record["first_features"] = [{k: v for k, v in f.items()} for f in features]
        return self.collator(features)


def record_deepspeed_gradients(path: Path) -> None:
    """Save the full gradients of DeepSpeed's first step: its engine steps inside ``backward`` and keeps
    them in its own partitioned buffers, where no Trainer callback sees them."""
    from deepspeed import DeepSpeedEngine
    from deepspeed.utils import safe_get_full_grad

    original_step = DeepSpeedEngine.step

    def step(self, *args, **kwargs):
        if not path.exists():  # safe_get_full_grad gathers shards: every rank calls it, in the same order
            torch.save({name: full(safe_get_full_grad(p)) for name, p in self.module.named_parameters()}, path)
        return original_step(self, *args, **kwargs)

    DeepSpeedEngine.step = step


class GradientRecorder(TrainerCallback):
    """Keeps the gradients of the first optimizer step (after any all-reduce or reduce-scatter)."""

    def __init__(self, path: Path):
        self.path = path

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0 and not self.path.exists():
            grads = {name: full(p.grad) for name, p in model.named_parameters() if p.grad is not None}
            torch.save(grads, self.path)


class RecordingTrainer(trainer_module.CoinTrainer):
    """The CoinTrainer that ``run_training`` builds, plus the record."""

    current: RecordingTrainer | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        rank = self.args.process_index
        self.record = {"rank": rank, "world_size": self.args.world_size, "batches": [], "saves": 0,
                       "distributed_type": str(self.accelerator.distributed_type),
                       "fsdp": self.is_fsdp_enabled, "deepspeed": self.is_deepspeed_enabled}
        self.data_collator = RecordingCollator(self.data_collator, self.record)
        if self.is_deepspeed_enabled:
            record_deepspeed_gradients(RECORD_DIR / f"grads{rank}.pt")
        else:
            self.add_callback(GradientRecorder(RECORD_DIR / f"grads{rank}.pt"))
        RecordingTrainer.current = self

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if model.training and "first_loss" not in self.record:
            self.record["first_loss"] = (result[0] if return_outputs else result).item()
            self.record["wrapped_as"] = type(self.model_wrapped).__name__
        return result

    def _save(self, output_dir=None, state_dict=None):
        self.record["saves"] += int(self.args.should_save)  # _save writes only where should_save
        super()._save(output_dir, state_dict)


if __name__ == "__main__":
    RECORD_DIR = Path(sys.argv[1])
    if os.environ.get("COIN_TEST_FSDP_ON_CPU") == "1":
        allow_fsdp_on_cpu()
    trainer_module.CoinTrainer = RecordingTrainer  # run_training builds this one
    main(["train", *sys.argv[2:]], standalone_mode=False)
    trainer = RecordingTrainer.current
    weights = [full(p).double() for p in trainer.model.parameters()]
    trainer.record["checksum"] = [sum(w.sum().item() for w in weights), sum(w.square().sum().item() for w in weights)]
    trainer.record["should_save"] = trainer.args.should_save
    (RECORD_DIR / f"rank{trainer.record['rank']}.json").write_text(json.dumps(trainer.record))
