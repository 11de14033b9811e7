"""FLAN-format sources: rows of already rendered ``inputs`` + ``targets``, templates recovered by induction.

The FLAN collection on the Hub (``Muennighoff/flan``: one JSONL file per task and split, e.g.
``train/rte_10templates_train.jsonl``, rows ``{"inputs", "targets", "task"}``) ships prompts that are
already rendered: each row is one instance filled into one of the task's (up to 10) templates. To
paraphrase an *instruction* we need the template back. Instead of one hand-written regex per FLAN
template, :func:`induce_templates` recovers them from the rows themselves:

1. the ``OPTIONS:`` block (``OPTIONS:\\n- a\\n- b``) is set aside as one token;
2. rows are clustered by alignment: the text two rows of one template share is that template's
   instruction, the parts that differ are slots (``difflib`` matching blocks on word tokens);
3. each cluster is cleaned: a "slot" whose value is nearly constant is instruction text (odd rows are
   noise), a slot with a few recurring values marks two templates that differ by a word (split);
4. templates seen in fewer than ``min_support`` sampled rows are not trusted;
5. every row (not only the sample) is matched against the recovered templates; slots of different
   templates are paired by the statistics of their values (length, question marks) so that one instance
   can be rendered under every template of its task.

Rows that match no recovered template, or leave a slot empty, are counted with their reason and kept as
examples in the :class:`InductionReport` (the dataset card shows them): never dropped silently.

Example:
    >>> rows = [f'Premise: {p}\\nIs it true that "{h}"?\\nOPTIONS:\\n- yes\\n- no' for p, h in
    ...         [("A cat sat.", "a cat sat"), ("Rain fell all day.", "it was dry"), ("Birds sang.", "birds sang"),
    ...          ("The bus came late.", "the bus was late")]]
    >>> [t.text for t in induce_templates(rows, InductionConfig(min_support=2))]
    ['Premise: {premise}\\nIs it true that "{text}"?\\n{options_}']
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from coin_data.flan_induce import (
    _OPT,
    InductionConfig,
    _cluster,
    _literal_words,
    _mask_options,
    _slot_labels,
    _template_text,
    _unique_names,
)
from coin_data.sources import (
    CLASSIFICATION,
    GENERATION,
    Corpus,
    CorpusError,
    Instance,
    Row,
    TaskSpec,
    apply_column_map,
    read_rows,
)
from coin_data.templates import OPTIONS_SLOT, Template, TemplateError, parse_template

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
    """What induction found for one source task."""

    task: str
    rows: int = 0
    recovered: int = 0
    templates: list[tuple[str, str, str, int]] = field(default_factory=list)  # (task, id, text, rows matched)
    unrecovered: Counter = field(default_factory=Counter)  # reason -> rows
    examples: list[UnrecoveredRow] = field(default_factory=list)


@dataclass
class InductionReport:
    """Recovered templates and unrecovered rows of every FLAN task (shown in the dataset card)."""

    tasks: dict[str, TaskInduction] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tasks.values())

    @property
    def recovered(self) -> int:
        return sum(t.recovered for t in self.tasks.values())

    def unrecovered(self) -> Counter:
        """Unrecovered rows per reason over all tasks."""
        total: Counter = Counter()
        for task in self.tasks.values():
            total.update(task.unrecovered)
        return total

    def examples(self) -> list[UnrecoveredRow]:
        return [example for task in self.tasks.values() for example in task.examples]


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


# --- from rows to a corpus ---------------------------------------------------------------------------


@dataclass
class _Matched:
    index: int  # position of the row in its task's input rows (part of the instance id)
    row: FlanRow
    values: list[str]
    options: tuple[str, ...] | None
    block: str | None


def flan_corpus(
    rows_by_task: Mapping[str, Sequence[FlanRow]], config: InductionConfig | None = None
) -> Corpus:
    """Induce templates per task, match every row, and return the tasks, instances and report.

    Args:
        rows_by_task: rows grouped by task (from :func:`read_flan_files` or :func:`read_flan_hub`).
        config: induction settings.

    Returns:
        A :class:`~coin_data.sources.Corpus` whose ``induction`` is the :class:`InductionReport`. Templates
        of one task that use a different number of slots become a separate task ``<task>_<n>slot``
        (an instance must fill every template of its task).

    Raises:
        CorpusError: no task has a recoverable template.
    """
    config = config or InductionConfig()
    report = InductionReport()
    corpus = Corpus(tasks={}, induction=report)
    for name, rows in rows_by_task.items():
        info = report.tasks.setdefault(name, TaskInduction(name))
        info.rows = len(rows)
        for spec, instances in _task_corpus(name, rows, config, info):
            corpus.tasks[spec.name] = spec
            corpus.instances[spec.name] = instances
    if not corpus.tasks:
        counts = ", ".join(f"{reason} {n}" for reason, n in report.unrecovered().items())
        raise CorpusError(f"no FLAN template could be recovered from {report.rows} rows ({counts})")
    corpus.tasks = dict(sorted(corpus.tasks.items()))
    corpus.instances = {name: corpus.instances[name] for name in corpus.tasks}
    return corpus


def _task_corpus(name: str, rows: Sequence[FlanRow], config: InductionConfig, info: TaskInduction):
    def reject(row: FlanRow, reason: str) -> None:
        info.unrecovered[reason] += 1
        if sum(1 for e in info.examples if e.reason == reason) < config.examples_per_reason:
            info.examples.append(UnrecoveredRow(name, row.where, reason, row.inputs))

    usable, masked_all, extras = [], [], []
    for position, row in enumerate(rows):
        masked, options, blocks = _mask_options(row.inputs)
        if not row.inputs.strip() or not row.targets.strip():
            reject(row, EMPTY_INPUTS)
        elif len(blocks) > 1:
            reject(row, MULTIPLE_OPTIONS)
        else:
            usable.append((position, row))
            masked_all.append(masked)
            extras.append((options[0] if options else None, blocks[0] if blocks else None))
    clusters = _cluster(masked_all, config) if masked_all else []
    # most specific first: a template with more literal text wins when two could match
    order = sorted(range(len(clusters)), key=lambda c: -_literal_words(clusters[c].skeleton))
    matched: dict[int, list[_Matched]] = defaultdict(list)
    for (position, row), masked, (options, block) in zip(usable, masked_all, extras):
        for c in order:
            m = clusters[c].pattern.fullmatch(masked)
            if m is None:
                continue
            values = list(m.groups())
            if any(not v.strip() for v in values):
                reject(row, EMPTY_FIELD)
            else:
                matched[c].append(_Matched(position, row, values, options, block))
            break
        else:
            reject(row, NO_TEMPLATE_MATCH)
    all_matches = [m for ms in matched.values() for m in ms]
    fixed = _fixed_options(all_matches)
    # an instance must fill every template of its task: templates with another slot count (or with
    # per-row options where others have none) form a task of their own
    groups: dict[tuple[int, bool], list[int]] = defaultdict(list)
    for c in range(len(clusters)):
        if matched.get(c):
            groups[(clusters[c].gaps, fixed is None and _OPT in clusters[c].skeleton)].append(c)
    if not groups:
        return
    main = max(groups, key=lambda g: sum(len(matched[c]) for c in groups[g]))
    for key, members in sorted(groups.items()):
        task = name if key == main else f"{name}_{key[0]}slot" + ("_options" if key[1] else "")
        spec, instances = _group_spec(task, members, clusters, matched, fixed, info)
        info.recovered += len(instances)
        yield spec, instances


def _fixed_options(matches: Sequence[_Matched]) -> tuple[str, ...] | None:
    """The task's answer set when every options block is the same and every target is one of it."""
    seen = {m.options for m in matches if m.options is not None}
    if len(seen) != 1:
        return None
    options = next(iter(seen))
    if len(options) < 2 or any(m.options is not None and m.row.targets.strip() not in options for m in matches):
        return None
    return options


