"""The false-negative guard of mined negatives: rejection reasons and the optional cross-encoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

if TYPE_CHECKING:  # search imports the guard; the config is only an annotation here
    from coin_data.negatives.search import MineConfig


REJECT_PARAPHRASE_LEVEL = "paraphrase_level"
REJECT_MARGIN = "margin"
REJECT_CROSS_ENCODER = "cross_encoder"

# A cross-encoder maps (anchor text, candidate text) pairs to scores; larger means more similar.
Rescorer = Callable[[Sequence[tuple[str, str]]], np.ndarray]

@dataclass
class RescoreTexts:
    """Texts a cross-encoder needs: one per anchor, per corpus row, and the anchor's positive."""

    anchors: Sequence[str]
    corpus: Sequence[str]
    positives: Sequence[str]


def rescore(scores, indices, passing, rescorer: Rescorer, texts: RescoreTexts, config: MineConfig, rejected):
    """Rescore candidates that passed the embedding guard; reject those too close to the positive."""
    rows, cols = np.nonzero(passing)
    pairs = [(texts.anchors[r], texts.corpus[indices[r, c]]) for r, c in zip(rows.tolist(), cols.tolist())]
    needed = sorted(set(rows.tolist()))
    positive_pairs = [(texts.anchors[r], texts.positives[r]) for r in needed]
    values = np.asarray(rescorer(pairs + positive_pairs), dtype=np.float32)
    candidate_scores, positive_scores = values[: len(pairs)], dict(zip(needed, values[len(pairs) :].tolist()))
    new_scores = np.full_like(scores, -np.inf)
    new_scores[rows, cols] = candidate_scores
    threshold = np.array([positive_scores[r] for r in rows.tolist()], dtype=np.float32) - config.cross_encoder_margin
    too_close = candidate_scores > threshold
    rejected[REJECT_CROSS_ENCODER] += int(too_close.sum())
    keep = passing.copy()
    keep[rows[too_close], cols[too_close]] = False
    # the cross-encoder's ranking decides among what is left: best first
    new_scores[~keep] = -np.inf
    order = np.argsort(-new_scores, axis=1, kind="stable")
    return (np.take_along_axis(new_scores, order, axis=1), np.take_along_axis(keep, order, axis=1),
            np.take_along_axis(indices, order, axis=1))


class CrossEncoderRescorer:
    """A sentence-transformers ``CrossEncoder`` as a :data:`Rescorer` (loaded on first use).

    Args:
        model: CrossEncoder name or folder, e.g. ``cross-encoder/stsb-roberta-base`` on a machine with the Hub.
        batch_size: prediction batch size.
    """

    def __init__(self, model: str, batch_size: int = 32):
        self.model_name = model
        self.batch_size = batch_size
        self._model = None

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        if self._model is None:
            from sentence_transformers import CrossEncoder

            self._model = CrossEncoder(self.model_name)
        scores = self._model.predict(list(pairs), batch_size=self.batch_size, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32)
