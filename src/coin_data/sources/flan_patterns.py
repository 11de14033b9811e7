"""A collection's own template list (``--templates FILE`` with ``--source flan``): rows matched exactly.

FLAN publishes its templates as a Python module (``flan/templates.py`` in google-research/FLAN): a dict
``PATTERNS = {task: [(inputs_pattern, targets_pattern), ...]}`` with ``{field}`` slots and ``{options_}`` for
the options block. :func:`load_patterns_file` reads that file with :mod:`ast` (it is never imported or run)
and also a simple JSON/YAML form::

    {"rte": [["{premise}\\nCan we infer \\"{hypothesis}\\"?\\n{options_}", "{answer}"], ...], ...}
    [{"task": "rte", "inputs": "...", "targets": "{answer}"}, ...]

A row is matched against its task's patterns exactly (inputs and targets, a field used in both must agree);
the most specific pattern that fits wins. A split into slots is *ambiguous* when a separator also occurs
inside a value so that another split fits too; such rows are counted and reported. Rows that fit no pattern
are left to induction.

Example:
    >>> patterns = patterns_from_data({"qa": [["Question: {question}?\\nAnswer:", "{answer}"]]}, "inline")
    >>> match_row(patterns["qa"], "Question: why is it blue?\\nAnswer:", "light")
    (0, ['why is it blue'], False)
"""

from __future__ import annotations

import ast
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from coin_data.sources.flan_skeleton import _OPT
from coin_data.sources.embedded import CorpusError, yaml_error_line
from coin_data.templates import OPTIONS_SLOT


@dataclass(frozen=True)
class Pattern:
    """One (inputs, targets) pattern pair of a task, parsed into literal texts around slots."""

    task: str
    inputs: str
    targets: str
    texts: tuple[str, ...]  # literal texts of the inputs around its slots; the options block is _OPT
    names: tuple[str, ...]  # the inputs' slot names (options block excluded)
    target_texts: tuple[str, ...]
    target_names: tuple[str, ...]

    @property
    def literal_chars(self) -> int:
        return sum(len(t) for t in self.texts)


def load_patterns_file(path: str | Path) -> dict[str, list[Pattern]]:
    """Read a template list: FLAN's ``templates.py`` (read with ``ast``, never run) or JSON/YAML.

    Args:
        path: ``.py`` (a top-level dict of task -> list of ``(inputs, targets)``; ``PATTERNS`` when there are
            several), ``.json``, ``.yaml`` / ``.yml``.

    Returns:
        ``task -> patterns`` in file order, exact duplicates removed.

    Raises:
        CorpusError: unreadable file or a malformed entry, naming the file, line (Python) or entry.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise CorpusError(f"{path}: cannot read the templates file ({err.strerror})") from None
    if path.suffix == ".py":
        return patterns_from_data(_python_patterns(text, str(path)), str(path))
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise CorpusError(yaml_error_line(path, err)) from None
        return patterns_from_data(data, str(path))
    try:
        data = json.loads(text)
    except ValueError as err:  # one line naming the file, line and column
        raise CorpusError(f"{path}: not valid JSON ({err})") from None
    return patterns_from_data(data, str(path))


def _python_patterns(text: str, where: str) -> dict:
    """The task -> patterns dict assigned at the top level of a Python file, evaluated as literals only."""
    try:
        tree = ast.parse(text, filename=where)
    except SyntaxError as err:
        raise CorpusError(f"{where}:{err.lineno}: not valid Python ({err.msg})") from None
    found: dict[str, ast.AST] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Name) and isinstance(value, ast.Dict):
                found[target.id] = value
    if not found:
        raise CorpusError(f"{where}: no top-level dict of task -> [(inputs, targets), ...] found")
    name = "PATTERNS" if "PATTERNS" in found else next(iter(found))
    return _literal(found[name], where)


def _literal(node: ast.AST, where: str):
    """Strings, tuples, lists and dicts of them; ``"a" + "b"`` joins (no names, calls or other code)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_literal(item, where) for item in node.elts]
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise CorpusError(f"{where}:{node.lineno}: '**' in the templates dict is not supported")
        return {_literal(k, where): _literal(v, where) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left, where), _literal(node.right, where)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
    raise CorpusError(f"{where}:{getattr(node, 'lineno', '?')}: only string literals, tuples, lists and dicts "
                      "are read from a templates file")


