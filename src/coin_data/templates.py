"""Instruction templates: parse ``{slots}`` and the options block, render, check, invert.

A template is FLAN-style text with named slots, e.g.::

    Review: {review}
    Is this review positive or negative?
    {options_}

``{options_}`` is the options block: it renders as ``OPTIONS:`` followed by one ``- answer`` line per
allowed answer. Literal braces are written ``{{`` and ``}}``. A paraphrase of a template must keep exactly
the same slots, each once (the *slot lock*), so it can be refilled with any instance's fields.

Example:
    >>> t = parse_template("Review: {review}\\nPositive or negative?\\n{options_}", task="sentiment")
    >>> t.slots
    ('review', 'options_')
    >>> print(t.render({"review": "Great pan."}, options=["positive", "negative"]))
    Review: Great pan.
    Positive or negative?
    OPTIONS:
    - positive
    - negative
    >>> t.invert(t.render({"review": "Great pan."}, options=["positive", "negative"]), ["positive", "negative"])
    {'review': 'Great pan.'}
"""

from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

OPTIONS_SLOT = "options_"
_SLOT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TemplateError(ValueError):
    """A template is malformed (unbalanced braces, unknown or duplicated slot, missing field)."""


def render_options(options: Sequence[str]) -> str:
    """Render the options block that replaces ``{options_}``.

    Example:
        >>> render_options(["yes", "no"])
        'OPTIONS:\\n- yes\\n- no'
    """
    return "OPTIONS:\n" + "\n".join(f"- {option}" for option in options)


# A rendered options block inside a text: what :func:`render_options` writes, found back by the readers.
OPTIONS_BLOCK = re.compile(r"OPTIONS:\n- [^\n]*(?:\n- [^\n]*)*")


def parse_options(block: str) -> tuple[str, ...]:
    """The options of a rendered block (the inverse of :func:`render_options`).

    Args:
        block: one match of :data:`OPTIONS_BLOCK`.

    Returns:
        The options in order.

    Example:
        >>> parse_options(render_options(["yes", "no"]))
        ('yes', 'no')
        >>> [parse_options(m.group(0)) for m in OPTIONS_BLOCK.finditer("Is it?\\nOPTIONS:\\n- a\\n- b")]
        [('a', 'b')]
    """
    return tuple(line[2:] for line in block.split("\n")[1:])


@dataclass(frozen=True)
class Template:
    """A parsed instruction template.

    Attributes:
        text: the template source with ``{slots}``.
        task: task name, used in error messages.
        template_id: template id within the task, used in error messages.
        segments: the parse as a tuple of ``(literal_text, slot_name_or_None)`` pairs.
    """

    text: str
    task: str = ""
    template_id: str = ""
    segments: tuple[tuple[str, str | None], ...] = field(default=(), repr=False, compare=False)

    @property
    def where(self) -> str:
        return f"task {self.task!r} template {self.template_id!r}"

    @property
    def slots(self) -> tuple[str, ...]:
        """Slot names in order of appearance (``options_`` included when present)."""
        return tuple(name for _, name in self.segments if name is not None)

    @property
    def field_slots(self) -> tuple[str, ...]:
        """Slot names that an instance fills (the options block excluded)."""
        return tuple(name for name in self.slots if name != OPTIONS_SLOT)

    @property
    def has_options(self) -> bool:
        return OPTIONS_SLOT in self.slots

    @property
    def literal_text(self) -> str:
        """The instruction words only: all text outside slots, joined."""
        return "".join(literal for literal, _ in self.segments)

    def masked_text(self) -> str:
        """Template text with the options block removed and slots shown as ``{name}``.

        This is the string embedded for equivalence checks: the instance content and the answer list
        are the same on both sides of a pair, so they would only inflate the similarity.
        """
        parts: list[str] = []
        for literal, name in self.segments:
            parts.append(literal)
            if name is not None and name != OPTIONS_SLOT:
                parts.append("{" + name + "}")
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def render(self, fields: Mapping[str, object], options: Sequence[str] | None = None) -> str:
        """Fill the slots with ``fields`` (and ``options`` for ``{options_}``).

        Raises:
            TemplateError: a slot has no value, naming the task, template and field.
        """
        parts: list[str] = []
        for literal, name in self.segments:
            parts.append(literal)
            if name is None:
                continue
            if name == OPTIONS_SLOT:
                if not options:
                    raise TemplateError(f"{self.where}: has {{options_}} but no options were given")
                parts.append(render_options(options))
            elif name not in fields or fields[name] is None:
                raise TemplateError(f"{self.where}: no value for field {name!r}")
            else:
                parts.append(str(fields[name]))
        return "".join(parts)

    def invert(self, rendered: str, options: Sequence[str] | None = None) -> dict[str, str] | None:
        """Recover the fields from a prompt rendered with this template, or ``None`` if it does not match.

        Example:
            >>> parse_template("Q: {q}? A:").invert("Q: why? A:")
            {'q': 'why'}
        """
        match = self._inversion_pattern(tuple(options or ())).fullmatch(rendered)
        if match is None:
            return None
        return {name: match.group(name) for name in self.field_slots}

    def _inversion_pattern(self, options: tuple[str, ...]) -> re.Pattern[str]:
        pattern = []
        for literal, name in self.segments:
            pattern.append(re.escape(literal))
            if name == OPTIONS_SLOT:
                pattern.append(re.escape(render_options(options)) if options else r"OPTIONS:\n(?:- [^\n]*\n?)+")
            elif name is not None:
                pattern.append(f"(?P<{name}>.+?)")
        return re.compile("".join(pattern), re.DOTALL)


