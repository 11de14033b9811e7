"""The powered CPU experiment: base model, baseline (--no-contrastive) and CoIN, 3 seeds, >= 1 epoch each.

    python scripts/powered_experiment.py                       # the full run (defaults: about 1.5 h on 2 quiet cores)
    python scripts/powered_experiment.py --summarize           # tables and intervals from the saved units only

Steps (docs/results.md, "The powered experiment"):

1. Build the dataset once (``coin-data build`` on the 8 classification tasks of the embedded corpus,
   ``--validation_fraction 0.75``): training rows come from a quarter of each task's instances.
2. The suite: the ``default`` suite's held-out instructions at the five levels, on the first
   ``--eval_examples`` examples of each task whose instance no training row uses (inputs *and*
   instructions are new to every model).
3. Units, in this order: ``base``, then for each seed ``baseline-seedS`` and ``coin-seedS``. A trained unit
   runs ``coin-train train`` (same rows, same order and same LoRA initialisation for both arms of a
   seed; only the loss differs) and then scores the suite with ``coin-train eval``'s machinery
   (``predict_suite``), plus the pooled-state cosine on the first ``--cosine_examples`` examples.
4. Each unit's result is written to ``OUT/units/<unit>.json`` as soon as it finishes (write-then-rename:
   a killed unit leaves no result). A rerun skips finished units; a unit found with its ``.running``
   marker but no result was interrupted, and it runs again (a training folder without its completion
   marker is removed first; a finished training is reused when only its scoring was interrupted).
5. The summary (``OUT/summary.json`` and ``summary.md``, printed): the pre-registered primary metric and
   the secondary ones per arm, and CoIN minus baseline with paired bootstrap 95% intervals over examples.

Checkpoints go to ``--work`` (not committed); results to ``--out`` (commit them as they come).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from coin_train.consistency import (
    CLEAN,
    accuracy_per_example,
    label_divergence,
    perturbation_flips,
    prediction_table,
)
from coin_train.significance import bootstrap_interval, paired_bootstrap, stratified_mean

PERTURBED = ("character", "word", "sentence", "semantic")
ARMS = ("base", "baseline", "coin")


@dataclass
class ExperimentConfig:
    """Every setting of the run; those marked * are part of the run's identity (checked on resume)."""

    out: str = field(default=str(ROOT / "notebooks" / "results" / "powered"),
                     metadata={"help": "Results folder (unit JSONs, summary; notebook 02 reads it)."})
    work: str = field(default=str(ROOT / "runs" / "powered"), metadata={"help": "Checkpoints and the built dataset (not committed)."})
    model: str = field(default="smollm2", metadata={"help": "* Base model: 'smollm2' (bundled) or any causal LM folder."})
    seeds: str = field(default="0,1,2", metadata={"help": "* Training seeds (LoRA initialisation and row order)."})
    tasks: str | None = field(default=None, metadata={"help": "* Comma-separated tasks (default: every classification task)."})
    validation_fraction: float = field(default=0.75, metadata={"help": "* Share of each task's instances held out from training."})
    paraphrases: int = field(default=2, metadata={"help": "* Paraphrases per template (coin-data build -k)."})
    epochs: float = field(default=1.0, metadata={"help": "* Epochs over the training rows (>= 1 for the powered run)."})
    max_steps: int | None = field(default=None, metadata={"help": "* Stop after N optimizer steps (smoke tests only)."})
    batch: int = field(default=8, metadata={"help": "* Rows per optimizer step (with --preset reference: ignored "
                                                       "unless --reference_budget)."})
    learning_rate: float = field(default=5e-4, metadata={"help": "* Peak learning rate (with --preset reference: "
                                                                 "ignored unless --reference_budget)."})
    train_top_layers: int | None = field(default=8, metadata={"help": "* Train only the top N layers (0: all layers)."})
    preset: str | None = field(default=None, metadata={"help": "* 'reference': the reference code's setup (docs/training.md)."})
    reference_budget: bool = field(default=False, metadata={
        "help": "* With --preset reference: keep its setup (no EOS, pairs in micro-batches of 2, the cap bound) but train "
                "at this run's step budget: --batch rows per step (2 x --batch/2 accumulation), --learning_rate, no "
                "warm-up. Without it the preset's 64 rows per step at 1e-4 give about 30 steps on 1,914 rows."})
    max_length: int = field(default=256, metadata={"help": "* Max tokens per view."})
    eval_examples: int = field(default=64, metadata={"help": "* Held-out examples per task scored by every model."})
    max_instructions: int = field(default=2, metadata={"help": "* Held-out clean instructions per task (4 = all; 2 keeps the run near 4 h)."})
    cosine_examples: int = field(default=16, metadata={"help": "* Examples per task for the pooled-state cosine."})
    eval_seed: int = field(default=0, metadata={"help": "* Perturbation seed of the suite."})
    eval_batch: int = field(default=16, metadata={"help": "Prompts per scoring batch."})
    resamples: int = field(default=10_000, metadata={"help": "Bootstrap resamples (2,000 for the divergence)."})
    summarize: bool = field(default=False, metadata={"help": "Only print the summary of the units already saved."})

    def identity(self) -> dict:
        keep = ("model", "seeds", "tasks", "validation_fraction", "paraphrases", "epochs", "max_steps", "batch",
                "learning_rate", "train_top_layers", "preset", "reference_budget", "max_length", "eval_examples", "max_instructions",
                "cosine_examples", "eval_seed")  # fmt: skip
        return {key: getattr(self, key) for key in keep}

    def seed_list(self) -> list[int]:
        return [int(s) for s in self.seeds.split(",") if s.strip()]


