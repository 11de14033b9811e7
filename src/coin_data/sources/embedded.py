"""Readers that turn instruction data into tasks (templates) and instances (fields + target).

The embedded default corpus is one folder of ``<task>.yaml`` + ``<task>.jsonl`` pairs (see
``coin_data/corpus/README.md``); :func:`load_corpus_dir` reads any folder in that format, so users can
point ``coin-data build --corpus DIR`` at their own tasks.

Example:
    >>> corpus = load_embedded_corpus(tasks=["sentiment"])
    >>> spec = corpus.tasks["sentiment"]
    >>> spec.options
    ('positive', 'negative')
    >>> len(corpus.instances["sentiment"]) >= 40
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from collections.abc import Sequence as SequenceABC
from typing import Iterable, Iterator, Mapping, Sequence

import yaml

from coin_data.jsonl import read_jsonl, read_text
from coin_data.templates import OPTIONS_SLOT, Template, TemplateError, parse_template

CLASSIFICATION = "classification"
GENERATION = "generation"
TASK_NAME = re.compile(r"^[a-z0-9_]+$")


class CorpusError(ValueError):
    """Bad corpus input; the message names the file, and the row and field where known."""


@dataclass(frozen=True)
class TaskSpec:
    """One task: its instruction templates, answer set and target template.

    Attributes:
        name: task name (``[a-z0-9_]+``).
        kind: ``classification`` (fixed answer set) or ``generation``.
        description: one line for humans.
        fields: input field names every instance provides.
        options: the fixed answer set (classification), else ``()``.
        target: template over instance fields giving the expected output.
        templates: training templates.
        heldout_templates: templates reserved for robustness evaluation; never used to build rows.
    """

    name: str
    kind: str
    description: str
    fields: tuple[str, ...]
    options: tuple[str, ...]
    target: Template
    templates: tuple[Template, ...]
    heldout_templates: tuple[Template, ...] = ()


@dataclass(frozen=True)
class Instance:
    """One input of a task.

    Attributes:
        id: unique id within the corpus.
        task: task name.
        fields: the input fields (the slots a template fills).
        target: the expected output.
        group: instances sharing a group always land in the same split (copies made by scaling).
    """

    id: str
    task: str
    fields: Mapping[str, str]
    target: str
    group: str = ""


@dataclass
class Corpus:
    """Tasks and their instances, keyed by task name (in sorted order)."""

    tasks: dict[str, TaskSpec]
    instances: dict[str, Sequence[Instance]] = field(default_factory=dict)  # lists, or ScaledInstances
    # How the tasks were obtained when that needs reporting (FLAN template induction: recovered
    # templates and unrecovered rows, a coin_data.sources.flan.InductionReport); None for hand-written tasks.
    induction: object | None = None

    def scaled(self, factor: int) -> "Corpus":
        """Repeat every instance ``factor`` times under distinct ids (for throughput benchmarks).

        Copies keep the original's ``group`` so they never straddle the train/validation split. They are
        made on access (:class:`ScaledInstances`): memory holds the originals, whatever the factor.
        """
        if factor < 1:
            raise ValueError(f"scale must be >= 1, got {factor}")
        if factor == 1:
            return self
        scaled = {task: ScaledInstances(rows, factor) for task, rows in self.instances.items()}
        return Corpus(tasks=dict(self.tasks), instances=scaled, induction=self.induction)


class ScaledInstances(SequenceABC):
    """``base`` with every instance repeated ``factor`` times in a row, each copy made when it is read.

    Copy ``c`` of an instance is the instance under the id ``<id>~<c>`` (copy 0 keeps the id) and the same
    group; index ``i`` is copy ``i % factor`` of ``base[i // factor]``.

    Example:
        >>> rows = ScaledInstances([Instance("a", "t", {"x": "1"}, "yes", "a")], 3)
        >>> [inst.id for inst in rows], rows[-1].group
        (['a', 'a~1', 'a~2'], 'a')
    """

    def __init__(self, base: Sequence[Instance], factor: int):
        self.base = base
        self.factor = factor

    def __len__(self) -> int:
        return len(self.base) * self.factor

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.copy(self.base[index // self.factor], index % self.factor)

    def __iter__(self) -> Iterator[Instance]:
        for inst in self.base:
            for copy in range(self.factor):
                yield self.copy(inst, copy)

    @staticmethod
    def copy(inst: Instance, copy: int) -> Instance:
        """Copy number ``copy`` of ``inst``."""
        return Instance(f"{inst.id}~{copy}" if copy else inst.id, inst.task, inst.fields, inst.target, inst.group)


def embedded_corpus_dir() -> Path:
    """Folder of the embedded default corpus shipped inside the package."""
    return Path(str(resources.files("coin_data") / "corpus" / "tasks"))


def load_embedded_corpus(tasks: Sequence[str] | None = None) -> Corpus:
    """Load the embedded default corpus (optionally only ``tasks``)."""
    return load_corpus_dir(embedded_corpus_dir(), tasks)


def load_corpus_dir(folder: str | Path, tasks: Sequence[str] | None = None) -> Corpus:
    """Load and validate every ``<task>.yaml`` + ``<task>.jsonl`` pair in ``folder``.

    Args:
        folder: the corpus folder.
        tasks: task names to keep (``None`` keeps all); an unknown name is an error.

    Returns:
        The validated :class:`Corpus`.

    Raises:
        CorpusError: malformed YAML/JSONL, a bad template, a missing field, a label outside the
            answer set, a duplicate id, an empty or non-UTF-8 file; the message names file, row, field.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"{folder}: corpus folder not found")
    available = sorted(p.stem for p in folder.glob("*.yaml"))
    if not available:
        raise CorpusError(f"{folder}: no <task>.yaml files found")
    wanted = list(available) if tasks is None else list(dict.fromkeys(tasks))
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise CorpusError(f"{folder}: unknown task(s) {', '.join(unknown)} (available: {', '.join(available)})")
    corpus = Corpus(tasks={})
    seen_ids: dict[str, str] = {}
    for name in sorted(wanted):
        spec = load_task_spec(folder / f"{name}.yaml")
        corpus.tasks[name] = spec
        corpus.instances[name] = load_instances(folder / f"{name}.jsonl", spec, seen_ids)
    return corpus


