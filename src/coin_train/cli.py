"""``coin-train``: train instruction-robust causal LMs with Contrastive Instruction Tuning.

A thin layer over :func:`coin_train.trainer.run_training`. Settings come from, in increasing priority:
the dataclass defaults, a ``--preset`` (``reference``: the reference code's setup), a ``--config`` YAML file, the named options below, and any other field given as
``--field_name VALUE`` (every field of ModelArguments, LoraArguments, DataArguments and CoinConfig, i.e.
all of ``transformers.TrainingArguments`` too; ``--help-all`` lists them).
"""

from __future__ import annotations

import dataclasses
import shlex
import typing
from pathlib import Path

import click
from click.core import ParameterSource

from coin_data.cli import one_line_errors
from coin_data.config_options import config_option
from coin_train.config import (PRESETS, CoinConfig, DataArguments, LoraArguments, ModelArguments, check_pairing,
                               preset_settings)
from coin_train.evaluate import ScoringConfig

ARGUMENT_CLASSES = (ModelArguments, LoraArguments, DataArguments, CoinConfig)

# click option name -> (dataclass field, value it sets; None means "the option's value")
NAMED_OPTIONS = {
    "model": ("model_name_or_path", None),
    "dataset": ("dataset_name_or_path", None),
    "dataset_config": ("dataset_config", None),
    "output_dir": ("output_dir", None),
    "lora": ("use_lora", True),
    "no_contrastive": ("contrastive", False),
    "max_length": ("max_length", None),
    "chat_template": ("chat_template", True),
    "temperature": ("temperature", None),
    "contrastive_weight": ("contrastive_weight", None),
    "balance": ("balance", None),
    "pooling": ("pooling", None),
    "max_steps": ("max_steps", None),
    "num_train_epochs": ("num_train_epochs", None),
    "per_device_train_batch_size": ("per_device_train_batch_size", None),
    "learning_rate": ("learning_rate", None),
    "resume_from_checkpoint": ("resume_from_checkpoint", None),
    "overwrite_output_dir": ("overwrite_output_dir", True),
}


def _parser():
    from transformers import HfArgumentParser

    # allow_abbrev=False: '--learning_rat' must be refused, not taken as --learning_rate
    return HfArgumentParser(ARGUMENT_CLASSES, prog="coin-train train", allow_abbrev=False)


def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for cls in ARGUMENT_CLASSES for f in dataclasses.fields(cls) if f.init}


def read_config_file(path: str | Path) -> dict:
    """Read a ``--config`` YAML file: a flat mapping of field names, optionally grouped in sections.

    Example file::

        # coin-train train --config run.yaml
        model: {model_name_or_path: HuggingFaceTB/SmolLM2-135M-Instruct, dtype: float32}
        lora: {use_lora: true, lora_r: 16}
        data: {dataset_name_or_path: coin-flan-paraphrased, max_length: 256}
        training: {output_dir: out/coin, learning_rate: 1.0e-4, temperature: 0.05}
    """
    import yaml

    loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise click.ClickException(f"{path}: expected a mapping of settings, got {type(loaded).__name__}")
    known = _fields()
    flat: dict = {}
    for key, value in loaded.items():
        if isinstance(value, dict) and key not in known:
            flat.update(value)  # a section such as "lora:" or "training:"
        else:
            flat[key] = value
    unknown = sorted(set(flat) - set(known))
    if unknown:
        raise click.ClickException(f"{path}: unknown setting(s) {', '.join(unknown)} (see coin-train train --help-all)")
    for key, value in flat.items():  # "q_proj,v_proj" is accepted for list fields
        is_list = typing.get_origin(known[key].type) is list or str(known[key].type).startswith("list")
        if is_list and isinstance(value, str):
            flat[key] = [part.strip() for part in value.split(",") if part.strip()]
    return flat


