"""The combined verdict: which signal decides whether a candidate says the same as its original.

Signals arrive per candidate (see :mod:`coin_data.verify`); this module turns them into one decision
and names the signal that decided. The rules, in order (the first that fires decides):

1. **lexdiff** -- a lexical-semantic finding (negation, antonym, quantity, ordinal, argument swap, label
   change, scope, contrast; :mod:`coin_data.verify.lexdiff`) rejects. These are precise: a single flipped word
   is enough, whatever the embedding says.
2. **embedding floor** -- cosine below ``min_similarity`` rejects (the texts are about different things).
3. **optional signals**, each a veto when switched on: ``nli`` (entailment both ways below its threshold),
   ``judge`` (an LLM says the instructions ask for different outputs), ``behaviour`` (a reference model
   answers probe inputs differently). See :mod:`coin_data.verify.signals`.
4. **combiner** -- a logistic regression over the embedding cosine and the diff's unmatched words
   (:data:`FEATURES`) gives ``p(equivalent)``; below ``combiner_threshold`` rejects. It catches what no
   single rule names: a content word swapped for a non-synonym in an otherwise identical instruction
   ("the sentiment of the review" -> "the topic of the review"), while a restructured rewording with
   new words, whose overlap is low, keeps a high p.

The coefficients are plain numbers in ``verify_data/combiner.json``, fitted by
``python scripts/fit_combiner.py`` on the ``fit`` parts of two sources: the project's labelled pairs
(``verify_data/pairs.jsonl``) and pairs built at run time from PromptBench's prompt lists
(:mod:`coin_data.verify.peer_pairs`); the ``heldout`` parts are never used for fitting.

Example:
    >>> from coin_data.verify.lexdiff import LexDiff
    >>> c = Combiner.load()
    >>> c.decide(0.97, LexDiff(overlap=0.9, added=("topic",))).deciding
    'combiner'
    >>> c.decide(0.93, LexDiff(overlap=0.9)).equivalent
    True
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from coin_data.verify.lexdiff import LexDiff

# The combiner's inputs, in coefficient order.
FEATURES = ("similarity", "overlap", "dropped", "added", "overlap_x_unmatched", "unmatched_share", "overlap_x_run",
            "near_copy_x_unmatched")
# Signs the fit must respect (+1: may only raise p(equivalent), -1: may only lower it). Without
# them the labelled pairs, whose changed half are small edits, teach that adding words helps, and an
# unrelated task ("translate it into French and count its verbs") would be kept.
SIGNS = {"similarity": 1, "overlap": 1, "dropped": -1, "added": -1, "overlap_x_unmatched": -1,
         "unmatched_share": -1, "overlap_x_run": -1, "near_copy_x_unmatched": -1}
COEFFICIENTS_FILE = "combiner.json"


def combiner_features(similarity: float, diff: LexDiff) -> dict[str, float]:
    """The combiner's feature values for one candidate.

    Args:
        similarity: embedding cosine of the masked templates.
        diff: the lexical-semantic diff of the pair.

    Returns:
        ``{name: value}`` in :data:`FEATURES` order. Counts are capped so one long rewrite cannot dominate.

    Example:
        >>> f = combiner_features(0.9, LexDiff(dropped=("a",), added=("b", "c"), overlap=0.5, content=6, run=2))
        >>> f["overlap_x_unmatched"], f["unmatched_share"], f["overlap_x_run"]
        (1.5, 0.5, 1.0)
    """
    unmatched = min(3, len(diff.dropped) + len(diff.added))
    return {
        "similarity": float(similarity),
        "overlap": float(diff.overlap),
        "dropped": float(min(4, len(diff.dropped))),
        "added": float(min(4, len(diff.added))),
        "overlap_x_unmatched": float(diff.overlap) * unmatched,
        # The share of content words left unmatched: a rewording of a long instruction may leave several
        # words unmatched, a near-copy with one swapped task word leaves a few of few.
        "unmatched_share": (len(diff.dropped) + len(diff.added)) / max(1, diff.content),
        # A clause inserted or removed whole in an otherwise kept instruction adds or drops a requirement.
        "overlap_x_run": float(diff.overlap) * min(4, diff.run),
        # Unmatched words count far more in a near-copy (overlap 0.9: one swapped task word) than in a
        # restructured rewording (overlap 0.5): the fourth power keeps the two apart.
        "near_copy_x_unmatched": float(diff.overlap) ** 4 * unmatched,
    }


@dataclass(frozen=True)
class Decision:
    """The combined verdict for one candidate.

    Attributes:
        equivalent: True when the candidate asks for the same output as the original.
        deciding: the signal that decided: ``lexdiff``, ``embedding``, ``nli``, ``judge``, ``behaviour``,
            or ``combiner``.
        reason: one human-readable line starting with the deciding signal.
        probability: the combiner's ``p(equivalent)`` when it ran, else NaN.
    """

    equivalent: bool
    deciding: str
    reason: str
    probability: float = math.nan


@dataclass
class Combiner:
    """Logistic regression over :data:`FEATURES` plus the documented veto rules.

    Attributes:
        weights: one coefficient per feature name.
        intercept: the bias term.
        threshold: ``p(equivalent)`` at or above which the combiner keeps a candidate.
        min_similarity: embedding floor below which a candidate is rejected outright.
        meta: provenance written by the fit script (data, split sizes, regularisation).
    """

    weights: dict[str, float]
    intercept: float
    threshold: float = 0.5
    min_similarity: float = 0.5
    meta: dict = field(default_factory=dict)

    # --- loading and saving ----------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Combiner":
        """Read coefficients (default: the shipped ``verify_data/combiner.json``).

        Example:
            >>> sorted(Combiner.load().weights) == sorted(FEATURES)
            True
        """
        if path is None:
            text = resources.files("coin_data").joinpath("verify", "verify_data", COEFFICIENTS_FILE).read_text("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
        missing = [name for name in FEATURES if name not in data["weights"]]
        if missing:
            raise ValueError(f"combiner coefficients lack feature(s) {missing}")
        return cls(
            weights={name: float(data["weights"][name]) for name in FEATURES},
            intercept=float(data["intercept"]),
            threshold=float(data.get("threshold", 0.5)),
            min_similarity=float(data.get("min_similarity", 0.5)),
            meta=dict(data.get("meta", {})),
        )

    def to_json(self) -> str:
        """The coefficients file content (stable key order, rounded for readable diffs)."""
        return json.dumps(
            {
                "features": list(FEATURES),
                "weights": {name: round(self.weights[name], 6) for name in FEATURES},
                "intercept": round(self.intercept, 6),
                "threshold": self.threshold,
                "min_similarity": self.min_similarity,
                "meta": self.meta,
            },
            indent=2,
        ) + "\n"

    # --- scoring ---------------------------------------------------------------------------------

    def probability(self, features: Mapping[str, float]) -> float:
        """``p(equivalent)`` for one feature dict (see :func:`combiner_features`)."""
        z = self.intercept + sum(self.weights[name] * features[name] for name in FEATURES)
        return 1.0 / (1.0 + math.exp(-z))

    def decide(
        self,
        similarity: float,
        diff: LexDiff,
        vetoes: Sequence[tuple[str, str]] = (),
        min_similarity: float | None = None,
    ) -> Decision:
        """Apply the rules of the module docstring to one candidate.

        Args:
            similarity: embedding cosine of the masked templates.
            diff: the lexical-semantic diff.
            vetoes: ``(signal, reason)`` from optional signals that judged the pair not equivalent.
            min_similarity: embedding floor; ``None`` uses the combiner's own.

        Returns:
            A :class:`Decision`.
        """
        if diff.findings:
            return Decision(False, "lexdiff", f"lexdiff {diff.findings[0]}")
        floor = self.min_similarity if min_similarity is None else min_similarity
        if similarity < floor:
            return Decision(False, "embedding", f"embedding cosine {similarity:.3f} < {floor}")
        if vetoes:
            signal, reason = vetoes[0]
            return Decision(False, signal, f"{signal} {reason}")
        features = combiner_features(similarity, diff)
        p = self.probability(features)
        detail = (
            f"p(equivalent) {p:.2f} {'>=' if p >= self.threshold else '<'} {self.threshold} "
            f"(cosine {similarity:.3f}, overlap {diff.overlap:.2f}, dropped {list(diff.dropped)}, "
            f"added {list(diff.added)})"
        )
        return Decision(p >= self.threshold, "combiner", f"combiner {detail}", p)


# --- fitting (used by scripts/fit_combiner.py and the tests) ------------------------------------


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 50, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (the intercept is not penalised).

    Args:
        x: ``(n, d)`` features.
        y: ``(n,)`` labels in {0, 1}.
        l2: penalty strength on the weights (1.0 matches scikit-learn's ``C=1``).
        iterations: Newton steps (converges in about ten on this problem).
        sample_weight: ``(n,)`` weight per row (None: all 1), e.g. to give each data source equal say.

    Returns:
        ``(weights (d,), intercept)``.

    Example:
        >>> w, b = fit_logistic(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]), l2=0.1)
        >>> bool(w[0] > 0)
        True
    """
    n, d = x.shape
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)  # (n,)
    design = np.hstack([x, np.ones((n, 1))])  # (n, d+1)
    theta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-design @ theta))  # (n,)
        gradient = design.T @ (w * (p - y)) + penalty * theta  # (d+1,)
        hessian = design.T @ (design * (w * p * (1 - p))[:, None]) + np.diag(penalty) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta[:-1], float(theta[-1])


