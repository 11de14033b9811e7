"""Soak: `openai:MODEL` behind 30 % transport faults loses no template and builds the same bytes.

The faults come from tests/chat_server.py, drawn per (request body, attempt): 429 and 503 with
Retry-After, 500, answers slower than the timeout, dropped connections, 200s whose JSON body is cut short
(complete framing, or a connection closed mid-body) and 200s without choices. The "model" behind them is
deterministic, so a build that retries every fault with the same request body must end exactly where a
fault-free build ends. Backoffs are tiny here; the logic is the one the defaults use.
"""

import json
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chat_server import TRANSPORT_FAULTS, ChatServer, Faults, kill_build_then_resume, kill_when  # noqa: E402

from coin_data.build import BuildConfig, load_corpus, paraphrase_requests  # noqa: E402
from coin_data.paraphrase.answer_cache import CACHE_FILE  # noqa: E402
from coin_data.cli import main  # noqa: E402
from coin_data.paraphrase import get_paraphraser  # noqa: E402

SEEDS = (0, 1, 2, 3)
MAX_RETRIES = 8
# A 2 s timeout: generous for a loaded machine (a healthy answer that times out would be asked twice),
# still under the 2.5 s stalls.
FAST = {"timeout": 2.0, "backoff_base": 0.01, "backoff_max": 0.05, "max_retries": MAX_RETRIES, "concurrency": 8}
FAULTS = {"retry_after": 0.02, "slow_seconds": 2.5}


def backend(server: ChatServer, cache: Path):
    return get_paraphraser("openai:fake", base_url=server.url, cache_dir=str(cache), **FAST)


def test_thirty_percent_transport_faults_lose_nothing_over_several_seeds(tmp_path):
    requests = paraphrase_requests(load_corpus(BuildConfig()), BuildConfig())  # the default corpus, 72 templates
    with ChatServer() as server:
        reference = [(r.candidates, r.failure) for r in backend(server, tmp_path / "ref").paraphrase(requests)]
        bodies = len(server.successes())
    assert all(candidates for candidates, _ in reference)
    met = set()
    for seed in SEEDS:
        started = time.monotonic()
        with ChatServer(Faults.transport(0.3, **FAULTS), seed=seed) as server:
            results = backend(server, tmp_path / f"seed{seed}").paraphrase(requests)
            outcomes, attempts, successes = server.outcomes(), server.attempts(), server.successes()
        seconds = time.monotonic() - started
        faulted = sum(n for name, n in outcomes.items() if name in TRANSPORT_FAULTS)
        met |= {name for name in outcomes if name in TRANSPORT_FAULTS}
        assert not [r for r in results if r.lost], (seed, outcomes)  # 0 templates lost
        assert [(r.candidates, r.failure) for r in results] == reference, seed  # the same answers
        assert max(attempts.values()) <= MAX_RETRIES + 1, (seed, attempts)  # bounded attempts per request body
        assert len(successes) == bodies and set(successes.values()) == {1}  # each body answered exactly once
        assert 0.15 <= faulted / sum(outcomes.values()) <= 0.45, (seed, outcomes)  # really about 30 %
        counted = {}
        for result in results:
            for cause, n in result.usage.faults.items():
                counted[cause] = counted.get(cause, 0) + n
        assert sum(counted.values()) == faulted and not any(r.usage.reasks for r in results)
        assert seconds < 60, (seed, seconds)  # bounded in time (tiny backoffs)
    assert met == set(TRANSPORT_FAULTS)  # every fault kind was met across the seeds


# --- shared by the kill tests ---------------------------------------------------------------------

TASKS = "sentiment,spam"  # 12 templates, for the end-to-end builds
# A few first answers are malformed in every run (the same ones: content faults are drawn per body and
# server seed), so re-asks happen and a kill can fall between a first answer and its re-ask.
CONTENT = {"malformed": 0.25}
SEED = 11
KILL_AFTER = 30  # successful replies (of about 90) before the server holds every call and the client is killed
ANSWERED_BEFORE_KILL = 5  # the same, for the 12-template end-to-end build


def build_args(url: str, cache: Path, out: Path) -> list[str]:
    return ["build", "--tasks", TASKS, "--paraphraser", "openai:fake", "--base-url", url, "--cache-dir", str(cache),
            "--concurrency", "4", "--timeout", "2", "--max-retries", str(MAX_RETRIES), "--out", str(out), "-q"]


def parquet_files(folder: Path) -> dict[str, bytes]:
    files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}
    assert len(files) >= 3  # train, validation, templates
    return files


def card_without_spending(folder: Path) -> list[str]:
    # The card reports this run's API requests and faults, which differ by design.
    lines = (folder / "README.md").read_text().splitlines()
    return [line for line in lines if "API requests" not in line and not line.startswith("- API faults")]