def parse_args(argv=None) -> ExperimentConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(ExperimentConfig):
        if f.type == "bool":
            parser.add_argument(f"--{f.name}", action="store_true", help=f.metadata["help"])
        else:
            kind = {"int": int, "float": float, "int | None": int, "float | None": float}.get(f.type, str)
            parser.add_argument(f"--{f.name}", type=kind, default=f.default, help=f"{f.metadata['help']} [default: {f.default}]")
    config = ExperimentConfig(**vars(parser.parse_args(argv)))
    if config.preset not in (None, "reference"):
        parser.error(f"--preset: unknown preset {config.preset!r} (choose: reference)")
    if config.reference_budget and (config.preset != "reference" or config.batch % 2):
        parser.error("--reference_budget needs --preset reference and an even --batch (micro-batches of 2)")
    if not config.seed_list():
        parser.error("--seeds: give at least one seed, e.g. 0,1,2")
    return config


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def write_json(path: Path, payload: dict) -> None:
    """Write-then-rename: a reader never sees a half-written file, a kill leaves none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(payload, indent=1, default=float), encoding="utf-8")
    os.replace(partial, path)


# --- the dataset and the suite -------------------------------------------------------------------


def classification_tasks(config: ExperimentConfig) -> list[str]:
    from coin_data.sources import CLASSIFICATION, load_embedded_corpus

    corpus = load_embedded_corpus()
    names = [name for name, spec in corpus.tasks.items() if spec.kind == CLASSIFICATION]
    if config.tasks:
        wanted = [t.strip() for t in config.tasks.split(",") if t.strip()]
        unknown = [t for t in wanted if t not in names]
        if unknown:
            sys.exit(f"--tasks: {', '.join(unknown)} is not a classification task of the embedded corpus ({', '.join(names)})")
        names = wanted
    return names


def build_dataset(config: ExperimentConfig, tasks: list[str]) -> Path:
    """Build once; ``write_dataset`` renames a finished folder into place, so an existing one is complete."""
    from coin_data.build import BuildConfig, run_build
    from coin_data.hub.layout import write_dataset

    folder = Path(config.work) / "dataset"
    if folder.is_dir():
        say(f"dataset: reusing {folder}")
        return folder
    say(f"dataset: building {len(tasks)} tasks, validation fraction {config.validation_fraction}")
    result = run_build(BuildConfig(tasks=tuple(tasks), paraphrases_per_template=config.paraphrases, seed=0,
                                   validation_fraction=config.validation_fraction))  # fmt: skip
    write_dataset(result, folder)
    return folder


def training_instances(dataset: Path) -> tuple[set[str], int]:
    """Instance ids that some training row uses, and the number of training rows."""
    import datasets

    from coin_data import schema

    train = datasets.load_dataset(str(dataset), split="train")
    return set(train[schema.INSTANCE_ID]), len(train)


def held_out_suite(config: ExperimentConfig, tasks: list[str], trained_on: set[str]):
    """The default suite on the first ``eval_examples`` examples of each task that no training row uses."""
    from coin_train.suites import SuiteConfig, build_suite

    suite = build_suite(SuiteConfig(tasks=tasks, max_examples=10**6, max_instructions=config.max_instructions,
                                    seed=config.eval_seed))  # fmt: skip
    for task in suite.tasks:
        unseen = [e for e in task.examples if e.id not in trained_on]
        if len(unseen) < config.eval_examples:
            sys.exit(f"task {task.name}: only {len(unseen)} examples are held out from training, --eval_examples is "
                     f"{config.eval_examples}: raise --validation_fraction or lower --eval_examples")  # fmt: skip
        task.examples = unseen[: config.eval_examples]
    return suite


# --- units ---------------------------------------------------------------------------------------


@dataclass
class Unit:
    arm: str
    seed: int | None

    @property
    def name(self) -> str:
        return self.arm if self.seed is None else f"{self.arm}-seed{self.seed}"


def planned_units(config: ExperimentConfig) -> list[Unit]:
    return [Unit("base", None)] + [Unit(arm, seed) for seed in config.seed_list() for arm in ("baseline", "coin")]


def train_command(config: ExperimentConfig, unit: Unit, base_model: str, dataset: Path, output: Path) -> list[str]:
    command = [sys.executable, "-m", "coin_train.cli", "train", "--model", base_model, "--dataset", str(dataset),
               "--output-dir", str(output), "--lora", "--seed", str(unit.seed), "--num-train-epochs", str(config.epochs),
               "--max-length", str(config.max_length), "--save_strategy", "no", "--report_to", "none",
               "--logging_steps", "10", "--disable_tqdm", "true"]  # fmt: skip
    if config.preset:
        command += ["--preset", config.preset]
    if config.reference_budget:
        command += ["--gradient_accumulation_steps", str(config.batch // 2), "--learning-rate", str(config.learning_rate),
                    "--warmup_steps", "0"]  # fmt: skip
    elif not config.preset:
        command += ["--per-device-train-batch-size", str(config.batch), "--learning-rate", str(config.learning_rate),
                    "--warmup_steps", "0"]  # fmt: skip
    if unit.arm == "baseline":
        command.append("--no-contrastive")
    if config.train_top_layers:
        command += ["--train_top_layers", str(config.train_top_layers)]
    if config.max_steps:
        command += ["--max-steps", str(config.max_steps)]
    return command


def train(config: ExperimentConfig, unit: Unit, base_model: str, dataset: Path) -> tuple[Path, dict]:
    """Run ``coin-train train`` for one unit (or reuse a finished one); returns the model folder and its record."""
    output = Path(config.work) / "train" / unit.name
    marker = output / "train_complete.json"
    if marker.is_file():
        say(f"{unit.name}: training already finished, reusing {output}")
        return output, json.loads(marker.read_text())
    if output.exists():
        say(f"{unit.name}: half-finished training found (no {marker.name}): removing it and training again")
        shutil.rmtree(output)
    output.mkdir(parents=True)
    command = train_command(config, unit, base_model, dataset, output)
    say(f"{unit.name}: training: {' '.join(command[1:])}")
    start, cpu_start = time.perf_counter(), os.times()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    history: list[dict] = []
    with open(output.parent / f"{unit.name}.log", "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            for line in process.stdout:
                log.write(line)
                logged = _logged_dict(line)
                if logged is not None:
                    history.append(logged)
                if logged is not None or "trained " in line or "Error" in line:
                    print(f"    {line.rstrip()}", flush=True)
            returncode = process.wait()
        finally:  # interrupted (Ctrl-C, kill): stop the training too, so no orphan writes into the folder
            if process.poll() is None:
                process.terminate()
                process.wait()
    if returncode != 0:
        sys.exit(f"{unit.name}: coin-train train failed (exit {returncode}); see {output.parent / (unit.name + '.log')}")
    cpu = os.times()
    record = {"seconds": time.perf_counter() - start,
              "cpu_seconds": (cpu.children_user + cpu.children_system) - (cpu_start.children_user + cpu_start.children_system),
              "command": command[1:], "log_history": history}  # fmt: skip
    write_json(marker, record)
    return output, record


def _logged_dict(line: str) -> dict | None:
    """The trainer's logged ``{'loss': ..., 'epoch': ...}`` line as a dict (None for any other line)."""
    import ast

    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, dict) else None


