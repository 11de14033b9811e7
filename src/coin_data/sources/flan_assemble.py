"""From recovered FLAN templates and their matched rows to tasks and instances.

Templates come from a patterns file (:mod:`coin_data.sources.flan_patterns`: slot names known) or from induction
(:mod:`coin_data.sources.flan_induce` + :mod:`coin_data.sources.flan_edges`: slots paired across templates by the look of
their values and named after the ``Label:`` before them). One instance must fill every template of its task,
so templates with other fields become a task of their own. Every template, its rows and whether it is
ambiguous go to the :class:`~coin_data.flan.TaskInduction` report.

Example:
    >>> pair_fields([[["Why?", "a long passage of text"]] * 3, [["a long passage of text too", "How?"]] * 3])
    [[0, 1], [1, 0]]
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from coin_data.sources.flan_skeleton import _GAP, _OPT, _slot_labels, _tokens, _unique_names
from coin_data.sources.embedded import CLASSIFICATION, GENERATION, CorpusError, Instance, TaskSpec
from coin_data.templates import OPTIONS_SLOT, Template, TemplateError, parse_template

INDUCED, PATTERNS = "induced", "patterns_file"


@dataclass
class Matched:
    """One row matched by a template: its slot values and options block."""

    index: int  # position of the row in its task's input rows (part of the instance id)
    row: object  # the FlanRow
    values: list[str]
    options: tuple[str, ...] | None
    block: str | None
    ambiguous: bool = False  # another split of the row fits the template as well


@dataclass
class Recovered:
    """A template of one task: literal texts around its slots (options block as ``\\x00``) and its rows."""

    texts: list[str]
    matches: list[Matched] = field(default_factory=list)
    names: list[str] | None = None  # slot names from a patterns file; None: induced
    method: str = INDUCED
    notes: list[str] = field(default_factory=list)  # why the slot edges are uncertain (empty: exact)

    @property
    def slots(self) -> int:
        return len(self.texts) - 1

    @property
    def literal_chars(self) -> int:
        return sum(len(t.strip()) for t in self.texts)


@dataclass(frozen=True)
class RecoveredTemplate:
    """A row of the report's template table."""

    task: str
    template_id: str
    text: str
    rows: int
    method: str = INDUCED
    notes: tuple[str, ...] = ()  # non-empty: the template is ambiguous (reported, rows not counted as recovered)
    ambiguous_rows: int = 0  # rows whose split into slots is not unique (patterns file)

    @property
    def ambiguous(self) -> bool:
        return bool(self.notes) or self.ambiguous_rows > 0


def pair_fields(rows_per_template: Sequence[Sequence[Sequence[str]]]) -> list[list[int]]:
    """Per template, a field index for each slot: the reference template's slot whose values look alike.

    The reference is the template with the most rows (a chance template with extra slots and few rows must
    not set the fields); the map is injective, and a slot of a template with more slots than the reference
    that no reference slot pairs with gets -1.

    Args:
        rows_per_template: per template, per row, the slot values.

    Returns:
        per template, per slot, the reference slot index (or -1).
    """
    if not rows_per_template:
        return []
    features = [_slot_features(rows) for rows in rows_per_template]
    slots = [len(rows[0]) if rows else 0 for rows in rows_per_template]
    ref = max(range(len(rows_per_template)), key=lambda t: (len(rows_per_template[t]), slots[t], -t))
    mappings = []
    for t in range(len(rows_per_template)):
        if t == ref:
            mappings.append(list(range(slots[t])))
        elif slots[t] <= slots[ref]:
            mappings.append(_pair_slots(features[t], features[ref]))
        else:  # pair the reference's slots into this template's, the rest stay unpaired
            mapping = [-1] * slots[t]
            for j, slot in enumerate(_pair_slots(features[ref], features[t])):
                mapping[slot] = j
            mappings.append(mapping)
    return mappings


