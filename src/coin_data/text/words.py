"""Word lists and word helpers shared by the stages: label words and case matching.

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
