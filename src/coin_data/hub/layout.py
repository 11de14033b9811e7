"""Write a build to disk in the Hub layout, atomically.

::

    coin-flan-paraphrased/
      README.md                                   dataset card with YAML configs + dataset_info
      data/train-00000-of-00001.parquet           config "default"
      data/validation-00000-of-00001.parquet
      templates/train-00000-of-00001.parquet      config "templates": every candidate + verdict

Everything is written into a hidden ``.<name>.partial-*`` sibling folder and renamed into place only
when complete, so a failed or killed build never leaves a folder that looks like a dataset.

Example:
    >>> from coin_data.build import BuildConfig, run_build
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "coin-flan-paraphrased"
    >>> path = write_dataset(run_build(BuildConfig(tasks=("spam",), paraphrases_per_template=1)), out)
    >>> sorted(p.name for p in (path / "data").iterdir())
    ['train-00000-of-00001.parquet', 'validation-00000-of-00001.parquet']
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from coin_data.hub.card import DEFAULT_CONFIG, TEMPLATES_CONFIG, data_path, render_card

PARTIAL_MARK = ".partial-"


class OutputExistsError(FileExistsError):
    """The output folder exists and overwriting was not asked for.

    ``str(err)`` names the Python argument (``overwrite=True``); ``err.cli_message`` the command-line flag
    (``--overwrite``), which is what the CLIs print.

    Example:
        >>> err = OutputExistsError("out", "already exists", "pass overwrite=True", "pass --overwrite")
        >>> str(err), err.cli_message
        ('out: already exists; pass overwrite=True', 'out: already exists; pass --overwrite')
    """

    def __init__(self, out: str | Path, problem: str, python_hint: str, cli_hint: str):
        super().__init__(f"{out}: {problem}; {python_hint}")
        self.cli_message = f"{out}: {problem}; {cli_hint}"


class EmptyDatasetError(ValueError):
    """The build produced no training rows; nothing is written."""


def check_output(out: str | Path, overwrite: bool = False) -> Path:
    """Fail early (before any expensive work) when ``out`` cannot be written.

    Raises:
        OutputExistsError: ``out`` exists and ``overwrite`` is false, or ``out`` is a file.
    """
    out = Path(out)
    if out.is_file():
        raise OutputExistsError(out, "exists and is a file", "choose another folder", "choose another --out")
    if out.exists() and not overwrite:
        raise OutputExistsError(out, "already exists", "pass overwrite=True to replace it",
                                "pass --overwrite to replace it")
    return out


def write_dataset(result, out: str | Path, overwrite: bool = False) -> Path:
    """Write a :class:`~coin_data.build.BuildResult` to ``out`` in the Hub layout.

    With ``result.config.shard_rows`` each split is cut into files of that many rows
    (``data/train-00000-of-00004.parquet`` ...); otherwise each split is one file.

    Args:
        result: the build to write.
        out: destination folder (its parent is created if needed).
        overwrite: replace an existing folder (only after the new one is complete).

    Returns:
        The folder written.
    """
    out = check_output(out, overwrite).absolute()
    check_rows(result, out, len(result.dataset.get("train", ())))
    size = getattr(result.config, "shard_rows", None)
    partial = new_partial(out)
    try:
        writer = ShardWriter(partial)
        for split, ds in result.dataset.items():
            table = ds.data.table
            step = size or len(table) or 1
            for start in range(0, len(table), step):
                writer(split, table if step >= len(table) else table.slice(start, step))
        complete_folder(result, writer, partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out


def check_rows(result, out: Path, train_rows: int) -> None:
    """Refuse to write a build without training rows (:class:`EmptyDatasetError`)."""
    if train_rows:
        return
    from coin_data.hub.card import failure_line

    verdicts = ", ".join(f"{v} {n}" for v, n in sorted(result.stats.verdicts.items())) or "no candidates"
    failed = failure_line(result.stats)
    raise EmptyDatasetError(
        f"{out}: not written: the build kept no paraphrase, so there are no training rows "
        f"(candidate verdicts: {verdicts}; templates failed: {sum(result.stats.failed_templates.values())})"
        + (f". {failed}" if failed else "")
    )


class ShardWriter:
    """Writes the row tables of each split, as they come, into numbered parquet files of a partial folder.

    The number of shards is known only at the end, so files get their Hub names
    (``train-0000K-of-0000N.parquet``) in :meth:`finish`. A split with no rows gets no file: parquet
    readers reject zero-row files.

    Example:
        >>> writer = ShardWriter(new_partial(out))         # doctest: +SKIP
        >>> writer("train", table); writer.finish()        # doctest: +SKIP
        ({'train': (1000, 81234)}, {'train': 1})
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.files: dict[str, list[tuple[Path, int]]] = {}

    def __call__(self, split: str, table) -> None:
        if not len(table):
            return
        files = self.files.setdefault(split, [])
        path = self.folder / "data" / f"{split}-{len(files):05d}.parquet.unnamed"
        _write_table(table, path)
        files.append((path, len(table)))

    def finish(self) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
        """Give every file its final name; return ``split -> (rows, bytes)`` and ``split -> files``."""
        sizes, shards = {}, {}
        for split, files in self.files.items():
            size = 0
            for index, (path, _) in enumerate(files):
                final = self.folder / data_path(DEFAULT_CONFIG, split, index, len(files))
                path.rename(final)
                size += final.stat().st_size
            sizes[split] = (sum(rows for _, rows in files), size)
            shards[split] = len(files)
        return sizes, shards


def complete_folder(result, writer: ShardWriter, partial: Path, out: Path) -> None:
    """Name the shards, write the candidates table and the card, and rename ``partial`` to ``out``."""
    split_sizes, shards = writer.finish()
    candidates = partial / data_path(TEMPLATES_CONFIG, "train")
    candidate_size = (len(result.candidates), _write_table(result.candidates.data.table, candidates))
    card = render_card(result, split_sizes, candidate_size, shards)
    (partial / "README.md").write_text(card, encoding="utf-8")
    swap_into_place(partial, out)


def _write_table(table, path: Path) -> int:
    # pyarrow directly: the same file as Dataset.to_parquet (features kept in the schema metadata)
    # without a progress bar per file.
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))
    return path.stat().st_size


def new_partial(out: Path) -> Path:
    """A fresh hidden folder beside ``out`` to write into, after deleting leftovers of killed runs.

    Args:
        out: the folder the partial one will replace (see :func:`swap_into_place`).

    Returns:
        The empty partial folder, ``.<name>.partial-XXXX`` next to ``out``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(out)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL_MARK}", dir=out.parent))


def swap_into_place(partial: Path, out: Path) -> None:
    """Put the complete ``partial`` folder at ``out``, replacing what was there only now that it is whole.

    Args:
        partial: a finished folder from :func:`new_partial`.
        out: the destination; an existing folder there is retired and deleted after the rename.
    """
    os.chmod(partial, 0o755)  # mkdtemp creates 0700
    if not out.exists():
        partial.rename(out)
        return
    retired = out.with_name(f".{out.name}{PARTIAL_MARK}old-{os.getpid()}")
    out.rename(retired)
    partial.rename(out)
    shutil.rmtree(retired, ignore_errors=True)


def _remove_stale_partials(out: Path) -> None:
    """Delete leftovers of killed runs (hidden ``.<name>.partial-*`` siblings)."""
    for stale in out.parent.glob(f".{out.name}{PARTIAL_MARK}*"):
        shutil.rmtree(stale, ignore_errors=True)
