"""FLAN template induction: how many true templates and field values are recovered from rendered rows.

    python benchmarks/induction.py                   # seeds 3..20; prints one JSON object
    python benchmarks/induction.py --seeds 0-2       # the seeds the tests use

Each seed renders a fresh FLAN-format fixture with the generator of ``tests/data/test_flan.py`` (24
known templates of 4 tasks, invented field text, 6 noise rows per task, shuffled), runs induction on
it, and scores the result against the templates and fields the rows were rendered from:

- ``templates``: true templates recovered exactly (slot names aside), and induced templates that match
  no true one (``templates_extra``);
- ``rows_paired``: clean rows that became an instance with exactly their true field values, under slot
  names that are consistent across the task's templates;
- ``noise_reported``: noise rows left unrecovered, i.e. counted and shown in the card, not dropped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import tempfile
import time
from pathlib import Path

from coin_data.sources.flan import flan_corpus, read_flan_files

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "test_flan.py"


def load_fixture_module():
    """The test module that renders the fixtures (imported by path: tests are not a package)."""
    spec = importlib.util.spec_from_file_location("flan_fixtures", FIXTURES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_seeds(text: str) -> list[int]:
    """``"3-20"`` or ``"0,1,2"`` -> a list of seeds."""
    if "-" in text:
        first, last = (int(part) for part in text.split("-", 1))
        return list(range(first, last + 1))
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="3-20", help="fixture seeds, e.g. 3-20 or 0,1,2 (tests use 0-2)")
    parser.add_argument("--per-template", type=int, default=14, help="rows rendered per true template")
    args = parser.parse_args()

    fixtures = load_fixture_module()
    totals: dict[str, int] = {}
    per_seed = []
    seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in parse_seeds(args.seeds):
            rows = fixtures.make_flan_rows(per_template=args.per_template, seed=seed)
            path = fixtures.write_jsonl(Path(tmp) / f"flan_{seed}_train.jsonl", rows)
            truth = {f"{path}:{line}": row["truth"] for line, row in enumerate(rows, start=1)}
            start = time.perf_counter()
            rows_by_task = read_flan_files([path])
            corpus = flan_corpus(rows_by_task)
            seconds += time.perf_counter() - start
            score = fixtures.recovery(rows_by_task, truth, corpus)
            per_seed.append({"seed": seed, **score})
            for key, value in score.items():
                totals[key] = totals.get(key, 0) + value

    def rate(part: str, whole: str) -> float:
        return round(totals[part] / totals[whole], 4) if totals[whole] else 0.0

    print(json.dumps({
        "benchmark": "induction",
        "seeds": args.seeds,
        "rows_per_fixture": len(rows),
        "template_recovery_rate": rate("templates", "templates_total"),
        "row_recovery_rate": rate("rows_paired", "rows_total"),
        "row_exact_values_rate": rate("rows", "rows_total"),
        "noise_reported_rate": rate("noise_reported", "noise_total"),
        "totals": totals,
        "induction_seconds": round(seconds, 2),
        "rows_per_second": round(len(rows) * len(per_seed) / seconds, 1) if seconds else None,
        "per_seed": per_seed,
        "machine": {"python": platform.python_version()},
    }, indent=2))


if __name__ == "__main__":
    main()
