"""FLAN-format sources: rows of already rendered ``inputs`` + ``targets``, their templates recovered.

The FLAN collection on the Hub (``Muennighoff/flan``: one JSONL file per task and split, e.g.
``train/rte_10templates_train.jsonl``, rows ``{"inputs", "targets", "task"}``) ships prompts that are
already rendered: each row is one instance filled into one of the task's (up to 10) templates. To
paraphrase an *instruction* we need the template back:

1. where the collection's own template list is given (``patterns``, e.g. FLAN's ``templates.py`` read by
   :mod:`coin_data.sources.flan_patterns`), rows are matched against it exactly;
2. the other rows are clustered by alignment (:mod:`coin_data.sources.flan_induce`): the text rows of one template
   share is its instruction, the parts that differ are slots; a stock phrase that many values of a field
   carry is told from template text by the rows of other templates (:mod:`coin_data.sources.flan_stock`);
3. the slot edges are settled (:mod:`coin_data.sources.flan_edges`): text every value shares at a slot edge is
   given to the template or to the field on evidence from the task's other templates; a slot boundary
   never splits a token on a guess, and an edge the rows cannot decide makes the template *ambiguous*;
4. every row is matched against the templates; slots of different templates are paired by the look of
   their values so that one instance can be rendered under every template of its task
   (:mod:`coin_data.sources.flan_assemble`).

Rows that match no template, or leave a slot empty, are counted with their reason and kept as examples
in the :class:`InductionReport` (the dataset card shows them); rows under an ambiguous template are kept
but counted apart from the exact recoveries, with the template and why: never accepted silently.

Example:
    >>> rows = [f'Premise: {p}\\nIs it true that "{h}"?\\nOPTIONS:\\n- yes\\n- no' for p, h in
    ...         [("A cat sat.", "a cat sat"), ("Rain fell all day.", "it was dry"), ("Birds sang.", "birds sang"),
    ...          ("The bus came late.", "the bus was late")]]
    >>> [t.text for t in induce_templates(rows, InductionConfig(min_support=2))]
    ['Premise: {premise}\\nIs it true that "{text}"?\\n{options_}']
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coin_data.sources.flan_assemble import (
    PATTERNS,
    Matched,
    Recovered,
    RecoveredTemplate,
    assemble,
    pair_fields,
    texts_of,
)
from coin_data.sources.flan_edges import adjacent_word_notes, field_text_notes, recurring_edge_notes, settle_edges
from coin_data.sources.flan_induce import InductionConfig, _cluster
from coin_data.sources.flan_patterns import Pattern, load_patterns_file, match_row, place
from coin_data.sources.flan_skeleton import _mask_options
from coin_data.sources.flan_stock import stock_text_notes
from coin_data.sources.embedded import Corpus, CorpusError
from coin_data.sources.rows import Row, apply_column_map, read_rows
from coin_data.templates import Template, parse_template

FLAN_REPO = "Muennighoff/flan"
# Short names users type -> the file names of Muennighoff/flan (``<name>_10templates_<split>.jsonl``).
FLAN_ALIASES = {"mrpc": "glue_mrpc", "qqp": "glue_qqp", "boolq": "bool_q", "mnli": "mnli_matched", "imdb": "imdb_reviews"}

NO_TEMPLATE_MATCH = "no_template_match"
EMPTY_FIELD = "empty_field"
EMPTY_INPUTS = "empty_inputs_or_targets"
MULTIPLE_OPTIONS = "multiple_options_blocks"

_SPLIT_SUFFIX = re.compile(r"_(train|validation|test)$")

@dataclass(frozen=True)
class FlanRow:
    """One rendered FLAN row and where it came from (``file:line`` or ``repo/file row n``)."""

    inputs: str
    targets: str
    where: str


@dataclass(frozen=True)
class UnrecoveredRow:
    """A row whose template could not be recovered, kept as an example for the card."""

    task: str
    where: str
    reason: str
    inputs: str


@dataclass
class TaskInduction:
    """What template recovery found for one source task."""

    task: str
    rows: int = 0
    recovered: int = 0  # rows recovered exactly: an unambiguous template and an unambiguous split
    ambiguous: int = 0  # rows kept under an ambiguous template or with an ambiguous split (reported)
    templates: list[RecoveredTemplate] = field(default_factory=list)
    unrecovered: Counter = field(default_factory=Counter)  # reason -> rows
    examples: list[UnrecoveredRow] = field(default_factory=list)
    row_template: dict[str, str] = field(default_factory=dict)  # instance id -> template id it was read with
    derived: dict[str, str] = field(default_factory=dict)  # built task name -> this task


@dataclass
class InductionReport:
    """Recovered templates, ambiguous ones and unrecovered rows of every FLAN task (shown in the card)."""

    tasks: dict[str, TaskInduction] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tasks.values())

    @property
    def recovered(self) -> int:
        """Rows recovered exactly (unambiguous template and split)."""
        return sum(t.recovered for t in self.tasks.values())

    @property
    def ambiguous(self) -> int:
        """Rows kept under an ambiguous template or split."""
        return sum(t.ambiguous for t in self.tasks.values())

    def ambiguous_templates(self) -> list[RecoveredTemplate]:
        return [entry for task in self.tasks.values() for entry in task.templates if entry.ambiguous]

    def templates(self) -> list[RecoveredTemplate]:
        return [entry for task in self.tasks.values() for entry in task.templates]

    def unrecovered(self) -> Counter:
        """Unrecovered rows per reason over all tasks."""
        total: Counter = Counter()
        for task in self.tasks.values():
            total.update(task.unrecovered)
        return total

    def examples(self) -> list[UnrecoveredRow]:
        return [example for task in self.tasks.values() for example in task.examples]

    def base_task(self, task: str) -> str:
        """The source task a built task came from (``rte_1slot`` -> ``rte``)."""
        for info in self.tasks.values():
            if task in info.derived:
                return info.task
        return task

    def template_of(self, instance_id: str) -> str | None:
        """The id of the template an instance's row was read with."""
        for info in self.tasks.values():
            if instance_id in info.row_template:
                return info.row_template[instance_id]
        return None


