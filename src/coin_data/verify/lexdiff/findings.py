"""The lexical diff's rules: each detector compares two read instructions and reports the meaning changes it finds.

Every detector returns a list of :class:`Finding` (empty, or one finding). :func:`sentence_findings` runs
those that compare the two sides as a whole (negation, quantity, ordinal, argument swap, direction, answer
labels, scope); :func:`antonym` and :func:`contrast` look at the words the alignment left unmatched.

Example:
    >>> str(Finding("quantity", "numbers [3] -> [5]"))
    'quantity: numbers [3] -> [5]'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from coin_data.verify.lexdiff.words import (
    _BOUNDARY, _CURATED_FLIP_ALWAYS, _NEGATIONS, _ROLE_NOUNS, _SYMMETRIC_CONNECTORS,
)  # fmt: skip

if TYPE_CHECKING:
    from coin_data.verify.lexdiff.reading import Side
    from coin_data.verify.lexdiff.relations import WordRelations

# The kinds of finding, in the order they are reported (most specific first).
FINDING_KINDS = (
    "negation", "quantity", "ordinal", "argument_swap", "direction", "label_change", "scope", "antonym", "contrast",
)  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One meaning-changing difference.

    Attributes:
        kind: one of :data:`FINDING_KINDS`.
        detail: the words that show it, e.g. ``"'most' -> 'least'"``.
    """

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"



def sentence_findings(a: Side, b: Side, relations: WordRelations) -> list[Finding]:
    """The findings that compare two sides as a whole, in :data:`FINDING_KINDS` order.

    Args:
        a, b: the original and the candidate, read.
        relations: the WordNet relations.

    Returns:
        The negation, quantity, ordinal, argument-swap, direction, label-change and scope findings.
    """
    findings: list[Finding] = []
    findings += negation(a, b)
    findings += quantity(a, b)
    findings += ordinal(a, b)
    findings += argument_swap(a, b, relations)
    if a.makes != b.makes:
        findings.append(Finding("direction", f"produces {sorted(a.makes)} -> {sorted(b.makes)}"))
    findings += label_change(a, b, relations)
    findings += scope(a, b)
    return findings


def negation(a: Side, b: Side) -> list[Finding]:
    # "'not_entailment' if there is no such implication" defines an answer word. When only one side
    # defines its labels, the definition's negations describe the label, not the instruction.
    na, nb = a.negations, b.negations
    if a.defines_labels != b.defines_labels:
        na, nb = max(0, na - a.definition_negations), max(0, nb - b.definition_negations)
    if na == nb:
        return []
    more, fewer = ("added", "dropped") if b.negations > a.negations else ("dropped", "added")
    words = [t for t in (b.tokens if more == "added" else a.tokens) if t in _NEGATIONS]
    return [Finding("negation", f"negation {more}: {', '.join(repr(w) for w in dict.fromkeys(words))}")]

def quantity(a: Side, b: Side) -> list[Finding]:
    # A lone "one" is usually an article in disguise ("pick one answer" = "pick an answer"), so
    # 1 counts only beside another number.
    # Likewise "a few" is only compared with other amounts.
    na = sorted(n for n in a.numbers if n not in ("1.0", "few") or len(set(a.numbers)) > 1)
    nb = sorted(n for n in b.numbers if n not in ("1.0", "few") or len(set(b.numbers)) > 1)
    if na != nb and _same_values(a, b):
        return []
    ba = sorted(x for x in a.bounds if x != "exact")
    bb = sorted(x for x in b.bounds if x != "exact")
    if na != nb:
        return [Finding("quantity", f"numbers {_fmt_numbers(a.numbers)} -> {_fmt_numbers(b.numbers)}")]
    if ba != bb and (na or nb):
        return [Finding("quantity", f"bounds {ba or ['none']} -> {bb or ['none']}")]
    return []

def ordinal(a: Side, b: Side) -> list[Finding]:
    # An ordinal inside a name on one side ("English as a Second Language") may be written in lower case
    # on the other ("English as their second language"): the two are the same name.
    if sorted(_unnamed(a.ordinals, b.named_ordinals)) == sorted(_unnamed(b.ordinals, a.named_ordinals)):
        return []
    if sorted(a.ordinals) == sorted(b.ordinals) or _same_values(a, b):
        return []
    return [Finding("ordinal", f"positions {_fmt_ordinals(a.ordinals)} -> {_fmt_ordinals(b.ordinals)}")]

def _unnamed(ordinals: Sequence[int], named: Sequence[int]) -> list[int]:
    """``ordinals`` less one occurrence of each value in ``named``.

    Example:
        >>> _unnamed([2, 2, 3], [2])
        [2, 3]
    """
    rest = list(ordinals)
    for value in named:
        if value in rest:
            rest.remove(value)
    return rest


