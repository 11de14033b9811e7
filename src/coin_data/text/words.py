"""Word lists and word helpers shared by the stages: the stop-word list, label words, case matching.

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

# The stop-word list: function words and fillers that carry no content of their own; the rules paraphraser
# never swaps them. Two shorter lists remain, because seeded outputs depend on them: FUNCTION_WORDS below
# (the perturbation levels; the evaluation suites' perturbed texts follow from it) and verify/lexdiff.py's
# own (its fitted combiner depends on it). Merging either into STOP_WORDS changes those outputs.
STOP_WORDS = frozenset(
    """a about above across after again against all alone along already also although always am among an
    and another any anyone anything are around as at back based be because been before behind being below
    beneath between both but by can could did do does doing done down during each either else enough even
    ever every few first for from further get gets given got had has have having he her here hers him his
    how however i if in into is it its itself just least less like many may me might more most much must my
    neither never next no nor not now of off often on once one only or other others our out over own per
    please rather same second several she should since so some someone something such than that the their
    them then there these they this those though through thus to too two three under until up upon us very
    was we well were what when where whether which while who whom whose why will with within without would
    yes yet you your yours following preceding let make made go goes come comes take takes way thing things
    time times kind sort""".split()
)


# Words the perturbation levels never edit: a typo or synonym there changes little or breaks grammar.
FUNCTION_WORDS = frozenset(
    ["a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with", "from", "as", "is", "are", "was", "were", "be", "been", "being", "it", "its", "this", "that", "these", "those", "there", "their", "they", "them", "you", "your", "we", "our", "he", "she", "his", "her", "i", "me", "my", "not", "no", "yes", "do", "does", "did", "can", "could", "will", "would", "should", "may", "might", "must", "shall", "has", "have", "had", "which", "what", "who", "whom", "whose", "when", "where", "why", "how", "than", "then", "so", "such", "into", "onto", "over", "under", "about", "after", "before", "between", "each", "every", "any", "some", "all", "both", "either", "neither", "one", "two"]
)


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