def evaluate(config: ExperimentConfig, unit: Unit, model_path: str, suite) -> dict:
    """Score the suite (``coin-train eval``'s predict_suite and build_report) and the pooled cosine."""
    from coin_train.consistency import pooled_cosine_per_example
    from coin_train.evaluate import ScoringConfig, predict_suite
    from coin_train.modeling import load_for_inference
    from coin_train.report import build_report

    scoring = ScoringConfig(batch_size=config.eval_batch)
    model, tokenizer, prompt_format = load_for_inference(model_path)
    total = sum(len(t.instructions) * len(t.examples) for t in suite.tasks)
    done, start = [0], time.perf_counter()

    def progress(task: str, n: int) -> None:  # predict_suite reports (task, prompts scored)
        done[0] += n
        rate = done[0] / (time.perf_counter() - start)
        say(f"{unit.name}: scored {done[0]}/{total} prompts, task {task} ({rate:.1f}/s, "
            f"{(total - done[0]) / rate / 60:.1f} min left)")

    predictions = predict_suite(model, tokenizer, prompt_format, suite, scoring, progress=progress)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    cosine = pooled_cosine_per_example(model, tokenizer, prompt_format, suite, config.cosine_examples)
    cosine_seconds = time.perf_counter() - start
    report = build_report(suite, [{"name": unit.name, "model": model_path, "predictions": predictions, "seconds": seconds}],
                          scoring.to_dict())  # fmt: skip
    entry = report["models"][0]
    return {"levels": entry["levels"], "overall": entry["overall"], "predictions": predictions,
            "pooled_cosine": cosine, "prompts": total, "seconds": seconds, "cosine_seconds": cosine_seconds}  # fmt: skip


