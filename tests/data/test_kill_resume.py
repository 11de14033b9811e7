"""A build killed with SIGKILL mid-paraphrasing and started again: no duplicated successful calls, and
the same dataset as an uninterrupted build."""

import sys
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chat_server import ChatServer, kill_build_then_resume  # noqa: E402

from coin_data.paraphrase.answer_cache import CACHE_FILE, AnswerCache  # noqa: E402
from coin_data.cli import main  # noqa: E402

TASKS = "sentiment"  # 6 templates
TEMPLATES = 6
ANSWERED_BEFORE_KILL = 3


def build_args(url: str, cache: Path, out: Path) -> list[str]:
    return ["build", "--tasks", TASKS, "--paraphraser", "openai:fake", "--base-url", url, "--cache-dir", str(cache),
            "--concurrency", "2", "--timeout", "10", "--out", str(out), "-q"]


def committed(cache: Path) -> int:
    return len(AnswerCache(cache)) if (cache / CACHE_FILE).exists() else 0


def dataset_files(folder: Path) -> dict[str, bytes]:
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    # The card reports this run's spending, which is smaller for the resumed run by design.
    card = files.pop("README.md").decode().splitlines()
    files["README.md"] = "\n".join(line for line in card if "API requests" not in line and "API faults" not in line).encode()
    return files


def test_sigkill_mid_run_then_resume(tmp_path):
    runner = CliRunner()
    with ChatServer() as server:
        reference = runner.invoke(main, build_args(server.url, tmp_path / "ref-cache", tmp_path / "ref"))
        assert reference.exit_code == 0, reference.output
        assert len(server.calls) == TEMPLATES

    cache, out = tmp_path / "cache", tmp_path / "out"
    with ChatServer(stall_after=ANSWERED_BEFORE_KILL) as server:
        # Kill while answered calls are committed and further calls are in flight (held by the server).
        resumed = kill_build_then_resume(server, build_args(server.url, cache, out), out,
                                         lambda: committed(cache) == ANSWERED_BEFORE_KILL, 120,
                                         "answers to be committed and calls to be in flight",
                                         lambda args: runner.invoke(main, args))
        assert resumed.exit_code == 0, resumed.output
        successes = server.successes()

    assert sum(successes.values()) == TEMPLATES and set(successes.values()) == {1}  # zero duplicated calls
    assert dataset_files(out) == dataset_files(tmp_path / "ref")  # identical to the uninterrupted run
    assert committed(cache) == TEMPLATES
