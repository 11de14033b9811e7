"""External rows: local JSONL/JSON/CSV/Parquet files, Hub datasets, column maps.

Example:
    >>> parse_column_map('input=context,output=response')
    {'input': 'context', 'output': 'response'}
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from coin_data.sources.embedded import CorpusError, read_corpus_text

# --- external rows: local files, Hub datasets, column maps -------------------------------

ROW_FILE_TYPES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
ALPACA_DATASET = "tatsu-lab/alpaca"
Row = tuple[str, dict]  # (where: "file:line" or "dataset/split row n", the row)
GLOB_CHARACTERS = "*?["


def expand_data_files(patterns: Sequence[str | Path] | None) -> tuple[str, ...] | None:
    """The files named by ``patterns``: plain paths as given, glob patterns expanded (sorted, so a build
    reads them in a stable order), repeats dropped.

    Args:
        patterns: file paths and/or glob patterns such as ``flan/rte_10templates/*.jsonl``; ``None`` or
            empty means "no local files".

    Returns:
        The paths, or ``None`` when no pattern was given.

    Raises:
        CorpusError: a pattern that matches no file, or a plain path that does not exist.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("b.jsonl", "a.jsonl"): _ = (folder / name).write_text("{}\\n")
        >>> [pathlib.Path(p).name for p in expand_data_files([str(folder / "*.jsonl")])]
        ['a.jsonl', 'b.jsonl']
    """
    if not patterns:
        return None
    files: dict[str, None] = {}  # ordered set
    for pattern in map(str, patterns):
        if any(char in pattern for char in GLOB_CHARACTERS):
            matches = sorted(glob.glob(pattern, recursive=True))
            matches = [m for m in matches if Path(m).is_file()]
            if not matches:
                raise CorpusError(f"{pattern}: no file matches this pattern (data files)")
            files.update(dict.fromkeys(matches))
        elif not Path(pattern).is_file():
            raise CorpusError(f"{pattern}: file not found (data files)")
        else:
            files[pattern] = None
    return tuple(files)


def read_rows(path: str | Path, max_rows: int | None = None) -> Iterator[Row]:
    """Stream the rows of a local JSONL, JSON, CSV/TSV or Parquet file as ``(where, row)`` pairs.

    Args:
        path: the file; its suffix picks the format (``.json`` holds JSON lines or one array of objects).
        max_rows: stop after this many rows.

    Returns:
        An iterator; ``where`` is ``file:line`` (text formats) or ``file row n`` (Parquet, 0-based).

    Raises:
        CorpusError: missing file, unknown suffix, malformed JSON, a row that is not an object.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "rows.csv"
        >>> _ = f.write_text("instruction,output\\nSay hi,hi\\n")
        >>> [(where.split("/")[-1], row) for where, row in read_rows(f)]
        [('rows.csv:2', {'instruction': 'Say hi', 'output': 'hi'})]
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in ROW_FILE_TYPES:
        raise CorpusError(f"{path}: unsupported file type {suffix!r} (use {', '.join(ROW_FILE_TYPES)})")
    reader = {".parquet": _parquet_rows, ".csv": _csv_rows, ".tsv": _csv_rows}.get(suffix, _json_rows)
    for count, (where, row) in enumerate(reader(path)):
        if max_rows is not None and count >= max_rows:
            return
        if not isinstance(row, dict):
            raise CorpusError(f"{where}: each row must be a JSON object with named fields")
        yield where, row


def _json_rows(path: Path) -> Iterator[Row]:
    with path.open("rb") as handle:
        first = handle.read(64).lstrip()
    if path.suffix.lower() == ".json" and first.startswith(b"["):
        data = json.loads(read_corpus_text(path))
        yield from ((f"{path}[{index}]", row) for index, row in enumerate(data))
        return
    with path.open("r", encoding="utf-8", errors="strict") as handle:  # streamed: files may be large
        line_no = 0
        try:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield f"{path}:{line_no}", json.loads(line)
                except json.JSONDecodeError as err:
                    raise CorpusError(f"{path}:{line_no}: invalid JSON: {err.msg}") from None
        except UnicodeDecodeError:
            raise CorpusError(f"{path}:{line_no + 1}: not valid UTF-8") from None


def _csv_rows(path: Path) -> Iterator[Row]:
    import csv

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open("r", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        for row in reader:
            yield f"{path}:{reader.line_num}", dict(row)


def _parquet_rows(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(str(path))
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise CorpusError(f"{path}: not a readable Parquet file ({err})") from None
    index = 0
    for batch in table.iter_batches(batch_size=4096):  # streamed in batches
        for row in batch.to_pylist():
            yield f"{path} row {index}", row
            index += 1


def read_hub_rows(
    dataset: str, config_name: str | None = None, split: str = "train", max_rows: int | None = None
) -> Iterator[Row]:
    """Stream the rows of a Hugging Face Hub dataset (nothing is downloaded in full).

    Args:
        dataset: Hub id such as ``tatsu-lab/alpaca`` (or a local folder ``datasets`` can read).
        config_name: the dataset's config, if it has several.
        split: the split to read.
        max_rows: stop after this many rows.

    Raises:
        CorpusError: the dataset, config or split cannot be read (no network, wrong name).
    """
    import datasets

    label = f"{dataset}" + (f"[{config_name}]" if config_name else "") + f"/{split}"
    try:
        stream = datasets.load_dataset(dataset, config_name, split=split, streaming=True)
        for index, row in enumerate(stream):
            if max_rows is not None and index >= max_rows:
                return
            yield f"{label} row {index}", dict(row)
    except CorpusError:
        raise
    except Exception as err:  # network, missing repo/config/split: one clear line for the CLI
        raise CorpusError(f"{label}: cannot read the dataset ({type(err).__name__}: {err})") from None


def parse_column_map(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """Parse ``ours=theirs`` pairs (comma-separated) or a JSON object into ``{our_name: their_column}``.

    Example:
        >>> parse_column_map("input=context,output=response")
        {'input': 'context', 'output': 'response'}
    """
    if text is None or text == "":
        return {}
    if isinstance(text, Mapping):
        return {str(k): str(v) for k, v in text.items()}
    if text.lstrip().startswith("{"):
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as err:
            raise CorpusError(f"--column-map: invalid JSON: {err.msg}") from None
        return parse_column_map(mapping)
    mapping = {}
    for part in text.split(","):
        ours, sep, theirs = part.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise CorpusError(f"--column-map: expected ours=theirs pairs separated by commas, got {part!r}")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def apply_column_map(rows: Iterable[Row], column_map: Mapping[str, str] | None) -> Iterator[Row]:
    """Rename columns: ``row[ours] = row[theirs]`` for each pair of ``column_map``; other columns pass through.

    Raises:
        CorpusError: a mapped column is missing from a row (named with the row's location).
    """
    if not column_map:
        yield from rows
        return
    for where, row in rows:
        missing = [theirs for theirs in column_map.values() if theirs not in row]
        if missing:
            raise CorpusError(f"{where}: column {missing[0]!r} (from --column-map) is missing; has: {', '.join(row)}")
        renamed = {ours: row[theirs] for ours, theirs in column_map.items()}
        yield where, {**row, **renamed}


def external_rows(
    data_files: Sequence[str | Path] | None = None,
    dataset: str | None = None,
    config_name: str | None = None,
    split: str = "train",
    column_map: Mapping[str, str] | None = None,
    max_rows: int | None = None,
) -> Iterator[Row]:
    """Rows from local files (read in order) or else from a Hub dataset, with the column map applied.

    Raises:
        CorpusError: neither files nor a dataset were given.
    """
    if data_files:
        rows: Iterable[Row] = (row for path in data_files for row in read_rows(path))
    elif dataset:
        rows = read_hub_rows(dataset, config_name, split)
    else:
        raise CorpusError("no rows: give --data-files FILE... or --dataset HUB_ID")
    for count, row in enumerate(apply_column_map(rows, column_map)):
        if max_rows is not None and count >= max_rows:
            return
        yield row
