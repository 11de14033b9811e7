"""Fit the verifier's combiner on the ``fit`` part of every labelled source and write its coefficients.

    python scripts/fit_combiner.py              # prints the choice and the coefficients, writes nothing
    python scripts/fit_combiner.py --write      # also writes src/coin_data/verify/verify_data/combiner.json
    python scripts/fit_combiner.py --no-peer    # the project's own pairs only (no download)
    python scripts/fit_combiner.py --own-templates   # also the pairs built from the project's templates

Sources: the project's labelled pairs (``verify_data/pairs.jsonl``, split ``fit``) and pairs built from
PromptBench's prompt lists (``coin_data.verify.peer_pairs``; the wheel is downloaded with ``pip download
promptbench==0.0.4 --no-deps`` into ``~/.cache/coin-toolkit/promptbench`` on first use; offline, put the
wheel there or set ``COIN_PROMPTBENCH_DIR``). The ``heldout`` part of each source is never read. Each
(source, label) cell weighs the same in the fit. The L2 strength is chosen by
grouped 5-fold cross-validation inside the fit parts (an original, or a PromptBench task family, stays
in one fold), maximising the mean over sources of the balanced accuracy of the whole rule chain
(lexdiff findings, embedding floor, combiner). Deterministic: same data, same file.

``--own-templates`` adds a third fit source, ``own_templates`` (:mod:`coin_data.verify.template_pairs`):
cross-task ``changed`` pairs and same-task ``equivalent`` pairs built from the embedded corpus's training
templates and the tuning splits of ``benchmarks/data/flan_style_templates.yaml`` (never its held-out
splits). It is off by default and the shipped coefficients are fitted without it: with it the fit
loses about six points of PromptBench's fit rewordings and gains nothing on promptsource's fit part
(docs/verification.md, "Cross-task negatives from the project's templates"). promptsource never
reaches this script.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from coin_data.verify.combine import COEFFICIENTS_FILE, fit_combiner
from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder
from coin_data.seeds import stable_seed
from coin_data.sources import load_embedded_corpus
from coin_data.verify.peer_pairs import group_of, labelled_sources
from coin_data.verify.benchmark import pair_signals
from coin_data.verify.template_pairs import OWN_TEMPLATES, own_template_pairs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "coin_data" / "verify" / "verify_data"
FLAN_STYLE = ROOT / "benchmarks" / "data" / "flan_style_templates.yaml"
L2_GRID = (0.3, 1.0, 3.0, 10.0)
# The embedding floor is VerifyConfig.threshold (0.5), which the dataset card reports; it is not refitted.
FLOOR = 0.5
FOLDS = 5


def balanced_accuracy(combiner, data) -> float:
    """Mean of the keep rate of equivalent rows and the reject rate of changed rows (NaN when a label is absent)."""
    if not data or all(y for _, _, y in data) or not any(y for _, _, y in data):
        return float("nan")
    judged = np.array([combiner.decide(s, d).equivalent for s, d, _ in data])
    truth = np.array([y for _, _, y in data])
    return 0.5 * (judged[truth].mean() + (~judged[~truth]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-peer", action="store_true", help="fit on the project's own pairs only")
    parser.add_argument("--promptbench-dir", help="folder holding (or to receive) the PromptBench wheel")
    parser.add_argument("--own-templates", action="store_true",
                        help="also fit on pairs built from the project's own templates (off by default, see above)")
    parser.add_argument("--write", action="store_true", help=f"write {DATA / COEFFICIENTS_FILE}")
    args = parser.parse_args()

    sources = {name: [r for r in rows if r["split"] == "fit"]
               for name, rows in labelled_sources(not args.no_peer, args.promptbench_dir).items()}
    cache = EmbeddingCache(SentenceTransformerEmbedder())
    if args.own_templates:
        sources[OWN_TEMPLATES] = own_template_pairs(load_embedded_corpus(), FLAN_STYLE, cache, floor=FLOOR)
    names = [name for name, rows in sources.items() for _ in rows]
    rows = [row for source_rows in sources.values() for row in source_rows]
    data = pair_signals(rows, cache)
    folds = [stable_seed("fold", group_of(name, row)) % FOLDS for name, row in zip(names, rows)]
    cv: dict[str, float] = {}
    for l2 in L2_GRID:
        per_fold = []
        for k in range(FOLDS):
            train = [i for i, f in enumerate(folds) if f != k]
            combiner = fit_combiner([data[i] for i in train], l2=l2, min_similarity=FLOOR,
                                    groups=[names[i] for i in train])
            per_source = [balanced_accuracy(combiner, [data[i] for i, f in enumerate(folds) if f == k and
                                                       names[i] == name]) for name in sources]
            per_fold.append(np.nanmean(per_source))
        cv[str(l2)] = round(float(np.mean(per_fold)), 4)
    best = max(cv, key=lambda key: (cv[key], float(key)))  # ties: the stronger penalty
    l2 = float(best)
    meta = {
        "data": {name: f"{len(r)} pairs, split=fit" for name, r in sources.items()},
        "cross_validation": cv,
        "command": "python scripts/fit_combiner.py --write" + (" --no-peer" if args.no_peer else "")
        + (" --own-templates" if args.own_templates else ""),
    }
    combiner = fit_combiner(data, l2=l2, min_similarity=FLOOR, meta=meta, groups=names)
    fitted = {name: round(balanced_accuracy(combiner, [d for d, n in zip(data, names) if n == name]), 4)
              for name in sources}
    print(json.dumps({"l2": l2, "cv_mean_balanced_accuracy": cv, "fit_balanced_accuracy": fitted,
                      "weights": combiner.weights, "intercept": combiner.intercept}, indent=2))
    if args.write:
        (DATA / COEFFICIENTS_FILE).write_text(combiner.to_json(), encoding="utf-8")
        print(f"wrote {DATA / COEFFICIENTS_FILE}")


if __name__ == "__main__":
    main()
