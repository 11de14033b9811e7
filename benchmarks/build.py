"""Build throughput and memory: the embedded corpus scaled, end to end to disk; a FLAN-format input.

    python benchmarks/build.py --scale 11                          # one build in memory (one JSON object)
    python benchmarks/build.py --scale 195 --shard-rows 100000     # one streamed build, ~1M rows
    python benchmarks/build.py --rows 100000,1000000 --shard-rows 100000   # peak RSS per size, each in a
                                                                   # fresh process, and their ratios
    python benchmarks/build.py --flan-rows 200000 --shard-rows 100000      # FLAN rows, every input new

Scaling repeats every instance under new ids, so paraphrase calls (unique templates x k) and embedded
strings (unique texts) must stay what they are at scale 1 while rows grow: that is what this measures.
The FLAN input is the opposite case: every row's input is distinct, so every instance input is embedded
(for its negative's score); its time is reported per stage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import coin_data.build as build_module
from coin_data.build import BuildConfig, build_to_folder
from coin_data.verify.embedding import SentenceTransformerEmbedder

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


# FLAN-format tasks for --flan-rows: (inputs pattern, targets pattern, answers). Every row gets fresh field
# values (a running number inside each), so no two inputs repeat; answers repeat so negatives exist.
FLAN_TASKS = {
    "bench_qa": [("Question: {question}\nContext: {context}\nAnswer:", "{answer}"),
                 ("Read this: {context}\n\nNow answer: {question}", "{answer}"),
                 ("{context}\nBased on the text above, {question}", "{answer}")],
    "bench_topic": [("Article: {text}\nWhat is this article about?", "{answer}"),
                    ("What topic does the following text cover?\n\n{text}", "{answer}")],
    "bench_title": [("Write a title for: {text}", "{answer}"),
                    ("{text}\n\nGive this passage a short title.", "{answer}")],
}
WORDS = ["lantern", "harbour", "meadow", "engine", "letter", "garden", "tower", "market", "violin", "glacier",
         "river", "candle", "mirror", "bridge", "forest", "window", "ladder", "pocket", "saddle", "anchor"]


def _value(kind: str, n: int) -> str:
    a, b, c = WORDS[n % 20], WORDS[(n // 20) % 20], WORDS[(n // 400) % 20]
    if kind == "question":
        return f"why did the {a} near the {b} move {n} times"
    return f"The {a} by the {b} and the {c} was seen on day {n} by the keeper"


def write_flan_input(folder: Path, rows: int) -> tuple[list[str], str]:
    """``rows`` distinct FLAN-format rows (JSONL, one file per task) and their patterns file (JSON)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(FLAN_TASKS)
    files = {task: (folder / f"{task}_train.jsonl").open("w") for task in names}
    for n in range(rows):
        task = names[n % len(names)]
        inputs, targets = FLAN_TASKS[task][(n // len(names)) % len(FLAN_TASKS[task])]
        fields = {"question": _value("question", n), "context": _value("context", n), "text": _value("text", n),
                  "answer": WORDS[(n * 7) % 20]}
        row = {"inputs": inputs.format(**fields), "targets": targets.format(**fields), "task": task}
        files[task].write(json.dumps(row) + "\n")
    for handle in files.values():
        handle.close()
    patterns = folder / "patterns.json"
    patterns.write_text(json.dumps({task: [list(p) for p in pats] for task, pats in FLAN_TASKS.items()}))
    return [str(folder / f"{task}_train.jsonl") for task in names], str(patterns)


def one_build(config: BuildConfig, k: int) -> dict:
    """Build ``config`` to a temporary folder; the figures as one dict."""
    _count_embedding_model()
    _count_paraphraser()
    out = Path(tempfile.mkdtemp()) / "coin-flan-paraphrased"
    start = time.perf_counter()
    result = build_to_folder(config, out)
    wall = time.perf_counter() - start
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    files = len(list((out / "data").iterdir()))
    shutil.rmtree(out.parent)
    stats = result.stats
    rows = sum(stats.rows.values())
    stage = sum(v for k_, v in stats.seconds.items() if k_ not in ("embedding", "mine"))
    return {
        "benchmark": "build",
        "source": config.source,
        "scale": config.scale,
        "shard_rows": config.shard_rows,
        "paraphraser": config.paraphraser,
        "rows": rows,
        "rows_per_split": stats.rows,
        "data_files": files,
        "wall_seconds": round(wall, 2),
        "rows_per_second": round(rows / wall, 1),
        "stage_seconds": stats.seconds,
        # what the stages do not cover: the candidates table, the card, the final renames (and, in memory,
        # writing every row; streamed, rows are written inside assemble)
        "write_seconds": round(wall - stage, 2),
        "unique_templates": stats.templates,
        "paraphrase_requests": counted["requests"],
        "paraphrase_calls": counted["candidates_requested"],
        "expected_paraphrase_calls": stats.templates * k,
        "embedding_calls": counted["strings"],
        "unique_strings": stats.embedding_unique,
        "strings_requested": stats.embedding_requests,
        "embedding_share_of_wall": round(stats.seconds.get("embedding", 0.0) / wall, 3),
        "output_bytes": size,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def by_rows(targets: list[int], args) -> dict:
    """One fresh process per target size (peak RSS is per process); their peaks relative to the smallest."""
    runs, rows_per_scale = [], None
    for target in targets:
        scale = max(1, math.ceil(target / rows_per_scale)) if rows_per_scale else max(1, round(target / 5136))
        cmd = [sys.executable, __file__, "--scale", str(scale), "-k", str(args.k), "--seed", str(args.seed),
               "--paraphraser", args.paraphraser]
        cmd += ["--shard-rows", str(args.shard_rows)] if args.shard_rows else []
        run = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        rows_per_scale = rows_per_scale or run["rows"] / scale
        runs.append(run)
        print(json.dumps(run), file=sys.stderr, flush=True)  # each size as it finishes: big ones take long
    base = runs[0]["peak_rss_mb"]
    return {
        "benchmark": "build-memory",
        "shard_rows": args.shard_rows,
        "runs": [{key: run[key] for key in ("rows", "scale", "wall_seconds", "peak_rss_mb", "stage_seconds",
                                            "data_files", "load_average")} for run in runs],
        "peak_rss_ratio_to_smallest": {str(r["rows"]): round(r["peak_rss_mb"] / base, 3) for r in runs},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=11, help="instance multiplier (11 gives about 55k rows with the rules paraphraser)")
    parser.add_argument("-k", type=int, default=2, help="paraphrases per template")
    parser.add_argument("--paraphraser", default="rules")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-rows", type=int, default=None, help="rows per parquet file; set, the build streams")
    parser.add_argument("--rows", help="comma-separated row counts: one fresh process each, peak RSS compared")
    parser.add_argument("--flan-rows", type=int, help="build this many distinct FLAN-format rows instead")
    args = parser.parse_args()

    if args.rows:
        print(json.dumps(by_rows([int(n) for n in args.rows.split(",")], args), indent=2))
        return
    if args.flan_rows:
        folder = Path(tempfile.mkdtemp())
        start = time.perf_counter()
        data_files, patterns = write_flan_input(folder, args.flan_rows)
        generated = time.perf_counter() - start
        config = BuildConfig(source="flan", data_files=tuple(data_files), templates=patterns,
                             paraphraser=args.paraphraser, paraphrases_per_template=args.k, seed=args.seed,
                             shard_rows=args.shard_rows)
        report = one_build(config, args.k)
        shutil.rmtree(folder)
        report.update(benchmark="build-flan", input_rows=args.flan_rows, generate_input_seconds=round(generated, 2))
        print(json.dumps(report, indent=2))
        return
    config = BuildConfig(paraphraser=args.paraphraser, paraphrases_per_template=args.k, seed=args.seed,
                         scale=args.scale, shard_rows=args.shard_rows)
    print(json.dumps(one_build(config, args.k), indent=2))


if __name__ == "__main__":
    main()
