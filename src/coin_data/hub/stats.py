"""Read a built dataset folder back and summarise it (``coin-data stats``).

Example:
    >>> report = dataset_stats("coin-flan-paraphrased")  # doctest: +SKIP
    >>> report["rows"]  # doctest: +SKIP
    {'train': 5848, 'validation': 680}
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import datasets
import pyarrow.parquet as pq

from coin_data import schema
from coin_data.hub.card import DEFAULT_CONFIG, TEMPLATES_CONFIG, data_path, format_summary, split_files, summary_numbers
from coin_data.schema import is_perturbation_view


def _load_split(folder: Path, config: str, split: str) -> datasets.Dataset:
    """All parquet shards of ``config``/``split`` as one dataset (memory-mapped by pyarrow where it can)."""
    import pyarrow as pa

    paths = split_files(folder, config, split)
    if not paths:
        path = folder / data_path(config, split)
        raise schema.SchemaError(f"{folder}: missing {path.relative_to(folder)}; is this a coin-data build folder?")
    return datasets.Dataset(pa.concat_tables([pq.read_table(str(p)) for p in paths]))


def dataset_stats(folder: str | Path) -> dict:
    """Counts and score summaries of a folder written by ``coin-data build``.

    Returns:
        A JSON-ready dict: rows per split, rows per task, negatives by source, perturbation-view rows by
        ``paraphrase_source`` (``views``), verdict counts, and similarity summaries as numbers
        (``{"n", "mean", "min", "p10", "median", "p90", "max"}``; ``similarity`` covers paraphrase rows
        only, ``view_similarity`` the perturbation views).
    """
    folder = Path(folder)
    report: dict = {"folder": str(folder), "rows": {}, "tasks": {}, "negatives": {}, "views": {}}
    view_similarities: list[float] = []
    similarities: list[float] = []
    negative_similarities: list[float] = []
    for split in ("train", "validation"):
        if split != "train" and not split_files(folder, DEFAULT_CONFIG, split):
            report["rows"][split] = 0  # the build writes no file for an empty split (parquet has no zero-row file)
            continue
        ds = _load_split(folder, DEFAULT_CONFIG, split)
        schema.require_columns(ds.column_names, schema.COLUMNS, f"{folder} {split} split")
        report["rows"][split] = len(ds)
        for task, n in Counter(ds[schema.TASK]).items():
            report["tasks"][task] = report["tasks"].get(task, 0) + n
        for source, n in Counter(ds[schema.NEGATIVE_SOURCE]).items():
            report["negatives"][source] = report["negatives"].get(source, 0) + n
        for source, score in zip(ds[schema.PARAPHRASE_SOURCE], ds[schema.SIMILARITY]):
            if is_perturbation_view(source):
                report["views"][source] = report["views"].get(source, 0) + 1
                view_similarities += [score] if score is not None else []
            elif score is not None:
                similarities.append(score)
        negative_similarities += [s for s in ds[schema.NEGATIVE_SIMILARITY] if s is not None]
    candidates = _load_split(folder, TEMPLATES_CONFIG, "train")
    report["verdicts"] = dict(sorted(Counter(candidates[schema.VERDICT]).items()))
    report["similarity"] = summary_numbers(similarities)
    report["negative_similarity"] = summary_numbers(negative_similarities)
    report["view_similarity"] = summary_numbers(view_similarities)
    report["views"] = dict(sorted(report["views"].items()))
    report["tasks"] = dict(sorted(report["tasks"].items()))
    return report


def format_stats(report: dict) -> str:
    """A readable, aligned text version of :func:`dataset_stats`."""
    lines = [f"{report['folder']}"]
    lines.append("  rows: " + ", ".join(f"{split} {n}" for split, n in report["rows"].items()))
    lines.append("  rows per task:")
    width = max((len(t) for t in report["tasks"]), default=0)
    lines += [f"    {task.ljust(width)}  {n}" for task, n in report["tasks"].items()]
    lines.append("  candidate verdicts: " + ", ".join(f"{v} {n}" for v, n in report["verdicts"].items()))
    lines.append("  hard negatives: " + ", ".join(f"{s} {n}" for s, n in sorted(report["negatives"].items())))
    lines.append(f"  paraphrase similarity: {format_summary(report['similarity'])}")
    if report.get("views"):
        lines.append("  perturbation views: " + ", ".join(f"{s} {n}" for s, n in report["views"].items()))
        lines.append(f"  perturbation view similarity: {format_summary(report['view_similarity'])}")
    lines.append(f"  negative input similarity: {format_summary(report['negative_similarity'])}")
    return "\n".join(lines)
