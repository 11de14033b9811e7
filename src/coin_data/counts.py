"""Counts by name as one short phrase, shared by the build summary, error lines and the dataset card.

Example:
    >>> count_summary({"timeout": 2, "503": 1})
    '3 (503 1, timeout 2)'
"""

from __future__ import annotations


def count_summary(counts: dict[str, int]) -> str:
    """The total of ``counts`` and, when there is any, each name's count: ``'3 (503 1, timeout 2)'``, ``'0'``.

    Example:
        >>> count_summary({"timeout": 2, "503": 1}), count_summary({})
        ('3 (503 1, timeout 2)', '0')
    """
    named = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()) if n)
    return f"{sum(counts.values())} ({named})" if named else "0"
