"""Paired bootstrap confidence intervals over examples (CoIN minus baseline on the same examples).

Both arms are scored on the same examples, so the difference is computed per resample from the *same*
resampled examples: the pairing removes the between-example variance that an unpaired comparison would
carry. Resampling is stratified by task when ``strata`` is given: every resample keeps each task's
number of examples, so a task with 64 examples never stands in for another one.

Pure functions of numbers and a seed (numpy only): the same inputs and seed give the same interval.

Example:
    >>> ci = paired_bootstrap([1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0], n_resamples=2000, seed=0)
    >>> ci["difference"], ci["n"]
    (0.5, 4)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

DEFAULT_RESAMPLES = 10_000


def resample_indices(strata: Sequence, n_resamples: int, seed: int) -> np.ndarray:
    """Bootstrap resamples of example indices, drawn with replacement within each stratum.

    Args:
        strata: one label per example (e.g. its task); examples are only ever replaced by examples of
            the same stratum.
        n_resamples: how many resamples.
        seed: seeds numpy's generator.

    Returns:
        ``[n_resamples, n_examples]`` integer array; row ``r`` lists the examples of resample ``r``
        (each stratum keeps its positions and its size).

    Example:
        >>> resample_indices(["a", "a", "b"], 2, seed=0)[:, 2].tolist()   # 'b' has one example: always itself
        [2, 2]
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    labels = np.asarray(list(strata), dtype=object)
    if labels.size == 0:
        raise ValueError("no examples to resample")
    rng = np.random.default_rng(seed)
    out = np.empty((n_resamples, labels.size), dtype=np.int64)
    for label in sorted(set(labels.tolist()), key=str):  # sorted: the draw order, hence the result, is fixed
        members = np.flatnonzero(labels == label)
        out[:, members] = members[rng.integers(0, members.size, size=(n_resamples, members.size))]
    return out


def bootstrap_interval(statistic: Callable[[np.ndarray], float], strata: Sequence, n_resamples: int = DEFAULT_RESAMPLES,
                       seed: int = 0, confidence: float = 0.95) -> dict:  # fmt: skip
    """Percentile bootstrap interval of any statistic of a set of examples.

    Args:
        statistic: ``statistic(indices) -> float`` computed on the examples ``indices`` (with repeats);
            called once with ``arange(n)`` for the point estimate, then once per resample. For a paired
            comparison, return (arm A's value - arm B's value) on the same indices.
        strata: one label per example (see :func:`resample_indices`).
        n_resamples: bootstrap resamples.
        seed: resampling seed.
        confidence: interval coverage, e.g. 0.95.

    Returns:
        ``{"estimate", "low", "high", "se", "p_two_sided", "n", "n_resamples", "confidence", "seed"}``;
        ``se`` is the standard deviation over resamples; ``p_two_sided`` is twice the smaller share of
        resamples on either side of zero (a rough sign test of the estimate, capped at 1).

    Example:
        >>> values = np.array([0.2, 0.4, 0.6])
        >>> round(bootstrap_interval(lambda idx: float(values[idx].mean()), ["t"] * 3, 500, seed=1)["estimate"], 6)
        0.4
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    n = len(strata)
    estimate = float(statistic(np.arange(n)))
    draws = np.array([statistic(row) for row in resample_indices(strata, n_resamples, seed)], dtype=float)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    below, above = float(np.mean(draws <= 0.0)), float(np.mean(draws >= 0.0))
    return {"estimate": estimate, "low": float(low), "high": float(high), "se": float(draws.std(ddof=1)) if n_resamples > 1 else 0.0,
            "p_two_sided": min(1.0, 2.0 * min(below, above)), "n": n, "n_resamples": n_resamples,
            "confidence": confidence, "seed": seed}  # fmt: skip


def stratified_mean(values: np.ndarray, strata: Sequence) -> Callable[[np.ndarray], float]:
    """A statistic for :func:`bootstrap_interval`: the mean over strata of each stratum's mean value.

    Every task weighs the same, whatever its number of examples (the report's averaging over tasks).

    Example:
        >>> stratified_mean(np.array([1.0, 0.0, 0.0]), ["a", "b", "b"])(np.arange(3))
        0.5
    """
    values = np.asarray(values, dtype=float)
    labels = np.asarray(list(strata), dtype=object)

    def statistic(indices: np.ndarray) -> float:
        chosen, groups = values[indices], labels[indices]
        return float(np.mean([chosen[groups == g].mean() for g in sorted(set(groups.tolist()), key=str)]))

    return statistic


def paired_bootstrap(a: Sequence[float], b: Sequence[float], strata: Sequence | None = None,
                     n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = 0.95) -> dict:  # fmt: skip
    """Interval of mean(a) - mean(b) for per-example values of two arms on the same examples.

    Args:
        a, b: one value per example, same order (e.g. CoIN's and the baseline's accuracy per example,
            averaged over instructions, levels and seeds).
        strata: one task label per example; the mean is then the mean over tasks of the task means,
            and resampling stays within tasks. ``None``: one stratum.
        n_resamples, seed, confidence: see :func:`bootstrap_interval`.

    Returns:
        :func:`bootstrap_interval`'s dict with ``difference`` (= ``estimate``), ``a`` and ``b`` (each
        arm's mean) added.

    Raises:
        ValueError: ``a``, ``b`` and ``strata`` differ in length, or there are no examples.

    Example:
        >>> paired_bootstrap([0.5, 0.7], [0.5, 0.7], n_resamples=100)["high"]   # identical arms: exactly 0
        0.0
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    strata = ["all"] * len(a) if strata is None else list(strata)
    if not (len(a) == len(b) == len(strata)):
        raise ValueError(f"paired values need equal lengths: a has {len(a)}, b {len(b)}, strata {len(strata)}")
    if len(a) == 0:
        raise ValueError("no examples to compare")
    mean_of = stratified_mean(a - b, strata)
    result = bootstrap_interval(mean_of, strata, n_resamples, seed, confidence)
    everything = np.arange(len(a))
    return {"difference": result["estimate"], "a": stratified_mean(a, strata)(everything),
            "b": stratified_mean(b, strata)(everything), **result}  # fmt: skip