# --- bookkeeping: resume and time left -------------------------------------------------------------


def check_identity(config: ExperimentConfig, out: Path) -> None:
    path = out / "config.json"
    if path.is_file():
        saved = json.loads(path.read_text())["identity"]
        defaults = ExperimentConfig().identity()  # a setting added later reads as its default in older runs
        changed = {k: (saved.get(k, defaults[k]), v) for k, v in config.identity().items() if saved.get(k, defaults[k]) != v}
        if changed:
            sys.exit(f"{path}: this folder holds a run with other settings {changed} (saved, given): "
                     "use another --out and --work, or the saved settings")  # fmt: skip
    else:
        write_json(path, {"identity": config.identity()})


def claim(unit: Unit, out: Path) -> Path:
    """Mark the unit as running; report an interrupted earlier attempt; refuse if a live process owns it."""
    marker = out / "units" / f"{unit.name}.running"
    if marker.is_file():
        previous = json.loads(marker.read_text())
        alive = True
        try:
            os.kill(int(previous["pid"]), 0)
        except (OSError, ValueError):
            alive = False
        if alive and int(previous["pid"]) != os.getpid():
            sys.exit(f"{marker}: process {previous['pid']} is running this unit now; wait for it or stop it first")
        say(f"{unit.name}: half-finished (started {previous['started']}, interrupted): running it again")
    write_json(marker, {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    return marker


class Clock:
    """Time left, from the rates measured so far (before any: the rates of docs/results.md at low load)."""

    def __init__(self, rows: int, config: ExperimentConfig, prompts: int):
        step_rows = 64 if config.preset and not config.reference_budget else config.batch  # the preset: 2 x 32
        self.train_rows = rows * config.epochs if not config.max_steps else config.max_steps * step_rows
        self.prompts = prompts
        # priors until a unit is measured: 3.2 s per step of 8 rows (top 8 layers), 6.4 prompts/s + cosine
        self.seconds_per_row, self.seconds_per_prompt = 0.4, 0.19
        self.train_measured, self.eval_measured = [], []
        self.start = time.perf_counter()

    def record(self, unit_result: dict) -> None:
        if unit_result.get("train"):
            self.train_measured.append(unit_result["train"]["seconds"] / max(1.0, self.train_rows))
            self.seconds_per_row = sum(self.train_measured) / len(self.train_measured)
        evaluation = unit_result["eval"]
        self.eval_measured.append((evaluation["seconds"] + evaluation["cosine_seconds"]) / max(1, evaluation["prompts"]))
        self.seconds_per_prompt = sum(self.eval_measured) / len(self.eval_measured)

    def left(self, units: list[Unit]) -> float:
        trained = sum(unit.arm != "base" for unit in units)
        return trained * self.train_rows * self.seconds_per_row + len(units) * self.prompts * self.seconds_per_prompt

    def line(self, units: list[Unit], finished: int, total: int) -> str:
        elapsed = time.perf_counter() - self.start
        return (f"{finished}/{total} units done; this sitting {elapsed / 60:.0f} min; estimated left "
                f"{self.left(units) / 3600:.1f} h ({self.seconds_per_row:.2f} s per training row, "
                f"{self.seconds_per_prompt:.3f} s per scored prompt)")  # fmt: skip


def run(config: ExperimentConfig) -> None:
    from coin_train.evaluate import resolve_model

    out = Path(config.out)
    check_identity(config, out)
    tasks = classification_tasks(config)
    dataset = build_dataset(config, tasks)
    trained_on, rows = training_instances(dataset)
    suite = held_out_suite(config, tasks, trained_on)
    write_json(out / "suite.json", suite.to_dict())
    prompts = sum(len(t.instructions) * len(t.examples) for t in suite.tasks)
    units = planned_units(config)
    clock = Clock(rows, config, prompts)
    say(f"{len(tasks)} tasks, {rows} training rows, {prompts} prompts per model, {len(units)} units")
    base_model = resolve_model(config.model)
    for index, unit in enumerate(units):
        path = out / "units" / f"{unit.name}.json"
        if path.is_file():
            clock.record(json.loads(path.read_text()))
            say(f"{unit.name}: done earlier, skipped")
            continue
        say(clock.line(units[index:], index, len(units)))
        marker = claim(unit, out)
        model_path, train_record = (base_model, None) if unit.arm == "base" else train(config, unit, base_model, dataset)
        result = {"unit": unit.name, "arm": unit.arm, "seed": unit.seed, "model": str(model_path),
                  "train_rows": rows, "train": train_record, "eval": evaluate(config, unit, str(model_path), suite)}  # fmt: skip
        write_json(path, result)
        marker.unlink()
        clock.record(result)
        say(f"{unit.name}: saved {path} (accuracy over perturbed levels "
            f"{100 * primary_of(result, suite_gold(suite), suite_options(suite)):.1f}%)")  # fmt: skip
    say(clock.line([], len(units), len(units)))
    summarize(config)


# --- the summary -------------------------------------------------------------------------------------


def suite_gold(suite) -> dict:
    return {task.name: [e.label for e in task.examples] for task in suite.tasks}


def suite_options(suite) -> dict:
    return {task.name: list(task.options) for task in suite.tasks}


def table_of(result: dict, gold: dict, options: dict):
    return prediction_table(result["eval"]["predictions"], gold, options, (CLEAN, *PERTURBED))


def primary_of(result: dict, gold: dict, options: dict) -> float:
    """The pre-registered primary metric: accuracy over the perturbed levels, mean over tasks."""
    import numpy as np

    table = table_of(result, gold, options)
    return stratified_mean(accuracy_per_example(table, PERTURBED), table.tasks)(np.arange(len(table.gold)))


def level_accuracy(table) -> dict[str, float]:
    """Accuracy at each level (clean first), averaged within a task, then over tasks with equal weight.

    Example:
        >>> from coin_train.consistency import prediction_table
        >>> predictions = {"t": {"clean": {"i1": ["a", "b"]}, "character": {"i1": ["a", "a"]},
        ...                      "word": {"i1": ["b", "a"]}, "sentence": {"i1": ["a", "b"]}, "semantic": {"i1": ["a", "b"]}}}
        >>> table = prediction_table(predictions, {"t": ["a", "b"]}, {"t": ["a", "b"]}, (CLEAN, *PERTURBED))
        >>> level_accuracy(table)
        {'clean': 1.0, 'character': 0.5, 'word': 0.0, 'sentence': 1.0, 'semantic': 1.0}
    """
    import numpy as np

    every = np.arange(len(table.gold))
    return {level: float(stratified_mean(accuracy_per_example(table, [level]), table.tasks)(every))
            for level in (CLEAN, *PERTURBED)}


def summarize(config: ExperimentConfig) -> dict:
    """Per-arm metrics and CoIN minus baseline with paired bootstrap intervals, from the saved units."""
    import numpy as np

    out = Path(config.out)
    if not (out / "suite.json").is_file():
        sys.exit(f"{out}: no suite.json: nothing was run with --out {out} yet")
    results = {p.stem: json.loads(p.read_text()) for p in sorted((out / "units").glob("*.json"))}
    if not results:
        sys.exit(f"{out / 'units'}: no finished unit yet")
    identity = json.loads((out / "config.json").read_text())["identity"]  # the run's settings, not this call's
    seeds = [int(s) for s in str(identity["seeds"]).split(",") if s.strip()]
    gold, options = suite_labels(out)
    tables = {name: table_of(r, gold, options) for name, r in results.items()}
    strata = next(iter(tables.values())).tasks
    every = np.arange(len(strata))
    cosine = {name: np.array([c for task in gold for c in r["eval"]["pooled_cosine"][task]]) for name, r in results.items()}
    cosine_strata = [task for task in gold for _ in next(iter(results.values()))["eval"]["pooled_cosine"][task]]

    def per_example(name: str) -> dict:
        table = tables[name]
        return {"primary": accuracy_per_example(table, PERTURBED), "clean": accuracy_per_example(table, [CLEAN]),
                "flips": perturbation_flips(table), "cosine": cosine[name]}  # fmt: skip

    values = {name: per_example(name) for name in tables}
    arms = {arm: [n for n in tables if results[n]["arm"] == arm] for arm in ARMS}
    summary = {"identity": identity, "units": sorted(results), "n_examples": len(strata),
               "metrics": {}, "coin_minus_baseline": {}}  # fmt: skip
    for arm, names in arms.items():
        if not names:
            continue
        row = {}
        for metric in ("primary", "clean", "flips"):
            per_seed = [stratified_mean(values[n][metric], strata)(every) for n in names]
            row[metric] = {"mean": float(np.mean(per_seed)), "per_seed": per_seed}
        per_seed = [stratified_mean(values[n]["cosine"], cosine_strata)(np.arange(len(cosine_strata))) for n in names]
        row["cosine"] = {"mean": float(np.mean(per_seed)), "per_seed": per_seed}
        per_seed = [label_divergence(tables[n]) for n in names]
        row["divergence"] = {"mean": float(np.mean(per_seed)), "per_seed": per_seed}
        row["flip_rate_across_instructions"] = {"mean": float(np.mean([results[n]["eval"]["overall"]["flip_rate"] for n in names]))}
        per_seed = [level_accuracy(tables[n]) for n in names]
        row["levels"] = {level: {"mean": float(np.mean([s[level] for s in per_seed])), "per_seed": [s[level] for s in per_seed]}
                         for level in (CLEAN, *PERTURBED)}  # fmt: skip
        summary["metrics"][arm] = row
    pairs = [(f"coin-seed{s}", f"baseline-seed{s}") for s in seeds
             if f"coin-seed{s}" in tables and f"baseline-seed{s}" in tables]  # fmt: skip
    if pairs:
        seeds_of = lambda metric, arm: np.mean([values[p[0 if arm == "coin" else 1]][metric] for p in pairs], axis=0)
        for metric, metric_strata in (("primary", strata), ("clean", strata), ("flips", strata), ("cosine", cosine_strata)):
            summary["coin_minus_baseline"][metric] = paired_bootstrap(
                seeds_of(metric, "coin"), seeds_of(metric, "baseline"), metric_strata, config.resamples, seed=0)

        def divergence_difference(indices) -> float:
            return float(np.mean([label_divergence(tables[c], indices) - label_divergence(tables[b], indices) for c, b in pairs]))

        summary["coin_minus_baseline"]["divergence"] = bootstrap_interval(
            divergence_difference, strata, max(1, config.resamples // 5), seed=0)
        summary["coin_minus_baseline"]["seeds_paired"] = [p[0].split("seed")[1] for p in pairs]
        summary["coin_minus_baseline"]["primary_per_seed"] = {  # the primary metric's difference, seed by seed
            p[0].split("seed")[1]: float(stratified_mean(values[p[0]]["primary"] - values[p[1]]["primary"], strata)(every))
            for p in pairs}  # fmt: skip
    write_json(out / "summary.json", summary)
    text = summary_markdown(summary)
    (out / "summary.md").write_text(text, encoding="utf-8")
    print(text, flush=True)
    return summary


def suite_labels(out: Path) -> tuple[dict, dict]:
    """Gold labels and options of the saved suite, looked up from the embedded corpus by example id."""
    from coin_data.sources import load_embedded_corpus

    suite = json.loads((out / "suite.json").read_text())
    corpus = load_embedded_corpus(list(suite["tasks"]))
    gold, options = {}, {}
    for name, task in suite["tasks"].items():
        by_id = {inst.id: inst.target for inst in corpus.instances[name]}
        gold[name] = [by_id[i] for i in task["example_ids"]]
        options[name] = task["options"]
    return gold, options


NAMES = {"primary": "accuracy, perturbed levels (PRIMARY)", "clean": "accuracy, clean",
         "flips": "perturbation flip rate", "divergence": "label divergence (bits)",
         "cosine": "pooled cosine clean-perturbed", "flip_rate_across_instructions": "flip rate across instructions"}  # fmt: skip


def summary_markdown(summary: dict) -> str:
    """The summary as a Markdown table: each arm's mean over seeds, and CoIN - baseline with its interval."""
    arms = [a for a in ARMS if a in summary["metrics"]]

    def show(metric: str, value: float, sign: str = "") -> str:
        # accuracies and flip rates in %, 1 decimal; divergence (bits) and cosine as they are, 3 decimals
        return f"{value:{sign}.3f}" if metric in ("divergence", "cosine") else f"{100 * value:{sign}.1f}"

    lines = [f"{summary['n_examples']} held-out examples; units: {', '.join(summary['units'])}", "",
             "| metric | " + " | ".join(arms) + " | coin - baseline [95% CI] |", "|---" * (len(arms) + 2) + "|"]  # fmt: skip
    for metric, label in NAMES.items():
        cells = [show(metric, summary["metrics"][a][metric]["mean"]) for a in arms]
        ci = summary["coin_minus_baseline"].get(metric)
        interval = "" if ci is None else (
            f"{show(metric, ci['estimate'], '+')} [{show(metric, ci['low'], '+')}, {show(metric, ci['high'], '+')}]")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {interval} |")
    lines += ["", ("Accuracy and flip rates in %; the interval is a paired bootstrap over examples, stratified by "
                   "task, on per-example values averaged over the paired seeds.")]  # fmt: skip
    levels = [CLEAN, *PERTURBED]
    lines += ["", "Accuracy (%) by level, mean over seeds:", "",
              "| arm | " + " | ".join(levels) + " |", "|---" * (len(levels) + 1) + "|"]
    for arm in arms:
        cells = [show("primary", summary["metrics"][arm]["levels"][level]["mean"]) for level in levels]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    per_seed = summary["coin_minus_baseline"].get("primary_per_seed")
    if per_seed:
        shown = ", ".join(f"seed {seed} {show('primary', d, '+')}" for seed, d in per_seed.items())
        lines += ["", f"CoIN minus baseline on the primary metric, seed by seed (points): {shown}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # kill: unwind, so the training child is stopped
    settings = parse_args()
    summarize(settings) if settings.summarize else run(settings)