def _segments(text: str, where: str) -> tuple[tuple[str, str | None], ...]:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as err:  # "Single '}' encountered", "expected '}' before end of string"
        raise TemplateError(f"{where}: malformed braces ({err}); write literal braces as {{{{ and }}}}") from None
    segments: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            segments.append((literal, None))
            continue
        if spec or conversion:
            raise TemplateError(f"{where}: slot {{{name}}} may not carry a format spec or conversion")
        if not _SLOT_NAME.match(name):
            raise TemplateError(f"{where}: invalid slot name {{{name}}} (use letters, digits and _)")
        segments.append((literal, name))
    return tuple(segments)


def parse_template(
    text: str,
    task: str = "",
    template_id: str = "",
    allowed_fields: Iterable[str] | None = None,
    require_all_fields: bool = False,
) -> Template:
    """Parse ``text`` into a :class:`Template`, validating its slots.

    Args:
        text: template source.
        task, template_id: where it comes from, named in every error.
        allowed_fields: the field names an instance provides; a slot outside them (other than
            ``options_``) is an error. ``None`` allows any name.
        require_all_fields: also require every allowed field to appear.

    Returns:
        The parsed template.

    Raises:
        TemplateError: unbalanced braces, an unknown, duplicated or missing slot.

    Example:
        >>> parse_template("{a} and {a}", task="t", template_id="x")
        Traceback (most recent call last):
        ...
        coin_data.templates.TemplateError: task 't' template 'x': slot {a} appears 2 times (each slot must appear once)
    """
    where = f"task {task!r} template {template_id!r}"
    if not isinstance(text, str) or not text.strip():
        raise TemplateError(f"{where}: template text is empty")
    segments = _segments(text, where)
    names = [name for _, name in segments if name is not None]
    for name in dict.fromkeys(names):
        if names.count(name) > 1:
            raise TemplateError(f"{where}: slot {{{name}}} appears {names.count(name)} times (each slot must appear once)")
    if allowed_fields is not None:
        allowed = set(allowed_fields)
        unknown = [n for n in names if n != OPTIONS_SLOT and n not in allowed]
        if unknown:
            raise TemplateError(f"{where}: unknown slot {{{unknown[0]}}} (fields are: {', '.join(sorted(allowed))})")
        if require_all_fields:
            missing = sorted(allowed - set(names))
            if missing:
                raise TemplateError(f"{where}: field {missing[0]!r} has no slot")
    return Template(text=text, task=task, template_id=template_id, segments=segments)


def instruction_overlap(original: Template, candidate_text: str) -> float:
    """Word overlap (0..1, ``difflib`` ratio) of the instruction words (the text outside slots) of
    ``original`` and ``candidate_text``: what the verifier's ``too_similar`` gate compares with its
    ``near_duplicate`` bound, and what the rules paraphraser's fallback pass stays below.

    Example:
        >>> round(instruction_overlap(parse_template("Is {a} true?"), "Is {a} correct?"), 2)
        0.5
    """
    before = re.findall(r"[a-z0-9']+", original.literal_text.lower())
    after = re.findall(r"[a-z0-9']+", parse_template(candidate_text).literal_text.lower())
    return difflib.SequenceMatcher(a=before, b=after, autojunk=False).ratio()


def slot_lock_violation(original: Template, candidate_text: str) -> str | None:
    """Why ``candidate_text`` cannot stand in for ``original``, or ``None`` when the slots are locked.

    The candidate must parse, and hold exactly the original's slots (the options block included),
    each exactly once. Order may change: rewording often moves the question before the input.

    Example:
        >>> t = parse_template("Text: {text}\\nTopic?\\n{options_}")
        >>> slot_lock_violation(t, "Which topic fits {text}?\\n{options_}") is None
        True
        >>> slot_lock_violation(t, "Which topic fits the text?\\n{options_}")
        'missing slot {text}'
    """
    try:
        segments = _segments(candidate_text, "candidate")
    except TemplateError as err:
        return str(err).removeprefix("candidate: ")
    names = [name for _, name in segments if name is not None]
    expected = set(original.slots)
    for name in original.slots:
        if name not in names:
            return f"missing slot {{{name}}}"
    for name in names:
        if name not in expected:
            return f"unexpected slot {{{name}}}"
        if names.count(name) > 1:
            return f"slot {{{name}}} repeated"
    if OPTIONS_SLOT in expected and "OPTIONS:" in "".join(literal for literal, _ in segments):
        return "options block written out instead of {options_}"
    return None
