"""Alpaca-style rows: each instruction is a template without slots of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from coin_data.sources.embedded import (
    GENERATION,
    TASK_NAME,
    Corpus,
    CorpusError,
    Instance,
    TaskSpec,
    corpus_template,
)
from coin_data.sources.rows import Row
from coin_data.templates import parse_template

# --- Alpaca-style rows: each instruction is a template without slots of its own ------------


def alpaca_corpus(rows: Iterable[Row], prefix: str = "alpaca") -> Corpus:
    """Turn ``instruction`` / ``input`` / ``output`` rows into tasks and instances.

    Each distinct instruction is its own task (``<prefix>_<hash>``) with one template: the instruction
    text, followed by ``{input}`` on a new paragraph when the row has an input (Alpaca's prompt places the
    input after the instruction). Rows repeating an instruction become instances of the same task, so
    the paper's same-template negatives exist only for repeated instructions; mined negatives
    (``--mine-negatives``) supply the rest.

    Args:
        rows: ``(where, row)`` pairs, already column-mapped.
        prefix: task name prefix (``[a-z0-9_]+``).

    Raises:
        CorpusError: a row without a non-empty ``instruction`` or ``output`` (named by file and row).

    Example:
        >>> corpus = alpaca_corpus([("r1", {"instruction": "Add the numbers.", "input": "2, 3", "output": "5"}),
        ...                         ("r2", {"instruction": "Name a colour.", "output": "Blue"})])
        >>> sorted(spec.templates[0].text for spec in corpus.tasks.values())
        ['Add the numbers.\\n\\n{input}', 'Name a colour.']
    """
    import hashlib

    if not TASK_NAME.match(prefix):
        raise CorpusError(f"task prefix must match [a-z0-9_]+, got {prefix!r}")
    corpus = Corpus(tasks={})
    order: list[str] = []
    for number, (where, row) in enumerate(rows):
        instruction, output = row.get("instruction"), row.get("output")
        for name, value in (("instruction", instruction), ("output", output)):
            if not isinstance(value, str) or not value.strip():
                raise CorpusError(f"{where}: field {name!r} is missing or not a non-empty string")
        given = row.get("input")
        if given is not None and not isinstance(given, str):
            raise CorpusError(f"{where}: field 'input' must be a string")
        given = (given or "").strip()
        key = hashlib.sha1(f"{instruction}\x1f{bool(given)}".encode("utf-8")).hexdigest()[:12]
        name = f"{prefix}_{key}"
        if name not in corpus.tasks:
            text = instruction.strip().replace("{", "{{").replace("}", "}}") + ("\n\n{input}" if given else "")
            template = corpus_template(text, name, "t0", Path(where), allowed=None)
            corpus.tasks[name] = TaskSpec(
                name=name,
                kind=GENERATION,
                description=instruction.strip()[:200],
                fields=("input",) if given else (),
                options=(),
                target=parse_template("{output}", name, "target"),
                templates=(template,),
            )
            corpus.instances[name] = []
            order.append(name)
        row_id = row.get("id")
        inst_id = f"{name}-{row_id}" if isinstance(row_id, (str, int)) and row_id != "" else f"{name}-{number:07d}"
        fields = {"input": given} if given else {}
        corpus.instances[name].append(Instance(inst_id, name, fields, output, group=inst_id))
    if not order:
        raise CorpusError("no rows: the Alpaca-style source is empty")
    corpus.tasks = {name: corpus.tasks[name] for name in sorted(corpus.tasks)}
    corpus.instances = {name: corpus.instances[name] for name in sorted(corpus.instances)}
    return corpus
