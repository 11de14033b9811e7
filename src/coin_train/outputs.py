"""The output folder of a training run: one run per folder, and the checkpoint a resumed run continues.

* A non-empty ``--output-dir`` is refused unless ``--overwrite_output_dir`` (the previous run there is
  deleted first) or ``--resume-from-checkpoint`` (that run continues).
* Every run gets an id, written as ``coin_run.json`` into the folder and into each checkpoint it saves,
  so ``--resume-from-checkpoint latest`` picks the newest checkpoint *of the run the folder holds*, never
  one left by an older, different run.

Example:
    >>> run = check_output_dir(CoinConfig(output_dir="out/coin", resume_from_checkpoint="latest"))  # doctest: +SKIP
    >>> run.checkpoint, run.step                                                                       # doctest: +SKIP
    ('out/coin/checkpoint-4', 4)
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

RUN_FILE = "coin_run.json"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Entries that show a folder holds a training run (what --overwrite_output_dir may delete).
RUN_ENTRIES = (RUN_FILE, "trainer_state.json", "training_args.bin", "coin_prompt.json", "config.json",
               "adapter_config.json")


class OutputDirError(FileExistsError):
    """The output folder cannot be used as asked; the message says what to pass instead."""


@dataclass(frozen=True)
class RunFolder:
    """A prepared output folder.

    Attributes:
        run_id: the id written into the folder and every checkpoint of this run.
        checkpoint: the checkpoint folder to resume from, or None for a fresh run.
        step: that checkpoint's step (0 for a fresh run).
    """

    run_id: str
    checkpoint: str | None = None
    step: int = 0


def read_run_id(folder: str | Path) -> str | None:
    """The run id recorded in ``folder`` (an output folder or a checkpoint), or None.

    Example:
        >>> read_run_id("/nonexistent") is None
        True
    """
    path = Path(folder) / RUN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))["run_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_run_id(folder: str | Path, run_id: str) -> None:
    """Record ``run_id`` in ``folder`` (done for the output folder and each saved checkpoint).

    Example:
        >>> write_run_id("run-folder", "abc"); read_run_id("run-folder")
        'abc'
    """
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / RUN_FILE).write_text(json.dumps({"run_id": run_id}) + "\n", encoding="utf-8")


def checkpoints(folder: str | Path, run_id: str | None) -> list[tuple[int, Path]]:
    """``(step, path)`` of the complete ``checkpoint-N`` folders of run ``run_id`` in ``folder``, oldest first.

    With ``run_id=None`` (a folder written before runs had ids) every checkpoint counts. A checkpoint is
    complete once its ``trainer_state.json`` exists: the Trainer writes it last, so a save cut short by
    Ctrl-C or a kill is never resumed from.

    Example:
        >>> checkpoints("/nonexistent", None)
        []
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = CHECKPOINT.match(path.name)
        if (match and path.is_dir() and (path / "trainer_state.json").is_file()
                and (run_id is None or read_run_id(path) == run_id)):
            found.append((int(match.group(1)), path))
    return sorted(found)


def _wants_resume(value) -> bool:
    return value is not None and str(value).lower() not in ("", "false", "no")


def _latest(folder: Path) -> RunFolder:
    run_id = read_run_id(folder)
    own = checkpoints(folder, run_id)
    if not own:
        others = [path.name for _, path in checkpoints(folder, None)]
        note = f" ({', '.join(others)} belong to another run)" if others else ""
        raise OutputDirError(f"{folder}: no checkpoint of its run to resume from{note}; start a new run with "
                             "--overwrite_output_dir or another --output-dir")
    step, path = own[-1]
    return RunFolder(run_id or uuid.uuid4().hex, str(path), step)


def _explicit(checkpoint: Path, folder: Path) -> RunFolder:
    if not (checkpoint / "trainer_state.json").is_file():
        raise OutputDirError(f"{checkpoint}: not a checkpoint folder (no trainer_state.json); give a "
                             "checkpoint-N folder or 'latest'")
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    run_id = read_run_id(checkpoint) or read_run_id(folder) or uuid.uuid4().hex
    return RunFolder(run_id, str(checkpoint), int(state.get("global_step", 0)))


def _check_replaceable(folder: Path, entries: list[str]) -> None:
    if not any(name in RUN_ENTRIES or CHECKPOINT.match(name) for name in entries):
        raise OutputDirError(f"{folder}: holds files that are not from a training run ({', '.join(entries[:5])}); "
                             "--overwrite_output_dir only replaces a previous run: choose another --output-dir")


def _clear_previous_run(folder: Path) -> None:
    for path in folder.iterdir():
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def check_output_dir(config) -> RunFolder:
    """Check ``config.output_dir`` and decide what this run starts from; changes nothing on disk.

    Args:
        config: a :class:`coin_train.config.CoinConfig` (``output_dir``, ``overwrite_output_dir``,
            ``resume_from_checkpoint``: None, ``"latest"`` or a checkpoint folder).

    Returns:
        The :class:`RunFolder` (a new run id, or the resumed run's id and checkpoint).

    Raises:
        OutputDirError: a non-empty folder without ``overwrite_output_dir`` or a resume, both at once,
            nothing of this run to resume, or a resume path that is not a checkpoint.
    """
    folder = Path(config.output_dir)
    resume = config.resume_from_checkpoint
    if _wants_resume(resume) and config.overwrite_output_dir:
        raise OutputDirError("--overwrite_output_dir deletes the run that --resume-from-checkpoint would continue: "
                             "give only one of them")
    if str(resume).lower() in ("latest", "true", "yes"):
        return _latest(folder)
    if _wants_resume(resume):
        return _explicit(Path(resume), folder)
    entries = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if entries and not config.overwrite_output_dir:
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise OutputDirError(f"{folder}: not empty ({shown}); pass --overwrite_output_dir to replace it, "
                             "--resume-from-checkpoint latest to continue its run, or another --output-dir")
    if entries:
        _check_replaceable(folder, entries)
    return RunFolder(uuid.uuid4().hex)


def claim_output_dir(config, run: RunFolder) -> None:
    """Make ``config.output_dir`` this run's: delete a previous run (fresh runs only, after
    :func:`check_output_dir` allowed it) and record the run id. Only the main process writes; all wait.

    Example:
        >>> claim_output_dir(config, check_output_dir(config))  # doctest: +SKIP
    """
    from accelerate import PartialState

    folder = Path(config.output_dir)
    PartialState().wait_for_everyone()  # every process has checked the folder before it changes
    if config.should_save:
        if run.checkpoint is None and folder.is_dir() and any(folder.iterdir()):
            _clear_previous_run(folder)
        write_run_id(folder, run.run_id)
    PartialState().wait_for_everyone()


def latest_checkpoint(folder: str | Path, run_id: str) -> tuple[int, Path] | None:
    """The newest ``(step, checkpoint)`` of run ``run_id`` in ``folder``, or None (e.g. after Ctrl-C).

    Example:
        >>> latest_checkpoint("/nonexistent", "abc") is None
        True
    """
    own = checkpoints(folder, run_id)
    return own[-1] if own else None
