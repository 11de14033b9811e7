"""Reading the project's small UTF-8 text and JSONL input files, with errors that name file and line.

Every command that reads a user's file (``coin-data verify``, ``coin-data perturb``, the corpus and
templates sources) goes through these functions, each raising its own error class, so a missing
file, a non-UTF-8 byte or a broken JSON line is reported the same way everywhere.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
    >>> _ = path.write_text('{"a": 1}\\n\\n[2]\\n', encoding="utf-8")
    >>> list(read_jsonl(path, ValueError))
    [(1, {'a': 1}), (3, [2])]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator


def read_text(path: str | Path, error: type[Exception]) -> str:
    """The whole file as UTF-8 text.

    Raises:
        error: ``<path>: file not found``, or ``<path>:<line>: not valid UTF-8 (byte N)``.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not valid UTF-8 (byte {err.start})") from None


def read_jsonl(path: str | Path, error: type[Exception]) -> Iterator[tuple[int, object]]:
    """``(line number, parsed value)`` for every non-blank line of a JSONL file (values of any JSON type).

    Raises:
        error: as :func:`read_text`, or ``<path>:<line>: invalid JSON: <reason>``.
    """
    for line_no, line in enumerate(read_text(path, error).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as err:
            raise error(f"{path}:{line_no}: invalid JSON: {err.msg}") from None


def read_jsonl_objects(path: str | Path, error: type[Exception]) -> Iterator[tuple[str, int, dict]]:
    """``(where, line number, object)`` for every non-blank line of a JSONL file of objects, at least one.

    ``where`` is ``<path>:<line>``, the prefix of the caller's own errors about the row's fields.

    Raises:
        error: as :func:`read_jsonl`, ``<path>:<line>: each line must be a JSON object``, or, after the last
            line, ``<path>: no rows (the file is empty)``.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
        >>> _ = path.write_text('{"a": 1}\\n', encoding="utf-8")
        >>> [(where.endswith("rows.jsonl:1"), row) for where, _, row in read_jsonl_objects(path, ValueError)]
        [(True, {'a': 1})]
    """
    found = False
    for line_no, row in read_jsonl(path, error):
        where = f"{path}:{line_no}"
        if not isinstance(row, dict):
            raise error(f"{where}: each line must be a JSON object")
        found = True
        yield where, line_no, row
    if not found:
        raise error(f"{path}: no rows (the file is empty)")