def argument_swap(a: Side, b: Side, relations: WordRelations) -> list[Finding]:
    """Two words that trade places around the same connecting words, within one clause.

    "{a} minus {b}" -> "{b} minus {a}" is a swap; "A or B" -> "B or A" is not (symmetric connector),
    nor is the passive "X entails Y" -> "Y is entailed by X" (the connecting words differ).
    """
    ka, kb = relations.keyed(a.tokens), relations.keyed(b.tokens)
    args = {k for k in set(ka) & set(kb) if k.startswith("{") or relations.is_argument(k)}
    if len(args) < 2:
        return []
    pairs_a, pairs_b = _connected_pairs(ka, args), _connected_pairs(kb, args)
    for (x, y), betweens in pairs_a.items():
        for between in betweens:
            if (
                between in pairs_b.get((y, x), ())
                and between not in pairs_b.get((x, y), ())
                and between not in pairs_a.get((y, x), ())
            ):
                words = " ".join(between)
                return [Finding("argument_swap", f"'{x} {words} {y}' -> '{y} {words} {x}'")]
    # The same sentence with its role nouns permuted ("if the context entails the answer" -> "if the
    # answer entails the context"), however far apart they stand.
    if len(ka) == len(kb) and ka != kb:
        where = [i for i, (x, y) in enumerate(zip(ka, kb)) if x != y]
        roles = [(ka[i], kb[i]) for i in where]
        # "the context and the question" -> "the question and the context" is one list, reordered.
        listed = len(where) == 2 and set(ka[where[0] + 1 : where[1]]) <= _SYMMETRIC_CONNECTORS
        if not listed and all(x in _ROLE_NOUNS or x.startswith("{") for pair in roles for x in pair):
            return [Finding("argument_swap", "roles exchanged: " + ", ".join(f"'{x}' -> '{y}'" for x, y in roles[:3]))]
    return []

def label_change(a: Side, b: Side, relations: WordRelations) -> list[Finding]:
    if not a.labels or not b.labels:
        return []
    lost = sorted(w for w in a.labels if not relations.has_synonym(w, b.labels) and not relations.has_form(w, b.labels))
    new = sorted(w for w in b.labels if not relations.has_synonym(w, a.labels) and not relations.has_form(w, a.labels))
    if not lost and not new:
        return []
    return [Finding("label_change", f"answer words {sorted(a.labels)} -> {sorted(b.labels)}")]

def scope(a: Side, b: Side) -> list[Finding]:
    if a.only != b.only:
        return [Finding("scope", f"'only' {'added' if b.only else 'dropped'}")]
    if (a.universal and not a.partial and b.partial and not b.universal) or (
        a.partial and not a.universal and b.universal and not b.partial
    ):
        return [Finding("scope", f"{'all' if a.universal else 'some'} -> {'all' if b.universal else 'some'}")]
    return []

def antonym(dropped: Sequence[str], added: Sequence[str], original: Sequence[str], relations: WordRelations) -> list[Finding]:
    for x in dropped:
        for y in added:
            # Both words already in the original ("answer the question ... an answer") and only their
            # counts moved: the rewording redistributes them, it does not flip one into the other.
            if relations.has_form(y, original) and relations.has_form(x, original) and x not in _CURATED_FLIP_ALWAYS:
                continue
            if relations.antonyms(x, y):
                return [Finding("antonym", f"{x!r} -> {y!r}")]
    return []

def contrast(dropped: Sequence[str], added: Sequence[str], relations: WordRelations) -> list[Finding]:
    # Only for words used mainly as nouns: siblings among adjectives ("ascending"/"increasing") are
    # often synonyms in instruction text.
    dropped = [w for w in dropped if relations.nounish(w)]
    added = [w for w in added if relations.nounish(w)]
    for x in dropped:
        for y in added:
            if relations.related(x, y) == "contrast" and x not in y and y not in x:
                return [Finding("contrast", f"{x!r} -> {y!r} (related, not synonyms)")]
    return []


def _connected_pairs(keys: Sequence[str], args: set[str]) -> dict[tuple[str, str], set[tuple[str, ...]]]:
    """Argument pairs of one clause with the 1-4 tokens between them (not merely "and"/"or")."""
    out: dict[tuple[str, str], set[tuple[str, ...]]] = {}
    for i, x in enumerate(keys):
        if x not in args:
            continue
        for j in range(i + 1, min(len(keys), i + 6)):
            if keys[j] in _BOUNDARY:
                break
            if keys[j] in args and keys[j] != x:
                between = tuple(keys[i + 1 : j])
                if between and not set(between) <= _SYMMETRIC_CONNECTORS:
                    out.setdefault((x, keys[j]), set()).add(between)
    return out



def _same_values(a: Side, b: Side) -> bool:
    """True when the positive numbers agree once cardinals, ordinals and identifiers are pooled.

    "two decimal places" = "the second decimal place"; "the first event" = "event 1" (when event 1 is
    also named on the other side as an identifier).
    """

    def pooled(side: Side) -> list[float]:
        values = [float(n) for n in side.numbers if n != "few"] + [float(o) for o in side.ordinals if o > 0]
        return sorted(set(values) | {float(i) for i in side.identifiers})

    if any(o < 0 for o in a.ordinals + b.ordinals) and sorted(a.ordinals) != sorted(b.ordinals):
        return False
    return pooled(a) == pooled(b)


def _fmt_numbers(numbers: Sequence[str]) -> str:
    return "[" + ", ".join(n[:-2] if n.endswith(".0") else n for n in numbers) + "]"


def _fmt_ordinals(ordinals: Sequence[int]) -> str:
    names = {1: "first", 2: "second", 3: "third", -1: "last", -2: "penultimate"}
    return "[" + ", ".join(names.get(o, f"#{o}") for o in ordinals) + "]"