def _group_spec(task, members, clusters, matched, fixed, info) -> tuple[TaskSpec, list[Instance]]:
    members = sorted(members, key=lambda c: -len(matched[c]))
    canonical = members[0]
    reference = _slot_features(matched[canonical])
    mappings = {
        c: list(range(len(reference))) if c == canonical else _pair_slots(_slot_features(matched[c]), reference)
        for c in members
    }
    # name each canonical slot by the label most templates write before it ("Premise:"), else "text"
    votes: list[Counter] = [Counter() for _ in reference]
    for c in members:
        for slot, label in zip(mappings[c], _slot_labels(clusters[c].skeleton)):
            if label is not None and slot < len(votes):
                votes[slot][label] += 1
    names = _unique_names([v.most_common(1)[0][0] if v else None for v in votes])
    templates: list[Template] = []
    instances: list[Instance] = []
    for index, c in enumerate(members):
        skeleton = clusters[c].skeleton
        slot_names = [names[j] for j in mappings[c]]
        options_slot = OPTIONS_SLOT if fixed is not None else "options"
        text = _template_text(skeleton, slot_names, options_slot)
        template_id = f"t{index}"
        try:
            template = parse_template(text, task, template_id)
        except TemplateError as err:  # cannot happen for induced text; fail loudly if it does
            raise CorpusError(f"task {task!r}: induced template is invalid: {err}") from None
        templates.append(template)
        info.templates.append((task, template_id, text, len(matched[c])))
        for m in matched[c]:
            fields = dict(zip(slot_names, m.values))
            if fixed is None and m.block is not None:
                fields["options"] = m.block
            inst_id = f"{task}-{m.index:06d}"  # the row's position among its task's input rows
            instances.append(Instance(inst_id, task, fields, m.row.targets.strip(), group=inst_id))
    uses_options = fixed is None and any("options" in t.field_slots for t in templates)
    all_fields = tuple(dict.fromkeys([*names, *(["options"] if uses_options else [])]))
    spec = TaskSpec(
        name=task,
        kind=CLASSIFICATION if fixed is not None else GENERATION,
        description=f"FLAN task {task} (templates recovered by induction)",
        fields=all_fields,
        options=tuple(fixed or ()),
        target=parse_template("{target}", task, "target"),
        templates=tuple(templates),
    )
    return spec, instances


