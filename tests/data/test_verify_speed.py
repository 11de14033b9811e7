"""The verifier's speed work changes no verdict, and ``coin-data`` lets torch's threads sleep when idle.

``verify_expected.jsonl`` holds the default verifier's output on the project's 328 labelled pairs, as
the code produced it before the lexical diff's caches were added (one line per pair, keyed by a hash of
the pair). Regenerate it only when a verdict is meant to change:
``COIN_WRITE_VERIFY_EXPECTED=1 python -m pytest tests/data/test_verify_speed.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coin_data.templates import parse_template
from coin_data.verify import VerifyConfig, default_lexical_diff, verify_candidates
from coin_data.verify.benchmark import labelled_pairs_path
from coin_data.verify.lexdiff import LexicalDiff

EXPECTED = Path(__file__).with_name("verify_expected.jsonl")
# Embedding vectors differ in the last bits between CPUs and thread counts; a verdict never hangs on those.
TOLERANCE = 1e-5


def _pair_key(row: dict) -> str:
    return hashlib.sha1(f"{row['original']}\x00{row['paraphrase']}".encode()).hexdigest()[:16]


def _record(row: dict, verdict) -> dict:
    return {"pair": _pair_key(row), "verdict": verdict.verdict, "deciding": verdict.deciding,
            "embedding": verdict.signals.get("embedding"), "combiner": verdict.signals.get("combiner"),
            "lexdiff": verdict.signals.get("lexdiff")}


def test_default_verdicts_match_the_stored_ones(cache):
    rows = [json.loads(line) for line in labelled_pairs_path().read_text().splitlines() if line.strip()]
    default_lexical_diff.cache_clear()  # cold word caches, as in a fresh process
    verdicts = verify_candidates([(parse_template(r["original"]), r["paraphrase"]) for r in rows], cache, VerifyConfig())
    got = [_record(r, v) for r, v in zip(rows, verdicts)]
    if os.environ.get("COIN_WRITE_VERIFY_EXPECTED"):
        EXPECTED.write_text("".join(json.dumps(g, sort_keys=True) + "\n" for g in got))
    expected = {e["pair"]: e for e in map(json.loads, EXPECTED.read_text().splitlines())}
    assert len(got) == len(expected) == 328
    for g in got:
        e = expected[g["pair"]]
        assert (g["verdict"], g["deciding"], g["lexdiff"]) == (e["verdict"], e["deciding"], e["lexdiff"]), g["pair"]
        for signal in ("embedding", "combiner"):
            assert (g[signal] is None) == (e[signal] is None), (g["pair"], signal)
            if e[signal] is not None:
                assert abs(g[signal] - e[signal]) <= TOLERANCE, (g["pair"], signal, g[signal], e[signal])
    assert sum(g["verdict"] == "kept" for g in got) == 143


def test_cached_diff_gives_the_same_answer_twice_and_in_a_fresh_instance():
    pairs = [("Is this review positive? {review}", "Is this review long? {review}"),
             ("List the keywords of {text}.", "Give the key terms of {text}."),
             ("Write a haiku about {topic}.", "Write a limerick about {topic}."),
             ("Answer in at most 20 words: {question}", "Answer in no more than 20 words: {question}")]
    shared = LexicalDiff()
    first = [shared.diff(a, b) for a, b in pairs]
    again = [shared.diff(a, b) for a, b in pairs]  # every lookup now comes from the caches
    fresh = [LexicalDiff().diff(a, b) for a, b in pairs]
    assert first == again == fresh
    assert [d.findings[0].kind if d.findings else None for d in first] == [None, None, "contrast", None]
    assert first[0].added == ("long",) and first[0].dropped == ("positive",)


def _run(code: str, **env: str) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          timeout=300, check=True)
    return done.stdout.split()


PROBE = "import os; from coin_data.verify.embedding import passive_thread_wait as p; {before}print(p(), os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.parametrize(
    ("before", "env", "expected"),
    [("", {}, ["True", "PASSIVE"]),
     ("", {"OMP_WAIT_POLICY": "ACTIVE"}, ["True", "ACTIVE"]),  # the user's choice is kept
     ("import torch; ", {}, ["False", "None"])],  # too late: the OpenMP runtime has read the environment
)
def test_passive_thread_wait(before, env, expected):
    assert _run(PROBE.format(before=before), **env) == expected


def test_coin_data_sets_passive_wait_before_a_command_runs():
    code = ("import os, sys; from coin_data.cli import main\n"
            "try:\n    main(['verify', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))")
    assert _run(code)[-2:] == ["False", "PASSIVE"]