def _slot_features(rows: Sequence[Sequence[str]]) -> list[tuple[float, float, float]]:
    """Per slot: mean log length, share ending in '?', mean line count (what tells fields apart)."""
    if not rows:
        return []
    features = []
    for slot in range(len(rows[0])):
        values = [row[slot] for row in rows]
        features.append((
            sum(math.log1p(len(v)) for v in values) / len(values),
            sum(v.rstrip().rstrip("\"')]").endswith("?") for v in values) / len(values) * 3,
            sum(v.count("\n") for v in values) / len(values),
        ))
    return features


def _pair_slots(features: Sequence[tuple], reference: Sequence[tuple]) -> list[int]:
    """For each slot of a template, the reference slot whose values look most alike (an injective map)."""
    n, m = len(features), len(reference)
    if n == 0:
        return []
    if n > m or m > 7:
        return list(range(n)) if n <= m else list(range(m)) + list(range(m, n))

    def cost(assign: Sequence[int]) -> float:
        return sum(sum((a - b) ** 2 for a, b in zip(features[i], reference[j])) for i, j in enumerate(assign))

    return list(min(itertools.permutations(range(m), n), key=cost))


def fixed_options(matches: Sequence[Matched]) -> tuple[str, ...] | None:
    """The task's answer set when every options block is the same and every target is one of it."""
    seen = {m.options for m in matches if m.options is not None}
    if len(seen) != 1:
        return None
    options = next(iter(seen))
    if len(options) < 2 or any(m.options is not None and m.row.targets.strip() not in options for m in matches):
        return None
    return options


def assemble(name: str, templates: Sequence[Recovered], info) -> Iterator[tuple[TaskSpec, list[Instance]]]:
    """Group a task's recovered templates into tasks whose instances fill every template; fill the report.

    Templates with another slot count (induced) or other field names (patterns file), with per-row options
    where the others have none, or from the other method become a task of their own
    (``<task>_<n>slot``, ``<task>_<fields>``, ``<task>_induced``).

    Args:
        name: the source task.
        templates: recovered templates with their matched rows (templates without rows are skipped).
        info: the task's :class:`~coin_data.flan.TaskInduction`, updated in place.

    Yields:
        ``(spec, instances)`` per resulting task.
    """
    templates = [t for t in templates if t.matches]
    fixed = fixed_options([m for t in templates for m in t.matches])
    groups: dict[tuple, list[Recovered]] = defaultdict(list)
    for t in templates:
        per_row_options = fixed is None and any(_OPT in text for text in t.texts)
        shape = t.slots if t.names is None else tuple(sorted(set(t.names)))
        groups[(t.method, shape, per_row_options)].append(t)
    if not groups:
        return
    main = max(groups, key=lambda g: sum(len(t.matches) for t in groups[g]))
    used: set[str] = set()
    for key in sorted(groups, key=lambda g: (g != main, str(g))):
        task = name if key == main else _task_suffix(name, key, main, used)
        used.add(task)
        yield _group_spec(task, groups[key], fixed, info)


def _task_suffix(name: str, key: tuple, main: tuple, used: set[str]) -> str:
    method, shape, per_row_options = key
    if method == PATTERNS:
        base = f"{name}_{'_'.join(shape) or 'noslots'}"
    else:
        base = f"{name}_{shape}slot" + ("_induced" if main[0] == PATTERNS else "")
    base += "_options" if per_row_options else ""
    task, n = base, 2
    while task in used:
        task, n = f"{base}_{n}", n + 1
    return task