# --- reading ---------------------------------------------------------------------------------------


def task_name(name: str) -> str:
    """Our task name for a FLAN config or file stem: ``rte_10templates_train`` -> ``rte``.

    Example:
        >>> task_name("glue_mrpc_10templates_validation"), task_name("CoLA")
        ('glue_mrpc', 'cola')
    """
    name = _SPLIT_SUFFIX.sub("", Path(name).name.split(".")[0]).lower()
    name = re.sub(r"_\d+templates$", "", name)
    return re.sub(r"[^a-z0-9_]+", "_", name).strip("_") or "flan"


def hub_file(task: str, split: str = "train") -> str:
    """Path of one task's file inside ``Muennighoff/flan``.

    Example:
        >>> hub_file("mrpc")
        'train/glue_mrpc_10templates_train.jsonl'
    """
    config = task if re.search(r"_\d+templates$", task) else f"{FLAN_ALIASES.get(task, task)}_10templates"
    return f"{split}/{config}_{split}.jsonl"


def read_flan_files(
    paths: Sequence[str | Path],
    tasks: Sequence[str] | None = None,
    column_map: Mapping[str, str] | None = None,
    max_rows: int | None = None,
) -> dict[str, list[FlanRow]]:
    """Group the rows of local FLAN-format files by task.

    Args:
        paths: JSONL/JSON/CSV/Parquet files with ``inputs`` and ``targets`` (after ``column_map``); the task
            comes from a ``task`` column when present, else from the file name (``rte_10templates_train``).
        tasks: keep only these tasks (``None`` keeps all).
        column_map: ``{our_name: their_column}``, e.g. ``{"inputs": "source", "targets": "target"}``.
        max_rows: keep at most this many rows per task.

    Returns:
        ``task -> rows`` in file order.

    Raises:
        CorpusError: unreadable file, a row without ``inputs`` / ``targets`` strings, a requested task
            that has no rows.
    """
    grouped: dict[str, list[FlanRow]] = defaultdict(list)
    wanted = None if tasks is None else {task_name(t) for t in tasks}
    for path in paths:
        default_task = task_name(str(path))
        for where, row in apply_column_map(read_rows(path), column_map):
            name = task_name(str(row["task"])) if isinstance(row.get("task"), str) and row["task"] else default_task
            if wanted is not None and name not in wanted:
                continue
            if max_rows is not None and len(grouped[name]) >= max_rows:
                continue
            grouped[name].append(_flan_row(where, row))
    _check_tasks(grouped, wanted, ", ".join(map(str, paths)))
    return dict(sorted(grouped.items()))