def load_task_spec(path: Path) -> TaskSpec:
    """Read and validate one task YAML file (see the corpus README for the format)."""
    raw = read_yaml(path)
    name = _required(raw, "name", str, path)
    if name != path.stem or not TASK_NAME.match(name):
        raise CorpusError(f"{path}: field 'name' must equal the file stem and match [a-z0-9_]+, got {name!r}")
    return parse_task_spec(raw, path)


def parse_task_spec(raw: Mapping, path: Path | str) -> TaskSpec:
    """Validate one task mapping (the ``<task>.yaml`` format) read from ``path`` (named in errors).

    Example:
        >>> spec = parse_task_spec({"name": "echo", "kind": "generation", "fields": ["text"],
        ...                         "target": "{answer}", "templates": [{"id": "t0", "text": "Repeat: {text}"}]},
        ...                        "inline")
        >>> spec.templates[0].slots
        ('text',)
    """
    path = Path(path)
    if not isinstance(raw, Mapping):
        raise CorpusError(f"{path}: each task must be a mapping with name, kind, fields, target, templates")
    name = _required(raw, "name", str, path)
    if not TASK_NAME.match(name):
        raise CorpusError(f"{path}: field 'name' must match [a-z0-9_]+, got {name!r}")
    kind = _required(raw, "kind", str, path)
    if kind not in (CLASSIFICATION, GENERATION):
        raise CorpusError(f"{path}: field 'kind' must be {CLASSIFICATION!r} or {GENERATION!r}, got {kind!r}")
    fields = tuple(_required(raw, "fields", list, path))
    options = tuple(raw.get("options") or ())
    if any(not isinstance(option, str) or not option.strip() for option in options):
        raise CorpusError(
            f"{path}: field 'options' must list non-empty strings, got {list(options)} "
            "(quote answers such as \"yes\" and \"no\": YAML reads them as booleans)"
        )
    if kind == CLASSIFICATION and len(options) < 2:
        raise CorpusError(f"{path}: field 'options' needs at least two answers for a classification task")
    if kind == GENERATION and options:
        raise CorpusError(f"{path}: field 'options' is only allowed for classification tasks")
    target = corpus_template(_required(raw, "target", str, path), name, "target", path, allowed=None)
    templates = _templates(raw.get("templates"), "templates", name, kind, fields, path)
    heldout = _templates(raw.get("heldout_templates") or [], "heldout_templates", name, kind, fields, path)
    if not templates:
        raise CorpusError(f"{path}: field 'templates' must list at least one template")
    ids = [t.template_id for t in templates + heldout]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise CorpusError(f"{path}: duplicate template id {duplicated[0]!r}")
    return TaskSpec(
        name=name,
        kind=kind,
        description=str(raw.get("description", "")),
        fields=fields,
        options=options,
        target=target,
        templates=templates,
        heldout_templates=heldout,
    )


