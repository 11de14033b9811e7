"""`coin-data` through its real entry points: exit codes, files, clear errors, help."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from coin_data.cli import main
from coin_data.sources import embedded_corpus_dir


@pytest.fixture
def runner():
    return CliRunner()


def test_build_writes_folder_and_prints_summary(runner, tmp_path):
    out = tmp_path / "coin-flan-paraphrased"
    result = runner.invoke(main, ["build", "--tasks", "grammar", "-k", "1", "--out", str(out),
                                  "--license", "cc-by-sa-4.0"])
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}" in result.output
    assert "paraphrase calls   6 (6 templates x 1)" in result.output
    assert (out / "data" / "train-00000-of-00001.parquet").is_file()
    card = (out / "README.md").read_text()
    assert "\nlicense: cc-by-sa-4.0\n" in card and "--license cc-by-sa-4.0 " in card
    stats = runner.invoke(main, ["stats", str(out), "--json"])
    assert stats.exit_code == 0, stats.output
    report = json.loads(stats.output)
    assert list(report["tasks"]) == ["grammar"] and report["rows"]["train"] > 0
    # score summaries are numbers; the text output keeps its one-line form
    similarity = report["similarity"]
    assert list(similarity) == ["n", "mean", "min", "p10", "median", "p90", "max"]
    assert isinstance(similarity["n"], int) and similarity["n"] > 0
    assert similarity["min"] <= similarity["p10"] <= similarity["median"] <= similarity["p90"] <= similarity["max"]
    assert similarity["min"] <= similarity["mean"] <= similarity["max"] <= 1.0
    assert report["view_similarity"] == {"n": 0}
    text = runner.invoke(main, ["stats", str(out)]).output
    line = (f"n={similarity['n']}, mean={similarity['mean']:.3f}, min={similarity['min']:.3f}, "
            f"p10={similarity['p10']:.3f}, median={similarity['median']:.3f}, p90={similarity['p90']:.3f}, "
            f"max={similarity['max']:.3f}")
    assert f"\n  paraphrase similarity: {line}\n" in text
    again = runner.invoke(main, ["build", "--tasks", "grammar", "--out", str(out)])
    assert again.exit_code == 1 and "already exists; pass --overwrite" in again.output


def test_embedding_cache_option_makes_a_rebuild_embed_nothing(runner, tmp_path):
    base = ["build", "--tasks", "grammar", "-k", "1", "--shard-rows", "40", "--embedding-cache", str(tmp_path / "c")]
    first = runner.invoke(main, [*base, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    embedded = int(first.output.split("strings embedded")[1].split()[0])
    assert embedded > 10 and (tmp_path / "c" / "embeddings.sqlite").is_file()
    second = runner.invoke(main, [*base, "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    assert f"strings embedded   0 (+{embedded} from the embedding cache)" in second.output
    assert (tmp_path / "a" / "README.md").read_bytes() == (tmp_path / "b" / "README.md").read_bytes()


def test_bad_corpus_exits_nonzero_naming_file_row_field(runner, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(embedded_corpus_dir() / "nli.yaml", corpus / "nli.yaml")
    lines = (embedded_corpus_dir() / "nli.jsonl").read_text().splitlines()
    row = json.loads(lines[4])
    del row["hypothesis"]
    lines[4] = json.dumps(row)
    (corpus / "nli.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = runner.invoke(main, ["build", "--corpus", str(corpus), "--out", str(out)])
    assert result.exit_code == 1
    assert f"nli.jsonl:5: field 'hypothesis' is missing" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["corpus"]


def test_unknown_task_and_paraphraser(runner, tmp_path):
    result = runner.invoke(main, ["build", "--tasks", "nope", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "unknown task(s) nope" in result.output
    result = runner.invoke(main, ["build", "--paraphraser", "magic", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "unknown paraphraser 'magic'" in result.output
    assert not (tmp_path / "o").exists()


def test_verify_command(runner, tmp_path):
    src = tmp_path / "pairs.jsonl"
    src.write_text(json.dumps({"original": "Summarize the following text in one sentence.\n{text}",
                               "paraphrase": "Write a one-sentence summary of the following text.\n{text}"}) + "\n")
    result = runner.invoke(main, ["verify", str(src)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "pairs.verified.jsonl"
    row = json.loads(out.read_text())
    assert row["verdict"] == "kept" and 0.75 <= row["similarity"] <= 1.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"original": "x"}\n')
    result = runner.invoke(main, ["verify", str(bad)])
    assert result.exit_code == 1 and "bad.jsonl:1: field 'paraphrase'" in result.output


def test_console_script_help_teaches():
    exe = Path(sys.executable).with_name("coin-data")
    result = subprocess.run([str(exe), "build", "--help"], capture_output=True, text=True, check=True)
    assert "coin-data build --tasks sentiment,nli" in result.stdout
    assert "--paraphrases-per-template" in result.stdout and "--threshold" in result.stdout


ROWS_TASKS_YAML = """\
tasks:
  - name: polarity
    kind: classification
    fields: [text]
    options: ["positive", "negative"]
    target: "{label}"
    templates:
      - {id: t0, text: "Is the sentiment of this review positive or negative?\\n{text}\\n{options_}"}
      - {id: t1, text: "Review: {text}\\nDid the writer like the product?\\n{options_}"}
