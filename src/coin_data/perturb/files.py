"""The ``coin-data perturb`` file interface: JSONL instructions in, perturbed rows out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from coin_data.jsonl import read_jsonl_objects
from coin_data.perturb.levels import Perturbation, PerturbationError, PerturbConfig, check_level
from coin_data.perturb.perturber import Perturber
from coin_data.templates import TemplateError, parse_template

# --- the `coin-data perturb` file interface ------------------------------------------------------------

INSTRUCTION_KEY = "instruction"
OPTIONS_KEY = "options"


def read_instructions(path) -> list[dict]:
    """Read a JSONL file of ``{"instruction": ..., "options": [...]}`` rows (other keys are kept).

    Raises:
        PerturbationError: missing file, invalid JSON, or a bad field; the message names file, line, field.
    """
    path = Path(path)
    rows = []
    for where, line_no, row in read_jsonl_objects(path, PerturbationError):
        if not isinstance(row.get(INSTRUCTION_KEY), str) or not row[INSTRUCTION_KEY].strip():
            raise PerturbationError(f"{where}: field {INSTRUCTION_KEY!r} is missing or not a non-empty string")
        options = row.get(OPTIONS_KEY, [])
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise PerturbationError(f"{where}: field {OPTIONS_KEY!r} must be a list of strings")
        try:
            parse_template(row[INSTRUCTION_KEY], template_id=f"line {line_no}")
        except TemplateError as err:
            raise PerturbationError(f"{where}: field {INSTRUCTION_KEY!r}: {err}") from None
        rows.append(row)
    return rows


def perturb_file(in_path, out_path, levels: Sequence[str], config: PerturbConfig | None = None,
                 perturber: Perturber | None = None) -> dict[str, tuple[int, int]]:  # fmt: skip
    """Perturb every row of ``in_path`` at each level and write one output row per (row, level).

    Output rows are the input row plus ``level``, ``variant``, ``method``, ``perturbed`` (``null`` when the
    level could not apply), ``edits``, ``similarity`` and ``reason``. Row ``i`` is variant ``i``. The file
    is written aside and renamed, so a failed run leaves no partial output.

    Args:
        in_path: input JSONL (see :func:`read_instructions`).
        out_path: output JSONL.
        levels: perturbation levels to apply.
        config: settings (ignored when ``perturber`` is given).
        perturber: a ready :class:`Perturber` (tests pass one with a shared embedder).

    Returns:
        ``{level: (perturbed rows, rows)}``.

    Example:
        >>> perturb_file("instructions.jsonl", "out.jsonl", ["sentence"])  # doctest: +SKIP
        {'sentence': (12, 12)}
    """
    for level in levels:
        check_level(level)
    rows = read_instructions(in_path)
    perturber = perturber or Perturber(config)
    results: dict[str, list[Perturbation]] = {}
    for level in levels:
        results[level] = [None] * len(rows)  # type: ignore[list-item]
        # Rows with the same label set are perturbed together (one paraphraser call for the semantic level).
        by_options: dict[tuple[str, ...], list[int]] = {}
        for index, row in enumerate(rows):
            by_options.setdefault(tuple(row.get(OPTIONS_KEY, [])), []).append(index)
        for options, indices in by_options.items():
            texts = [rows[i][INSTRUCTION_KEY] for i in indices]
            for index, result in zip(indices, perturber.perturb_all(texts, level, options, variants=indices)):
                results[level][index] = result
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for index, row in enumerate(rows):
            for level in levels:
                record = {**row, **results[level][index].to_dict()}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(out_path)
    return {level: (sum(r.ok for r in results[level]), len(rows)) for level in levels}
