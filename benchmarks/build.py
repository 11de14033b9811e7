"""Build throughput: the embedded corpus scaled to >= 50,000 rows, end to end to disk.

    python benchmarks/build.py --scale 11         # prints one JSON object

Scaling repeats every instance under new ids, so paraphrase calls (unique templates x k) and embedded
strings (unique texts) must stay what they are at scale 1 while rows grow: that is what this measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import coin_data.build as build_module
from coin_data.build import BuildConfig, run_build
from coin_data.verify.embedding import SentenceTransformerEmbedder
from coin_data.hub.layout import write_dataset

# Counted at the boundaries (what the backend and the embedding model were actually given), not taken
# from the build's own stats, so the two can be compared.
counted = {"requests": 0, "candidates_requested": 0, "strings": 0}


def _count_embedding_model() -> None:
    encode = SentenceTransformerEmbedder.encode

    def counting_encode(self, texts):
        counted["strings"] += len(texts)
        return encode(self, texts)

    SentenceTransformerEmbedder.encode = counting_encode


def _count_paraphraser() -> None:
    make = build_module.get_paraphraser

    def counting_get_paraphraser(*args, **kwargs):
        backend = make(*args, **kwargs)
        paraphrase = backend.paraphrase

        def counting_paraphrase(requests, *a, **kw):
            counted["requests"] += len(requests)
            counted["candidates_requested"] += sum(r.k for r in requests)
            return paraphrase(requests, *a, **kw)

        backend.paraphrase = counting_paraphrase
        return backend

    build_module.get_paraphraser = counting_get_paraphraser


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=11, help="instance multiplier (11 gives about 55k rows with the rules paraphraser)")
    parser.add_argument("-k", type=int, default=2, help="paraphrases per template")
    parser.add_argument("--paraphraser", default="rules")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    _count_embedding_model()
    _count_paraphraser()
    out = Path(tempfile.mkdtemp()) / "coin-flan-paraphrased"
    start = time.perf_counter()
    result = run_build(BuildConfig(paraphraser=args.paraphraser, paraphrases_per_template=args.k,
                                   seed=args.seed, scale=args.scale))
    built = time.perf_counter()
    write_dataset(result, out)
    wall = time.perf_counter() - start
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out.parent)

    stats = result.stats
    rows = sum(stats.rows.values())
    print(json.dumps({
        "benchmark": "build",
        "scale": args.scale,
        "paraphraser": args.paraphraser,
        "rows": rows,
        "rows_per_split": stats.rows,
        "wall_seconds": round(wall, 2),
        "rows_per_second": round(rows / wall, 1),
        "write_seconds": round(wall - (built - start), 2),
        "stage_seconds": stats.seconds,
        "unique_templates": stats.templates,
        "paraphrase_requests": counted["requests"],
        "paraphrase_calls": counted["candidates_requested"],
        "expected_paraphrase_calls": stats.templates * args.k,
        "embedding_calls": counted["strings"],
        "unique_strings": stats.embedding_unique,
        "strings_requested": stats.embedding_requests,
        "embedding_share_of_wall": round(stats.seconds.get("embedding", 0.0) / wall, 3),
        "output_bytes": size,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }, indent=2))


if __name__ == "__main__":
    main()