def patterns_from_data(data, where: str) -> dict[str, list[Pattern]]:
    """Patterns from ``{task: [[inputs, targets] | {"inputs", "targets"}, ...]}`` or a list of
    ``{"task", "inputs", "targets"}`` entries."""
    entries: list[tuple[str, object, str]] = []
    if isinstance(data, Mapping):
        for task, items in data.items():
            if not isinstance(items, list):
                raise CorpusError(f"{where}: task {task!r}: expected a list of (inputs, targets) pairs")
            entries.extend((str(task), item, f"{where}: task {task!r} entry {i}") for i, item in enumerate(items))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            if not isinstance(item, Mapping) or not isinstance(item.get("task"), str):
                raise CorpusError(f"{where}: entry {i}: expected an object with 'task', 'inputs', 'targets'")
            entries.append((item["task"], item, f"{where}: entry {i}"))
    else:
        raise CorpusError(f"{where}: expected a dict of task -> patterns or a list of entries")
    patterns: dict[str, list[Pattern]] = {}
    for task, item, label in entries:
        if isinstance(item, Mapping):
            pair = (item.get("inputs"), item.get("targets", "{answer}"))
        elif isinstance(item, list) and len(item) == 2:
            pair = tuple(item)
        else:
            raise CorpusError(f"{label}: expected an (inputs, targets) pair")
        if not all(isinstance(p, str) and p for p in pair):
            raise CorpusError(f"{label}: inputs and targets must be non-empty strings")
        pattern = _parse(task, pair[0], pair[1], label)
        known = patterns.setdefault(task, [])
        if pattern is None:
            continue  # a slot used twice: no template can keep it (each slot once); its rows go to induction
        if all((p.inputs, p.targets) != (pattern.inputs, pattern.targets) for p in known):
            known.append(pattern)
    if not patterns:
        raise CorpusError(f"{where}: no patterns found")
    return patterns


def _parse(task: str, inputs: str, targets: str, label: str) -> Pattern | None:
    texts, names = _split(inputs, label, "inputs")
    target_texts, target_names = _split(targets, label, "targets")
    if len(set(names)) != len(names) or len(set(target_names)) != len(target_names):
        return None
    return Pattern(task, inputs, targets, texts, names, target_texts, target_names)


def _split(text: str, label: str, part: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Literal texts around the slots and the slot names; ``{options_}`` becomes the options stand-in."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as err:
        raise CorpusError(f"{label}: {part} has malformed braces ({err})") from None
    texts, names = [""], []
    for literal, name, spec, conversion in parsed:
        texts[-1] += literal
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            raise CorpusError(f"{label}: {part} slot {{{name}}} is not a plain field name")
        if name == OPTIONS_SLOT:
            texts[-1] += _OPT
        else:
            names.append(name)
            texts.append("")
    return tuple(texts), tuple(names)


def place(texts: Sequence[str], row: str, rightmost: bool = False) -> list[str] | None:
    """Split ``row`` into non-empty slot values between ``texts``, placing each text leftmost (or rightmost).

    Any split that fits lies between the leftmost and the rightmost one, so the two agree exactly when the
    split is unique.

    Example:
        >>> place(["", " and ", ""], "salt and pepper and oil"), place(["", " and ", ""], "salt and pepper and oil", True)
        (['salt', 'pepper and oil'], ['salt and pepper', 'oil'])
    """
    head, tail = texts[0], texts[-1]
    if len(texts) == 1:
        return [] if row == head else None
    if not row.startswith(head) or not row.endswith(tail) or len(row) < len(head) + len(tail) + len(texts) - 1:
        return None
    start, end = len(head), len(row) - len(tail)
    inner = texts[1:-1]
    values: list[str] = []
    if not rightmost:
        position = start
        for text in inner:
            found = row.find(text, position + 1, end - 1) if text else position + 1
            if found < 0:
                return None
            values.append(row[position:found])
            position = found + len(text)
        if position >= end:
            return None
        values.append(row[position:end])
        return values
    position = end
    for text in reversed(inner):
        found = row.rfind(text, start + 1, position - 1) if text else position - 1
        if found < 0 or found <= start:
            return None
        values.append(row[found + len(text): position])
        position = found
    if position <= start:
        return None
    values.append(row[start:position])
    return values[::-1]


def _filled(pattern: Pattern, given: Mapping[str, str]) -> tuple[list[str]]:
    """The targets pattern with the slots the inputs already filled written out (a field used in both
    must agree): only the targets' own slots are left to place."""
    texts = [pattern.target_texts[0]]
    for name, text in zip(pattern.target_names, pattern.target_texts[1:]):
        if name in given:
            texts[-1] += given[name] + text
        else:
            texts.append(text)
    return (texts,)


def match_row(patterns: Sequence[Pattern], masked_inputs: str, targets: str) -> tuple[int, list[str], bool] | None:
    """The most specific pattern that fits a row: ``(pattern index, input slot values, ambiguous)``.

    Args:
        patterns: the task's patterns.
        masked_inputs: the row's inputs with its options block replaced by the stand-in.
        targets: the row's targets.

    Returns:
        ``None`` when no pattern fits.
    """
    best = None
    for index, pattern in enumerate(patterns):
        values = place(pattern.texts, masked_inputs)
        if values is None:
            continue
        given = dict(zip(pattern.names, values))
        if place(*_filled(pattern, given), targets.strip()) is None:
            continue
        ambiguous = place(pattern.texts, masked_inputs, rightmost=True) != values
        if best is None or pattern.literal_chars > patterns[best[0]].literal_chars:
            best = (index, values, ambiguous)
    return best
