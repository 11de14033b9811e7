"""Build throughput and memory: the embedded corpus scaled, end to end to disk; a FLAN-format input.

    python benchmarks/build.py --scale 11                          # one build in memory (one JSON object)
    python benchmarks/build.py --scale 102 --shard-rows 100000     # one streamed build, ~1M rows
    python benchmarks/build.py --flan-rows 200000 --shard-rows 100000      # FLAN rows, every input new
    # the issue-18 report, one JSON object: peak RSS at ~100k/1M/3M rows (each a fresh process) and their
    # ratios to the smallest, then the FLAN-format build with its time by stage (each run under --timeout)
    python benchmarks/build.py --rows 100000,1000000,3000000 --flan-rows 200000 --shard-rows 100000

Scaling repeats every instance under new ids, so paraphrase calls (unique templates x k) and embedded
strings (unique texts) must stay what they are at scale 1 while rows grow: that is what this measures.
The FLAN input is the opposite case: every row's input is distinct, so every instance input is embedded
(for its negative's score); its time is reported per stage, with the time inside the embedding model per
stage and the model's own rate (strings/s with 1 torch thread and with all of them) on its inputs.

Every run reports its load average and its CPU seconds (user + system, all threads) beside its wall time:
on a loaded machine the wall time is inflated, the CPU time much less so. A run cut off by --timeout is
reported with what it had done (stages, rows written, peak RSS so far) instead of dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from coin_data.verify.embedding import OMP_WAIT_POLICY, SentenceTransformerEmbedder, passive_thread_wait

passive_thread_wait()  # as `coin-data build` does, before anything imports torch

import coin_data.build as build_module
from coin_data.build import BuildConfig, build_to_folder
from coin_data.hub.layout import ShardWriter

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


# The stage the build is in (set by the wrapped _Clock), so embedding time can be told apart per stage.
current = {"stage": "before"}
embedding_by_stage: dict[str, float] = {}
started = time.perf_counter()


def _progress(**fields) -> None:
    """One JSON line on stderr: what a parent needs to report a run it had to cut off."""
    fields.update(seconds=round(time.perf_counter() - started, 1), peak_rss_mb=_peak_rss_mb())
    print(json.dumps({"progress": fields}), file=sys.stderr, flush=True)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 1)


def _watch_stages_and_shards() -> None:
    clock_enter, clock_exit = build_module._Clock.__enter__, build_module._Clock.__exit__
    encode = SentenceTransformerEmbedder.encode

    def enter(self):
        current["stage"] = self._stage
        _progress(stage=self._stage, event="start")
        return clock_enter(self)

    def leave(self, *exc):
        clock_exit(self, *exc)
        _progress(stage=self._stage, event="end", stage_seconds=self.stats.seconds.get(self._stage))
        current["stage"] = "after " + self._stage

    def timed_encode(self, texts):
        began = time.perf_counter()
        try:
            return encode(self, texts)
        finally:
            stage = current["stage"]
            embedding_by_stage[stage] = embedding_by_stage.get(stage, 0.0) + time.perf_counter() - began

    build_module._Clock.__enter__, build_module._Clock.__exit__ = enter, leave
    SentenceTransformerEmbedder.encode = timed_encode
    written = {"rows": 0}
    write = ShardWriter.__call__

    def counting_write(self, split, table):
        write(self, split, table)
        written["rows"] += len(table)
        _progress(stage=current["stage"], event="shard", split=split, rows_written=written["rows"])

    ShardWriter.__call__ = counting_write


def one_build(config: BuildConfig, k: int) -> dict:
    """Build ``config`` to a temporary folder; the figures as one dict."""
    _watch_stages_and_shards()
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
        "cpu_seconds": _cpu_seconds(),
        "rows_per_second": round(rows / wall, 1),
        "stage_seconds": stats.seconds,
        # seconds inside the embedding model, by the stage that asked
        "embedding_seconds_by_stage": {s: round(v, 2) for s, v in embedding_by_stage.items()},
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
        "strings_from_disk": stats.embedding_from_cache,
        "embedding_share_of_wall": round(stats.seconds.get("embedding", 0.0) / wall, 3),
        "output_bytes": size,
        "peak_rss_mb": _peak_rss_mb(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch_threads": _torch_threads(),
                    OMP_WAIT_POLICY.lower(): os.environ.get(OMP_WAIT_POLICY)},
    }


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def model_rate(texts: list[str]) -> dict:
    """Strings/s of the embedding model on ``texts`` with 1 torch thread and with one per core (worker
    processes would only pay if the model left a core idle)."""
    import torch

    embedder = SentenceTransformerEmbedder()
    embedder.encode(texts[:32])  # load and warm up
    rates, threads = {}, torch.get_num_threads()
    for n in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(n)
        began = time.perf_counter()
        embedder.encode(texts)
        rates[f"{n}_thread{'s' if n > 1 else ''}"] = round(len(texts) / (time.perf_counter() - began), 1)
    torch.set_num_threads(threads)
    return {"strings": len(texts), "strings_per_second": rates, "load_average": [round(x, 2) for x in os.getloadavg()]}


def flan_build(args) -> dict:
    """``args.flan_rows`` generated FLAN-format rows, built (streamed when ``--shard-rows``); figures by stage."""
    folder = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    data_files, patterns = write_flan_input(folder, args.flan_rows)
    generated = time.perf_counter() - start
    config = BuildConfig(source="flan", data_files=tuple(data_files), templates=patterns,
                         paraphraser=args.paraphraser, paraphrases_per_template=args.k, seed=args.seed,
                         shard_rows=args.shard_rows, embedding_cache=args.embedding_cache)
    report = one_build(config, args.k)
    sample = [json.loads(line)["inputs"] for line in Path(data_files[0]).open().readlines()[:512]]
    shutil.rmtree(folder)
    report.update(benchmark="build-flan", input_rows=args.flan_rows, generate_input_seconds=round(generated, 2),
                  input_rows_per_second=round(args.flan_rows / report["wall_seconds"], 1),
                  embedding_model_rate=model_rate(sample))
    return report


def child(argv: list[str], timeout: float) -> dict:
    """Run this script with ``argv`` in a fresh process; its JSON, or (cut off at ``timeout``) what it had done.

    The peak RSS is the child's own high-water mark (``VmHWM``), polled while it runs.
    """
    cmd = [sys.executable, __file__, *argv]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    peak = 0.0
    while proc.poll() is None and time.perf_counter() - began < timeout:
        peak = max(peak, _vm_hwm_mb(proc.pid))
        time.sleep(0.5)
    timed_out = proc.poll() is None
    if timed_out:
        peak = max(peak, _vm_hwm_mb(proc.pid))
        proc.kill()
    out = proc.stdout.read()
    proc.wait()
    reader.join(timeout=5)
    progress = [json.loads(line)["progress"] for line in lines if line.startswith('{"progress"')]
    command = "python benchmarks/build.py " + " ".join(argv)
    if not timed_out and proc.returncode == 0:
        return {"command": command, **json.loads(out)}
    return {"command": command, "timed_out": timed_out, "returncode": proc.returncode,
            "wall_seconds": round(time.perf_counter() - began, 1), "peak_rss_mb": round(peak, 1),
            "rows_written": max((p.get("rows_written", 0) for p in progress), default=0),
            "stages_done": {p["stage"]: p["stage_seconds"] for p in progress if p.get("event") == "end"},
            "last_progress": progress[-1] if progress else None,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "stderr_tail": "".join(line for line in lines if not line.startswith('{"progress"'))[-2000:]}


def _vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def by_rows(targets: list[int], args) -> dict:
    """One fresh process per target size (peak RSS is per process); their peaks relative to the smallest."""
    runs, rows_per_scale = [], ROWS_PER_SCALE
    for target in targets:
        scale = max(1, round(target / rows_per_scale))
        argv = ["--scale", str(scale), "-k", str(args.k), "--seed", str(args.seed), "--paraphraser", args.paraphraser]
        argv += ["--shard-rows", str(args.shard_rows)] if args.shard_rows else []
        argv += _passed_on(args)
        run = child(argv, args.timeout)
        if "rows" in run:
            rows_per_scale = run["rows"] / scale  # exact for the next sizes
        run.setdefault("scale", scale)
        runs.append(run)
        print(json.dumps(run), file=sys.stderr, flush=True)  # each size as it finishes: big ones take long
    keys = ("command", "rows", "scale", "timed_out", "rows_written", "wall_seconds", "cpu_seconds", "peak_rss_mb",
            "stage_seconds", "stages_done", "data_files", "load_average")
    base = runs[0]["peak_rss_mb"]
    return {
        "benchmark": "build-memory",
        "shard_rows": args.shard_rows,
        "runs": [{key: run[key] for key in keys if key in run} for run in runs],
        "peak_rss_ratio_to_smallest": {str(r["rows"] if "rows" in r else f"{r['rows_written']}+ (cut off)"):
                                       round(r["peak_rss_mb"] / base, 3) for r in runs},
    }


def _passed_on(args) -> list[str]:
    """The options a fresh-process run inherits besides size, k, seed and paraphraser."""
    argv = ["--embedding-cache", args.embedding_cache] if args.embedding_cache else []
    return argv + (["--torch-threads", str(args.torch_threads)] if args.torch_threads else [])


# rows per unit of --scale with the embedded corpus, the rules paraphraser and k=2 (a first guess only: after
# the first run the measured figure is used)
ROWS_PER_SCALE = 9788


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=11, help="instance multiplier (11 gives about 108k rows with the rules paraphraser)")
    parser.add_argument("-k", type=int, default=2, help="paraphrases per template")
    parser.add_argument("--paraphraser", default="rules")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-rows", type=int, default=None, help="rows per parquet file; set, the build streams")
    parser.add_argument("--embedding-cache", default=None, help="on-disk embedding cache folder for the builds")
    parser.add_argument("--rows", help="comma-separated row counts: one fresh process each, peak RSS compared")
    parser.add_argument("--flan-rows", type=int, help="build this many distinct FLAN-format rows instead")
    parser.add_argument("--torch-threads", type=int, help="torch.set_num_threads for the builds (default: torch's "
                        "own, every core; on a loaded machine 1 can be several times faster)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per fresh-process run (--rows, and "
                        "--flan-rows with --rows) before it is cut off and reported as far as it got")
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

    if args.rows:
        report = {"benchmark": "build-scale", "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                  "memory": by_rows([int(n) for n in args.rows.split(",")], args)}
        if args.flan_rows:
            argv = ["--flan-rows", str(args.flan_rows), "-k", str(args.k), "--seed", str(args.seed),
                    "--paraphraser", args.paraphraser]
            argv += ["--shard-rows", str(args.shard_rows)] if args.shard_rows else []
            argv += _passed_on(args)
            report["flan"] = child(argv, args.timeout)
        report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(report, indent=2))
        return
    if args.flan_rows:
        print(json.dumps(flan_build(args), indent=2))
        return
    config = BuildConfig(paraphraser=args.paraphraser, paraphrases_per_template=args.k, seed=args.seed,
                         scale=args.scale, shard_rows=args.shard_rows, embedding_cache=args.embedding_cache)
    print(json.dumps(one_build(config, args.k), indent=2))


if __name__ == "__main__":
    main()
