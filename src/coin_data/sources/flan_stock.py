"""Stock phrases: field text that alignment took for template text, and how a split by one is undone.

A phrase that many, but not all, values of a field contain (``X said "..." to the Y`` in a passage, a
question that starts ``What does "``, a sentence that starts ``The``) lines up across the rows that carry
it, so alignment can read it as template text in two ways:

- a cluster held together by the phrase alone (``{a} said "{b}" to the {c}``) gathers the rows of several
  templates that carry it, and can leave a true template too few rows to count;
- a more specific copy of a true template (``[What does "{a}" mean in {b}]\\n{c}``) takes the rows that
  carry the phrase, and the rest of that template's rows are too few, or form a copy of their own.

A template's rows all carry its text. Text of a cluster that the values of *other* clusters' rows carry
(anywhere inside them for text between two slots, at their start or end for text next to one slot) is
therefore field text whenever the rows show it: :func:`settle_stock` dissolves a cluster whose every word
is such text, and gives a cluster the general form (the phrase inside the slot) when that form explains
rows the specific one does not (rows of a dissolved cluster, or every row of another cluster with the
same instruction words). A specific copy that no rows contradict is kept; the edge and field-text notes
of :mod:`coin_data.sources.flan_edges` report it.

Example:
    >>> values = ['Ann said "hi" to the cat.', 'Bo said "yo" to the dog.', 'Cy said "no" to the ox.', 'Eve ran.']
    >>> skeleton = _tokens('[{}]\\n{} said "{}" to the {}\\nReply.'.replace("{}", "\\x01"))
    >>> skeleton = [_GAP if t == "\\x01" else t for t in skeleton]
    >>> "".join("{}" if t is _GAP else t for t in general_form(skeleton, Evidence(values), 3))
    '[{}]\\n{}\\nReply.'
"""

from __future__ import annotations

from collections.abc import Sequence

from coin_data.sources.flan_skeleton import _GAP, _OPT, _Cluster, _is_word, _Pattern, _gap_runs, _tidy, _tokens

__all__ = ["Evidence", "general_form", "generalise_extra_slots", "settle_stock", "stock_text_notes"]


class Evidence:
    """Slot values of the rows of other clusters: how many contain, start or end with a text.

    ``before`` (``after``) optionally lists ``(literal, rows)``: a literal text that other clusters have right
    before (after) a slot, and their row count. A phrase that sits next to the slot of clusters with other
    instruction text counts as the start (end) of those rows' values: a field that starts with one of a few
    stock phrases in every row splits every template by phrase, and the phrase is then nowhere a value.
    """

    def __init__(self, values: Sequence[str], before: Sequence[tuple[str, int]] = (),
                 after: Sequence[tuple[str, int]] = ()):
        self.values, self.before, self.after = list(values), list(before), list(after)

    def inside(self, text: str) -> int:
        return sum(1 for v in self.values if text in v)

    def starts(self, text: str, context: str = "") -> int:
        """Values that start with ``text``, and rows of clusters with ``text`` right before a slot after other
        instruction text than ``context`` (the text before ``text`` in the cluster asking)."""
        return sum(1 for v in self.values if v.startswith(text)) + sum(
            n for lit, n in self.before if lit.endswith(text) and _other_words(lit[: len(lit) - len(text)], context))

    def ends(self, text: str, context: str = "") -> int:
        """Values that end with ``text``; rows of clusters with ``text`` right after a slot (see :meth:`starts`)."""
        return sum(1 for v in self.values if v.endswith(text)) + sum(
            n for lit, n in self.after if lit.startswith(text) and _other_words(lit[len(text):], context))


def _other_words(a: str, b: str) -> bool:
    """Whether two instruction texts differ in their words (not only in punctuation or spacing)."""
    return _words(_tokens(a)) != _words(_tokens(b))


def _structural(token: object) -> bool:
    """Template structure that field text is never taken to hold: a line break, a label colon, the options."""
    return token is _GAP or any(mark in str(token) for mark in ("\n", ":", _OPT))