def read_flan_hub(
    tasks: Sequence[str],
    split: str = "train",
    repo: str = FLAN_REPO,
    max_rows: int | None = None,
    column_map: Mapping[str, str] | None = None,
) -> dict[str, list[FlanRow]]:
    """Stream the rows of FLAN tasks from the Hub (``Muennighoff/flan`` by default).

    The repository still holds a loading script, which ``datasets`` no longer runs, so each task's JSONL
    file is read directly (``hf://datasets/<repo>/<split>/<task>_10templates_<split>.jsonl``), streamed.

    Args:
        tasks: task names such as ``rte``, ``cola``, ``mrpc`` (see :data:`FLAN_ALIASES`) or full config
            names such as ``rte_10templates``.
        split: ``train``, ``validation`` or ``test``.
        repo: the dataset repository.
        max_rows: read at most this many rows per task.

    Raises:
        CorpusError: a task file cannot be read (no network, unknown task), naming the file.
    """
    import datasets

    grouped: dict[str, list[FlanRow]] = {}
    for task in tasks:
        path = hub_file(task, split)
        label = f"{repo}/{path}"
        rows: list[FlanRow] = []
        try:
            stream = datasets.load_dataset("json", data_files=f"hf://datasets/{repo}/{path}", split="train",
                                           streaming=True)
            located = ((f"{label} row {index}", dict(row)) for index, row in enumerate(stream))
            for where, row in apply_column_map(located, column_map):
                if max_rows is not None and len(rows) >= max_rows:
                    break
                rows.append(_flan_row(where, row))
        except CorpusError:
            raise
        except Exception as err:  # network, unknown file: one clear line for the CLI
            raise CorpusError(f"{label}: cannot read FLAN task {task!r} ({type(err).__name__}: {err})") from None
        grouped[task_name(task)] = rows
    _check_tasks(grouped, {task_name(t) for t in tasks}, repo)
    return dict(sorted(grouped.items()))


def read_flan_rows(rows: Iterable[Row], tasks: Sequence[str] | None = None, max_rows: int | None = None,
                   default_task: str = "flan") -> dict[str, list[FlanRow]]:
    """Group already-read rows (e.g. a column-mapped Hub dataset) by their ``task`` column."""
    grouped: dict[str, list[FlanRow]] = defaultdict(list)
    wanted = None if tasks is None else {task_name(t) for t in tasks}
    for where, row in rows:
        name = task_name(str(row["task"])) if isinstance(row.get("task"), str) and row["task"] else default_task
        if (wanted is None or name in wanted) and (max_rows is None or len(grouped[name]) < max_rows):
            grouped[name].append(_flan_row(where, row))
    _check_tasks(grouped, wanted, "the dataset")
    return dict(sorted(grouped.items()))


def _flan_row(where: str, row: Mapping) -> FlanRow:
    for name in ("inputs", "targets"):
        if not isinstance(row.get(name), str):
            raise CorpusError(f"{where}: field {name!r} is missing or not a string (FLAN rows need inputs and targets)")
    return FlanRow(row["inputs"], row["targets"], where)


def _check_tasks(grouped: Mapping[str, list], wanted: set[str] | None, source: str) -> None:
    if wanted is not None:
        missing = sorted(wanted - {name for name, rows in grouped.items() if rows})
        if missing:
            raise CorpusError(f"{source}: no rows for task(s) {', '.join(missing)}")
    if not any(grouped.values()):
        raise CorpusError(f"{source}: no FLAN rows found")


def induce_templates(texts: Sequence[str], config: InductionConfig | None = None, task: str = "") -> list[Template]:
    """Recover the templates behind ``texts`` (rendered prompts of one task).

    Args:
        texts: rendered inputs (with their ``OPTIONS:`` blocks).
        config: induction settings.
        task: task name used in the templates.

    Returns:
        The recovered templates, most rows first; slots are named after a ``Label:`` in front of them (else
        ``text``, ``text_2`` ...) and paired across templates; the options block is ``{options_}``.
        (:func:`flan_corpus` also decides fixed versus per-row options and reports ambiguous templates.)
    """
    config = config or InductionConfig()
    rows = [_Row(i, FlanRow(text, "-", f"text {i}"), *_masked(text)) for i, text in enumerate(texts)]
    found = sorted((t for t in _induce(rows, config, lambda row, reason: None) if t.matches),
                   key=lambda t: -len(t.matches))
    info = TaskInduction(task)
    specs = list(assemble(task, found, info))
    by_text = {entry.text.replace("{options}", "{options_}"): entry.rows for entry in info.templates}
    templates = [parse_template(text, task, f"t{i}") for i, text in
                 enumerate(sorted(by_text, key=lambda text: -by_text[text]))]
    return templates if specs else []


def _masked(text: str) -> tuple[str, tuple[str, ...] | None, str | None]:
    masked, options, blocks = _mask_options(text)
    return masked, options[0] if options else None, blocks[0] if blocks else None


# --- from rows to a corpus ---------------------------------------------------------------------------


