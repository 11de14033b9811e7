"""README.md's commands and Python snippets run as written, offline (issue 13 item 4).

The rule, for whoever edits README.md:

* Every command of a ```bash block that runs ``coin-data`` or ``coin-train`` (also after ``&&``, after
  ``.venv/bin/``, after ``VAR=value`` assignments, or as ``python -m coin_train.cli``) is run here, in README
  order, in one temporary folder, and must exit 0. Every ```python block is run as a script in that folder.
* A line that cannot run on an offline test machine ends with a comment that starts with ``# needs``:
  ``# needs the Hub``, ``# needs an API key``, ``# needs a running server``, ``# needs GPUs``. Such lines are
  skipped, and only they: a new command that is neither runnable nor marked makes this test fail.
* :data:`BUDGET` appends test-only flags to a command (a one-task build, one training step, a few eval
  prompts, ``--overwrite`` since every build writes the same default folder). The command as written comes
  first, so its own options are all parsed; an appended option only narrows the work.
* :func:`reader_files` writes the inputs the README assumes a reader has (``my_tasks/``, ``pairs.jsonl``,
  ``alpaca.json``, FLAN-format rows), and a small ``coin-flan-paraphrased`` is built first, so each case
  also runs alone.
* Commands matching :data:`SLOW` (every build and re-mining, about 20 s each on 2 busy cores; real-model
  training and evaluation; a full default build from Python) carry the ``slow`` marker, except dry runs:
  ``pytest -m slow tests/test_readme.py`` runs them (about 10 minutes). The default run takes the cheap
  commands and the fixture build, about a minute.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
MARK = re.compile(r"#\s*needs\b")
COMMANDS = ("coin-data", "coin-train")

# Test-only flags appended to a command: (what the command contains, flags). First match wins.
BUDGET: list[tuple[tuple[str, ...], list[str]]] = [
    (("coin-data build", "--source"), ["--max-rows", "40", "--overwrite"]),
    (("coin-data build", "--dry-run"), ["--tasks", "spam", "-k", "1"]),
    (("coin-data build",), ["--tasks", "spam", "-k", "1", "--overwrite"]),
    (("coin-train train",), ["--max-steps", "1", "--per-device-train-batch-size", "2", "--max-length", "64",
                             "--overwrite-output-dir"]),
    (("coin-train eval",), ["--tasks", "spam", "--max-examples", "2", "--max-instructions", "1"]),
]
# Commands (or Python snippets) containing any of these run only with `-m slow` (dry runs never do).
SLOW = ("coin-data build", "coin-data mine", "coin-train ", "build_to_folder(")


def readme_cases(text: str) -> list[tuple[str, int, str, str | None]]:
    """``(kind, line, text, skip reason)`` for every runnable or marked README command and Python block.

    Example:
        >>> readme_cases("```bash\\ncoin-data stats x   # shows it\\nls\\n```\\n")
        [('bash', 2, 'coin-data stats x', None)]
    """
    cases, block, kind, start = [], [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        fence = line.strip()
        if kind is None and fence in ("```bash", "```python"):
            kind, block, start = fence[3:], [], number + 1
        elif kind is not None and fence == "```":
            if kind == "python":
                cases.append(("python", start, "\n".join(block), None))
            else:
                cases.extend(_bash_cases(block, start))
            kind = None
        elif kind is not None:
            block.append(line)
    return cases


def _bash_cases(lines: list[str], start: int) -> list[tuple[str, int, str, str | None]]:
    """The coin-data / coin-train commands of one bash block (continuation lines joined)."""
    cases, logical, first = [], "", start
    for offset, line in enumerate(lines):
        if not logical:
            first = start + offset
        if line.rstrip().endswith("\\"):
            logical += line.rstrip()[:-1] + " "
            continue
        logical += line
        code, _, comment = logical.partition(" #")
        for part in code.split("&&"):
            command = _command(part)
            if command:
                skip = f"#{comment}".strip() if MARK.match(f"#{comment}".strip()) else None
                cases.append(("bash", first, command, skip))
        logical = ""
    return cases


def _command(part: str) -> str | None:
    """``part`` without leading ``VAR=value`` words and ``.venv/bin/``, if it runs coin-data / coin-train."""
    words = part.split()
    while words and re.match(r"^[A-Z_]+=", words[0]):
        words.pop(0)
    if words and words[0].startswith(".venv/bin/"):
        words[0] = words[0].removeprefix(".venv/bin/")
    text = " ".join(words)
    if words and (words[0] in COMMANDS or "coin_train.cli" in text):
        return text
    return None


def budget(command: str) -> list[str]:
    """The test-only flags appended to ``command`` (see :data:`BUDGET`)."""
    for needles, flags in BUDGET:
        if all(needle in command for needle in needles):
            return flags
    return []


def reader_files(folder: Path) -> None:
    """The inputs the README's commands assume a reader has, written into ``folder``."""
    from coin_data.sources import embedded_corpus_dir

    tasks = folder / "my_tasks"
    tasks.mkdir()
    for suffix in (".yaml", ".jsonl"):
        shutil.copy(embedded_corpus_dir() / f"spam{suffix}", tasks / f"spam{suffix}")
    (folder / "pairs.jsonl").write_text(json.dumps({
        "original": "Summarize the following text in one sentence.\n{text}",
        "paraphrase": "Write a one-sentence summary of the following text.\n{text}"}) + "\n")
    (folder / "alpaca.json").write_text(json.dumps([
        {"instruction": f"Name a colour that rhymes with {word}.", "input": "", "output": colour}
        for word, colour in [("bed", "red"), ("mean", "green"), ("sue", "blue"), ("hello", "yellow")] * 5]))
    spec = importlib.util.spec_from_file_location("flan_fresh", ROOT / "tests" / "data" / "flan_fresh.py")
    flan_fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flan_fresh)
    rows = flan_fresh.make_rows(seed=1)
    flan = folder / "flan" / "rte_10templates"
    flan.mkdir(parents=True)
    flan_fresh.write_jsonl(flan / "part-0.jsonl", rows[: len(rows) // 2])
    flan_fresh.write_jsonl(flan / "part-1.jsonl", rows[len(rows) // 2:])


CASES = readme_cases(README.read_text())


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "HF_TOKEN")}
    src = str(ROOT / "src")
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PYTHONPATH=src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""))
    return env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    reader_files(folder)
    built = subprocess.run([str(BIN / "coin-data"), "build", "--tasks", "spam", "-k", "1", "-q"], cwd=folder,
                           env=_env(), capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    return folder


def test_readme_has_commands_and_marks_only_what_needs_a_network():
    kinds = {kind for kind, *_ in CASES}
    assert kinds == {"bash", "python"} and len(CASES) >= 10
    skipped = [text for _, _, text, skip in CASES if skip]
    assert skipped and all("build" in t or "publish" in t or "train" in t for t in skipped)


def test_an_unmarked_command_is_a_case_and_a_marked_one_is_skipped():
    text = "```bash\ncoin-data build --new-flag   # brand new\ncoin-data publish x --repo-id o/x   # needs the Hub\n```\n"
    assert readme_cases(text) == [("bash", 2, "coin-data build --new-flag", None),
                                  ("bash", 3, "coin-data publish x --repo-id o/x", "# needs the Hub")]


def _param(case):
    kind, line, text, skip = case
    slow = any(s in text for s in SLOW) and "--dry-run" not in text
    marks = [pytest.mark.slow] if slow else []
    return pytest.param(kind, text, skip, id=f"README.md:{line}", marks=marks)


@pytest.mark.parametrize("kind, text, skip", [_param(c) for c in CASES])
def test_readme_case_runs(workdir, kind, text, skip):
    if skip:
        pytest.skip(f"marked in README.md: {skip}")
    if kind == "python":
        args = [sys.executable, "-c", text]
    else:
        words = shlex.split(text)
        if words[0] in COMMANDS:
            words[0] = str(BIN / words[0])
        args = [*words, *budget(text)]
    done = subprocess.run(args, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{text}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