def _stock_edge(run: Sequence[str], evidence: Evidence, least: int, at_end: bool) -> int:
    """How many tokens at one end of a literal run are a value's start (``at_end``: the run ends next to a
    slot) or end (the run starts next to a slot): the longest such part with a word, without structure."""
    best = 0
    for size in range(1, len(run) + 1):
        part = run[len(run) - size:] if at_end else run[:size]
        if _structural(part[0] if at_end else part[-1]):
            break
        text = "".join(part)
        context = "".join(run[: len(run) - size] if at_end else run[size:])
        if any(_is_word(t) for t in part) and (
            evidence.starts(text, context) if at_end else evidence.ends(text, context)
        ) >= least:
            best = size
    return best


def general_form(skeleton: Sequence[object], evidence: Evidence, least: int,
                 moved: list[str] | None = None) -> list[object]:
    """The skeleton with its stock text inside the slots: a literal between two slots that ``least`` values
    of other rows contain, and the words next to a slot that ``least`` values start (end) with.

    Args:
        skeleton: tokens and gaps of one cluster.
        evidence: the slot values of the task's other clusters.
        least: how many values must carry a text for it to count as field text.
        moved: receives the texts put inside slots.

    Returns:
        The general skeleton (the same list's content when nothing is stock text).
    """
    moved = [] if moved is None else moved
    out: list[object] = []
    runs = _gap_runs(skeleton)
    for index, run in enumerate(runs):
        if run[0] is _GAP:
            out.append(_GAP)
            continue
        gap_before = index > 0
        gap_after = index < len(runs) - 1
        text = "".join(str(t) for t in run)
        if gap_before and gap_after and not any(_structural(t) for t in run) and any(_is_word(t) for t in run) \
                and evidence.inside(text) >= least:
            out.append(_GAP)
            moved.append(text)
            continue
        tail = _stock_edge(run, evidence, least, at_end=True) if gap_after else 0
        head = _stock_edge(run[: len(run) - tail], evidence, least, at_end=False) if gap_before else 0
        out.extend(run[head: len(run) - tail])
        moved.extend("".join(str(t) for t in part) for part in (run[:head], run[len(run) - tail:]) if part)
        if tail:
            out.append(_GAP)
    return _tidy(out)


def _values(cluster: _Cluster, masked: Sequence[str], rows: Sequence[int]) -> list[str]:
    found = (cluster.pattern.fullmatch(masked[i]) for i in rows)
    return [value for match in found if match is not None for value in match.groups()]


def _evidence(clusters: Sequence[_Cluster], masked: Sequence[str], but: _Cluster, literals: bool = False) -> Evidence:
    """The slot values of the rows of every cluster but ``but``.

    With ``literals`` (to generalise ``but``), also their texts next to a slot, and rows that ``but``'s own
    template explains are left out: a cluster that took some of its rows (and its text into a slot) is no
    independent witness. Without (to dissolve ``but``), they count: a cluster held together by a stock
    phrase explains every row that carries it.
    """
    values: list[str] = []
    before: list[tuple[str, int]] = []
    after: list[tuple[str, int]] = []
    for c in clusters:
        if c is but:
            continue
        rows = [i for i in c.members if not (literals and but.pattern.fullmatch(masked[i]))]
        values += _values(c, masked, rows)
        texts = c.pattern.texts
        before += [(text, len(rows)) for text in texts[:-1]]
        after += [(text, len(rows)) for text in texts[1:]]
    return Evidence(values, before, after) if literals else Evidence(values)


def _words(skeleton: Sequence[object]) -> list[str]:
    """The instruction words of a skeleton (the options block is none)."""
    return [str(t).lower() for t in skeleton if _is_word(t)]