def flan_corpus(
    rows_by_task: Mapping[str, Sequence[FlanRow]],
    config: InductionConfig | None = None,
    patterns: Mapping[str, Sequence[Pattern]] | None = None,
) -> Corpus:
    """Recover templates per task, match every row, and return the tasks, instances and report.

    Args:
        rows_by_task: rows grouped by task (from :func:`read_flan_files` or :func:`read_flan_hub`).
        config: induction settings.
        patterns: the collection's own templates per task (:func:`~coin_data.sources.flan_patterns.load_patterns_file`);
            rows are matched against them first and induction only sees the rest.

    Returns:
        A :class:`~coin_data.sources.Corpus` whose ``induction`` is the :class:`InductionReport`. Templates
        of one task with other fields become a task of their own (``<task>_<n>slot``, ``<task>_<fields>``,
        ``<task>_induced``): an instance must fill every template of its task.

    Raises:
        CorpusError: no task has a recoverable template.
    """
    config = config or InductionConfig()
    report = InductionReport()
    corpus = Corpus(tasks={}, induction=report)
    for name, rows in rows_by_task.items():
        info = report.tasks.setdefault(name, TaskInduction(name))
        info.rows = len(rows)
        task_patterns = patterns_for(name, patterns) if patterns else []
        for spec, instances in _task_corpus(name, rows, config, info, task_patterns):
            corpus.tasks[spec.name] = spec
            corpus.instances[spec.name] = instances
    if not corpus.tasks:
        counts = ", ".join(f"{reason} {n}" for reason, n in report.unrecovered().items())
        raise CorpusError(f"no FLAN template could be recovered from {report.rows} rows ({counts})")
    corpus.tasks = dict(sorted(corpus.tasks.items()))
    corpus.instances = {name: corpus.instances[name] for name in corpus.tasks}
    return corpus


def patterns_for(task: str, patterns: Mapping[str, Sequence[Pattern]]) -> list[Pattern]:
    """A task's patterns under its own name or the collection's (``glue_mrpc`` -> ``mrpc``).

    Example:
        >>> patterns_for("glue_mrpc", {"mrpc": ["p"]}), patterns_for("rte", {"cola": ["p"]})
        (['p'], [])
    """
    short = {full: alias for alias, full in FLAN_ALIASES.items()}
    for key in (task, short.get(task), task.removeprefix("glue_"), re.sub(r"_(matched|mismatched)$", "", task)):
        if key and key in patterns:
            return list(patterns[key])
    return []


@dataclass
class _Row:
    """A usable row of a task: position, the row, inputs with the options block masked, the block."""

    index: int
    row: FlanRow
    masked: str
    options: tuple[str, ...] | None
    block: str | None


def _task_corpus(name: str, rows: Sequence[FlanRow], config: InductionConfig, info: TaskInduction,
                 patterns: Sequence[Pattern]):
    def reject(row: FlanRow, reason: str) -> None:
        info.unrecovered[reason] += 1
        if sum(1 for e in info.examples if e.reason == reason) < config.examples_per_reason:
            info.examples.append(UnrecoveredRow(name, row.where, reason, row.inputs))

    usable: list[_Row] = []
    for position, row in enumerate(rows):
        masked, options, blocks = _mask_options(row.inputs)
        if not row.inputs.strip() or not row.targets.strip():
            reject(row, EMPTY_INPUTS)
        elif len(blocks) > 1:
            reject(row, MULTIPLE_OPTIONS)
        else:
            usable.append(_Row(position, row, masked, options[0] if options else None, blocks[0] if blocks else None))
    recovered, rest = _match_patterns(patterns, usable, reject) if patterns else ([], usable)
    recovered += _induce(rest, config, reject)
    yield from assemble(name, recovered, info)


def _match_patterns(patterns: Sequence[Pattern], usable: Sequence[_Row], reject) -> tuple[list[Recovered], list[_Row]]:
    """Rows matched exactly by the task's own patterns, and the rows left for induction."""
    recovered = [Recovered(list(p.texts), names=list(p.names), method=PATTERNS) for p in patterns]
    rest = []
    for r in usable:
        found = match_row(patterns, r.masked, r.row.targets)
        if found is None:
            rest.append(r)
            continue
        index, values, ambiguous = found
        if any(not v.strip() for v in values):
            reject(r.row, EMPTY_FIELD)
            continue
        recovered[index].matches.append(Matched(r.index, r.row, values, r.options, r.block, ambiguous))
    return recovered, rest