def fit_signed_logistic(
    x: np.ndarray, y: np.ndarray, signs: Sequence[int], l2: float = 1.0, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """:func:`fit_logistic` with sign constraints, by an active set: a weight that comes out with the
    wrong sign is fixed at 0 and the rest refitted, until every sign holds.

    Args:
        x: ``(n, d)`` features.
        y: ``(n,)`` labels in {0, 1}.
        signs: per feature +1 (weight >= 0), -1 (weight <= 0) or 0 (free).
        l2: penalty strength.
        sample_weight: ``(n,)`` weight per row (None: all 1).

    Returns:
        ``(d + 1,)``: the weights, then the intercept.

    Example:
        >>> x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
        >>> w = fit_signed_logistic(x, np.array([0, 0, 1, 1]), signs=[1, 1], l2=0.1)
        >>> bool(w[0] > 0), float(w[1]) >= 0
        (True, True)
    """
    active = list(range(x.shape[1]))
    while True:
        weights, intercept = fit_logistic(x[:, active], y, l2=l2, sample_weight=sample_weight)
        wrong = [j for j, w in zip(active, weights) if signs[j] * w < 0]
        if not wrong:
            full = np.zeros(x.shape[1] + 1)
            full[active] = weights
            full[-1] = intercept
            return full
        # Drop the worst offender only: removing one feature can fix the sign of another.
        worst = max(wrong, key=lambda j: abs(weights[active.index(j)]))
        active.remove(worst)


def fit_combiner(
    rows: Sequence[tuple[float, LexDiff, bool]], l2: float = 1.0, threshold: float = 0.5, min_similarity: float = 0.5,
    meta: dict | None = None, groups: Sequence[str] | None = None,
) -> Combiner:
    """Fit the combiner on labelled ``(similarity, diff, equivalent)`` rows.

    Rows that an earlier rule decides (a lexdiff finding, similarity below the floor) are left out: the
    regression only ever sees the candidates it will be asked about.

    Args:
        rows: labelled examples.
        l2: L2 penalty (see :func:`fit_logistic`).
        threshold: decision threshold stored with the coefficients.
        min_similarity: embedding floor stored with the coefficients.
        meta: provenance to store.
        groups: a name per row (e.g. its data source); every (group, label) pair then weighs the same
            in the fit, so a large source cannot drown a small one. None: every row weighs 1.

    Returns:
        The fitted :class:`Combiner`.
    """
    names = list(groups) if groups is not None else [""] * len(rows)
    kept = [k for k, (s, d, _) in enumerate(rows) if not d.findings and s >= min_similarity]
    usable = [rows[k] for k in kept]
    if not usable:
        raise ValueError("no rows left to fit the combiner (every row was decided by an earlier rule)")
    x = np.array([[combiner_features(s, d)[name] for name in FEATURES] for s, d, _ in usable])
    y = np.array([1.0 if label else 0.0 for _, _, label in usable])
    cells = [(names[k], bool(rows[k][2])) for k in kept]
    sizes = {cell: cells.count(cell) for cell in set(cells)}
    # Each (group, label) cell sums to len(usable) / number of cells: the mean weight stays 1.
    sample_weight = np.array([len(usable) / (len(sizes) * sizes[cell]) for cell in cells])
    weights = fit_signed_logistic(x, y, [SIGNS[name] for name in FEATURES], l2=l2, sample_weight=sample_weight)
    return Combiner(
        weights=dict(zip(FEATURES, (float(w) for w in weights[:-1]))),
        intercept=float(weights[-1]),
        threshold=threshold,
        min_similarity=min_similarity,
        meta={**(meta or {}), "rows_fitted": len(usable), "l2": l2, "signs": SIGNS},
    )
