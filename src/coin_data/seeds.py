"""The one stable hash of the project: seeds and ids that are the same in every process (unlike ``hash``).

Every seeded choice (row splits, negative picks, rules rewrites, perturbations, training groups) draws
from :func:`stable_seed`, so a build is byte-identical across runs, machines and ``PYTHONHASHSEED``.

Example:
    >>> stable_seed(0, "nli", "t1") == stable_seed(0, "nli", "t1") != stable_seed(0, "nli", "t2")
    True
"""

from __future__ import annotations

import hashlib


def stable_seed(*parts: object, sep: str = "\x1f") -> int:
    """A 64-bit integer from ``parts``: the first 8 bytes of the SHA-256 of ``sep.join(map(str, parts))``.

    Args:
        *parts: values that identify the choice (seed, task, template id ...).
        sep: separator between parts (kept per caller, so that existing seeds keep their values).

    Returns:
        An integer in ``[0, 2**64)``.

    Example:
        >>> stable_seed("a", "b") < 2**64
        True
    """
    digest = hashlib.sha256(sep.join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")
