"""``CoinTrainer``: a ``transformers.Trainer`` whose loss is the CoIN objective, and ``run_training``.

The trainer overrides ``compute_loss`` (the loss lives in :class:`coin_train.losses.CoinLoss`) and
``log`` (to add ``gen_loss``, ``contrastive_loss`` and ``contrastive_accuracy``), and writes the prompt
format, the run's settings (``coin_config.json``) and a model card (``README.md``, :mod:`coin_train.card`)
next to every saved model. Everything else (optimizer, schedule, mixed precision, gradient
checkpointing, checkpoints, resuming, DDP/FSDP/DeepSpeed via accelerate) is the stock Trainer.

Example:
    >>> trainer = CoinTrainer(model=model, args=CoinConfig(output_dir="out"), train_dataset=encoded,  # doctest: +SKIP
    ...                       processing_class=tokenizer)
    >>> trainer.train()                                                                                # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict

import torch
from transformers import Trainer
from transformers.trainer_utils import set_seed

from coin_train.card import write_model_outputs
from coin_train.config import CoinConfig, DataArguments, LoraArguments, ModelArguments, check_pairing
from coin_train.data import CoinCollator, encode_dataset, load_coin_dataset, pair_with_negatives
from coin_data.hub.errors import hub_errors
from coin_train.hub import prepare_push, upload_failure
from coin_train.losses import CoinLoss
from coin_train.modeling import load_model, load_tokenizer
from coin_train.outputs import RunFolder, check_output_dir, claim_output_dir, write_run_id
from coin_train.prompt_format import PromptFormat

logger = logging.getLogger(__name__)

LOGGED_METRICS = ("gen_loss", "contrastive_loss", "contrastive_accuracy")


class CoinTrainer(Trainer):
    """``Trainer`` with the CoIN loss.

    Args:
        model: a causal LM (or peft model).
        args: a :class:`CoinConfig`.
        data_collator: default :class:`CoinCollator` built from ``processing_class``'s pad token.
        prompt_format: saved as ``coin_prompt.json`` with every checkpoint, for evaluation.
        run_args: ``(ModelArguments, LoraArguments, DataArguments)`` of the run, for ``coin_config.json`` and
            the model card (which then name the base model, dataset and LoRA settings).
        run_id: written as ``coin_run.json`` into every checkpoint, so resuming finds this run's checkpoints.
        **kwargs: any other ``Trainer`` argument (``train_dataset``, ``eval_dataset``, ``processing_class`` ...).

    Logged (train, and with an ``eval_`` prefix at evaluation): ``loss``, ``gen_loss``,
    ``contrastive_loss``, ``contrastive_accuracy`` (in-batch top-1 retrieval, both directions).
    """

    def __init__(self, model=None, args: CoinConfig | None = None, data_collator=None, *,
                 prompt_format: PromptFormat | None = None, run_args: tuple | None = None,
                 run_id: str | None = None, **kwargs):
        if not isinstance(args, CoinConfig):
            raise TypeError(f"CoinTrainer needs a CoinConfig, got {type(args).__name__}")
        tokenizer = kwargs.get("processing_class")
        if data_collator is None:
            if tokenizer is None:
                raise ValueError("pass processing_class=tokenizer (or a data_collator) to CoinTrainer")
            data_collator = CoinCollator(tokenizer.pad_token_id, include_negatives=args.uses_negatives)
        super().__init__(model=model, args=args, data_collator=data_collator, **kwargs)
        _check_process_count(self)
        self.coin_loss = CoinLoss.from_config(args)
        self.prompt_format = prompt_format or PromptFormat()
        self.run_args = run_args
        self.run_id = run_id
        self.loss_is_scaled_for_ga = False  # our loss is a per-batch mean: let Trainer divide by GA steps
        self._coin_metrics: dict[str, dict[str, list[torch.Tensor]]] = {
            "train": defaultdict(list), "eval": defaultdict(list)}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = self.coin_loss(model, inputs)
        metrics = self._coin_metrics["train" if model.training else "eval"]
        for name in LOGGED_METRICS:
            metrics[name].append(getattr(out, name))
        if return_outputs:
            return out.loss, {name: getattr(out, name) for name in LOGGED_METRICS}
        return out.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        prefix = "eval_" if mode == "eval" else ""
        stored = self._coin_metrics[mode]
        for name in LOGGED_METRICS:
            if stored[name]:
                local = torch.stack(stored[name]).float().mean().to(self.args.device)
                logs[prefix + name] = self.accelerator.reduce(local, reduction="mean").item()
        stored.clear()
        super().log(logs, start_time)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            self.prompt_format.save(output_dir or self.args.output_dir)
            if self.run_id:
                write_run_id(output_dir or self.args.output_dir, self.run_id)
            write_model_outputs(output_dir or self.args.output_dir, self, self.run_args)

    def create_model_card(self, *args, **kwargs) -> None:
        """Our card instead of the Trainer's draft (``push_to_hub`` calls this just before uploading)."""
        if self.is_world_process_zero():
            write_model_outputs(self.args.output_dir, self, self.run_args)


