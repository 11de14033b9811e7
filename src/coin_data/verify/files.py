"""The ``coin-data verify`` file interface: JSONL pairs in, one verdict per pair out."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from coin_data.jsonl import read_jsonl_objects
from coin_data.templates import Template, TemplateError, parse_template
from coin_data.verify.embedding import EmbeddingCache
from coin_data.verify.verifier import Verdict, VerifyConfig, verify_candidates

# --- the `coin-data verify` file interface ------------------------------------

ORIGINAL_KEY = "original"
PARAPHRASE_KEY = "paraphrase"
LABEL_KEY = "label"
KIND_KEY = "kind"
EQUIVALENT_LABEL = "equivalent"
CHANGED_LABEL = "changed"


class VerifyInputError(ValueError):
    """A row of a verify input file is unusable; the message names the file, line and field."""


def read_pairs(path: str | Path) -> list[tuple[Template, str, dict]]:
    """Read a JSONL file of ``{"original": ..., "paraphrase": ...}`` rows (extra keys are kept).

    Instructions may contain ``{slots}``; plain instructions without slots work too.
    """
    path = Path(path)
    rows = []
    for where, line_no, row in read_jsonl_objects(path, VerifyInputError):
        for key in (ORIGINAL_KEY, PARAPHRASE_KEY):
            if not isinstance(row.get(key), str):
                raise VerifyInputError(f"{where}: field {key!r} is missing or not a string")
        try:
            original = parse_template(row[ORIGINAL_KEY], template_id=f"line {line_no}")
        except TemplateError as err:
            raise VerifyInputError(f"{where}: field {ORIGINAL_KEY!r}: {err}") from None
        rows.append((original, row[PARAPHRASE_KEY], row))
    return rows


def verify_file(
    in_path: str | Path, out_path: str | Path, cache: EmbeddingCache, config: VerifyConfig | None = None
) -> Counter:
    """Verify every pair of ``in_path`` and write rows with ``verdict``, ``reason``, ``similarity``,
    ``signals`` and ``deciding`` added.

    Returns:
        Verdict counts.
    """
    rows = read_pairs(in_path)
    verdicts = verify_candidates([(original, paraphrase) for original, paraphrase, _ in rows], cache, config)
    write_verdicts(out_path, [row for _, _, row in rows], verdicts)
    return Counter(v.verdict for v in verdicts)


def write_verdicts(out_path: str | Path, rows: Sequence[dict], verdicts: Sequence[Verdict]) -> None:
    """Write ``rows`` with their verdicts as JSONL (atomically: a temporary file, then a rename)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row, verdict in zip(rows, verdicts):
            record = {**row, **asdict(verdict)}
            record["similarity"] = None if math.isnan(verdict.similarity) else round(verdict.similarity, 6)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(out_path)
