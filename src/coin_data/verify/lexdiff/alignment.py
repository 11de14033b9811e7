"""Aligning the content words of two instructions: which words of each side have no counterpart on the other.

A word is matched by the same word or an inflection of it, a WordNet synonym anywhere in the other text, a
more general word (original side only: the rewording may generalise, not add information), a two-word
compound ("spam" -> "junk mail") or a word its definition names. What stays unmatched is reported as
``dropped`` and ``added``; how long the longest unmatched stretch is tells an inserted clause from a
scattered rewording.

Example:
    >>> _count_drops("true or true".split(), "true or false".split(), str)
    ['true']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Sequence

from coin_data.verify.lexdiff.words import _DEIXIS

if TYPE_CHECKING:
    from coin_data.verify.lexdiff.reading import Side
    from coin_data.verify.lexdiff.relations import WordRelations


@dataclass(frozen=True)
class Alignment:
    """The words of two sides that found no counterpart.

    Attributes:
        dropped: content words of the original with no counterpart in the candidate.
        added: content words of the candidate with no counterpart in the original.
        fewer: words (any, by base form) that occur fewer times in the candidate: where an antonym may hide.
        more: words that occur more times in the candidate.
        overlap: word-sequence similarity (difflib ratio over base forms).
        content: content words of both sides (distinct per side).
        run: the most unmatched content words in one unbroken stretch of either side.
    """

    dropped: tuple[str, ...]
    added: tuple[str, ...]
    fewer: tuple[str, ...]
    more: tuple[str, ...]
    overlap: float
    content: int
    run: int


def align(a: Side, b: Side, relations: WordRelations) -> Alignment:
    """Align the words of ``a`` (original) and ``b`` (candidate).

    Args:
        a, b: the two sides (:func:`~coin_data.verify.lexdiff.reading.read_side`).
        relations: the WordNet relations.

    Returns:
        An :class:`Alignment`.
    """
    forms_a, forms_b = relations.all_forms(a.words), relations.all_forms(b.words)
    dropped_all = [w for w in dict.fromkeys(a.words) if forms_b.isdisjoint(relations.forms(w))]
    added_all = [w for w in dict.fromkeys(b.words) if forms_a.isdisjoint(relations.forms(w))]
    # A counterpart may sit anywhere in the other text: "a person ... people" -> "an individual ...
    # people" swaps person for individual even though "people" still matches "person".
    other_a, other_b = list(dict.fromkeys(a.words)), list(dict.fromkeys(b.words))
    dropped = [w for w in dropped_all if relations.is_content(w) and not relations.has_counterpart(w, other_b)]
    added = [w for w in added_all if relations.is_content(w) and not relations.has_counterpart(w, other_a, True)]
    dropped, added = match_compounds(dropped, added, a.words, b.words, True, relations)
    added, dropped = match_compounds(added, dropped, b.words, a.words, False, relations)
    names = slot_names(a.words) & slot_names(b.words)
    dropped = [w for w in dropped if not names.intersection(relations.forms(w)) and w not in names]
    added = [w for w in added if not names.intersection(relations.forms(w)) and w not in names]
    overlap = SequenceMatcher(a=[relations.base(w) for w in a.words], b=[relations.base(w) for w in b.words],
                              autojunk=False).ratio()
    content = sum(1 for w in other_a if relations.is_content(w)) + sum(1 for w in other_b if relations.is_content(w))
    run = max(_longest_run(a.words, set(dropped), relations.is_content),
              _longest_run(b.words, set(added), relations.is_content))
    # Antonyms are looked for among words whose count changed, so that "true ... true" -> "false ...
    # true" is seen even though "true" is still there.
    fewer = _count_drops(a.words, b.words, relations.base)
    more = _count_drops(b.words, a.words, relations.base)
    return Alignment(dropped=tuple(dropped), added=tuple(added), fewer=tuple(fewer), more=tuple(more), overlap=overlap,
                     content=content, run=run)


def slot_names(words: Sequence[str]) -> set[str]:
    """The words that name the slots among ``words``: "{headline_a}" is named "headline", "{sentence1}"
    "sentence". A word of the text that names a slot both sides share ("an article titled {headline_a}" ->
    "Headline 1: {headline_a}") labels that input; it asks for nothing, so it is never unmatched content.

    Example:
        >>> sorted(slot_names(["compare", "{headline_a}", "with", "{sentence1}"]))
        ['headline', 'sentence']
    """
    return {part for w in words if w.startswith("{") for part in re.split(r"[_\d]+", w.strip("{}").lower())
            if len(part) > 1}


def match_compounds(
unmatched: list[str], others: list[str], words: Sequence[str], other_words: Sequence[str],
original_side: bool, relations: WordRelations,
) -> tuple[list[str], list[str]]:
    """Match words of one side against two-word compounds of the other side.

    "spam" -> "junk mail" (a WordNet compound, here the hypernym) and "keywords" -> "key terms" (a
    closed compound split into a shared head and a related word) are rewordings: the word and the
    compound's words all count as matched.

    A definition names a more general word ("counterargument: an argument offered in opposition"), so
    a word of the original may be replaced by a word its definition names, never the reverse: the
    candidate would add information. ``original_side`` says which side ``unmatched`` is on.

    Returns:
        ``(unmatched, others)`` with the matched words removed.
    """
    if not others:
        return unmatched, others
    left, right = list(unmatched), list(others)
    pairs = [(x, y) for x, y in zip(other_words, other_words[1:]) if x.isalpha() and y.isalpha()]
    for word in list(left):
        explained = [w for w in right if (relations.gloss_related(word, w) if original_side else
                                          relations.gloss_related(w, word))]
        if explained:
            # "spam" -> "unsolicited junk mail": the definition of spam ("unwanted e-mail ...") names mail.
            left.remove(word)
            right = [w for w in right if w not in explained]
            continue
        for x, y in pairs:
            if x not in right and y not in right:
                continue
            if relations.compound_related(word, f"{x}_{relations.base(y)}") or relations.split_related(word, x, y):
                left.remove(word)
                right = [w for w in right if w not in (x, y)]
                break
    # A word of this side, matched or not, may define an unmatched word of the other side: "email
    # spam" -> "email junk mail" (spam is "unwanted e-mail"); the compound's first word goes with it.
    content = [w for w in dict.fromkeys(words) if relations.is_content(w) and not w.startswith("{")] if original_side else []
    for word in list(right):
        if word in right and any(relations.gloss(x).intersection(relations.forms(word)) for x in content):
            before = [p for p, q in pairs if q == word and p in right]
            right = [w for w in right if w != word and w not in before]
    return left, right


def _longest_run(words: Sequence[str], unmatched: set[str], is_content) -> int:
    """The most ``unmatched`` words in one stretch of ``words`` with no matched content word inside.

    Example:
        >>> _longest_run("rate it and say how sure you are".split(), {"sure", "rate"}, lambda w: w in {"rate", "sure", "it"})
        1
    """
    best = current = 0
    for w in words:
        if w in unmatched:
            current += 1
            best = max(best, current)
        elif is_content(w):
            current = 0
    return best


def _count_drops(words: Sequence[str], others: Sequence[str], base) -> list[str]:
    """Words of ``words`` (outside ``_DEIXIS``) that occur fewer times, by base form, in ``others``."""
    have: dict[str, int] = {}
    for w in others:
        have[base(w)] = have.get(base(w), 0) + 1
    out: list[str] = []
    for w in words:
        key = base(w)
        if have.get(key, 0) > 0:
            have[key] -= 1
        elif w not in _DEIXIS and w not in out:
            out.append(w)
    return out

