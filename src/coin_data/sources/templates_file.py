"""A templates file (the corpus ``<task>.yaml`` format) applied to any rows."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from coin_data.sources.embedded import (
    Corpus,
    CorpusError,
    TaskSpec,
    instances_from_rows,
    parse_task_spec,
    read_yaml,
)
from coin_data.sources.rows import Row

# --- templates files: the embedded corpus format applied to any rows --------------------


def load_templates_file(path: str | Path) -> list[TaskSpec]:
    """Read a templates file: one task mapping (the ``<task>.yaml`` format) or ``{tasks: [mapping, ...]}``.

    YAML and JSON both work (JSON is YAML). See ``docs/sources.md`` for an example.

    Raises:
        CorpusError: malformed file or task; the message names the file and the field.
    """
    path = Path(path)
    raw = read_yaml(path)
    entries = raw.get("tasks") if "tasks" in raw else [raw]
    if not isinstance(entries, list) or not entries:
        raise CorpusError(f"{path}: field 'tasks' must be a non-empty list of task mappings")
    specs = [parse_task_spec(entry, path) for entry in entries]
    names = [spec.name for spec in specs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise CorpusError(f"{path}: duplicate task name {duplicated[0]!r}")
    return specs


def templates_corpus(specs: Sequence[TaskSpec], rows: Iterable[Row], tasks: Sequence[str] | None = None) -> Corpus:
    """Apply task specs to rows: each row becomes an instance of its task.

    With one task every row belongs to it; with several, each row names its task in a ``task`` column.
    Rows need every field of their task and the fields of its target template (see
    :func:`instances_from_rows`); an ``id`` column is used when present.

    Raises:
        CorpusError: a row without a known task, a missing field, a label outside the answer set, no rows.
    """
    by_name = {spec.name: spec for spec in specs}
    if tasks is not None:
        unknown = [t for t in tasks if t not in by_name]
        if unknown:
            raise CorpusError(f"unknown task(s) {', '.join(unknown)} (templates file has: {', '.join(by_name)})")
        by_name = {name: by_name[name] for name in tasks}
    only = next(iter(by_name)) if len(specs) == 1 else None
    grouped: dict[str, list[Row]] = {name: [] for name in by_name}
    for where, row in rows:
        name = only or row.get("task")
        if name not in by_name:
            if only is None and name not in {s.name for s in specs}:
                raise CorpusError(f"{where}: field 'task': {name!r} is not a task of the templates file "
                                  f"({', '.join(s.name for s in specs)})")
            continue  # a task that was not asked for
        grouped[name].append((where, row))
    corpus = Corpus(tasks={})
    seen: dict[str, str] = {}
    for name in sorted(grouped):
        instances = instances_from_rows(grouped[name], by_name[name], seen, require_id=False)
        if not instances:
            raise CorpusError(f"task {name!r}: no rows")
        corpus.tasks[name] = by_name[name]
        corpus.instances[name] = instances
    return corpus
