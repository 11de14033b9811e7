"""Verifier quality and speed on the project's labelled pairs: balanced accuracy per signal set.

    python benchmarks/verify.py                      # offline signal sets; prints one JSON object
    python benchmarks/verify.py --smollm2            # also the judge and behaviour signals with the
                                                     # bundled SmolLM2-135M-Instruct (slow on CPU)
    python benchmarks/verify.py --nli-model cross-encoder/nli-deberta-v3-base   # where the Hub is reachable

Signal sets (each on the ``heldout`` split, with the ``fit`` split beside it; optional signals on the
held-out split only):

- ``embedding@0.75``: the plain cosine threshold of earlier versions (``signals=('embedding',)``);
- ``embedding@best``: the same with the threshold that maximises balanced accuracy on the fit split;
- ``embedding+lexdiff``: lexdiff findings, then cosine >= 0.75 (no combiner);
- ``default``: embedding + lexdiff + combiner (the offline default);
- ``default+<signal>``: the default plus one optional signal.

``pairs_per_second`` times the default verifier over all labelled pairs with a fresh embedding cache and
a fresh WordNet diff (models already loaded), i.e. what a build pays per unique candidate.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from coin_data import verify as verify_module
from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder
from coin_data.verify.lexdiff import LexicalDiff
from coin_data.templates import parse_template
from coin_data.verify import VerifyConfig, labelled_pairs_path, score_verdicts, verify_candidates


def load_rows() -> list[dict]:
    return [json.loads(line) for line in labelled_pairs_path().read_text(encoding="utf-8").splitlines() if line]


def scores(rows: list[dict], config: VerifyConfig, cache: EmbeddingCache) -> dict:
    pairs = [(parse_template(r["original"]), r["paraphrase"]) for r in rows]
    report = score_verdicts(rows, verify_candidates(pairs, cache, config))
    return {"balanced_accuracy": report.balanced_accuracy, "kept_equivalent": report.recall,
            "rejected_changed": report.changed_rejected, "precision": report.precision}


def best_threshold(rows: list[dict], cache: EmbeddingCache) -> float:
    """The plain-cosine threshold with the best balanced accuracy on ``rows`` (the fit split)."""
    originals = [parse_template(r["original"]).masked_text() for r in rows]
    candidates = [parse_template(r["paraphrase"]).masked_text() for r in rows]
    cosine = cache.cosine(originals, candidates)
    truth = np.array([r["label"] == "equivalent" for r in rows])
    best, best_score = 0.75, -1.0
    for threshold in np.arange(0.30, 1.0, 0.01):
        judged = cosine >= threshold
        score = 0.5 * (judged[truth].mean() + (~judged[~truth]).mean())
        if score > best_score:
            best, best_score = round(float(threshold), 2), score
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smollm2", action="store_true", help="also run the judge and behaviour signals with hf:smollm2")
    parser.add_argument("--nli-model", help="also run the NLI signal with this CrossEncoder model")
    args = parser.parse_args()

    rows = load_rows()
    splits = {name: [r for r in rows if r["split"] == name] for name in ("heldout", "fit")}
    cache = EmbeddingCache(SentenceTransformerEmbedder())
    threshold = best_threshold(splits["fit"], cache)
    sets = {
        "embedding@0.75": VerifyConfig(signals=("embedding",), threshold=0.75),
        f"embedding@best({threshold})": VerifyConfig(signals=("embedding",), threshold=threshold),
        "embedding+lexdiff": VerifyConfig(signals=("embedding", "lexdiff"), threshold=0.75),
        "default": VerifyConfig(),
    }
    if args.nli_model:
        sets["default+nli"] = VerifyConfig(nli_model=args.nli_model)
    if args.smollm2:
        sets["default+judge(hf:smollm2)"] = VerifyConfig(judge="hf:smollm2")
        sets["default+behaviour(smollm2)"] = VerifyConfig(behaviour_model="smollm2")

    results = {}
    for name, config in sets.items():
        start = time.perf_counter()
        # Optional signals run models per pair: score them on the held-out split only.
        chosen = {"heldout": splits["heldout"]} if name.startswith("default+") else splits
        results[name] = {split: scores(split_rows, config, cache) for split, split_rows in chosen.items()}
        results[name]["seconds"] = round(time.perf_counter() - start, 2)

    # Throughput of the default verifier: fresh caches, models already loaded.
    verify_module.default_lexical_diff.cache_clear()
    verify_module.default_lexical_diff().wn  # WordNet loaded, word caches empty
    fresh = EmbeddingCache(cache.embedder)
    pairs = [(parse_template(r["original"]), r["paraphrase"]) for r in rows]
    start = time.perf_counter()
    verify_candidates(pairs, fresh, VerifyConfig())
    seconds = time.perf_counter() - start
    lexdiff_start = time.perf_counter()
    differ = LexicalDiff()
    for original, candidate in pairs:
        differ.diff(original.masked_text(), parse_template(candidate).masked_text())
    lexdiff_seconds = time.perf_counter() - lexdiff_start

    print(json.dumps({
        "benchmark": "verify",
        "data": "src/coin_data/verify/verify_data/pairs.jsonl",
        "split_sizes": {name: {"pairs": len(r), "equivalent": sum(x["label"] == "equivalent" for x in r),
                               "changed": sum(x["label"] == "changed" for x in r)} for name, r in splits.items()},
        "signal_sets": results,
        "pairs_per_second": round(len(pairs) / seconds, 1),
        "lexdiff_pairs_per_second": round(len(pairs) / lexdiff_seconds, 1),
        "pairs_timed": len(pairs),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
    }, indent=2))


if __name__ == "__main__":
    main()