def _check_process_count(trainer: Trainer) -> None:
    """Refuse a run whose Trainer sees fewer processes than were launched (each would train alone), and
    say so when accelerate runs an FSDP or DeepSpeed launch as plain DDP (FSDP on CPU)."""
    import torch.distributed as dist

    launched = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if launched != trainer.args.world_size:
        raise RuntimeError(
            f"{launched} processes were launched but the Trainer sees {trainer.args.world_size}: each process "
            "would train the whole run on its own. Pass --use_cpu true on a machine without GPUs, or launch "
            "with `accelerate launch` / `torchrun` and a config that matches the machine.")
    wanted = {"FSDP": ("ACCELERATE_USE_FSDP", trainer.is_fsdp_enabled),
              "DeepSpeed": ("ACCELERATE_USE_DEEPSPEED", trainer.is_deepspeed_enabled)}
    for engine, (variable, enabled) in wanted.items():
        if os.environ.get(variable, "false").lower() == "true" and not enabled and trainer.is_world_process_zero():
            logger.warning("the launch asked for %s but accelerate did not enable it (it runs FSDP only on GPUs and "
                           "other accelerators): this run is DDP, every process holds the whole model", engine)




def run_training(model_args: ModelArguments, lora_args: LoraArguments, data_args: DataArguments,
                 config: CoinConfig, run: RunFolder | None = None) -> CoinTrainer:
    """Load model, tokenizer and dataset, train, and save the final model to ``config.output_dir``.

    Args:
        model_args: which model and how to load it.
        lora_args: optional LoRA adapters.
        data_args: which dataset and how prompts are built.
        config: training and loss settings (``resume_from_checkpoint="latest"`` resumes the last checkpoint
            of the run in ``output_dir``; a non-empty ``output_dir`` needs ``overwrite_output_dir``).
        run: the output folder as already prepared by :func:`coin_train.outputs.check_output_dir`
            (the CLI does so to report what it resumes); prepared here when None.

    Returns:
        The trainer after training (``trainer.state.log_history`` has the logged metrics).

    Example:
        >>> run_training(ModelArguments("m"), LoraArguments(use_lora=True),           # doctest: +SKIP
        ...              DataArguments("coin-flan-paraphrased"), CoinConfig(output_dir="out"))
    """
    check_pairing(data_args, config)
    run = run or check_output_dir(config)  # refuse a used folder before loading anything
    set_seed(config.seed)
    push_to = prepare_push(config) if config.should_save else None  # before minutes of loading, not after training
    tokenizer = load_tokenizer(model_args.model_name_or_path, model_args.trust_remote_code)
    prompt_format = data_args.prompt_format()
    wants_eval = config.eval_strategy != "no" and data_args.eval_split is not None

    with config.main_process_first(desc="tokenizing the dataset"):
        raw = load_coin_dataset(data_args.dataset_name_or_path, data_args.dataset_config,
                                splits=(data_args.train_split,) + ((data_args.eval_split,) if wants_eval else ()))
        encode = {"tokenizer": tokenizer, "prompt_format": prompt_format, "max_length": data_args.max_length,
                  "with_negatives": config.uses_negatives, "num_proc": data_args.num_proc}
        train = raw[data_args.train_split]
        if data_args.max_train_samples is not None:
            train = train.select(range(min(data_args.max_train_samples, len(train))))
        train_dataset = encode_dataset(train, **encode)
        if data_args.pair_negatives:
            train_dataset = pair_with_negatives(train_dataset)
        eval_dataset = None
        if wants_eval:
            evaluation = raw[data_args.eval_split]
            if data_args.max_eval_samples is not None:
                evaluation = evaluation.select(range(min(data_args.max_eval_samples, len(evaluation))))
            eval_dataset = encode_dataset(evaluation, **encode)

    model = load_model(model_args, lora_args)
    claim_output_dir(config, run)  # only now that model and data loaded: a failed start keeps the old run
    trainer = CoinTrainer(model=model, args=config, train_dataset=train_dataset, eval_dataset=eval_dataset,
                          processing_class=tokenizer, prompt_format=prompt_format,
                          run_args=(model_args, lora_args, data_args), run_id=run.run_id)
    trainer.train(resume_from_checkpoint=run.checkpoint)
    trainer.save_state()  # before save_model: with push_to_hub, save_model uploads the folder
    try:
        trainer.save_model()
    except hub_errors() as err:
        raise upload_failure(err, config, push_to) from None
    return trainer