def _induce(usable: Sequence[_Row], config: InductionConfig, reject) -> list[Recovered]:
    """Induce templates from the rows, settle their slot edges, and match every row against them."""
    stock_notes: list[tuple[list[int], str]] = []
    clusters = _cluster([r.masked for r in usable], config, stock_notes) if usable else []
    if not clusters:
        for r in usable:
            reject(r.row, NO_TEMPLATE_MATCH)
        return []
    templates = [Recovered(texts_of(c.skeleton)) for c in clusters]
    _match_induced(templates, usable, lambda row, reason: None)
    templates = [t for t in templates if t.matches]  # a template more specific ones took every row from
    settled = settle_edges([t.texts for t in templates], [[m.values for m in t.matches] for t in templates],
                           pair_fields)
    templates = [Recovered(texts, notes=notes) for texts, notes in zip(settled.texts, settled.notes)]
    _match_induced(templates, usable, reject)
    templates = [t for t in templates if t.matches]  # settled edges can leave a template without rows
    texts, values = [t.texts for t in templates], [[m.values for m in t.matches] for t in templates]
    fields = pair_fields(values)
    for template, *notes in zip(templates, field_text_notes(texts, values), adjacent_word_notes(texts, values, fields),
                                recurring_edge_notes(values, fields), stock_text_notes(texts, values)):
        template.notes.extend(note for group in notes for note in group if note not in template.notes)
    _attach_notes(templates, [({usable[i].index for i in rows}, note) for rows, note in stock_notes])
    return templates


def _attach_notes(templates: Sequence[Recovered], notes: Sequence[tuple[set[int], str]]) -> None:
    """Give each clustering note to the template that holds most of its rows."""
    for rows, note in notes:
        held = [sum(1 for m in t.matches if m.index in rows) for t in templates]
        if held and max(held) > 0:
            target = templates[held.index(max(held))]
            if note not in target.notes:
                target.notes.append(note)


def _match_induced(templates: list[Recovered], usable: Sequence[_Row], reject) -> None:
    """Match each row against the most specific template that fits (most literal text first)."""
    order = sorted(range(len(templates)), key=lambda t: -templates[t].literal_chars)
    for r in usable:
        for t in order:
            values = place(templates[t].texts, r.masked)
            if values is None:
                continue
            if any(not v.strip() for v in values):
                reject(r.row, EMPTY_FIELD)
            else:
                templates[t].matches.append(Matched(r.index, r.row, values, r.options, r.block))
            break
        else:
            reject(r.row, NO_TEMPLATE_MATCH)


def load_flan_corpus(
    data_files: Sequence[str | Path] | None = None,
    tasks: Sequence[str] | None = None,
    dataset: str | None = None,
    config_name: str | None = None,
    split: str = "train",
    column_map: Mapping[str, str] | None = None,
    max_rows: int | None = None,
    induction: InductionConfig | None = None,
    templates: str | Path | None = None,
) -> Corpus:
    """Read FLAN-format rows (local files, ``Muennighoff/flan``, or another Hub dataset) and induce templates.

    Args:
        data_files: local FLAN-format files; when given, nothing is read from the Hub.
        tasks: tasks to keep; required for ``Muennighoff/flan`` (one file per task).
        dataset: Hub id; ``None`` means ``Muennighoff/flan``. Other datasets are streamed whole and grouped
            by their ``task`` column (use ``column_map`` for other column names).
        config_name: config of another Hub dataset.
        split: the split to read.
        column_map: ``{our_name: their_column}`` for ``inputs``, ``targets``, ``task``.
        max_rows: rows per task to read.
        induction: induction settings.
        templates: the collection's own template list (FLAN's ``templates.py``, or JSON/YAML; see
            :mod:`coin_data.sources.flan_patterns`): rows are matched against it exactly, induction is the fallback.

    Returns:
        The corpus; ``corpus.induction`` holds the :class:`InductionReport`.

    Example:
        >>> load_flan_corpus()
        Traceback (most recent call last):
        ...
        coin_data.sources.embedded.CorpusError: --source flan needs --data-files FILE... or --tasks (e.g. rte,cola) to read Muennighoff/flan from the Hub
    """
    patterns = load_patterns_file(templates) if templates else None
    if data_files:
        rows = read_flan_files(data_files, tasks, column_map, max_rows)
    elif dataset is None or dataset == FLAN_REPO:
        if not tasks:
            raise CorpusError(
                "--source flan needs --data-files FILE... or --tasks (e.g. rte,cola) to read Muennighoff/flan from the Hub"
            )
        rows = read_flan_hub(tasks, split, FLAN_REPO, max_rows, column_map)
    else:
        from coin_data.sources.rows import read_hub_rows

        located = apply_column_map(read_hub_rows(dataset, config_name, split), column_map)
        rows = read_flan_rows(located, tasks, max_rows, default_task=task_name(dataset.split("/")[-1]))
    return flan_corpus(rows, induction, patterns)