def load_instances(path: Path, spec: TaskSpec, seen_ids: dict[str, str] | None = None) -> list[Instance]:
    """Read and validate the JSONL instances of ``spec``.

    Args:
        path: the ``<task>.jsonl`` file.
        spec: the task the instances belong to.
        seen_ids: ids already used elsewhere (``id -> "file:line"``), updated in place, so ids stay
            unique across the whole corpus.
    """
    rows = ((f"{path}:{line_no}", row) for line_no, row in _read_jsonl(path))
    instances = instances_from_rows(rows, spec, seen_ids)
    if not instances:
        raise CorpusError(f"{path}: no instances (the file is empty)")
    return instances


def instances_from_rows(
    rows: Iterable[tuple[str, object]],
    spec: TaskSpec,
    seen_ids: dict[str, str] | None = None,
    require_id: bool = True,
) -> list[Instance]:
    """Validate rows (``(where, row)`` pairs, ``where`` naming file and row) as instances of ``spec``.

    Args:
        rows: the rows with their location, e.g. from :func:`read_rows`.
        spec: the task they belong to.
        seen_ids: ids already used (``id -> where``), updated in place.
        require_id: an ``id`` field is required; otherwise a missing id becomes ``<task>-<n>``.

    Returns:
        One :class:`Instance` per row. Without ``require_id`` (external data), numbers become strings and for
        a classification task an integer target (or digits, as CSV writes it) indexes ``spec.options``
        (Hub datasets' class labels), unless it is itself one of the options.

    Example:
        >>> spec = parse_task_spec({"name": "yn", "kind": "classification", "fields": ["q"],
        ...     "options": ["yes", "no"], "target": "{label}",
        ...     "templates": [{"id": "t0", "text": "{q}\\n{options_}"}]}, "inline")
        >>> [i.target for i in instances_from_rows([("r1", {"q": "Sky blue?", "label": 0})], spec, require_id=False)]
        ['yes']
    """
    seen_ids = {} if seen_ids is None else seen_ids
    target_fields = spec.target.field_slots
    instances = []
    for number, (where, row) in enumerate(rows):
        if not isinstance(row, Mapping):
            raise CorpusError(f"{where}: each row must be a JSON object with named fields")
        inst_id = row.get("id")
        if not require_id and (inst_id is None or inst_id == ""):
            inst_id = f"{spec.name}-{number:06d}"
        elif isinstance(inst_id, int) and not isinstance(inst_id, bool) and not require_id:
            inst_id = f"{spec.name}-{inst_id}"
        if not isinstance(inst_id, str) or not inst_id:
            raise CorpusError(f"{where}: field 'id' must be a non-empty string")
        if inst_id in seen_ids:
            raise CorpusError(f"{where}: field 'id': duplicate id {inst_id!r} (first at {seen_ids[inst_id]})")
        seen_ids[inst_id] = where
        values = {}
        for name in (*spec.fields, *target_fields):
            value = _text_value(row.get(name), spec, name in target_fields, coerce=not require_id)
            if value is None:
                raise CorpusError(f"{where}: field {name!r} is missing or not a non-empty string")
            values[name] = value
        target = spec.target.render(values)
        if spec.kind == CLASSIFICATION and target not in spec.options:
            raise CorpusError(f"{where}: field {target_fields[0]!r}: {target!r} is not one of {list(spec.options)}")
        fields = {name: values[name] for name in spec.fields}
        instances.append(Instance(id=inst_id, task=spec.name, fields=fields, target=target, group=inst_id))
    return instances


