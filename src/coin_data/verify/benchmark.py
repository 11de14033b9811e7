"""Scoring verdicts against labels (``coin-data verify --report``) and the bundled labelled pairs."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from coin_data.templates import parse_template
from coin_data.verify.embedding import EmbeddingCache
from coin_data.verify.files import (
    CHANGED_LABEL,
    EQUIVALENT_LABEL,
    KIND_KEY,
    LABEL_KEY,
    ORIGINAL_KEY,
    PARAPHRASE_KEY,
    VerifyInputError,
    read_pairs,
    write_verdicts,
)
from coin_data.verify.lexdiff import LexDiff
from coin_data.verify.verifier import Verdict, VerifyConfig, default_lexical_diff, surface_verdict, verify_candidates

# --- scoring against labels (`coin-data verify --report`) -----------------------------------------


@dataclass
class VerifyReport:
    """How well the verdicts match labels (``equivalent`` / ``changed``).

    "Predicted equivalent" is :attr:`Verdict.equivalent`: kept, or rejected only as a duplicate or
    near-duplicate after the semantic layer judged it equivalent.

    Attributes:
        n: labelled rows scored.
        accuracy: share of rows judged correctly.
        balanced_accuracy: mean of the keep rate of equivalent rows and the reject rate of changed rows.
        precision: of the rows judged equivalent, the share labelled equivalent.
        recall: of the rows labelled equivalent, the share judged equivalent (the keep rate of rewordings).
        changed_rejected: of the rows labelled changed, the share rejected.
        by_kind: ``kind -> {"label", "n", "judged_equivalent", "rejected", "accuracy"}``.
        deciding: ``signal -> rejections it decided``.
    """

    n: int
    accuracy: float
    balanced_accuracy: float
    precision: float
    recall: float
    changed_rejected: float
    by_kind: dict[str, dict[str, Any]]
    deciding: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        """A plain-text report: the headline figures, then the confusion table by edit kind."""
        lines = [
            f"rows {self.n}; accuracy {self.accuracy:.3f}; balanced accuracy {self.balanced_accuracy:.3f}",
            f"kept (judged equivalent): precision {self.precision:.3f}, recall {self.recall:.3f}; "
            f"changed rejected {self.changed_rejected:.3f}",
            "",
            f"{'kind':<18}{'label':<12}{'n':>5}{'kept':>7}{'rejected':>10}{'accuracy':>10}",
        ]
        for kind, row in sorted(self.by_kind.items(), key=lambda item: (item[1]["label"], item[0])):
            lines.append(f"{kind:<18}{row['label']:<12}{row['n']:>5}{row['judged_equivalent']:>7}"
                         f"{row['rejected']:>10}{row['accuracy']:>10.3f}")
        lines += ["", "rejections by deciding signal: "
                  + ", ".join(f"{name} {count}" for name, count in sorted(self.deciding.items()))]
        return "\n".join(lines)


def score_verdicts(rows: Sequence[dict], verdicts: Sequence[Verdict]) -> VerifyReport:
    """Compare verdicts with the ``label`` (and optional ``kind``) of each row.

    Args:
        rows: the input rows, each with ``label`` ``equivalent`` or ``changed``.
        verdicts: one per row.

    Returns:
        A :class:`VerifyReport`.

    Raises:
        VerifyInputError: a row has no usable label.

    Example:
        >>> r = score_verdicts([{"label": "equivalent"}, {"label": "changed"}],
        ...                    [Verdict("kept", ""), Verdict("not_equivalent", "", deciding="lexdiff")])
        >>> r.balanced_accuracy, r.deciding
        (1.0, {'lexdiff': 1})
    """
    by_kind: dict[str, dict[str, Any]] = {}
    deciding: Counter = Counter()
    tp = fp = fn = tn = 0
    for line_no, (row, verdict) in enumerate(zip(rows, verdicts), start=1):
        label = row.get(LABEL_KEY)
        if label not in (EQUIVALENT_LABEL, CHANGED_LABEL):
            raise VerifyInputError(
                f"row {line_no}: field {LABEL_KEY!r} must be {EQUIVALENT_LABEL!r} or {CHANGED_LABEL!r}, got {label!r}"
            )
        truth, judged = label == EQUIVALENT_LABEL, verdict.equivalent
        tp += truth and judged
        fn += truth and not judged
        fp += (not truth) and judged
        tn += (not truth) and not judged
        if not judged:
            deciding[verdict.deciding or verdict.verdict] += 1
        kind = str(row.get(KIND_KEY) or label)
        entry = by_kind.setdefault(kind, {"label": label, "n": 0, "judged_equivalent": 0, "rejected": 0})
        entry["n"] += 1
        entry["judged_equivalent" if judged else "rejected"] += 1
    for entry in by_kind.values():
        correct = entry["judged_equivalent"] if entry["label"] == EQUIVALENT_LABEL else entry["rejected"]
        entry["accuracy"] = round(correct / entry["n"], 4)
    n = tp + fp + fn + tn
    recall = tp / (tp + fn) if tp + fn else math.nan
    rejected = tn / (tn + fp) if tn + fp else math.nan
    return VerifyReport(
        n=n,
        accuracy=round((tp + tn) / n, 4) if n else math.nan,
        balanced_accuracy=round((recall + rejected) / 2, 4),
        precision=round(tp / (tp + fp), 4) if tp + fp else math.nan,
        recall=round(recall, 4),
        changed_rejected=round(rejected, 4),
        by_kind=by_kind,
        deciding=dict(deciding),
    )


def report_file(
    in_path: str | Path, cache: EmbeddingCache, config: VerifyConfig | None = None, split: str | None = None,
    out_path: str | Path | None = None,
) -> VerifyReport:
    """Verify a labelled JSONL file and score the verdicts (the function behind ``verify --report``).

    Args:
        in_path: rows with ``original``, ``paraphrase``, ``label`` and optionally ``kind`` and ``split``.
        cache: embedding cache.
        config: verifier settings.
        split: score only rows whose ``split`` field equals this (e.g. ``heldout``); ``None`` scores all.
        out_path: also write the verified rows here.

    Returns:
        A :class:`VerifyReport`.
    """
    rows = read_pairs(in_path)
    if split is not None:
        rows = [r for r in rows if r[2].get("split") == split]
        if not rows:
            raise VerifyInputError(f"{in_path}: no rows with split {split!r}")
    verdicts = verify_candidates([(original, paraphrase) for original, paraphrase, _ in rows], cache, config)
    if out_path is not None:
        write_verdicts(out_path, [row for _, _, row in rows], verdicts)
    return score_verdicts([row for _, _, row in rows], verdicts)


def labelled_pairs_path() -> Path:
    """The project's labelled evaluation set (``verify_data/pairs.jsonl`` inside the package)."""
    from importlib import resources

    return Path(str(resources.files("coin_data").joinpath("verify", "verify_data", "pairs.jsonl")))


