"""Hard negatives as in the CoIN paper: same task and template, another instance, a different answer.

Pairs from different tasks are already far apart in a model's hidden space; the useful negative for an
(instruction, input) prompt keeps the instruction and swaps the input for one whose answer differs.
The choice is explicit (a column of the dataset), seeded, and independent of row order.

Example:
    >>> from coin_data.sources import Instance
    >>> pool = [Instance("a", "t", {"x": "1"}, "yes"), Instance("b", "t", {"x": "2"}, "no"),
    ...         Instance("c", "t", {"x": "3"}, "yes")]
    >>> picker = NegativePicker(pool, seed=0)
    >>> picker.pick(pool[0], "t0").id
    'b'
"""

from __future__ import annotations

import bisect
import random
from collections import defaultdict
from typing import TYPE_CHECKING, Sequence

from coin_data.seeds import stable_seed  # noqa: F401  (re-exported: coin_data.negatives.stable_seed)

if TYPE_CHECKING:  # annotations only: the build hands the instances in
    from coin_data.sources.embedded import Instance

SAME_TEMPLATE = "same_template"
NONE_ALL_SAME_TARGET = "none:no_instance_with_other_target"

# Rejection sampling is O(1) per pick when targets are mixed; after this many misses fall back to an
# exact scan so a task dominated by one answer still finds its rare negatives.
_MAX_DRAWS = 16


class NegativePicker:
    """Choose, for an anchor instance and template, another instance of the pool with another target.

    The picker keeps one index list per target of the pool's originals: a scaled pool (one with ``base``
    and ``factor``, as :class:`~coin_data.sources.embedded.ScaledInstances`, whose index ``i`` is copy
    ``i % factor`` of ``base[i // factor]``) is never materialised, so memory follows the originals, not the
    rows. The picks are those of the same pool given as a list.

    Args:
        pool: the candidate instances (one task, one split: negatives never cross splits).
        seed: the build seed.
    """

    def __init__(self, pool: Sequence[Instance], seed: int):
        self.pool = pool
        self.seed = seed
        self._base = getattr(pool, "base", pool)
        self._copies = getattr(pool, "factor", 1)
        self._by_target: dict[str, list[int]] = defaultdict(list)  # ascending indices into _base
        for index, instance in enumerate(self._base):
            self._by_target[instance.target].append(index)

    def pick(self, anchor: Instance, template_id: str) -> Instance | None:
        """The negative for ``anchor`` rendered with ``template_id``, or ``None`` if none exists."""
        same = self._by_target.get(anchor.target, [])
        others = len(self._base) - len(same)
        if others == 0:
            return None
        rng = random.Random(stable_seed(self.seed, anchor.task, template_id, anchor.id))
        for _ in range(_MAX_DRAWS):
            candidate = self.pool[rng.randrange(len(self.pool))]
            if candidate.target != anchor.target:
                return candidate
        # The j-th pool index whose target differs, as if listed in order (every copy of an original in turn).
        j = rng.randrange(others * self._copies)
        return self.pool[_nth_not_in(same, j // self._copies) * self._copies + j % self._copies]


def _nth_not_in(taken: Sequence[int], n: int) -> int:
    """The ``n``-th (from 0) non-negative integer missing from the ascending ``taken``, in O(log len(taken)).

    Before ``taken[k]`` lie ``taken[k] - k`` missing integers, so the answer is ``n`` plus the number of
    ``taken`` entries with ``taken[k] - k <= n``.

    Example:
        >>> [_nth_not_in([1, 2, 5], n) for n in range(4)]
        [0, 3, 4, 6]
    """
    return n + bisect.bisect_right(range(len(taken)), n, key=lambda k: taken[k] - k)