def _text_value(value: object, spec: TaskSpec, is_target: bool, coerce: bool) -> str | None:
    """A row value as template text, or ``None`` when it is missing or empty (numbers only when ``coerce``)."""
    if isinstance(value, bool) or (not coerce and not isinstance(value, str)):
        return None
    if coerce and is_target and spec.kind == CLASSIFICATION:
        # class labels exported as numbers ("0" in CSV) index the answer set unless they are answers
        text = str(value).strip() if isinstance(value, (int, str)) else ""
        if text.isdigit() and text not in spec.options and int(text) < len(spec.options):
            return spec.options[int(text)]
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return value


# --- file readers -----------------------------------------------------------


def read_corpus_text(path: Path) -> str:
    return read_text(path, CorpusError)


def yaml_error_line(path: str | Path, err: Exception) -> str:
    """One line for a YAML parse error: the file, line and column, and the parser's problem.

    PyYAML's own message is several lines and names ``<unicode string>`` instead of the file.

    Example:
        >>> import yaml
        >>> try:
        ...     yaml.safe_load("name: nli\\ntemplates: [a, b\\nkind: x\\n")
        ... except yaml.YAMLError as err:
        ...     print(yaml_error_line("nli.yaml", err))
        nli.yaml:3:5: invalid YAML: expected ',' or ']', but got ':'
    """
    mark = getattr(err, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{where}: invalid YAML: {problem}"


def read_yaml(path: Path) -> dict:
    text = read_corpus_text(path)
    if not text.strip():
        raise CorpusError(f"{path}: file is empty")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CorpusError(yaml_error_line(path, err)) from None
    if not isinstance(raw, dict):
        raise CorpusError(f"{path}: expected a mapping at the top level")
    return raw


def _read_jsonl(path: Path) -> Iterable[tuple[int, object]]:
    return read_jsonl(path, CorpusError)


def _required(raw: Mapping, key: str, kind: type, path: Path):
    value = raw.get(key)
    if not isinstance(value, kind) or not value:
        raise CorpusError(f"{path}: field {key!r} is missing or not a non-empty {kind.__name__}")
    return value


def corpus_template(text: str, task: str, template_id: str, path: Path, allowed: Sequence[str] | None) -> Template:
    try:
        return parse_template(text, task, template_id, allowed_fields=allowed, require_all_fields=allowed is not None)
    except TemplateError as err:
        raise CorpusError(f"{path}: {err}") from None


def _templates(raw: object, key: str, task: str, kind: str, fields: Sequence[str], path: Path) -> tuple[Template, ...]:
    if not isinstance(raw, list):
        raise CorpusError(f"{path}: field {key!r} must be a list of {{id, text}} entries")
    templates = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not isinstance(entry.get("text"), str):
            raise CorpusError(f"{path}: {key}[{index}] needs string fields 'id' and 'text'")
        template = corpus_template(entry["text"], task, entry["id"], path, allowed=fields)
        if kind == CLASSIFICATION and not template.has_options:
            raise CorpusError(f"{path}: task {task!r} template {entry['id']!r}: classification templates need {{{OPTIONS_SLOT}}}")
        if kind == GENERATION and template.has_options:
            raise CorpusError(f"{path}: task {task!r} template {entry['id']!r}: generation templates may not use {{{OPTIONS_SLOT}}}")
        templates.append(template)
    return tuple(templates)