def parse_settings(settings: dict, extra_args: list[str]):
    """Turn merged settings plus raw ``--field value`` arguments into the four argument dataclasses.

    Returns:
        ``(ModelArguments, LoraArguments, DataArguments, CoinConfig)``.
    """
    parser = _parser()
    parser.set_defaults(**settings)
    try:
        *parsed, remaining = parser.parse_args_into_dataclasses(
            args=extra_args, return_remaining_strings=True, look_for_args_file=False)
    except ValueError as err:  # a __post_init__ check
        raise click.ClickException(f"invalid setting: {err}") from None
    if remaining:
        raise click.ClickException(f"unknown option(s): {' '.join(remaining)} (see coin-train train --help-all)")
    return tuple(parsed)


def _print_all_options(ctx: click.Context, _param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_parser().format_help())
        ctx.exit()


class _Main(click.Group):
    """Keeps the command line as typed, to print the exact resume command after Ctrl-C."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[ARGV_KEY] = list(args)
        return super().parse_args(ctx, args)


ARGV_KEY = "coin_train.argv"
# Options dropped from the command line when printing the resume command (with their value, if any).
_RESUME_DROPS = {"--resume-from-checkpoint": True, "--resume_from_checkpoint": True,
                 "--overwrite_output_dir": False, "--overwrite-output-dir": False}


def resume_command(argv: list[str]) -> str:
    """The command that continues the interrupted run ``argv`` (``train ...`` as typed).

    Example:
        >>> resume_command(["train", "--model", "m", "--output-dir", "out", "--overwrite_output_dir"])
        'coin-train train --model m --output-dir out --resume-from-checkpoint latest'
    """
    kept, skip = [], False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _RESUME_DROPS:
            takes_value = _RESUME_DROPS[name] or (index + 1 < len(argv) and argv[index + 1].lower() in
                                                   ("true", "false", "yes", "no", "1", "0"))
            skip = takes_value and "=" not in arg
            continue
        kept.append(arg)
    return shlex.join(["coin-train", *kept, "--resume-from-checkpoint", "latest"])


def _train_errors() -> tuple[type[BaseException], ...]:
    from coin_data.schema import SchemaError
    from coin_train.hub import PushError
    from coin_train.outputs import OutputDirError
    from coin_data.hub.errors import hub_errors
    from coin_train.sources import SourceError

    # ValueError: settings the Trainer itself refuses, and data none of which fits --max-length
    return (SourceError, OutputDirError, PushError, SchemaError, KeyError, FileNotFoundError, ValueError, *hub_errors())


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="coin-toolkit")
def main() -> None:
    """Contrastive Instruction Tuning (CoIN) for any causal LM.

    \b
      coin-data build                                   # -> ./coin-flan-paraphrased/
      coin-train train --model HuggingFaceTB/SmolLM2-135M-Instruct \\
          --dataset coin-flan-paraphrased --output-dir out/coin --lora
      coin-train train ... --no-contrastive             # the paper's baseline on the same data
    """


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--model", help="Hub id or folder of any causal LM, or a saved PEFT adapter folder.")
@click.option("--dataset", help="Dataset folder from `coin-data build` or a Hub id (read with load_dataset).")
@click.option("--dataset-config", help="Dataset config name (default: the default config).")
@click.option("--output-dir", help="Where checkpoints and the final model are written.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML file of settings (any field; options on the command line win).")
@click.option("--preset", type=click.Choice(sorted(PRESETS)),
              help="Start from a named setup; 'reference' = the reference code's: no EOS, (anchor, negative) pairs "
                   "in order, micro-batch 2 x 32 accumulation, LoRA r=16 q/k/v/o, lr 1e-4, 10% warmup, 1 epoch. "
                   "Any other option still overrides it (docs/training.md).")
@click.option("--lora", is_flag=True, help="Train LoRA adapters (r=16, alpha=16, q/k/v/o; see --lora_r ...).")
@click.option("--no-contrastive", is_flag=True, help="Baseline: generation loss only (continual instruction tuning).")
@click.option("--max-length", type=click.IntRange(min=2), help="Max tokens per view.  [default: 256]")
@click.option("--chat-template", is_flag=True, help="Use the tokenizer's chat template as the prompt format.")
@click.option("--temperature", type=float, help="InfoNCE temperature.  [default: 0.05]")
@click.option("--contrastive-weight", type=float, help="Weight w of the contrastive term.  [default: 1000]")
@click.option("--balance", type=click.Choice(["cap", "fixed"]),
              help="cap: w*L_ctr capped at L_gen (the paper); fixed: w*L_ctr.  [default: cap]")
@click.option("--pooling", type=click.Choice(["last", "mean"]), help="Last real token or masked mean.  [default: last]")
@click.option("--max-steps", type=int, help="Stop after N optimizer steps (overrides epochs).")
@click.option("--num-train-epochs", type=float, help="Epochs.  [default: 1]")
@click.option("--per-device-train-batch-size", type=int, help="Dataset rows per device per step.  [default: 8]")
@click.option("--learning-rate", type=float, help="Peak learning rate.  [default: 1e-4]")
@click.option("--resume-from-checkpoint",
              help="A checkpoint folder, or 'latest' (the newest checkpoint of the run in --output-dir).")
@click.option("--overwrite_output_dir", "--overwrite-output-dir", "overwrite_output_dir", is_flag=True,
              help="Replace the previous run in a non-empty --output-dir (refused otherwise).")
@click.option("--help-all", is_flag=True, is_eager=True, expose_value=False, callback=_print_all_options,
              help="List every setting (model, LoRA, data, CoIN and all TrainingArguments) and exit.")
@click.pass_context
def train(ctx: click.Context, config_file, preset, **options) -> None:
    """Train with the CoIN objective and save a model that from_pretrained loads.

    \b
      coin-train train --model HuggingFaceTB/SmolLM2-135M-Instruct \\
          --dataset coin-flan-paraphrased --output-dir out/coin --lora

    \b
    Loss = L_gen + min(w * L_ctr, L_gen), L_gen = CE(original) + CE(paraphrase), L_ctr = symmetric
    InfoNCE of the pooled views with in-batch and hard negatives (--balance fixed: L_gen + w * L_ctr).
    Any other setting is accepted as --field_name VALUE (e.g. --bf16 --activation_checkpointing
    --lora_r 8 --save_steps 200 --logging_steps 5); run with --help-all for the full list.
    Multi-GPU: accelerate launch -m coin_train.cli train ... (DDP, FSDP or DeepSpeed).
    Writes README.md (model card) and coin_config.json (all settings) with the model; --push_to_hub
    [--hub_model_id OWNER/NAME] uploads both to a private repo; --report_to tensorboard logs the losses
    (pip install 'coin-toolkit[tensorboard]').
    """
    settings = preset_settings(preset) if preset else {}
    settings.update(read_config_file(config_file) if config_file else {})
    for option, (field_name, constant) in NAMED_OPTIONS.items():
        if ctx.get_parameter_source(option) == ParameterSource.COMMANDLINE:
            settings[field_name] = options[option] if constant is None else constant
    model_args, lora_args, data_args, config = parse_settings(settings, ctx.args)
    try:
        check_pairing(data_args, config)
    except ValueError as err:
        raise click.ClickException(f"invalid setting: {err}") from None
    _train(ctx, model_args, lora_args, data_args, config)


@one_line_errors(_train_errors())
def _train(ctx: click.Context, model_args, lora_args, data_args, config) -> None:
    from coin_train.outputs import check_output_dir
    from coin_train.trainer import run_training

    run = check_output_dir(config)
    if run.checkpoint and config.should_save:
        click.echo(f"resuming from {run.checkpoint} (step {run.step} of the run in {config.output_dir})")
    try:
        trainer = run_training(model_args, lora_args, data_args, config, run=run)
    except KeyboardInterrupt:
        if config.should_save:
            click.echo(_interrupted(config, run.run_id, ctx.meta.get(ARGV_KEY, ["train"])), err=True)
        ctx.exit(130)
    if trainer.args.should_save:
        history = [entry for entry in trainer.state.log_history if "loss" in entry]
        last = f"; last logged loss {history[-1]['loss']:.4f}" if history else ""
        click.echo(f"trained {trainer.state.global_step} steps{last}; model saved to {config.output_dir}")
        if config.push_to_hub and trainer.hub_model_id:
            click.echo(f"pushed {config.output_dir} with its model card to {trainer.hub_model_id} on the Hub")


def _interrupted(config: CoinConfig, run_id: str, argv: list[str]) -> str:
    """What to say after Ctrl-C: the last checkpoint and the exact command that resumes from it."""
    from coin_train.outputs import latest_checkpoint

    last = latest_checkpoint(config.output_dir, run_id)
    if last is not None:
        return (f"Interrupted; the last checkpoint is {last[1]} (step {last[0]}). Resume with:\n"
                f"  {resume_command(argv)}")
    strategy = getattr(config.save_strategy, "value", config.save_strategy)
    every = {"no": "checkpoints are off (--save_strategy no)", "epoch": "one is saved after each epoch"}.get(
        strategy, f"one is saved every {config.save_steps:g} steps (--save_steps)")
    folder = Path(config.output_dir)
    again = ("the same command and --overwrite_output_dir" if folder.is_dir() and any(folder.iterdir())
             else "the same command")
    return f"Interrupted before the first checkpoint ({every}); nothing to resume. Start again with {again}."


@main.command("eval")
@click.option("--model", required=True,
              help="Model to evaluate: a `coin-train train` output (full model or LoRA adapter), any causal LM "
                   "folder or Hub id, or 'smollm2' (the bundled SmolLM2-135M-Instruct).")
@click.option("--suite", default="default", show_default=True,
              help="default (embedded tasks, held-out instructions, offline), glue (needs the Hub), or a suite YAML file.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for report.json, report.md and report.png.")
@click.option("--compare", multiple=True, help="Another model evaluated side by side on the same suite (repeatable).")
@click.option("--tasks", help="Comma-separated task names (default: all tasks of the suite).")
@click.option("--levels", default="clean,character,word,sentence,semantic", show_default=True,
              help="Comma-separated perturbation levels.")
@click.option("--max-examples", type=click.IntRange(min=1), help="Examples per task (default: 32 for default, 300 for glue).")
@click.option("--max-instructions", type=click.IntRange(min=1), help="Use only the first N clean instructions per task.")
@click.option("--mode", type=click.Choice(["rank", "generate"]), default="rank", show_default=True,
              help="rank: option log-likelihood; generate: greedy decoding + label-prefix parsing (the paper's mode).")
@click.option("--normalize", type=click.Choice(["sum", "mean"]), default="sum", show_default=True,
              help="rank: total option log-probability, or its mean per token.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Prompts per forward pass.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="generate: tokens to decode (default: longest option + 2).")
@click.option("--seed", type=int, default=0, show_default=True, help="Perturbation seed.")
@click.option("--paraphraser", default="rules", show_default=True, help="Paraphraser backend for the semantic level.")
@click.option("--instructions", type=click.Choice(["suite", "promptbench"]), default="suite", show_default=True,
              help="glue: the suite's own instructions, or those of an installed promptbench package.")
@click.option("--dtype", default="float32", show_default=True, help="Weight dtype (float32, bfloat16, float16, auto).")
@config_option(ScoringConfig, "rescore_margin", type=float, metavar="NATS")
def eval_command(model, suite, out_dir, compare, tasks, levels, max_examples, max_instructions, mode, normalize,
                 batch_size, max_new_tokens, seed, paraphraser, instructions, dtype, rescore_margin) -> None:
    """Robustness report: accuracy under clean and perturbed instructions, per task and level.

    \b
      coin-train eval --model out/coin --suite default --out eval/coin --compare out/baseline

    \b
    For every task: its clean instructions plus one character-, word-, sentence- and semantic-level
    variant of each (seeded; slots and label words untouched), on a fixed set of examples. Writes
    report.json (schema: docs/evaluation.md), report.md and report.png with, per task and level, the
    mean accuracy, population std over instructions, worst instruction, drop versus clean and flip rate.

    \b
    Faster rank scoring on CPUs with AMX or AVX512-BF16 (bfloat16 screen, float32 close calls):
      coin-train eval --model out/coin --out eval/coin --rescore-margin 0.75
    """
    from coin_data.perturb import PerturbationError
    from coin_data.text.wordnet import WordNetMissingError
    from coin_train.evaluate import evaluate_models
    from coin_train.report import PLOT_EXTRA, can_plot, write_report
    from coin_train.suites import SuiteConfig, SuiteError, build_suite

    check_models([model, *compare])
    plot = can_plot()  # checked before scoring: a missing optional extra must never waste a run
    if not plot:
        click.echo(f"matplotlib is not installed: report.png will be skipped ({PLOT_EXTRA} to draw it)", err=True)
    try:
        suite_config = SuiteConfig(suite=suite, tasks=tasks, levels=levels, max_examples=max_examples,
                                   max_instructions=max_instructions, seed=seed, paraphraser=paraphraser,
                                   instructions=instructions)
        scoring = ScoringConfig(mode=mode, normalize=normalize, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                rescore_margin=rescore_margin)  # fmt: skip
        if rescore_margin is not None and dtype != "float32":
            raise ValueError(f"--rescore-margin rescores close calls with the float32 model: use --dtype float32, not {dtype}")
        built = build_suite(suite_config)
    except (SuiteError, PerturbationError, WordNetMissingError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    n_prompts = sum(len(t.instructions) * len(t.examples) for t in built.tasks)
    click.echo(f"suite {built.name}: {len(built.tasks)} tasks, {n_prompts} prompts per model, levels {', '.join(built.levels)}")
    try:
        report = evaluate_models([model, *compare], built, scoring, dtype=dtype, progress=True)
    except (OSError, ValueError) as err:
        raise click.ClickException(f"cannot evaluate: {err}") from None
    paths = write_report(report, out_dir, plot=plot)
    from coin_train.card import update_eval_section

    for model_id, entry in zip([model, *compare], report["models"]):  # cards of models trained here
        if update_eval_section(model_id, report, entry):
            click.echo(f"updated the results section of {Path(model_id) / 'README.md'}")
    for entry in report["models"]:
        means = ", ".join(f"{level} {100 * entry['levels'][level]['mean']:.1f}" for level in built.levels
                          if entry["levels"][level]["mean"] is not None)
        rescored = entry["rescored_in_float32"]
        extra = "" if rescored is None else f"; {rescored} of {entry['predictions_made']} prompts rescored in float32"
        click.echo(f"{entry['name']}: accuracy % {means}; {entry['examples_per_second']:.1f} prompts/s{extra}")
    click.echo(f"wrote {paths['json']}, " + ", ".join(path.name for key, path in paths.items() if key != "json"))

def check_models(models: list[str]) -> None:
    """Locate every model (and an adapter's base model) before the suite is built and scored.

    Example:
        >>> check_models(["./no_such_model"])  # doctest: +SKIP
        Error: cannot evaluate: ./no_such_model: no such folder (...)
    """
    from coin_train.modeling import adapter_base, is_adapter_dir
    from coin_train.sources import SourceError, locate_model

    try:
        for name in models:
            source = locate_model(name)
            if is_adapter_dir(source.name):
                adapter_base(source.name)
    except SourceError as err:
        raise click.ClickException(f"cannot evaluate: {err}") from None


if __name__ == "__main__":  # `accelerate launch -m coin_train.cli train ...`
    main()
