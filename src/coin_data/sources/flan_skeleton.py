"""Skeletons of FLAN rows: tokens, alignment of two token lists, slots (gaps), matching a skeleton to a row.

A skeleton is a list of text tokens and :data:`_GAP` markers; the text between gaps is template text, a gap
is a slot. :mod:`coin_data.sources.flan_induce` builds skeletons by aligning rows; this module holds the shared
pieces (also used to name slots and to write the template text).

Example:
    >>> print(_tidy(_merge(_tokens("Question: why is it?"), _tokens("Question: who came?"))))
    ['Question', ':', ' ', <GAP>, '?']
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from coin_data.templates import OPTIONS_BLOCK, OPTIONS_SLOT, parse_options


_OPT = "\x00"  # stands for the options block while templates are induced


# Whitespace runs, words and single punctuation marks are tokens (the text is their concatenation).
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


_FIELD_NAME = re.compile(r"^\s*([A-Za-z]+(?: [A-Za-z]+){0,2})\s*:\s*$")  # "Premise: ", "Test sentence:"


class _Gap:
    """A slot in a skeleton; one shared instance, never equal to a text token."""

    def __repr__(self) -> str:
        return "<GAP>"


_GAP = _Gap()


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _window(tokens: list[str], edge: int) -> list[object]:
    """The first and last ``edge`` tokens of a long row with a gap between them.

    Alignment cost grows with the product of the lengths; FLAN's long inputs (news articles) are one
    field with the instruction before or after it, so the middle never holds template text.
    """
    if len(tokens) <= 2 * edge:
        return list(tokens)
    return [*tokens[:edge], _GAP, *tokens[-edge:]]


def _is_word(token: object) -> bool:
    return isinstance(token, str) and any(ch.isalnum() for ch in token)


def _merge(skeleton: Sequence[object], row: Sequence[str]) -> list[object]:
    """The common skeleton of ``skeleton`` and ``row``: matched tokens stay literal, the rest become gaps."""
    matcher = difflib.SequenceMatcher(None, skeleton, row, autojunk=False)
    merged: list[object] = []
    done_a = done_b = 0
    for a, b, size in matcher.get_matching_blocks():
        if a > done_a or b > done_b:
            merged.append(_GAP)
        merged.extend(skeleton[a : a + size])
        done_a, done_b = a + size, b + size
    return _tidy(merged)


def _gap_runs(skeleton: Sequence[object]) -> list[list[object]]:
    """Split a skeleton into runs: each gap alone, each stretch of literal tokens together.

    Example:
        >>> _gap_runs(["a", _GAP, "b", "c"]) == [["a"], [_GAP], ["b", "c"]]
        True
    """
    runs: list[list[object]] = []
    for token in skeleton:
        if token is _GAP:
            runs.append([_GAP])
        elif runs and runs[-1][0] is not _GAP:
            runs[-1].append(token)
        else:
            runs.append([token])
    return runs


def _tidy(skeleton: Sequence[object]) -> list[object]:
    """Merge adjacent gaps and dissolve trivial literals between two gaps (a lone word of field text)."""
    runs = _gap_runs(skeleton)
    out: list[object] = []
    for index, run in enumerate(runs):
        between = 0 < index < len(runs) - 1 and runs[index - 1][0] is _GAP and runs[index + 1][0] is _GAP
        if run[0] is not _GAP and between and _trivial(run):
            run = [_GAP]
        if run[0] is _GAP and out and out[-1] is _GAP:
            continue
        out.extend(run)
    return out


def _trivial(run: Sequence[object]) -> bool:
    """Whitespace or one punctuation mark on one line: too common in field text to separate two slots.

    (A lone common word between two slots is dropped later, when it recurs inside the slots' text.)
    """
    text = "".join(t for t in run if isinstance(t, str))
    if "\n" in text or _OPT in text:
        return False
    words = sum(1 for t in run if _is_word(t))
    marks = sum(1 for t in run if isinstance(t, str) and t.strip() and not _is_word(t))
    return words == 0 and marks <= 1


def _absorb_punctuation(skeleton: Sequence[object]) -> list[object]:
    """Sentence-final punctuation right after a slot belongs to the field value, not to the template.

    The rows cannot tell ``{question}?`` from a question field that ends with '?'; field text usually
    carries its own punctuation, so the slot takes it.
    """
    out = list(skeleton)
    for index in range(len(out) - 1):
        if out[index] is _GAP and out[index + 1] in (".", "?", "!"):
            following = out[index + 2] if index + 2 < len(out) else ""
            if following is not _GAP:
                out[index + 1] = None  # dropped below; the gap's regex now captures it
    return [token for token in out if token is not None]


def _literal_words(skeleton: Sequence[object]) -> int:
    return sum(1 for token in skeleton if _is_word(token) or token == _OPT)


@dataclass(frozen=True)
class _Match:
    """The slot values of a row matched by a :class:`_Pattern` (``group(1)`` is the first slot)."""

    values: tuple[str, ...]

    def group(self, slot: int) -> str:
        return self.values[slot - 1]

    def groups(self) -> tuple[str, ...]:
        return self.values


class _Pattern:
    """Match a skeleton (texts separated by non-empty slots) against a whole row, without backtracking.

    Each text is placed at its leftmost occurrence after the previous one (the last one must end the
    row). If any placement fits, this one does, and it is the one a lazy regex ``(.+?)`` would choose;
    a regex with several lazy slots can instead backtrack for minutes on a long row that does not match.
    """

    def __init__(self, skeleton: Sequence[object]):
        self.texts: list[str] = [""]  # texts[0] before the first slot, texts[j] after slot j
        for token in skeleton:
            if token is _GAP:
                self.texts.append("")
            else:
                self.texts[-1] += str(token)

    def fullmatch(self, row: str) -> _Match | None:
        head, *rest = self.texts
        if not row.startswith(head):
            return None
        if not rest:
            return _Match(()) if row == head else None
        *inner, tail = rest
        end = len(row) - len(tail)
        if not row.endswith(tail):
            return None
        values, position = [], len(head)
        for text in inner:
            found = row.find(text, position + 1)  # + 1: a slot is never empty
            if found < 0 or found + len(text) > end - 1:
                return None
            values.append(row[position:found])
            position = found + len(text)
        if end <= position:
            return None
        values.append(row[position:end])
        return _Match(tuple(values))


@dataclass
class _Cluster:
    skeleton: list[object]
    members: list[int]
    _compiled: _Pattern | None = None

    @property
    def pattern(self) -> _Pattern:
        if self._compiled is None:
            self._compiled = _Pattern(self.skeleton)
        return self._compiled

    def set(self, skeleton: list[object]) -> None:
        self.skeleton, self._compiled = skeleton, None

    @property
    def gaps(self) -> int:
        return sum(1 for token in self.skeleton if token is _GAP)


def _mask_options(text: str) -> tuple[str, list[tuple[str, ...]], list[str]]:
    """Replace each options block by one token; return the masked text, the option lists and the blocks."""
    text = text.replace(_OPT, "")
    blocks = [m.group(0) for m in OPTIONS_BLOCK.finditer(text)]
    options = [parse_options(block) for block in blocks]
    return OPTIONS_BLOCK.sub(_OPT, text), options, blocks


def _runs(skeleton: Sequence[object]) -> list[list[object]]:
    """The literal runs of a skeleton (the text between its gaps)."""
    runs, run = [], []
    for token in [*skeleton, _GAP]:
        if token is _GAP:
            if run:
                runs.append(run)
            run = []
        else:
            run.append(token)
    return runs


def _slot_labels(skeleton: Sequence[object]) -> list[str | None]:
    """Per gap, the ``Label:`` written right before it on its line (``Premise: {premise}``), else ``None``."""
    labels: list[str | None] = []
    literal = ""
    for token in skeleton:
        if token is _GAP:
            match = _FIELD_NAME.search(literal.rsplit("\n", 1)[-1])
            labels.append(re.sub(r"\W+", "_", match.group(1).strip().lower()) if match else None)
            literal = ""
        else:
            literal += str(token)
    return labels


def _unique_names(labels: Sequence[str | None]) -> list[str]:
    """Slot names from labels: ``text`` where there is none, suffixes for repeats, no reserved names."""
    names: list[str] = []
    for label in labels:
        base = label or "text"
        if base in ("options", OPTIONS_SLOT, "target", "id", "task"):
            base += "_text"
        name, suffix = base, 2
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names.append(name)
    return names


def _slot_names(skeleton: Sequence[object]) -> list[str]:
    """A name per gap: the ``Label:`` right before it (``Premise: {premise}``), else ``text``."""
    return _unique_names(_slot_labels(skeleton))


def _template_text(skeleton: Sequence[object], names: Sequence[str], options_slot: str) -> str:
    parts, slot = [], 0
    for token in skeleton:
        if token is _GAP:
            parts.append("{" + names[slot] + "}")
            slot += 1
        else:
            parts.append(str(token).replace("{", "{{").replace("}", "}}").replace(_OPT, "{" + options_slot + "}"))
    return "".join(parts)
