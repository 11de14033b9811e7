"""Verifier quality per data source, on the parts no fit has seen, and its speed.

    python benchmarks/verify.py                      # all three sources; prints one JSON object
    python benchmarks/verify.py --no-peer            # the project's own pairs only (no download)
    python benchmarks/verify.py --promptbench-dir DIR   # the PromptBench wheel is (or goes) in DIR
    python benchmarks/verify.py --promptsource-dir DIR  # the promptsource sdist is (or goes) in DIR
    python benchmarks/verify.py --smollm2            # also the judge and behaviour signals with the
                                                     # bundled SmolLM2-135M-Instruct (slow on CPU)
    python benchmarks/verify.py --nli-model cross-encoder/nli-deberta-v3-base   # where the Hub is reachable
    python benchmarks/verify.py --speed-only         # only the speed figure (about a minute)

Sources (``coin_data.verify.peer_pairs``):

- ``own``: ``src/coin_data/verify/verify_data/pairs.jsonl``, written by this project;
- ``promptbench``: pairs built at run time from PromptBench's prompt lists (MIT). The wheel is fetched
  once with ``pip download promptbench==0.0.4 --no-deps -d ~/.cache/coin-toolkit/promptbench`` (or
  ``$COIN_PROMPTBENCH_DIR``) and read with ``ast``; nothing of it is stored in this repository.
  Offline: copy the wheel into that folder from a machine with PyPI access, or pass ``--no-peer``.
- ``promptsource``: pairs built at run time from promptsource's templates (BigScience, Apache-2.0;
  ``coin_data.verify.peer_promptsource``): ``same_task`` (two templates of one dataset with the same
  answer choices, target and slots: equivalent) and ``other_task`` (templates of different dataset
  families with disjoint answer choices: changed). The sdist is fetched once with ``pip download
  promptsource==0.2.3 --no-deps --no-binary :all: --ignore-requires-python -d
  ~/.cache/coin-toolkit/promptsource`` (or ``$COIN_PROMPTSOURCE_DIR``) and its ``templates.yaml`` files
  are read from the tarball; nothing of it is stored here, and no fit ever sees it (scored only).
  ``--no-peer`` leaves out both peer sources.

Every figure is reported per source on its ``heldout`` part (the ``fit`` part beside it): held-out
PromptBench task families never reach ``scripts/fit_combiner.py``, and promptsource reaches it not at all
(its ``fit`` part is for error analysis; its ``heldout`` part is not looked at while tuning). Signal sets:

- ``embedding@0.75``: the plain cosine threshold of earlier versions (``signals=('embedding',)``);
- ``embedding+lexdiff``: lexdiff findings, then cosine >= 0.75 (no combiner);
- ``default``: embedding + lexdiff + combiner (the offline default);
- ``default+<signal>``: the default plus one optional signal (held-out parts only).

``speed`` times the default verifier end to end (templates parsed, every check run) on a fixed sample
of held-out pairs: 400 from the project's and PromptBench's pairs, or the project's 123 with
``--no-peer``. It runs first, with a fresh embedding cache and a fresh WordNet diff; loading the embedding model and WordNet is timed apart
(``load_seconds``). Torch runs 2 threads, and its OpenMP threads sleep between operations
(``OMP_WAIT_POLICY=PASSIVE``, as ``coin-data`` sets it) instead of spinning on a shared CPU. The load
average is recorded before and after the timed run: on a busy machine the figure is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from coin_data import verify as verify_module
from coin_data.templates import parse_template
from coin_data.text.lexicon import shared_lexicon
from coin_data.verify import VerifyConfig, score_verdicts, verify_candidates
from coin_data.verify.embedding import (
    OMP_WAIT_POLICY,
    EmbeddingCache,
    SentenceTransformerEmbedder,
    passive_thread_wait,
)
from coin_data.verify.peer_pairs import (
    PROMPTBENCH,
    PROMPTBENCH_REQUIREMENT,
    PeerDataError,
    cache_dir,
    labelled_sources,
)
from coin_data.verify.peer_promptsource import (
    DOWNLOAD_COMMAND,
    PROMPTSOURCE,
    PROMPTSOURCE_REQUIREMENT,
    promptsource_cache_dir,
)

MINIMAL_EDITS = ("word_swap", "add_criterion", "role_reversal")
TARGETS = {  # (source, figure) -> bar, from the issue
    ("promptbench", "rewordings_kept"): 0.85,
    ("promptbench", "other_task_rejected"): 0.95,
    ("promptbench", "minimal_edits_rejected"): 0.90,
    ("promptbench", "balanced_accuracy"): 0.90,
    ("own", "balanced_accuracy"): 0.90,
    ("promptsource", "balanced_accuracy"): 0.90,
}
SPEED_TARGET = 50.0
SPEED_SAMPLE = 400
TORCH_THREADS = 2


def figures(rows: list[dict], config: VerifyConfig, cache: EmbeddingCache) -> dict:
    """Balanced accuracy, keep and reject rates, and the accuracy per kind of pair."""
    pairs = [(parse_template(r["original"]), r["paraphrase"]) for r in rows]
    report = score_verdicts(rows, verify_candidates(pairs, cache, config))
    out = {"pairs": report.n, "balanced_accuracy": report.balanced_accuracy, "kept_equivalent": report.recall,
           "rejected_changed": report.changed_rejected, "precision": report.precision,
           "by_kind": {kind: {"n": v["n"], "accuracy": v["accuracy"]} for kind, v in sorted(report.by_kind.items())}}
    kinds = report.by_kind
    if "rewording" in kinds:
        out["rewordings_kept"] = kinds["rewording"]["accuracy"]
    if "same_task" in kinds:
        out["same_task_kept"] = kinds["same_task"]["accuracy"]
    if "other_task" in kinds:
        out["other_task_rejected"] = kinds["other_task"]["accuracy"]
    edits = [kinds[k] for k in MINIMAL_EDITS if k in kinds]
    if edits:
        out["minimal_edits_rejected"] = round(sum(e["rejected"] for e in edits) / sum(e["n"] for e in edits), 4)
    return out


def load_models() -> tuple[SentenceTransformerEmbedder, dict]:
    """The embedding model and WordNet, loaded and used once; the seconds each took."""
    start = time.perf_counter()
    embedder = SentenceTransformerEmbedder()
    embedder.encode(["Load the model."])
    loaded = time.perf_counter()
    wordnet = verify_module.default_lexical_diff().lexicon.wordnet
    wordnet.lemmas("load")[0].count()  # the index, the data files and the sense counts are opened
    return embedder, {"embedding_model": round(loaded - start, 2), "wordnet": round(time.perf_counter() - loaded, 2)}


def speed(rows: list[dict], embedder) -> dict:
    """Pairs per second of the default verifier on ``rows``, end to end, with fresh caches.

    Example:
        >>> sorted(speed(rows, embedder))      # doctest: +SKIP
        ['cpu_seconds', 'load_average', 'pairs', 'pairs_per_second', 'seconds']
    """
    verify_module.default_lexical_diff.cache_clear()  # a new diff and lexicon: word caches empty, WordNet loaded
    shared_lexicon.cache_clear()
    load_before = os.getloadavg()
    wall, cpu = time.perf_counter(), time.process_time()
    pairs = [(parse_template(r["original"]), r["paraphrase"]) for r in rows]
    verify_candidates(pairs, EmbeddingCache(embedder), VerifyConfig())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"pairs": len(rows), "pairs_per_second": round(len(rows) / wall, 1), "seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2),
            "load_average": {"before": [round(x, 2) for x in load_before],
                             "after": [round(x, 2) for x in os.getloadavg()]}}


def speed_sample(sources: dict[str, list[dict]]) -> list[dict]:
    """Every k-th held-out pair of the project's and PromptBench's pairs, at most :data:`SPEED_SAMPLE`
    (promptsource stays out, so the figure compares with earlier runs)."""
    heldout = [r for name, rows in sources.items() if name != PROMPTSOURCE for r in rows if r["split"] == "heldout"]
    return heldout[:: max(1, len(heldout) // SPEED_SAMPLE)][:SPEED_SAMPLE]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-peer", action="store_true", help="score the project's own pairs only")
    parser.add_argument("--promptbench-dir", help="folder holding (or to receive) the PromptBench wheel")
    parser.add_argument("--promptsource-dir", help="folder holding (or to receive) the promptsource sdist")
    parser.add_argument("--smollm2", action="store_true", help="also run the judge and behaviour signals with hf:smollm2")
    parser.add_argument("--nli-model", help="also run the NLI signal with this CrossEncoder model")
    parser.add_argument("--speed-only", action="store_true", help="time the default verifier, skip the quality figures")
    args = parser.parse_args()
    passive_thread_wait()
    import torch

    torch.set_num_threads(TORCH_THREADS)

    try:
        sources = labelled_sources(not args.no_peer, args.promptbench_dir, promptsource=not args.no_peer,
                                   promptsource_directory=args.promptsource_dir)
    except PeerDataError as err:
        sys.exit(f"benchmarks/verify.py: {err}")
    embedder, load_seconds = load_models()
    timed = {**speed(speed_sample(sources), embedder), "load_seconds": load_seconds, "target": SPEED_TARGET,
             "torch_threads": TORCH_THREADS, OMP_WAIT_POLICY.lower(): os.environ.get(OMP_WAIT_POLICY)}
    timed["met"] = timed["pairs_per_second"] >= SPEED_TARGET
    machine = {"python": platform.python_version(), "cpus": os.cpu_count()}
    if args.speed_only:
        print(json.dumps({"benchmark": "verify", "speed": timed, "pairs_per_second": timed["pairs_per_second"],
                          "machine": machine}, indent=2))
        return
    cache = EmbeddingCache(embedder)
    sets = {
        "embedding@0.75": VerifyConfig(signals=("embedding",), threshold=0.75),
        "embedding+lexdiff": VerifyConfig(signals=("embedding", "lexdiff"), threshold=0.75),
        "default": VerifyConfig(),
    }
    if args.nli_model:
        sets["default+nli"] = VerifyConfig(nli_model=args.nli_model)
    if args.smollm2:
        sets["default+judge(hf:smollm2)"] = VerifyConfig(judge="hf:smollm2")
        sets["default+behaviour(smollm2)"] = VerifyConfig(behaviour_model="smollm2")

    results: dict = {}
    for name, config in sets.items():
        start = time.perf_counter()
        results[name] = {}
        for source, rows in sources.items():
            # Optional signals run models per pair: held-out parts only.
            splits = ("heldout",) if name.startswith("default+") else ("heldout", "fit")
            results[name][source] = {split: figures([r for r in rows if r["split"] == split], config, cache)
                                     for split in splits}
        results[name]["seconds"] = round(time.perf_counter() - start, 1)

    default = results["default"]
    targets = {f"{source}.{figure}": {"target": bar, "heldout": default[source]["heldout"].get(figure),
                                       "met": (default[source]["heldout"].get(figure) or 0) >= bar}
               for (source, figure), bar in TARGETS.items() if source in sources}
    targets["pairs_per_second"] = {"target": SPEED_TARGET, "measured": timed["pairs_per_second"], "met": timed["met"]}

    print(json.dumps({
        "benchmark": "verify",
        "sources": {
            "own": "src/coin_data/verify/verify_data/pairs.jsonl",
            **({PROMPTBENCH: f"{PROMPTBENCH_REQUIREMENT} prompt lists, read from {cache_dir(args.promptbench_dir)} "
                             f"(pip download {PROMPTBENCH_REQUIREMENT} --no-deps -d DIR)"} if PROMPTBENCH in sources else {}),
            **({PROMPTSOURCE: f"{PROMPTSOURCE_REQUIREMENT} templates, read from "
                              f"{promptsource_cache_dir(args.promptsource_dir)} ({DOWNLOAD_COMMAND})"}
               if PROMPTSOURCE in sources else {}),
        },
        "sizes": {source: {split: {"pairs": sum(r["split"] == split for r in rows),
                                   "equivalent": sum(r["split"] == split and r["label"] == "equivalent" for r in rows)}
                           for split in ("heldout", "fit")} for source, rows in sources.items()},
        "heldout": {source: default[source]["heldout"] for source in sources},
        "targets": targets,
        "signal_sets": results,
        "speed": timed,
        "pairs_per_second": timed["pairs_per_second"],
        "machine": {**machine, "load_average": [round(x, 2) for x in os.getloadavg()]},
    }, indent=2))


if __name__ == "__main__":
    main()