"""


def test_data_files_take_globs_and_several_values(runner, tmp_path):
    """Issue 13: `--data-files 'dir/*.jsonl'` (quoted) and `--data-files a b` (what the shell makes of it)."""
    (tmp_path / "tasks.yaml").write_text(ROWS_TASKS_YAML)
    parts = tmp_path / "rows"
    parts.mkdir()
    for part in range(3):
        rows = [{"task": "polarity", "text": f"Kettle {part}-{i} {'works well' if i % 2 else 'broke'}.",
                 "label": "positive" if i % 2 else "negative"} for i in range(4)]
        (parts / f"part{part}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = ["build", "--source", "templates", "--templates", str(tmp_path / "tasks.yaml"), "-k", "1", "-q"]

    def instances(out):
        import datasets

        ds = datasets.load_dataset(str(out))
        return {json.loads(f)["text"] for split in ds.values() for f in split["fields"]}

    # a quoted glob reads every match, in sorted order
    out = tmp_path / "glob"
    done = runner.invoke(main, [*base, "--data-files", str(parts / "part*.jsonl"), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert len(instances(out)) == 12
    # several values after one flag, mixed with a repeated flag
    out = tmp_path / "several"
    done = runner.invoke(main, [*base, "--data-files", str(parts / "part0.jsonl"), str(parts / "part1.jsonl"),
                                "--data-files", str(parts / "part2.jsonl"), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert len(instances(out)) == 12
    # a pattern that matches nothing, and a missing plain file: one line each, nothing written
    for missing in (str(parts / "nope*.jsonl"), str(parts / "nope.jsonl")):
        out = tmp_path / "none"
        failed = runner.invoke(main, [*base, "--data-files", missing, "--out", str(out)])
        assert failed.exit_code == 1 and "Traceback" not in failed.output
        reason = "no file matches this pattern" if "*" in missing else "file not found"
        assert failed.output.strip() == f"Error: {missing}: {reason} (data files)"
        assert not out.exists()


def test_malformed_task_yaml_is_one_line_naming_file_and_line(runner, tmp_path):
    """Issue 13: a 7-line PyYAML dump naming `<unicode string>` became one line naming the file."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(embedded_corpus_dir() / "nli.jsonl", corpus / "nli.jsonl")
    lines = (embedded_corpus_dir() / "nli.yaml").read_text().splitlines()
    lines[1] = "kind: [classification"  # an unclosed flow list: the parser notices on line 3
    (corpus / "nli.yaml").write_text("\n".join(lines) + "\n")
    result = runner.invoke(main, ["build", "--corpus", str(corpus), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "<unicode string>" not in result.output
    output = result.output.strip().splitlines()
    assert len(output) == 1 and output[0].startswith(f"Error: {corpus / 'nli.yaml'}:3:"), result.output
    assert ": invalid YAML: " in output[0]


def test_build_shows_verify_and_embedding_progress_unless_quiet(tmp_path):
    """Issue 13 item 6: the verify and embedding stages report progress on stderr; --quiet silences them."""
    exe = Path(sys.executable).with_name("coin-data")
    args = [str(exe), "build", "--tasks", "spam", "-k", "1"]
    shown = subprocess.run([*args, "--out", str(tmp_path / "a")], capture_output=True, text=True, timeout=600)
    assert shown.returncode == 0, shown.stderr
    verify_bar = [line for line in shown.stderr.replace("\r", "\n").splitlines() if line.startswith("verify")]
    assert verify_bar and "candidate" in verify_bar[-1]
    done, total = verify_bar[-1].split("|")[2].split()[0].split("/")
    assert done == total and int(total) > 0  # the bar reaches the number of candidates
    assert "Batches" in shown.stderr  # the embedding model's encoding bar
    quiet = subprocess.run([*args, "-q", "--out", str(tmp_path / "b")], capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0 and "verify" not in quiet.stderr and "Batches" not in quiet.stderr


def test_embedding_cache_is_a_build_option_for_every_backend(runner, tmp_path):
    """--embedding-cache belongs to the build, not to a paraphraser: the rules backend takes it too."""
    result = runner.invoke(main, ["build", "--tasks", "sentiment", "--dry-run", "--embedding-cache",
                                  str(tmp_path / "cache"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "applies to --paraphraser" not in result.output
    assert "API calls needed" in result.output
