"""Where a recovered slot starts and ends, and when the rows cannot tell.

Alignment finds *which* text varies between the rows of a template, but not always where a slot's value
begins: a character glued to the varying text in every row (the ``?`` of every question, the ``)`` of a
title ``"Dune (1984)"``, the quotes of ``"{hypothesis}"``) or a phrase that every value starts with could
belong to the template or to the field. :func:`settle_edges` decides each slot edge from the rows:

1. characters glued to a slot (no whitespace between them and the slot) are first put inside the slot, so
   every decision starts from whole whitespace-separated tokens;
2. the longest prefix and suffix that *every* value of the slot shares is split into whole tokens (they end
   at whitespace: ``"Consider the question "``) and glued characters (``"``, ``?"``);
3. a matching pair of glued characters around every value (quotes, brackets, dashes) whose inside stays
   balanced is template text, and so is everything outside it;
4. the rest is decided by the same field in the task's other templates (slots are paired by the look of
   their values): if it carries the shared text there too, the text is the field's (a ``?`` that ends every
   question stays in the value); if it rarely does, it is the template's. Whole tokens default to the
   template and glued characters to the value (a slot boundary never splits a token on a guess);
5. an edge that neither the pairing nor the other templates decide is *ambiguous*: the default is applied
   and a note says which slot, which text and why, so the report can list the template.

Templates here are lists of literal texts around their slots (``texts[j]`` before slot ``j``, the last one
after the last slot); values are per row, per slot.

Example:
    >>> texts = [["Question: ", "?\\nAnswer:"], ["Answer this: ", ""]]
    >>> values = [[["why is the sky blue"], ["who came"], ["where is it"]],
    ...           [["why not"], ["what now"], ["who is it"]]]
    >>> settled = settle_edges(texts, values, lambda semis: [[0] for _ in semis])
    >>> settled.texts[0], settled.notes[0]
    (['Question: ', '?\\nAnswer:'], [])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# opening character -> closing character of the pairs a template may set around a slot
PAIRS = {'"': '"', "'": "'", "`": "`", "(": ")", "[": "]", "{": "}", "<": ">", "\u201c": "\u201d",
         "\u2018": "\u2019", "\u00ab": "\u00bb", "-": "-", "*": "*", "_": "_", "|": "|", "/": "/"}
_NESTING = {"(": ")", "[": "]", "{": "}", "<": ">", "\u201c": "\u201d", "\u00ab": "\u00bb"}
from coin_data.sources.flan_skeleton import _OPT  # the options block stand-in: never moved across a slot edge

# Evidence thresholds, see _decide: shared text that at least this share of the field's values carry in the
# other templates is the field's; text that n values all carry with probability below ALPHA if it were
# the field's is the template's (ALPHA_WORD for letters and digits, which chance shares more easily).
FIELD_SHARE = 0.8
ALPHA = 0.01
ALPHA_WORD = 1e-6
MIN_ROWS_ALONE = 8  # whole tokens shared by this many values are template text even without other templates

TEMPLATE, VALUE = "template", "value"


@dataclass
class Settled:
    """Result of :func:`settle_edges`: new literal texts and the ambiguity notes of every template."""

    texts: list[list[str]]
    notes: list[list[str]] = field(default_factory=list)


@dataclass
class _Edge:
    """One slot of one template while its edges are settled."""

    values: list[str]  # canonical values (glued characters of the template pushed in)
    head: str = ""  # moved to the template from the start of every value
    tail: str = ""  # ... and from the end
    open_head: str = ""  # still to decide: shared text at the start, after ``head``
    open_tail: str = ""
    head_kind: str = "glued"  # "token" when open_head ends at whitespace (whole tokens)
    tail_kind: str = "glued"
    # what other templates compare with, fixed before any open edge is decided (so the order of the
    # decisions does not matter): the values without the wrappers, and the still open shared edges
    evidence: tuple[list[str], str, str] = ([], "", "")

    def semi(self) -> list[str]:
        """Values without what was already given to the template (what other templates compare with)."""
        return [v[len(self.head): len(v) - len(self.tail)] for v in self.values]


def settle_edges(
    texts: Sequence[Sequence[str]],
    values: Sequence[Sequence[Sequence[str]]],
    pair: Callable[[list[list[list[str]]]], list[list[int]]],
) -> Settled:
    """Decide for every slot edge whether shared text belongs to the template or to the field.

    Args:
        texts: per template, its literal texts (one more than its slots).
        values: per template, per matched row, the slot values.
        pair: given per template, per row, the values with settled wrappers removed, returns per template
            a canonical field index for each slot (-1: none); slots with one index are one field.

    Returns:
        :class:`Settled` with the new texts and, per template, notes on the edges the rows left ambiguous.
    """
    pushed = [_push_glued(list(t), rows) for t, rows in zip(texts, values)]
    edges = [[_Edge(list(col)) for col in _columns(rows, len(t) - 1)] for t, rows in pushed]
    for slots in edges:
        for edge in slots:
            _shared_edges(edge)
            _wrapper(edge)
            edge.evidence = (edge.semi(), edge.open_head, edge.open_tail)
    semis = [[list(row) for row in zip(*(e.semi() for e in slots))] if slots else [] for slots in edges]
    fields = pair(semis)
    peers: dict[int, list[_Edge]] = {}
    for t, slots in enumerate(edges):
        for j, edge in enumerate(slots):
            if fields[t][j] >= 0:
                peers.setdefault(fields[t][j], []).append(edge)
    notes: list[list[str]] = []
    new_texts = []
    for t, slots in enumerate(edges):
        own: list[str] = []
        for j, edge in enumerate(slots):
            others = [p for p in peers.get(fields[t][j], []) if p is not edge] if fields[t][j] >= 0 else []
            for side in ("head", "tail"):
                note = _settle_side(edge, side, others)
                if note:
                    own.append(f"slot {j + 1}: {note}")
        notes.append(own)
        new_texts.append(_rebuild(pushed[t][0], slots))
    return Settled(new_texts, notes)


def _columns(rows: Sequence[Sequence[str]], slots: int) -> list[list[str]]:
    return [[row[j] for row in rows] for j in range(slots)]


def _push_glued(texts: list[str], rows: Sequence[Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    """Move the characters glued to each slot from the literal texts into the values.

    A literal between two slots that has no whitespace at all (``{a}/{b}``) is left alone: it cannot be
    given to either side.
    """
    rows = [list(r) for r in rows]
    slots = len(texts) - 1
    for j in range(slots):
        before, after = texts[j], texts[j + 1]
        left = _glued(before, from_end=True)
        if left and (left != before or j == 0):
            texts[j] = before[: len(before) - len(left)]
            for r in rows:
                r[j] = left + r[j]
        right = _glued(after, from_end=False)
        if right and (right != after or j + 1 == slots):
            texts[j + 1] = after[len(right):]
            for r in rows:
                r[j] = r[j] + right
    return texts, rows


def _glued(text: str, from_end: bool) -> str:
    """The run of non-whitespace characters at one end of ``text`` (never the options block)."""
    run = ""
    for ch in reversed(text) if from_end else text:
        if ch.isspace() or ch == _OPT:
            break
        run = ch + run if from_end else run + ch
    return run


def _shared_edges(edge: _Edge) -> None:
    """The text every value starts (ends) with, leaving at least one character of each value."""
    values = edge.values
    if not values:
        return
    shortest = min(len(v) for v in values)
    prefix = _common(values, shortest - 1, from_end=False)
    suffix = _common(values, shortest - 1 - len(prefix), from_end=True)
    edge.open_head, edge.open_tail = prefix, suffix
    edge.head_kind = "token" if prefix and _ends_token(values, len(prefix), from_end=False) else "glued"
    edge.tail_kind = "token" if suffix and _ends_token(values, len(suffix), from_end=True) else "glued"


def _common(values: Sequence[str], limit: int, from_end: bool) -> str:
    first = values[0]
    size = 0
    while size < limit:
        ch = first[-1 - size] if from_end else first[size]
        if ch == _OPT or any((v[-1 - size] if from_end else v[size]) != ch for v in values):
            break
        size += 1
    if from_end:
        return first[len(first) - size:] if size else ""
    return first[:size]


def _ends_token(values: Sequence[str], size: int, from_end: bool) -> bool:
    """Whether the shared text is whole tokens: it ends at whitespace, or whitespace follows in every value."""
    shared = values[0][len(values[0]) - size:] if from_end else values[0][:size]
    inner = shared[0] if from_end else shared[-1]
    if inner.isspace():
        return True
    return all((v[len(v) - size - 1] if from_end else v[size]).isspace() for v in values)


def _wrapper(edge: _Edge) -> None:
    """Give a matching pair of glued characters around every value (and all outside it) to the template.

    The innermost opener of the shared glued start is tried against each closer of the shared glued end,
    innermost first; the first whose inside is balanced in every value wins (a title ``"Dune (1984)"``
    set in brackets keeps its own closing bracket).
    """
    head = _glued_part(edge.open_head, edge.head_kind, from_end=False)
    tail = _glued_part(edge.open_tail, edge.tail_kind, from_end=True)
    if not head or not tail:
        return
    for o in range(len(head) - 1, -1, -1):
        closer = PAIRS.get(head[o])
        if closer is None:
            continue
        for c in range(len(tail)):
            if tail[c] != closer:
                continue
            cut_head = edge.open_head[: len(edge.open_head) - len(head) + o + 1]
            cut_tail = edge.open_tail[c:]
            inside = [v[len(cut_head): len(v) - len(cut_tail)] for v in edge.values]
            if all(_balanced(text, head[o], closer) for text in inside):
                edge.head, edge.tail = cut_head, cut_tail
                edge.open_head = edge.open_head[len(cut_head):]
                edge.open_tail = edge.open_tail[: len(edge.open_tail) - len(cut_tail)]
                edge.head_kind = edge.tail_kind = "glued"
                return
        return  # only the innermost opener may pair: an outer one would leave it inside the value


def _glued_part(shared: str, kind: str, from_end: bool) -> str:
    """The glued characters of shared edge text (next to the varying text)."""
    if kind == "token" or not shared:
        return ""
    return _glued(shared, from_end=not from_end)


def _balanced(text: str, opener: str, closer: str) -> bool:
    if opener in _NESTING:
        depth = 0
        for ch in text:
            depth += (ch == opener) - (ch == closer)
            if depth < 0:
                return False
        return depth == 0
    if opener == '"':
        return text.count('"') % 2 == 0
    return True  # apostrophes, dashes, stars: inner occurrences say nothing


def _settle_side(edge: _Edge, side: str, peers: Sequence[_Edge]) -> str | None:
    """Decide the open shared text on one side of a slot; return an ambiguity note or ``None``."""
    at_end = side == "tail"
    shared = edge.open_tail if at_end else edge.open_head
    if not shared:
        return None
    token_part, glued_part = _split_token(shared, edge.tail_kind if at_end else edge.head_kind, at_end)
    n, where = len(edge.values), ("ends" if at_end else "starts")
    notes = []
    if token_part:  # whole tokens next to the template: template text unless the field carries them
        verdict, unsure = _decide(token_part, n, peers, at_end, TEMPLATE)
        if unsure:
            notes.append(f"{token_part!r} {where} every value; taken as template text")
        if verdict == VALUE:  # the field's own text: all of this side stays in the value
            edge.open_head, edge.open_tail = ("", edge.open_tail) if not at_end else (edge.open_head, "")
            return None
    template_glued = ""
    if glued_part:
        keep = _value_part(glued_part, n, peers, at_end)
        if keep is None and _mid_word(edge.values, glued_part, at_end):
            keep = glued_part  # letters glued to letters: a split there would cut a word, not a guess
        if keep is None:  # the rows do not tell: a slot boundary never splits a token on a guess
            notes.append(f"{glued_part!r} is glued to the varying text and {where} every value; kept in the value")
            keep = glued_part
        whole = _whole_word(edge.values, glued_part, keep, at_end)
        if whole != keep:
            notes.append(f"{glued_part!r} {where} every value and looks like template text, but the slot edge "
                         f"would cut a word; {whole!r} kept in the value")
            keep = whole
        template_glued = glued_part[len(keep):] if at_end else glued_part[: len(glued_part) - len(keep)]
    if at_end:
        edge.tail = template_glued + token_part + edge.tail
        edge.open_tail = ""
    else:
        edge.head += token_part + template_glued
        edge.open_head = ""
    return "; ".join(notes) or None


def _whole_word(values: Sequence[str], glued: str, keep: str, at_end: bool) -> str:
    """``keep`` grown until the slot edge falls between a letter or digit and something else: a slot
    boundary never cuts a word ("Wh" of "What"/"Which"/"Who" is the value's, however often it recurs).

    Example:
        >>> _whole_word(["Which?", "What?"], "Wh", "", at_end=False), _whole_word(["(a)", "(b)"], "(", "", False)
        ('Wh', '')
    """
    size = len(keep)
    while size < len(glued):
        # the characters on both sides of the edge: in the glued text, or the varying text next to it
        outer = glued[len(glued) - size - 1] if not at_end else glued[size]
        if not at_end:
            inner = glued[len(glued) - size] if size else None
        else:
            inner = glued[size - 1] if size else None
        inner_alnum = inner.isalnum() if inner is not None else all(
            len(v) > len(glued) and (v[len(v) - len(glued) - 1] if at_end else v[len(glued)]).isalnum() for v in values)
        if not (outer.isalnum() and inner_alnum):
            break
        size += 1
    return glued[:size] if at_end else glued[len(glued) - size:]


def _mid_word(values: Sequence[str], glued: str, at_end: bool) -> bool:
    """Whether glued text and the varying text next to it are letters or digits in every value."""
    inner = glued[0] if at_end else glued[-1]
    if not inner.isalnum():
        return False
    size = len(glued)
    return all((v[len(v) - size - 1] if at_end else v[size]).isalnum() for v in values if len(v) > size)


def _split_token(shared: str, kind: str, at_end: bool) -> tuple[str, str]:
    """Split shared edge text into whole tokens (template side) and glued characters (value side)."""
    if kind == "token":
        return shared, ""
    if at_end:
        glued = _glued(shared, from_end=False)
        return shared[len(glued):], glued
    glued = _glued(shared, from_end=True)
    return shared[: len(shared) - len(glued)], glued


def _decide(text: str, n: int, peers: Sequence[_Edge], at_end: bool, default: str) -> tuple[str, bool]:
    """``(verdict, unsure)`` for text that all ``n`` values share: template, value, or the default.

    The other templates' values of the same field are the evidence: if most carry the text, the field does;
    if so few do that ``n`` values all carrying it by chance is implausible, the template does.
    """
    hits, total = _carried(text, peers, at_end)
    if total == 0:  # no other template shows this field: only many rows make whole tokens safe
        return default, not (default == TEMPLATE and n >= MIN_ROWS_ALONE)
    share = (hits + 0.5) / (total + 1)
    alpha = ALPHA_WORD if any(ch.isalnum() for ch in text) else ALPHA
    if share <= 0.5 and share ** n < alpha:
        return TEMPLATE, False
    if share >= FIELD_SHARE:
        return VALUE, False
    return default, True


def _value_part(glued: str, n: int, peers: Sequence[_Edge], at_end: bool) -> str | None:
    """How much of the glued text the value keeps (the part next to the varying text); ``None``: unsure."""
    verdict, unsure = _decide(glued, n, peers, at_end, VALUE)
    if unsure:
        return None
    if verdict == VALUE:
        return glued
    for size in range(len(glued) - 1, 0, -1):  # the longest inner part the field itself carries
        part = glued[:size] if at_end else glued[len(glued) - size:]
        hits, total = _carried(part, peers, at_end)
        if (hits + 0.5) / (total + 1) >= FIELD_SHARE:
            return part
    return ""


def _carried(text: str, peers: Sequence[_Edge], at_end: bool) -> tuple[int, int]:
    """How many of the peers' values start (end) with ``text``.

    A peer's own undecided shared edge may sit outside the text (``"Dune (1984)."`` carries ``)`` if the
    ``.`` is that template's): any split of it counts, so only values that cannot carry the text count
    against the field.
    """
    hits = total = 0
    for peer in peers:
        values, open_head, open_tail = peer.evidence
        extra = len(open_tail if at_end else open_head)
        for value in values:
            total += 1
            if at_end:
                hits += any(value[: len(value) - k].endswith(text) for k in range(extra + 1))
            else:
                hits += any(value[k:].startswith(text) for k in range(extra + 1))
    return hits, total


def _rebuild(texts: Sequence[str], slots: Sequence[_Edge]) -> list[str]:
    out = list(texts)
    for j, edge in enumerate(slots):
        out[j] = out[j] + edge.head
        out[j + 1] = edge.tail + out[j + 1]
    return out


def field_text_notes(texts: Sequence[Sequence[str]], values: Sequence[Sequence[Sequence[str]]],
                     min_share: float = 0.05, min_rows: int = 3) -> list[list[str]]:
    """Notes for templates whose text between two slots also occurs inside other templates' field values.

    A phrase that recurs in field text (``said "..." to the``) can become the text of a template of its own;
    the rows then fit that reading and the true one equally well. The text between two slots (with at least
    one word) is checked against the values of the task's other templates.

    Args:
        texts: per template, its literal texts.
        values: per template, per row, its slot values.

    Returns:
        per template, notes (empty when no inner text occurs in other templates' values).

    Example:
        >>> field_text_notes([["", " said ", ""], ["Text: ", ""]],
        ...                  [[["a", "b"]] * 3, [["x said y"], ["p said q"], ["m said n"], ["z"]]])
        [["text ' said ' between slots also occurs inside the field values of other templates (3 rows)"], []]
    """
    notes: list[list[str]] = []
    for t, own in enumerate(texts):
        found = []
        others = [v for u, rows in enumerate(values) if u != t for row in rows for v in row]
        for text in own[1:-1]:
            if not any(ch.isalnum() for ch in text) or not others:
                continue
            hits = sum(1 for v in others if text in v)
            if hits >= min_rows and hits >= min_share * len(others):
                found.append(f"text {text!r} between slots also occurs inside the field values of other "
                             f"templates ({hits} rows)")
        notes.append(found)
    return notes


def adjacent_word_notes(texts: Sequence[Sequence[str]], values: Sequence[Sequence[Sequence[str]]],
                        fields: Sequence[Sequence[int]], min_share: float = 0.1) -> list[list[str]]:
    """Notes for templates whose word right before (after) a slot often starts (ends) that field's values
    in the task's other templates: the rows of one template whose values happened to share a first word
    ("The ...") can form a template of their own with that word as text.

    Args:
        texts: per template, its literal texts.
        values: per template, per row, its slot values.
        fields: per template, per slot, the field index (:func:`~coin_data.sources.flan_assemble.pair_fields`).

    Returns:
        per template, notes.

    Example:
        >>> adjacent_word_notes([['Text: "The ', '"'], ["Passage: ", ""]],
        ...                     [[["cat sat."]] * 3, [["The dog ran."], ["A cow."], ["The end."]]], [[0], [0]])
        [["word 'The' before slot 1 also starts 2 of 3 values of the field in other templates"], []]
    """
    notes: list[list[str]] = []
    for t, own in enumerate(texts):
        found = []
        for j in range(len(fields[t]) and len(own) - 1):  # a template without rows has no fields
            for at_end in (False, True):
                word = _edge_word(own[j + 1] if at_end else own[j], at_end)
                if not word:
                    continue
                peers = [row[k] for u, rows in enumerate(values) if u != t
                         for k, f in enumerate(fields[u]) if f == fields[t][j] >= 0 for row in rows]
                if at_end:
                    hits = sum(1 for v in peers if re.search(r"\s" + re.escape(word) + r"$", v.rstrip()))
                else:
                    hits = sum(1 for v in peers if re.match(re.escape(word) + r"\s", v.lstrip()))
                if peers and hits >= 2 and hits >= min_share * len(peers):
                    where = "after" if at_end else "before"
                    verb = "ends" if at_end else "starts"
                    found.append(f"word {word!r} {where} slot {j + 1} also {verb} {hits} of {len(peers)} values "
                                 "of the field in other templates")
        notes.append(found)
    return notes


_EDGE_WORDS = re.compile(r"^\W*\w+\W+\w+\W*"), re.compile(r"\W*\w+\W+\w+\W*$")  # two words at a value's start, end


def recurring_edge_notes(values: Sequence[Sequence[Sequence[str]]], fields: Sequence[Sequence[int]],
                         most: int = 4, least: int = 3) -> list[list[str]]:
    """Notes for slots whose every value starts (ends) with one of a few recurring two-word texts that the
    same field rarely starts (ends) with in the task's other templates.

    Templates that differ only in punctuation after shared words (``({claim}) and answer.`` /
    ``({claim}) and answer!``) can meet in one cluster with those words inside the slot. A field whose
    values start with one of a few stock phrases (``What has ...`` / ``Why does ...``) carries them in
    every template, so there they are field text.

    Args:
        values: per template, per row, its slot values.
        fields: per template, per slot, the field index (:func:`~coin_data.sources.flan_assemble.pair_fields`).
        most: at most this many recurring texts ...
        least: ... each carried by at least this many values.

    Returns:
        per template, notes.

    Example:
        >>> ends = [["a b c) and answer."], ["d e) and answer!"], ["f) and answer."], ["g) and answer!"],
        ...         ["h i) and answer."], ["j) and answer!"]]
        >>> recurring_edge_notes([ends, [["k l."], ["m n."], ["o p."]]], [[0], [0]])[0]
        ["slot 1: every value ends with one of ') and answer!', ') and answer.': template text the rows cannot place"]
    """
    notes: list[list[str]] = []
    for t, rows in enumerate(values):
        found = []
        for j in range(len(fields[t]) if rows else 0):
            peers = [row[k] for u, other in enumerate(values) if u != t
                     for k, f in enumerate(fields[u]) if f == fields[t][j] >= 0 for row in other]
            for at_end, where in ((False, "starts"), (True, "ends")):
                edges = [m.group(0) if (m := _EDGE_WORDS[at_end].search(row[j])) else None for row in rows]
                forms = {e: edges.count(e) for e in edges}
                if None in forms or len(forms) > most or min(forms.values()) < least or len(rows) < 2 * least:
                    continue
                carried = sum(1 for v in peers if any(v.endswith(f) if at_end else v.startswith(f) for f in forms))
                if peers and carried >= 0.5 * len(peers):
                    continue  # the field carries these texts in other templates too
                texts = ", ".join(repr(f) for f in sorted(forms))
                found.append(f"slot {j + 1}: every value {where} with one of {texts}: template text the rows "
                             "cannot place")
        notes.append(found)
    return notes


def _edge_word(text: str, at_end: bool) -> str:
    """The word next to a slot in a literal text, when only spaces separate them (same line)."""
    match = re.match(r" ?(\w+)", text) if at_end else re.search(r"(\w+) $", text)
    return match.group(1) if match else ""
