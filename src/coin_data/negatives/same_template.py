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

    Args:
        pool: the candidate instances (one task, one split: negatives never cross splits).
        seed: the build seed.
    """

    def __init__(self, pool: Sequence[Instance], seed: int):
        self.pool = list(pool)
        self.seed = seed
        self._by_target: dict[str, list[int]] = defaultdict(list)
        for index, instance in enumerate(self.pool):
            self._by_target[instance.target].append(index)

    def pick(self, anchor: Instance, template_id: str) -> Instance | None:
        """The negative for ``anchor`` rendered with ``template_id``, or ``None`` if none exists."""
        others = len(self.pool) - len(self._by_target.get(anchor.target, ()))
        if others == 0:
            return None
        rng = random.Random(stable_seed(self.seed, anchor.task, template_id, anchor.id))
        for _ in range(_MAX_DRAWS):
            candidate = self.pool[rng.randrange(len(self.pool))]
            if candidate.target != anchor.target:
                return candidate
        allowed = [i for i, inst in enumerate(self.pool) if inst.target != anchor.target]
        return self.pool[allowed[rng.randrange(len(allowed))]]
