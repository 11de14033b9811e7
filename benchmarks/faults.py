"""Paraphrasing behind 30 % transport faults: templates lost, attempts per template, time overhead.

    python benchmarks/faults.py                     # prints one JSON object
    python benchmarks/faults.py --rate 0.3 --seeds 0,1,2,3,4 --builds

The default corpus's 72 template requests go to the loopback chat server of the test suite
(tests/chat_server.py), whose "model" answers each after ``--latency`` seconds. For each seed the same
requests run twice, side by side, each with a fresh cache: once fault-free, once with ``--rate`` of the
attempts faulted, spread evenly over 429 and 503 (with Retry-After), 500, stalls past the timeout, dropped
connections, 200s cut short (two ways) and 200s without choices. Attempts per template count every request
the server received for that template. Time is the wall time of ``paraphrase()`` after an untimed
warm-up pass: the other build stages do the same work with or without faults, so the absolute difference
is the whole build's added time (``--builds`` times whole builds too).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from chat_server import TRANSPORT_FAULTS, ChatServer, Faults  # noqa: E402

from coin_data.build import BuildConfig, load_corpus, paraphrase_requests, run_build  # noqa: E402
from coin_data.paraphrase import get_paraphraser  # noqa: E402


def run(requests, faults: Faults | None, seed: int, options: dict, latency: float) -> dict:
    """One paraphrase pass; returns what the backend and the server saw."""
    with tempfile.TemporaryDirectory() as cache, ChatServer(faults, seed=seed, latency=latency) as server:
        backend = get_paraphraser("openai:fake", base_url=server.url, cache_dir=cache, **options)
        started = time.perf_counter()
        results = backend.paraphrase(requests)
        seconds = time.perf_counter() - started
        per_template = Counter(call.template for call in server.calls)
        outcomes = server.outcomes()
    return {
        "seconds": seconds,
        "lost": sum(1 for r in results if r.lost),
        "answers": [(r.candidates, r.failure) for r in results],
        "attempts": [per_template[r.request.template.text] for r in results],
        "outcomes": outcomes,
    }


def build_seconds(faults: Faults | None, seed: int, options: dict, latency: float) -> float:
    """Wall time of a whole ``run_build`` of the default corpus (nothing written) through the server."""
    with tempfile.TemporaryDirectory() as cache, ChatServer(faults, seed=seed, latency=latency) as server:
        config = BuildConfig(paraphraser="openai:fake",
                             paraphraser_options={**options, "base_url": server.url, "cache_dir": cache})
        started = time.perf_counter()
        run_build(config)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=0.3, help="Share of attempts faulted.")
    parser.add_argument("--seeds", default="0,1,2", help="Fault seeds (one faulted and one clean run each).")
    parser.add_argument("--latency", type=float, default=0.3, help="Seconds the server takes per answer.")
    parser.add_argument("--timeout", type=float, default=3.0, help="Client timeout (stalls last 1 s longer).")
    parser.add_argument("--retry-after", type=float, default=0.5, help="Retry-After of the 429/503 answers.")
    parser.add_argument("--backoff-base", type=float, default=0.25)
    parser.add_argument("--backoff-max", type=float, default=4.0)
    parser.add_argument("--max-retries", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--builds", action="store_true",
                        help="Also time whole builds (a warm-up, then fault-free and faulted; first seed): minutes on a CPU.")
    args = parser.parse_args()

    requests = paraphrase_requests(load_corpus(BuildConfig()), BuildConfig())
    options = {"timeout": args.timeout, "backoff_base": args.backoff_base, "backoff_max": args.backoff_max,
               "max_retries": args.max_retries, "concurrency": args.concurrency}
    faults = Faults.transport(args.rate, retry_after=args.retry_after, slow_seconds=args.timeout + 1.0)
    run(requests, None, 0, options, args.latency)  # warm-up (imports, first connections): not timed
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        clean = run(requests, None, seed, options, args.latency)
        faulty = run(requests, faults, seed, options, args.latency)
        attempted = sum(faulty["outcomes"].values())
        runs.append({
            "seed": seed,
            "templates": len(requests),
            "templates_lost": faulty["lost"],
            "same_answers_as_fault_free": faulty["answers"] == clean["answers"],
            "attempts_per_template_max": max(faulty["attempts"]),
            "attempts_per_template_mean": round(statistics.mean(faulty["attempts"]), 3),
            "faulted_share_of_attempts": round(
                sum(n for k, n in faulty["outcomes"].items() if k in TRANSPORT_FAULTS) / attempted, 3),
            "faults": {k: n for k, n in sorted(faulty["outcomes"].items()) if k in TRANSPORT_FAULTS},
            "seconds_fault_free": round(clean["seconds"], 2),
            "seconds_faulted": round(faulty["seconds"], 2),
            "time_overhead": round(faulty["seconds"] / clean["seconds"] - 1.0, 3),
        })
    attempts_mean = statistics.mean(r["attempts_per_template_mean"] for r in runs)
    builds = {}
    if args.builds:
        seed = runs[0]["seed"]
        build_seconds(None, seed, options, args.latency)  # warm-up: loads the embedding model from disk
        builds["seconds_fault_free"] = round(build_seconds(None, seed, options, args.latency), 2)
        builds["seconds_faulted"] = round(build_seconds(faults, seed, options, args.latency), 2)
        builds["time_overhead"] = round(builds["seconds_faulted"] / builds["seconds_fault_free"] - 1.0, 3)
    print(json.dumps({
        "benchmark": "paraphrase under transport faults (openai backend, loopback chat server)",
        "settings": {**vars(args), "templates": len(requests)},
        "load_average": os.getloadavg(),
        "summary": {
            "templates_lost": sum(r["templates_lost"] for r in runs),
            "all_answers_as_fault_free": all(r["same_answers_as_fault_free"] for r in runs),
            "attempts_per_template_max": max(r["attempts_per_template_max"] for r in runs),
            "attempts_per_template_mean": round(attempts_mean, 3),
            "time_overhead_mean": round(statistics.mean(r["time_overhead"] for r in runs), 3),
        },
        "runs": runs,
        **({"whole_build": builds} if builds else {}),
    }, indent=2))


if __name__ == "__main__":
    main()
