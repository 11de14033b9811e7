"""A failing backend is named on the build's last line, with the templates per cause (issue 15, item 5).

Real components: the CLI, the openai client against tests/chat_server.py or a closed loopback port.
"""

import socket
import sys
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chat_server import ChatServer, Faults  # noqa: E402

from coin_data.build import BuildStats, no_paraphrase_cause  # noqa: E402
from coin_data.card import failure_line, without_paraphrase_summary, without_paraphrase_table  # noqa: E402
from coin_data.cli import main  # noqa: E402


def _closed_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there afterwards
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _build(tmp_path, base_url, *extra):
    args = ["build", "--tasks", "sentiment", "--paraphraser", "openai:fake", "--base-url", base_url,
            "--cache-dir", str(tmp_path / "cache"), "--timeout", "2", "--max-retries", "1", "--out",
            str(tmp_path / "out"), *extra]
    return CliRunner().invoke(main, args)


def _last_line(output: str) -> str:
    return [line for line in output.splitlines() if line.strip()][-1]


def test_connection_refused_is_named_with_its_count(tmp_path):
    result = _build(tmp_path, f"http://127.0.0.1:{_closed_port()}/v1")
    assert result.exit_code == 1
    last = _last_line(result.output)
    # No answer at all: the templates are lost (a transport failure), and the line says what to check.
    assert "6 of 6 template(s) lost: no answer from the server (retries_exhausted: connection 6)" in last, last
    assert "Is the server at --base-url running?" in last
    assert not (tmp_path / "out").exists()


def test_every_answer_unparsable_is_named(tmp_path):
    with ChatServer(Faults(malformed=1.0)) as server:
        result = _build(tmp_path, server.url)
    assert result.exit_code == 1
    assert "failed for 6 of 6 templates: malformed_json 6." in _last_line(result.output)


def test_budget_reached_is_named_with_counts(tmp_path):
    with ChatServer() as server:
        result = _build(tmp_path, server.url, "--max-calls", "2", "--concurrency", "1")
    assert result.exit_code == 1
    last = _last_line(result.output)
    assert "budget reached (--max-calls 2)" in last and "2 of 6 template request(s) answered" in last, last


def test_partial_failure_goes_on_the_summary_last_line(tmp_path):
    with ChatServer(Faults(executed=0.5), seed=1) as server:
        result = _build(tmp_path, server.url)
    assert result.exit_code == 0, result.output
    last = _last_line(result.output)
    failed = int(last.split(" failed for ")[1].split(" of ")[0])
    assert 0 < failed < 6 and last.endswith(f"executed_instruction {failed}."), last
    # the summary also says per task how many templates got no kept paraphrase, and why
    assert f"sentiment {failed}: executed_instruction {failed}" in result.output


def test_failure_helpers_on_hand_made_stats():
    stats = BuildStats(templates=4, paraphrase_source="hf:m",
                       failed_templates=Counter({"executed_instruction": 3, "slot_changed": 1}))
    assert failure_line(stats) == ("Paraphraser hf:m failed for 4 of 4 templates: executed_instruction 3, "
                                   "slot_changed 1. The model answered the templates instead of rewording them: "
                                   "try a larger model.")
    assert failure_line(BuildStats(templates=4)) is None
    by_task = {"nli": Counter({"all candidates rejected (not_equivalent)": 2})}
    assert without_paraphrase_summary(by_task) == "2 (nli 2: all candidates rejected (not_equivalent) 2)"
    assert without_paraphrase_table(by_task)[2] == "| nli | 2 | all candidates rejected (not_equivalent): 2 |"
    assert without_paraphrase_table({}) == []


def test_no_paraphrase_cause_names_backend_failure_or_verdicts():
    from coin_data.paraphrase import ParaphraseRequest, ParaphraseResult
    from coin_data.templates import parse_template

    request = ParaphraseRequest(parse_template("Q: {q}"), k=2)
    assert no_paraphrase_cause(ParaphraseResult(request, [], "rules", failure="rules: x"), []) == "rules: x"
    assert no_paraphrase_cause(ParaphraseResult(request, ["a {q}"], "rules"), ["too_similar"]) == \
        "all candidates rejected (too_similar)"