def settle_stock(clusters: list[_Cluster], masked: Sequence[str], least: int,
                 unplaced: Sequence[int] = ()) -> tuple[list[_Cluster], list[int]]:
    """Undo the splits a stock phrase of field text made (see the module docstring).

    Args:
        clusters: the task's clusters (skeletons and member rows).
        masked: the rows' masked texts.
        least: how many values of other clusters must carry a text for it to count as field text.
        unplaced: rows in no cluster (a general form may explain them).

    Returns:
        ``(clusters, loose)``: the clusters after dissolving and generalising, and the rows of dissolved
        clusters (and ``unplaced`` rows) that no cluster explains.
    """
    clusters = sorted(clusters, key=lambda c: -len(c.members))
    loose = list(unplaced)
    for cluster in list(clusters):  # a cluster whose every word is field text is no template
        general = general_form(cluster.skeleton, _evidence(clusters, masked, cluster), least)
        if not any(_is_word(t) for t in general) or _spread(cluster, clusters, masked, general):
            clusters.remove(cluster)
            loose.extend(cluster.members)
    loose = _assign(clusters, loose, masked)
    while (step := _generalise_one(clusters, masked, least, loose)) is not None:
        clusters, loose = step
    return clusters, loose


def _generalise_one(clusters: list[_Cluster], masked: Sequence[str], least: int, loose: list[int]):
    """Give one cluster its general form where that form explains loose rows or another cluster's rows;
    ``None`` when no cluster changes."""
    for cluster in clusters:
        general = general_form(cluster.skeleton, _evidence(clusters, masked, cluster, literals=True), least)
        if general == cluster.skeleton or not _words(general):
            continue
        pattern = _Pattern(general)
        taken = [i for i in loose if pattern.fullmatch(masked[i])]
        partners = [c for c in clusters if c is not cluster and _partner(c, general, pattern, masked, clusters, least)]
        if taken or partners:
            members = cluster.members + taken + [i for p in partners for i in p.members]
            rest = [c for c in clusters if c is not cluster and c not in partners]
            return rest + [_Cluster(general, members)], [i for i in loose if i not in taken]
    return None


def generalise_extra_slots(clusters: list[_Cluster], masked: Sequence[str], least: int,
                           notes: list[tuple[list[int], str]]) -> bool:
    """Give the general form to a cluster whose stock text splits one field into extra slots (in place).

    The templates of a task fill the same fields; a cluster with more slots than the task's usual count,
    whose extra slots are separated only by text that other rows' values carry, is one field split by a
    stock phrase that all of its rows happen to carry. The rows alone cannot tell, so ``(rows, note)`` is
    appended to ``notes``: the template that takes these rows is reported as ambiguous.

    Returns:
        Whether any cluster changed.
    """
    usual, changed = _usual_slots(clusters), False
    for k, cluster in enumerate(clusters):
        moved: list[str] = []
        general = general_form(cluster.skeleton, _evidence(clusters, masked, cluster), least, moved)
        if _gaps(cluster.skeleton) > usual >= _gaps(general) and _words(general):
            note = (f"text {', '.join(map(repr, moved))} that other rows' values carry is read as field text: the "
                    f"task's other templates have {usual} slot(s), this one {_gaps(cluster.skeleton)}, and every "
                    "row carries the text")
            notes.append((list(cluster.members), note))
            clusters[k] = _Cluster(general, cluster.members)
            changed = True
    return changed


def _usual_slots(clusters: Sequence[_Cluster]) -> int:
    """The slot count that holds the most rows."""
    rows: dict[int, int] = {}
    for c in clusters:
        rows[_gaps(c.skeleton)] = rows.get(_gaps(c.skeleton), 0) + len(c.members)
    return max(rows, key=lambda n: (rows[n], -n)) if rows else 0


def _gaps(skeleton: Sequence[object]) -> int:
    return sum(1 for t in skeleton if t is _GAP)


