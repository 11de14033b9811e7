"""Fit the verifier's combiner on the ``fit`` split of the labelled pairs and write its coefficients.

    python scripts/fit_combiner.py              # prints the choice and the coefficients, writes nothing
    python scripts/fit_combiner.py --write      # also writes src/coin_data/verify/verify_data/combiner.json

The ``heldout`` split is never read. The L2 strength is chosen by grouped 5-fold cross-validation
inside the fit split (pairs that share an original stay in one fold), maximising balanced accuracy of
the whole rule chain (lexdiff findings, embedding floor, combiner). Deterministic: same data, same file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from coin_data.verify.combine import COEFFICIENTS_FILE, fit_combiner
from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder
from coin_data.verify.lexdiff import LexicalDiff
from coin_data.templates import parse_template

DATA = Path(__file__).resolve().parents[1] / "src" / "coin_data" / "verify_data"
L2_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
FOLDS = 5


def load_fit_rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if row["split"] == "fit"]


def signals(rows: list[dict]) -> list[tuple[float, object, bool]]:
    """``(similarity, diff, equivalent)`` per row, computed exactly as the verifier does."""
    originals = [parse_template(r["original"]).masked_text() for r in rows]
    candidates = [parse_template(r["paraphrase"]).masked_text() for r in rows]
    cache = EmbeddingCache(SentenceTransformerEmbedder())
    scores = cache.cosine(originals, candidates)
    differ = LexicalDiff()
    return [(float(s), differ.diff(a, b), r["label"] == "equivalent")
            for s, a, b, r in zip(scores, originals, candidates, rows)]


def balanced_accuracy(combiner, data) -> float:
    judged = np.array([combiner.decide(s, d).equivalent for s, d, _ in data])
    truth = np.array([y for _, _, y in data])
    return 0.5 * (judged[truth].mean() + (~judged[~truth]).mean())


def fold_of(row: dict) -> int:
    return int(hashlib.sha256(row["original"].encode("utf-8")).hexdigest(), 16) % FOLDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=DATA / "pairs.jsonl")
    parser.add_argument("--min-similarity", type=float, default=0.5, help="embedding floor stored with the fit")
    parser.add_argument("--write", action="store_true", help=f"write {DATA / COEFFICIENTS_FILE}")
    args = parser.parse_args()

    rows = load_fit_rows(args.pairs)
    data = signals(rows)
    folds = [fold_of(r) for r in rows]
    cv = {}
    for l2 in L2_GRID:
        scores = []
        for k in range(FOLDS):
            train = [d for d, f in zip(data, folds) if f != k]
            test = [d for d, f in zip(data, folds) if f == k]
            scores.append(balanced_accuracy(fit_combiner(train, l2=l2, min_similarity=args.min_similarity), test))
        cv[l2] = round(float(np.mean(scores)), 4)
    best = max(L2_GRID, key=lambda l2: (cv[l2], l2))  # ties: the stronger penalty
    meta = {
        "data": "verify_data/pairs.jsonl, split=fit",
        "fit_pairs": len(rows),
        "l2_cross_validation": {str(k): v for k, v in cv.items()},
        "command": "python scripts/fit_combiner.py --write",
    }
    combiner = fit_combiner(data, l2=best, min_similarity=args.min_similarity, meta=meta)
    print(json.dumps({"l2": best, "cv_balanced_accuracy": cv, "fit_balanced_accuracy":
                      round(balanced_accuracy(combiner, data), 4), "weights": combiner.weights,
                      "intercept": combiner.intercept}, indent=2))
    if args.write:
        (DATA / COEFFICIENTS_FILE).write_text(combiner.to_json(), encoding="utf-8")
        print(f"wrote {DATA / COEFFICIENTS_FILE}")


if __name__ == "__main__":
    main()
