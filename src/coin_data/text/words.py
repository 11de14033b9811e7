"""Word lists and helpers shared by the stages: the stop-word lists (one base, two derived), label words, case.

Example:
    >>> label_words(["spam", "not spam"])
    ('spam', 'not spam', 'not')
    >>> sorted(label_word_set(["Spam", "not spam"]))
    ['not', 'spam']
    >>> match_case("quick", "Fast")
    'Quick'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# The stop-word lists. One list, STOP_WORDS, built from four named groups; the two other stages that skip
# function words use it minus named groups plus a few words, because their seeded outputs depend on exactly
# those words (merging the lists changed the verifier's fitted combiner and 32 of 144 seeded perturbations
# of the default corpus, so each consumer keeps its own set, derived here and pinned by a test).

# Articles, pronouns, auxiliaries, the common prepositions, conjunctions and wh-words: every list skips them.
_CORE_FUNCTION_WORDS = frozenset(
    """a about after all an and any are as at be been before being between both but by did do does each either
    every for from had has have he her his how in into is it its no not of on or over she so some such than
    that the their them then there these they this those to under was were what when where which who whom
    whose why with""".split()
)
# Address, modals, "yes", "one", "two": the verifier compares them (they frame an instruction, see its
# framing list, or state a number), every other list skips them.
_ADDRESS_AND_MODALS = frozenset(
    "can could i if may me might must my neither one our should two we will would yes you your".split()
)
# Less common function words (adverbs, connectives, quantifiers): the perturbation levels may edit them.
_MINOR_FUNCTION_WORDS = frozenset(
    """again also although another because done down during further him just least less more most nor off once
    only other out own per same since though through too until up upon very while within without""".split()
)
# Fillers that carry little content in an instruction: generic verbs and nouns, deixis ("the following"),
# vague amounts, ordinals. Only the rules paraphraser skips them (a synonym there reads wrongly).
_FILLERS = frozenset(
    """above across against alone along already always am among anyone anything around back based behind below
    beneath come comes doing else enough even ever few first following get gets given go goes got having
    here hers however itself kind let like made make many much never next now often others please preceding
    rather second several someone something sort take takes thing things three thus time times us way well
    whether yet yours""".split()
)

# The stop-word list: words that carry no content of their own; the rules paraphraser never swaps them.
STOP_WORDS = _CORE_FUNCTION_WORDS | _ADDRESS_AND_MODALS | _MINOR_FUNCTION_WORDS | _FILLERS

# Words the perturbation levels never edit: a typo or synonym there changes little or breaks grammar. Less
# common function words and fillers stay editable (the levels would otherwise find little to edit in short
# instructions); "onto" and "shall" are function words STOP_WORDS lacks.
FUNCTION_WORDS = (STOP_WORDS - _MINOR_FUNCTION_WORDS - _FILLERS) | {"onto", "shall"}

# Words the lexical diff never counts as content (verify/lexdiff). It leaves out the address-and-modal group
# and the fillers: its framing list allows most of them as differences, numbers and ordinals are compared as
# quantities, and the rest are compared as words ("never", "always", "many", "several" change what is
# asked). It adds the tokens its tokenizer makes of contractions ("'s", "s", "it's") and three prepositions.
VERIFY_STOP_WORDS = (STOP_WORDS - _ADDRESS_AND_MODALS - _FILLERS) | {"onto", "via", "whereas", "'s", "s", "it's"}


def label_words(options: Sequence[str]) -> tuple[str, ...]:
    """The words an edit must keep: each option and each word of it (``"not spam"`` keeps ``not``, ``spam``).

    Args:
        options: the task's answer options.

    Returns:
        The options, then their words, first occurrence kept, case as written.

    Example:
        >>> label_words(["spam", "not spam"])
        ('spam', 'not spam', 'not')
    """
    words = [*options, *(word for option in options for word in option.split())]
    return tuple(dict.fromkeys(words))


def label_word_set(labels: Iterable[str]) -> frozenset[str]:
    """Lower-case single words of a label set ("not spam" protects "not" and "spam").

    Args:
        labels: options or label words.

    Returns:
        Their words in lower case.

    Example:
        >>> sorted(label_word_set(["spam", "not spam"]))
        ['not', 'spam']
    """
    return frozenset(word.lower() for entry in labels for word in re.findall(r"[A-Za-z']+", entry))


def match_case(new: str, like: str) -> str:
    """``new`` written in the case of ``like``: all caps (for words of 2+ letters), capitalised, or as is.

    Example:
        >>> match_case("quick", "FAST"), match_case("quick", "Fast"), match_case("quick", "fast")
        ('QUICK', 'Quick', 'quick')
    """
    if like.isupper() and len(like) > 1:
        return new.upper()
    if like[:1].isupper():
        return new[:1].upper() + new[1:]
    return new