def _group_spec(task: str, members: list[Recovered], fixed, info) -> tuple[TaskSpec, list[Instance]]:
    members = sorted(members, key=lambda t: -len(t.matches))
    slot_names = _names(members)
    templates: list[Template] = []
    instances: list[Instance] = []
    options_slot = OPTIONS_SLOT if fixed is not None else "options"
    for index, (rec, names) in enumerate(zip(members, slot_names)):
        template_id = f"t{index}"
        text = template_text(rec.texts, names, options_slot)
        try:
            template = parse_template(text, task, template_id)
        except TemplateError as err:  # cannot happen for recovered text; fail loudly if it does
            raise CorpusError(f"task {task!r}: recovered template is invalid: {err}") from None
        templates.append(template)
        ambiguous_rows = sum(1 for m in rec.matches if m.ambiguous)
        entry = RecoveredTemplate(task, template_id, text, len(rec.matches), rec.method, tuple(rec.notes),
                                  ambiguous_rows)
        info.templates.append(entry)
        for m in rec.matches:
            fields = dict(zip(names, m.values))
            if fixed is None and m.block is not None:
                fields["options"] = m.block
            inst_id = f"{task}-{m.index:06d}"  # the row's position among its task's input rows
            instances.append(Instance(inst_id, task, fields, m.row.targets.strip(), group=inst_id))
            info.row_template[inst_id] = template_id
            if not rec.notes and not m.ambiguous:
                info.recovered += 1
            else:
                info.ambiguous += 1
    info.derived[task] = info.task
    all_names = [n for names in slot_names for n in names]
    uses_options = fixed is None and any("options" in t.field_slots for t in templates)
    spec = TaskSpec(
        name=task,
        kind=CLASSIFICATION if fixed is not None else GENERATION,
        description=f"FLAN task {task} (templates " + (
            "from a patterns file)" if members[0].method == PATTERNS else "recovered by induction)"),
        fields=tuple(dict.fromkeys([*all_names, *(["options"] if uses_options else [])])),
        options=tuple(fixed or ()),
        target=parse_template("{target}", task, "target"),
        templates=tuple(templates),
    )
    return spec, instances


def _names(members: Sequence[Recovered]) -> list[list[str]]:
    """Slot names per template: a patterns file's own, or paired induced slots named by vote."""
    if members[0].names is not None:
        return [list(m.names or []) for m in members]
    mappings = pair_fields([[m.values for m in rec.matches] for rec in members])
    fields = max((max(mapping, default=-1) for mapping in mappings), default=-1) + 1
    # name each field by the label most templates write before it ("Premise:"), else "text"
    votes: list[Counter] = [Counter() for _ in range(fields)]
    for rec, mapping in zip(members, mappings):
        for slot, label in zip(mapping, _slot_labels(skeleton_of(rec.texts))):
            if label is not None:
                votes[slot][label] += 1
    names = _unique_names([v.most_common(1)[0][0] if v else None for v in votes])
    return [[names[j] for j in mapping] for mapping in mappings]


def skeleton_of(texts: Sequence[str]) -> list[object]:
    """Literal texts -> a token skeleton with gaps (the form induction works on)."""
    skeleton: list[object] = []
    for j, text in enumerate(texts):
        skeleton.extend(_tokens(text))
        if j < len(texts) - 1:
            skeleton.append(_GAP)
    return skeleton


def texts_of(skeleton: Sequence[object]) -> list[str]:
    """A token skeleton -> the literal texts around its gaps."""
    texts = [""]
    for token in skeleton:
        if token is _GAP:
            texts.append("")
        else:
            texts[-1] += str(token)
    return texts


def template_text(texts: Sequence[str], names: Sequence[str], options_slot: str) -> str:
    """Template source from literal texts and slot names (literal braces doubled, options block as a slot).

    Example:
        >>> template_text(["Q: ", "? {x}\\n\\x00"], ["question"], "options_")
        'Q: {question}? {{x}}\\n{options_}'
    """
    parts = []
    for j, text in enumerate(texts):
        parts.append(text.replace("{", "{{").replace("}", "}}").replace(_OPT, "{" + options_slot + "}"))
        if j < len(names):
            parts.append("{" + names[j] + "}")
    return "".join(parts)
