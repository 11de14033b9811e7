"""Robustness report: metrics from predictions, written as ``report.json``, ``report.md`` and ``report.png``.

Per task and level (accuracies are fractions in [0, 1]):

==================  ===============================================================================
``mean``            mean accuracy over the level's instruction variants
``std``             population standard deviation (ddof 0) of those accuracies
``worst``           lowest accuracy of an instruction, and ``worst_instruction`` names it
``drop``            ``clean.mean - level.mean`` (positive: accuracy lost to the perturbation)
``flip_rate``       share of examples whose prediction is not the same under every instruction variant
                    of the level (0 when the level has one variant)
``invalid_rate``    share of predictions that matched no option (generation mode only)
==================  ===============================================================================

Per level: the mean of each metric over tasks (macro average). Overall: the mean over levels, except
``drop``, which is averaged over the perturbed levels only. The JSON schema is documented in
``docs/evaluation.md``.

Example:
    >>> m = task_level_metrics({"a": ["x", "y"], "b": ["x", "x"]}, ["x", "y"])
    >>> m["mean"], m["std"], m["worst_instruction"], m["flip_rate"]
    (0.75, 0.25, 'b', 0.5)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from coin_data.perturb import CLEAN

# The report reads predictions and never imports the scorer: coin_train.evaluate imports this module
# (one direction), and re-exports these two names.
INVALID = "invalid"  # a generated answer that matched no option
# Predictions: task -> level -> instruction id -> one predicted option (or "invalid") per example.
Predictions = dict[str, dict[str, dict[str, list[str]]]]
PLOT_EXTRA = "pip install 'coin-toolkit[plot]'"

SCHEMA_VERSION = 1
REPORT_JSON, REPORT_MD, REPORT_PNG = "report.json", "report.md", "report.png"
METRICS = ("mean", "std", "worst", "drop", "flip_rate", "invalid_rate")


def task_level_metrics(by_instruction: Mapping[str, Sequence[str]], labels: Sequence[str]) -> dict:
    """Accuracy statistics of one (task, level) over its instruction variants.

    Args:
        by_instruction: instruction id -> prediction per example (same example order as ``labels``).
        labels: the gold answer per example.

    Returns:
        ``mean``, ``std``, ``worst``, ``worst_instruction``, ``flip_rate``, ``invalid_rate``,
        ``per_instruction`` and the counts ``n_instructions``, ``n_examples``. ``drop`` is added by
        :func:`model_metrics`, which knows the clean accuracy.

    Raises:
        ValueError: no instructions, or a prediction list whose length differs from ``labels``.

    Example:
        >>> task_level_metrics({"h0": ["yes", "invalid"]}, ["yes", "no"])["invalid_rate"]
        0.5
    """
    if not by_instruction:
        raise ValueError("no instruction variants to score")
    for name, predictions in by_instruction.items():
        if len(predictions) != len(labels):
            raise ValueError(f"instruction {name!r}: {len(predictions)} predictions for {len(labels)} examples")
    if not labels:
        raise ValueError("no examples to score")
    accuracy = {name: sum(p == y for p, y in zip(preds, labels)) / len(labels) for name, preds in by_instruction.items()}
    values = list(accuracy.values())
    mean = sum(values) / len(values)
    worst_instruction = min(accuracy, key=lambda name: (accuracy[name], name))
    columns = list(zip(*by_instruction.values()))  # one tuple of predictions per example
    flips = sum(len(set(column)) > 1 for column in columns)
    invalid = sum(p == INVALID for preds in by_instruction.values() for p in preds)
    return {
        "mean": mean,
        "std": math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)),
        "worst": accuracy[worst_instruction],
        "worst_instruction": worst_instruction,
        "flip_rate": flips / len(labels),
        "invalid_rate": invalid / (len(labels) * len(values)),
        "n_instructions": len(values),
        "n_examples": len(labels),
        "per_instruction": accuracy,
    }


def _average(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def model_metrics(predictions: Predictions, gold: Mapping[str, Sequence[str]], levels: Sequence[str]) -> dict:
    """All metrics of one model: per task and level, per level (mean over tasks), and overall.

    Args:
        predictions: ``{task: {level: {instruction_id: [prediction per example]}}}``.
        gold: ``{task: [gold answer per example]}``.
        levels: the levels in report order (``clean`` first when present).

    Returns:
        ``{"tasks": {task: {level: metrics}}, "levels": {level: averages}, "overall": averages}``; a
        (task, level) without any instruction variant is ``null`` and left out of the averages.

    Example:
        >>> r = model_metrics({"t": {"clean": {"a": ["x", "x"]}, "word": {"a": ["x", "y"]}}}, {"t": ["x", "x"]}, ["clean", "word"])
        >>> r["tasks"]["t"]["word"]["drop"], r["overall"]["drop"]
        (0.5, 0.5)
    """
    tasks: dict[str, dict] = {}
    for task, per_level in predictions.items():
        tasks[task] = {}
        for level in levels:
            by_instruction = per_level.get(level) or {}
            tasks[task][level] = task_level_metrics(by_instruction, gold[task]) if by_instruction else None
        clean = tasks[task].get(CLEAN)
        for level in levels:
            metrics = tasks[task][level]
            if metrics is not None:
                metrics["drop"] = None if clean is None else clean["mean"] - metrics["mean"]
    per_level = {
        level: {name: _average([tasks[t][level][name] for t in tasks if tasks[t][level] is not None]) for name in METRICS}
        for level in levels
    }
    overall = {name: _average([per_level[level][name] for level in levels]) for name in METRICS}
    overall["drop"] = _average([per_level[level]["drop"] for level in levels if level != CLEAN])
    return {"tasks": tasks, "levels": per_level, "overall": overall}


def build_report(suite, results: Sequence[Mapping], settings: Mapping) -> dict:
    """The full report: suite description, settings, and each model's metrics.

    Args:
        suite: the :class:`coin_train.suites.Suite` evaluated.
        results: one mapping per model with ``name``, ``model`` (path or id), ``prompt_format`` (dict),
            ``predictions`` and ``seconds`` (and ``rescored``: prompts rescored in float32, or ``None``).
        settings: scoring settings (``ScoringConfig.to_dict()``).

    Returns:
        A JSON-ready dict (schema in ``docs/evaluation.md``).
    """
    gold = {task.name: [example.label for example in task.examples] for task in suite.tasks}
    models = []
    for result in results:
        metrics = model_metrics(result["predictions"], gold, suite.levels)
        n_predictions = sum(len(p) for levels in result["predictions"].values() for ids in levels.values() for p in ids.values())
        models.append({
            "name": result["name"], "model": result["model"], "prompt_format": result.get("prompt_format"),
            "seconds": result.get("seconds"), "predictions_made": n_predictions,
            "examples_per_second": (n_predictions / result["seconds"]) if result.get("seconds") else None,
            "rescored_in_float32": result.get("rescored"),
            **metrics, "predictions": result["predictions"],
        })  # fmt: skip
    return {"schema_version": SCHEMA_VERSION, "suite": suite.to_dict(), "settings": dict(settings), "models": models}


# --- writing -----------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _screen_note(report: Mapping) -> str:
    """How a bfloat16 screen scored (``--rescore-margin``), or nothing when float32 scored every prompt."""
    margin = report["settings"].get("rescore_margin")
    if margin is None:
        return ""
    counts = ", ".join(f"{m['name']} {m['rescored_in_float32']} of {m['predictions_made']}" for m in report["models"])
    return f" with a bfloat16 screen, prompts with a margin under {margin} nats rescored in float32 ({counts})"


def markdown_report(report: Mapping) -> str:
    """The report as markdown: a side-by-side summary per level, then one detail table per model.

    Example:
        >>> print(markdown_report(report))  # doctest: +SKIP
        # Robustness report: suite default
        ...
    """
    suite, models = report["suite"], report["models"]
    levels = suite["levels"]
    lines = [f"# Robustness report: suite {suite['name']}", ""]
    lines.append(f"Scoring: {report['settings'].get('mode')}{_screen_note(report)}; accuracy in %, mean ± population "
                 "std over instructions; drop = clean − level; flip = share of examples whose prediction changes "
                 "across the level's instructions.")  # fmt: skip
    lines += ["", "## Summary by level (mean over tasks)", ""]
    header = ["level"] + [f"{m['name']} acc" for m in models] + [f"{m['name']} worst / drop / flip" for m in models]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for level in [*levels, "overall"]:
        row = [f"**{level}**" if level == "overall" else level]
        stats = [m["overall"] if level == "overall" else m["levels"][level] for m in models]
        row += [f"{_pct(s['mean'])} ± {_pct(s['std'])}" for s in stats]
        row += [f"{_pct(s['worst'])} / {_pct(s['drop'])} / {_pct(s['flip_rate'])}" for s in stats]
        lines.append("| " + " | ".join(row) + " |")
    for model in models:
        lines += ["", f"## {model['name']} (`{model['model']}`)", ""]
        lines += ["| task | level | instructions | acc | worst (instruction) | drop | flip | invalid |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for task, per_level in model["tasks"].items():
            for level in levels:
                m = per_level[level]
                if m is None:
                    lines.append(f"| {task} | {level} | 0 | – | – | – | – | – |")
                    continue
                lines.append(
                    f"| {task} | {level} | {m['n_instructions']} | {_pct(m['mean'])} ± {_pct(m['std'])} | "
                    f"{_pct(m['worst'])} ({m['worst_instruction']}) | {_pct(m['drop'])} | {_pct(m['flip_rate'])} | "
                    f"{_pct(m['invalid_rate'])} |"
                )
    skipped = [(t, s) for t, info in suite["tasks"].items() for s in info["skipped"]]
    if skipped:
        lines += ["", "## Perturbations that could not be made", ""]
        lines += [f"- {task} {s['instruction']} @ {s['level']}: {s['reason']}" for task, s in skipped]
    return "\n".join(lines) + "\n"


def plot_report(report: Mapping, path: str | Path) -> Path:
    """Bar chart per level: mean accuracy (error bar: std over instructions) and flip rate, models side by side."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    levels, models = report["suite"]["levels"], report["models"]
    width = 0.8 / max(1, len(models))
    fig, (acc_ax, flip_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for index, model in enumerate(models):
        xs = [i + (index - (len(models) - 1) / 2) * width for i in range(len(levels))]
        means = [100 * (model["levels"][lv]["mean"] or 0) for lv in levels]
        stds = [100 * (model["levels"][lv]["std"] or 0) for lv in levels]
        flips = [100 * (model["levels"][lv]["flip_rate"] or 0) for lv in levels]
        acc_ax.bar(xs, means, width, yerr=stds, capsize=3, label=model["name"])
        flip_ax.bar(xs, flips, width, label=model["name"])
    for ax, title in ((acc_ax, "accuracy (%) ± std over instructions"), (flip_ax, "flip rate (%)")):
        ax.set_xticks(range(len(levels)), levels)
        ax.set_title(title)
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    acc_ax.legend(fontsize="small")
    fig.suptitle(f"Robustness by perturbation level: suite {report['suite']['name']}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def can_plot() -> bool:
    """Whether matplotlib (the optional ``plot`` extra) is installed; checked before any scoring starts.

    Example:
        >>> isinstance(can_plot(), bool)
        True
    """
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def write_report(report: Mapping, out_dir: str | Path, plot: bool = True) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and (with ``plot``) ``report.png`` into ``out_dir`` (created if needed).

    Args:
        report: the dict from :func:`build_report`.
        out_dir: the output folder.
        plot: draw ``report.png`` (needs matplotlib, see :func:`can_plot`); without it no PNG is written
            and a stale one from an earlier run is removed, so the folder never mixes two runs.

    Returns:
        ``{"json": path, "markdown": path}`` plus ``"plot": path`` when the PNG was drawn.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / REPORT_JSON, "markdown": out / REPORT_MD, "plot": out / REPORT_PNG}
    if not plot:
        paths.pop("plot").unlink(missing_ok=True)
    tmp = paths["json"].with_name(REPORT_JSON + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(paths["json"])
    paths["markdown"].write_text(markdown_report(report), encoding="utf-8")
    if plot:
        plot_report(report, paths["plot"])
    return paths