def _spread(cluster: _Cluster, clusters: Sequence[_Cluster], masked: Sequence[str], general: Sequence[object],
            share: float = 0.6) -> bool:
    """Whether most of a cluster's rows are explained by two or more other clusters, and the cluster is a
    phrase's copy of them: it has no instruction text at either end (``{a} said "{b}" to the {c}``), or its
    general form explains every row of those clusters (``Q: "What does "{a}" mean in {b}"\nChoose one{c}``
    over ``Q: "{a}"\nChoose one:`` and ``... one!``). The rows of one template are explained by one more
    general template or by none."""
    owners: dict[int, int] = {}
    for i in cluster.members:
        owner = next((k for k, c in enumerate(clusters) if c is not cluster and c.pattern.fullmatch(masked[i])), None)
        if owner is not None:
            owners[owner] = owners.get(owner, 0) + 1
    if len(owners) < 2 or sum(owners.values()) < share * len(cluster.members):
        return False
    runs = _Pattern(cluster.skeleton).texts
    if not runs[0] and not _words(_tokens(runs[-1])):
        return True
    pattern = _Pattern(general)
    return all(pattern.fullmatch(masked[i]) for k in owners for i in clusters[k].members)


def _partner(other: _Cluster, general: list[object], pattern: _Pattern, masked: Sequence[str],
             clusters: Sequence[_Cluster], least: int) -> bool:
    """Whether ``other`` holds rows of the same template: the general form explains all of them and the two
    general forms have the same instruction words and no more slots (punctuation next to a slot may differ:
    it is settled later as a slot edge). ``other``'s extra text needs only one value elsewhere that carries it: the
    rows of ``other`` are already explained, and a field may start with one of a few stock phrases, one of
    them rare in the other templates' rows."""
    if not all(pattern.fullmatch(masked[i]) for i in other.members):
        return False
    own = general_form(other.skeleton, _evidence(clusters, masked, other, literals=True), 1)
    # a general form with more slots than the partner's would hold some of its text (``one{}`` for
    # ``one:`` and ``one!``): two templates that differ in punctuation, not one
    return _words(own) == _words(general) and _gaps(general) <= _gaps(own)


def _assign(clusters: Sequence[_Cluster], rows: Sequence[int], masked: Sequence[str]) -> list[int]:
    """Give each row to the most specific cluster that explains it; return the rows none explains."""
    order = sorted(clusters, key=lambda c: -sum(len(str(t).strip()) for t in c.skeleton if t is not _GAP))
    left = []
    for i in rows:
        owner = next((c for c in order if c.pattern.fullmatch(masked[i])), None)
        if owner is None:
            left.append(i)
        else:
            owner.members.append(i)
    return left


def stock_text_notes(texts: Sequence[Sequence[str]], values: Sequence[Sequence[Sequence[str]]],
                     least: int = 3) -> list[list[str]]:
    """Notes for recovered templates whose text next to a slot, or between two slots, the values of the
    task's other templates carry (at their start or end, or inside): a stock phrase of the field text that
    every row of the template happens to carry reads as template text, and the rows cannot tell.

    Args:
        texts: per template, its literal texts.
        values: per template, per row, its slot values.
        least: how many values of other templates must carry the text.

    Returns:
        per template, notes.

    Example:
        >>> stock_text_notes([["Read: ", " as the book says."], ["Text: ", ""]],
        ...                  [[["Boil it"]] * 3, [["Stir as the book says."], ["Chop as the book says."],
        ...                                       ["Roast as the book says."]]])
        [["text ' as the book says.' next to a slot also ends 3 values of other templates; kept as template text"], []]
    """
    notes: list[list[str]] = []
    for t, own in enumerate(texts):
        others = [v for u, rows in enumerate(values) if u != t for row in rows for v in row]
        skeleton: list[object] = []
        for j, text in enumerate(own):
            skeleton += _tokens(text) + ([_GAP] if j < len(own) - 1 else [])
        moved: list[str] = []
        general_form(skeleton, Evidence(others), least, moved)
        evidence = Evidence(others)
        found = []
        for text in moved:
            count = max(evidence.inside(text), evidence.starts(text), evidence.ends(text))
            verb = "ends" if evidence.ends(text) == count else "starts" if evidence.starts(text) == count else "occurs in"
            found.append(f"text {text!r} next to a slot also {verb} {count} values of other templates; kept as "
                         "template text")
        notes.append(found)
    return notes
