"""Mining benchmark: our miner against ``sentence_transformers.util.mine_hard_negatives``.

    python benchmarks/mine.py                                  # 10k and 100k compared, 1M ours alone
    python benchmarks/mine.py --sizes 10000 --scale-size 0     # quick run

Both miners get the same anchors, corpus and precomputed embeddings (random unit vectors, 384 dimensions
like all-MiniLM-L6-v2): corpus row i is the positive of anchor i (cosine about 0.8), and both apply the
same guard: reject a candidate above 0.75 (``max_score`` / ``accept_threshold``) or within 0.05 of the
positive (``absolute_margin`` / ``margin``), keep the best remaining one (``num_negatives=1``, ``top``),
examining 11 candidates per anchor (what ``mine_hard_negatives`` derives for one negative with a margin).
``mine_hard_negatives`` is given a stand-in model whose ``encode_*`` return the precomputed vectors.

Each run is a fresh subprocess; its peak resident memory (``ru_maxrss``) is reported with the resident
memory after the vectors were loaded (``baseline``), so the difference is what the search itself needed.
At the scaling size only our miner runs: exactly for ``--scale-anchors`` anchors against the whole
corpus, and with the approximate faiss IVF index (if installed) for every anchor. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384
ACCEPT, MARGIN, TOP_K = 0.75, 0.05, 11
NPROBE = 8  # faiss IVF cells visited per query (of about sqrt(corpus size))


def make_vectors(folder: Path, corpus_size: int, anchors: int, seed: int = 0) -> None:
    """Write ``corpus.npy`` (unit vectors) and ``anchors.npy`` (anchor i close to corpus row i), in chunks."""
    rng = np.random.default_rng(seed)
    corpus = np.lib.format.open_memmap(folder / "corpus.npy", mode="w+", dtype=np.float32, shape=(corpus_size, DIM))
    queries = np.lib.format.open_memmap(folder / "anchors.npy", mode="w+", dtype=np.float32, shape=(anchors, DIM))
    for start in range(0, corpus_size, 100_000):
        block = rng.standard_normal((min(100_000, corpus_size - start), DIM), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        corpus[start : start + len(block)] = block
        if start < anchors:
            noisy = block[: anchors - start] + 0.75 * rng.standard_normal((min(len(block), anchors - start), DIM),
                                                                           dtype=np.float32) / np.sqrt(DIM)
            queries[start : start + len(noisy)] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    corpus.flush()
    queries.flush()


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- workers (run in a subprocess each) --------------------------------------------------------------


def worker_ours(folder: Path, index: str) -> dict:
    import torch

    from coin_data.negatives import MineConfig, mine_negatives

    torch.set_num_threads(os.cpu_count() or 1)
    corpus, anchors = np.load(folder / "corpus.npy"), np.load(folder / "anchors.npy")
    n = len(anchors)
    positives = np.einsum("nd,nd->n", anchors, corpus[:n])
    baseline = rss_mb()
    start = time.perf_counter()
    # each anchor's own group is its positive (corpus row i): never a negative of anchor i
    groups_corpus = np.arange(len(corpus))
    config = MineConfig(top_k=TOP_K, accept_threshold=ACCEPT, margin=MARGIN, index=index, nprobe=NPROBE)
    found = mine_negatives(anchors, corpus, groups_corpus[:n], groups_corpus, positives, config)
    seconds = time.perf_counter() - start
    np.save(folder / f"ours-{index}.npy", found.index)
    return {"seconds": seconds, "baseline_rss_mb": baseline, "found": int((found.index >= 0).sum()),
            "index": found.index_used}


class PrecomputedModel:
    """Stands in for a SentenceTransformer: ``a<i>`` / ``p<i>`` texts map to precomputed vectors."""

    def __init__(self, anchors: np.ndarray, corpus: np.ndarray):
        import torch
        from sentence_transformers import util

        self.anchors, self.corpus = anchors, corpus
        self.device = torch.device("cpu")
        self.similarity, self.similarity_pairwise = util.cos_sim, util.pairwise_cos_sim
        self.model_card_data = type("Card", (), {"base_model": "precomputed"})()

    def _lookup(self, texts, table: np.ndarray) -> np.ndarray:
        return table[np.fromiter((int(t[1:]) for t in texts), dtype=np.int64, count=len(texts))]

    def encode_document(self, texts, **_):
        return self._lookup(texts, self.corpus)

    def encode_query(self, texts, **_):
        return self._lookup(texts, self.anchors)

    def get_embedding_dimension(self) -> int:
        return self.corpus.shape[1]


def worker_st(folder: Path, use_faiss: bool) -> dict:
    import datasets
    import torch
    from sentence_transformers.util import mine_hard_negatives

    torch.set_num_threads(os.cpu_count() or 1)
    corpus, anchors = np.load(folder / "corpus.npy"), np.load(folder / "anchors.npy")
    n = len(anchors)
    pairs = datasets.Dataset.from_dict({"anchor": [f"a{i}" for i in range(n)], "positive": [f"p{i}" for i in range(n)]})
    extra = [f"p{i}" for i in range(n, len(corpus))]
    model = PrecomputedModel(anchors, corpus)
    baseline = rss_mb()
    start = time.perf_counter()
    mined = mine_hard_negatives(pairs, model, anchor_column_name="anchor", positive_column_name="positive",
                                corpus=extra or None, num_negatives=1, max_score=ACCEPT, absolute_margin=MARGIN,
                                sampling_strategy="top", output_format="triplet", use_faiss=use_faiss,
                                verbose=False)
    seconds = time.perf_counter() - start
    chosen = np.full(n, -1, dtype=np.int64)
    for anchor, negative in zip(mined["anchor"], mined["negative"]):
        chosen[int(anchor[1:])] = int(negative[1:])
    np.save(folder / f"st-{int(use_faiss)}.npy", chosen)
    return {"seconds": seconds, "baseline_rss_mb": baseline, "found": int((chosen >= 0).sum())}


# --- driver ---------------------------------------------------------------------------------------------


def run_worker(folder: Path, kind: str, option: str, timeout: int) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--worker-option", option, "--folder", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(result.pop("peak_kb") / 1024, 1)
    result["search_peak_mb"] = round(result["peak_rss_mb"] - result["baseline_rss_mb"], 1)
    result["baseline_rss_mb"] = round(result["baseline_rss_mb"], 1)
    result["seconds"] = round(result["seconds"], 2)
    return result


def compare(size: int, timeout: int, with_faiss: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_vectors(folder, size, size)
        out = {"corpus": size, "anchors": size,
               "ours_exact": run_worker(folder, "ours", "exact", timeout),
               "mine_hard_negatives": run_worker(folder, "st", "0", timeout)}
        if with_faiss:
            out["mine_hard_negatives_faiss"] = run_worker(folder, "st", "1", timeout)
        if "error" not in out["ours_exact"] and "error" not in out["mine_hard_negatives"]:
            ours, theirs = np.load(folder / "ours-exact.npy"), np.load(folder / "st-0.npy")
            out["same_negative_share"] = round(float((ours == theirs).mean()), 4)
            out["speedup"] = round(out["mine_hard_negatives"]["seconds"] / out["ours_exact"]["seconds"], 2)
        return out


def scale(size: int, anchors: int, timeout: int) -> dict:
    from coin_data.negatives import faiss_available

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_vectors(folder, size, anchors)
        out = {"corpus": size, "ours_exact": {"anchors": anchors, **run_worker(folder, "ours", "exact", timeout)}}
        if faiss_available():
            (folder / "anchors.npy").unlink()
            make_vectors(folder, size, size)  # every row an anchor
            out["ours_faiss_ivf"] = {"anchors": size, **run_worker(folder, "ours", "faiss", timeout)}
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="corpus sizes compared with mine_hard_negatives")
    parser.add_argument("--scale-size", type=int, default=1_000_000, help="corpus size for ours alone (0: skip)")
    parser.add_argument("--scale-anchors", type=int, default=10_000, help="anchors searched exactly at that size")
    parser.add_argument("--with-st-faiss", action="store_true", help="also time mine_hard_negatives(use_faiss=True)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-option", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        folder = Path(args.folder)
        if args.worker == "ours":
            result = worker_ours(folder, args.worker_option)
        else:
            result = worker_st(folder, args.worker_option == "1")
        result["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(result))
        return

    report = {
        "benchmark": "mine",
        "dim": DIM,
        "guard": {"accept_threshold": ACCEPT, "margin": MARGIN, "candidates_per_anchor": TOP_K},
        "faiss_ivf": {"nlist": "sqrt(corpus)", "nprobe": NPROBE},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "compared": [compare(int(size), args.timeout, args.with_st_faiss) for size in args.sizes.split(",") if size],
    }
    if args.scale_size:
        report["scale"] = scale(args.scale_size, args.scale_anchors, args.timeout)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