def replies_committed(cache: Path) -> int:
    if not (cache / CACHE_FILE).exists():
        return 0
    with sqlite3.connect(cache / CACHE_FILE, timeout=30) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]
        except sqlite3.OperationalError:  # the table is not created yet
            return 0


# --- killed mid-run under faults -------------------------------------------------------------------

# Runs the backend alone in a subprocess (no embedding model to load), so that it can be SIGKILLed.
KILL_SCRIPT = """
import json, sys
from coin_data.paraphrase import ParaphraseRequest, get_paraphraser
from coin_data.templates import parse_template
url, cache, options, specs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
requests = [ParaphraseRequest(parse_template(text, task, tid), k, tuple(words), seed)
            for text, task, tid, k, words, seed in specs]
get_paraphraser("openai:fake", base_url=url, cache_dir=cache, **options).paraphrase(requests)
"""


def test_killed_under_faults_then_resumed_answers_each_body_once(tmp_path):
    requests = paraphrase_requests(load_corpus(BuildConfig()), BuildConfig())
    specs = [(r.template.text, r.template.task, r.template.template_id, r.k, list(r.protected_words), r.seed)
             for r in requests]
    with ChatServer(Faults(**CONTENT), seed=SEED) as server:  # the same model answers, no transport fault
        reference = [(r.candidates, r.failure) for r in backend(server, tmp_path / "ref").paraphrase(requests)]
        # Answers per request body. Two templates whose shown instruction is the same send the same body
        # (each asks once for itself), so a count can be 2 here too.
        reference_successes = server.successes()
        assert any(call.reask for call in server.calls)
    faults = Faults(**{**vars(Faults.transport(0.3, **FAULTS)), **CONTENT})
    cache = tmp_path / "cache"
    with ChatServer(faults, seed=SEED, stall_after=KILL_AFTER) as server:
        proc = kill_when([sys.executable, "-c", KILL_SCRIPT, server.url, str(cache), json.dumps(FAST),
                          json.dumps(specs)],
                         lambda: server.waiting() >= 1 and replies_committed(cache) == KILL_AFTER, 120,
                         "replies to be committed and calls to be in flight")
        assert proc.returncode == -signal.SIGKILL
        server.release()
        results = backend(server, cache).paraphrase(requests)
        successes, attempts = server.successes(), server.attempts()
        held = [call for call in server.calls if call.outcome == "stalled"]
    assert held and any(call.reask for call in server.calls)
    assert not [r for r in results if r.lost]
    assert [(r.candidates, r.failure) for r in results] == reference  # as if nothing had happened
    assert successes == reference_successes  # no body answered more often than without the kill
    assert max(attempts.values()) <= MAX_RETRIES + 2  # + the attempt held at the kill


# --- the whole build, uninterrupted and killed, under faults ----------------------------------------

@pytest.mark.slow  # four builds with the embedding model: over a minute on the 2-core machine
def test_build_under_faults_and_killed_resumes_to_the_same_bytes(tmp_path):
    runner = CliRunner()
    with ChatServer(Faults(**CONTENT), seed=SEED) as server:  # no transport fault
        reference = runner.invoke(main, build_args(server.url, tmp_path / "ref-cache", tmp_path / "ref"))
        assert reference.exit_code == 0, reference.output
        reference_successes = server.successes()  # answers per body (model, messages, seed)
        assert server.outcomes()["malformed"] > 0  # re-asks happened
    faults = Faults(**{**vars(Faults.transport(0.3, **FAULTS)), **CONTENT})

    with ChatServer(faults, seed=SEED) as server:
        faulted = runner.invoke(main, build_args(server.url, tmp_path / "faulted-cache", tmp_path / "faulted"))
        assert faulted.exit_code == 0, faulted.output
        assert sum(n for name, n in server.outcomes().items() if name in TRANSPORT_FAULTS) > 0
    assert parquet_files(tmp_path / "faulted") == parquet_files(tmp_path / "ref")
    assert card_without_spending(tmp_path / "faulted") == card_without_spending(tmp_path / "ref")

    cache, out = tmp_path / "cache", tmp_path / "out"
    with ChatServer(faults, seed=SEED, stall_after=ANSWERED_BEFORE_KILL) as server:
        # Kill once every answered body is committed and further calls are held in flight.
        resumed = kill_build_then_resume(server, build_args(server.url, cache, out), out,
                                         lambda: replies_committed(cache) == ANSWERED_BEFORE_KILL, 180,
                                         "replies to be committed and calls to be in flight",
                                         lambda args: runner.invoke(main, args))
        assert resumed.exit_code == 0, resumed.output
        successes = server.successes()
        attempts = server.attempts()
    assert successes == reference_successes  # no body answered more often than without the kill
    assert max(attempts.values()) <= MAX_RETRIES + 2  # + the one attempt held at the kill
    assert parquet_files(out) == parquet_files(tmp_path / "ref")
    assert card_without_spending(out) == card_without_spending(tmp_path / "ref")