def pair_signals(rows: Sequence[dict], cache: EmbeddingCache) -> list[tuple[float, LexDiff, bool]]:
    """``(similarity, diff, equivalent)`` per labelled row, computed as :func:`verify_candidates` does:
    the input of :func:`coin_data.verify.combine.fit_combiner`. A row that a surface check (slots, length)
    rejects gets similarity -1, so no fit ever sees it.

    Args:
        rows: dicts with ``original``, ``paraphrase`` and ``label``.
        cache: embedding cache.

    Returns:
        One tuple per row, in order.

    Example:
        >>> from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder
        >>> pair_signals([{"original": "Sum up {text}", "paraphrase": "Summarize {text}", "label": "equivalent"}],
        ...              EmbeddingCache(SentenceTransformerEmbedder()))[0][2]
        True
    """
    config = VerifyConfig()
    templates = [parse_template(r[ORIGINAL_KEY]) for r in rows]
    surface = [surface_verdict(t, r[PARAPHRASE_KEY], config) for t, r in zip(templates, rows)]
    originals = [t.masked_text() for t in templates]
    candidates = [parse_template(r[PARAPHRASE_KEY]).masked_text() for r in rows]
    scores = cache.cosine(originals, candidates)
    differ = default_lexical_diff()
    return [(-1.0 if v is not None else float(s), differ.diff(a, b), r[LABEL_KEY] == EQUIVALENT_LABEL)
            for s, a, b, r, v in zip(scores, originals, candidates, rows, surface)]