def _slot_features(matches: Sequence[_Matched]) -> list[tuple[float, float, float]]:
    """Per slot: mean log length, share ending in '?', mean line count (what tells fields apart)."""
    if not matches:
        return []
    features = []
    for slot in range(len(matches[0].values)):
        values = [m.values[slot] for m in matches]
        features.append((
            sum(math.log1p(len(v)) for v in values) / len(values),
            sum(v.rstrip().endswith("?") for v in values) / len(values) * 3,
            sum(v.count("\n") for v in values) / len(values),
        ))
    return features


def _pair_slots(features: Sequence[tuple], reference: Sequence[tuple]) -> list[int]:
    """For each slot of a template, the canonical slot whose values look most alike (an injective map)."""
    n, m = len(features), len(reference)
    if n == 0:
        return []
    if n > m or m > 7:
        return list(range(n)) if n <= m else list(range(m)) + list(range(m, n))

    def cost(assign: Sequence[int]) -> float:
        return sum(sum((a - b) ** 2 for a, b in zip(features[i], reference[j])) for i, j in enumerate(assign))

    return list(min(itertools.permutations(range(m), n), key=cost))


def load_flan_corpus(
    data_files: Sequence[str | Path] | None = None,
    tasks: Sequence[str] | None = None,
    dataset: str | None = None,
    config_name: str | None = None,
    split: str = "train",
    column_map: Mapping[str, str] | None = None,
    max_rows: int | None = None,
    induction: InductionConfig | None = None,
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

    Returns:
        The corpus; ``corpus.induction`` holds the :class:`InductionReport`.

    Example:
        >>> load_flan_corpus()
        Traceback (most recent call last):
        ...
        coin_data.sources.CorpusError: --source flan needs --data-files FILE... or --tasks (e.g. rte,cola) to read Muennighoff/flan from the Hub
    """
    if data_files:
        rows = read_flan_files(data_files, tasks, column_map, max_rows)
    elif dataset is None or dataset == FLAN_REPO:
        if not tasks:
            raise CorpusError(
                "--source flan needs --data-files FILE... or --tasks (e.g. rte,cola) to read Muennighoff/flan from the Hub"
            )
        rows = read_flan_hub(tasks, split, FLAN_REPO, max_rows, column_map)
    else:
        from coin_data.sources import read_hub_rows

        located = apply_column_map(read_hub_rows(dataset, config_name, split), column_map)
        rows = read_flan_rows(located, tasks, max_rows, default_task=task_name(dataset.split("/")[-1]))
    return flan_corpus(rows, induction)
