"""Mined hard negatives: the nearest items of *other* groups, behind a false-negative guard, in bounded memory.

The paper's negatives keep the instruction and swap the instance (:mod:`coin_data.negatives`). Mined
negatives add the other kind users expect from retrieval training: for each anchor instruction, the
nearest instructions of *other tasks* (close in wording, different in meaning). Nearness alone would also
pick paraphrases (false negatives), so every candidate passes a guard:

=======================  =============================================================================
rejection reason         rule
=======================  =============================================================================
``paraphrase_level``     cosine(anchor, candidate) >= ``accept_threshold`` (the level at which the
                         verifier would accept the candidate as a paraphrase)
``margin``               cosine(anchor, candidate) > positive score - ``margin`` (as close as, or closer
                         than, the anchor's own verified paraphrase)
``cross_encoder``        optional: a cross-encoder scores the candidate within ``cross_encoder_margin``
                         of its score for the positive
=======================  =============================================================================

Search is exact and blockwise for small and mid-size sets (one ``block_mb`` block of scores at a time,
never the full N x N matrix) and an approximate faiss IVF index for large ones (``pip install faiss-cpu``).

Example:
    >>> import numpy as np
    >>> vectors = np.eye(4, dtype=np.float32)
    >>> vectors[1] = [0.6, 0.8, 0, 0]              # item 1 is close to item 0 ...
    >>> vectors[2] = [0.97, 0, 0.243, 0]           # ... item 2 is closer still: a likely paraphrase
    >>> found = mine_negatives(vectors[:1], vectors, groups_anchor=[0], groups_corpus=[0, 1, 2, 3],
    ...                        positive_scores=[0.9], config=MineConfig(accept_threshold=0.75, margin=0.05))
    >>> int(found.index[0]), round(float(found.score[0]), 2), found.reasons()[0]
    (1, 0.6, 'mined')
    >>> found.rejected
    Counter({'paraphrase_level': 1})
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from coin_data.negatives.guard import REJECT_MARGIN, REJECT_PARAPHRASE_LEVEL, Rescorer, RescoreTexts, rescore

EXACT, FAISS, AUTO = "exact", "faiss", "auto"
INDEXES = (AUTO, EXACT, FAISS)

MINED = "mined"
NONE_NO_CANDIDATE = "none:no_candidate_in_other_groups"
NONE_ALL_REJECTED = "none:all_candidates_rejected_by_guard"

@dataclass
class MineConfig:
    """How negatives are searched and guarded.

    Command: ``coin-data mine coin-flan-paraphrased --out mined --top-k 10 --margin 0.05``
    """

    # --- search -----------------------------------------------------------------
    top_k: int = field(default=10, metadata={"help": "Nearest candidates examined per anchor before the guard."})
    index: str = field(
        default=AUTO,
        metadata={"help": "'exact' (blockwise matmul), 'faiss' (approximate IVF, needs faiss-cpu) or 'auto' "
                  "(exact up to exact_max corpus rows, faiss above when installed)."},
    )
    exact_max: int = field(default=200_000, metadata={"help": "Largest corpus 'auto' searches exactly."})
    block_mb: int = field(
        default=256, metadata={"help": "Memory for one block of similarity scores (bounds the exact search)."}
    )
    nlist: int | None = field(
        default=None, metadata={"help": "faiss IVF cells; None uses about sqrt(corpus size)."}
    )
    nprobe: int = field(default=16, metadata={"help": "faiss IVF cells visited per query (recall vs speed)."})
    # --- false-negative guard -----------------------------------------------------
    accept_threshold: float = field(
        default=0.75,
        metadata={"help": "Paraphrase acceptance level of the false-negative guard: a candidate whose embedding "
                  "cosine to the anchor reaches it may mean the same thing and is rejected. One setting for "
                  "`build --mine-negatives` and `coin-data mine`; it is the plain-cosine verifier's acceptance "
                  "level (0.75), not the layered verifier's --threshold, which is only a floor under its other "
                  "signals."},
    )
    margin: float = field(
        default=0.05,
        metadata={"help": "Reject a candidate whose similarity exceeds the positive's similarity minus this."},
    )
    # --- optional cross-encoder rescoring ------------------------------------------------
    cross_encoder: str | None = field(
        default=None,
        metadata={"help": "sentence-transformers CrossEncoder name or folder used to rescore the candidates that "
                  "pass the embedding guard. Default: no rescoring."},
    )
    cross_encoder_margin: float = field(
        default=0.0,
        metadata={"help": "Reject a candidate whose cross-encoder score exceeds the positive's minus this."},
    )

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.index not in INDEXES:
            raise ValueError(f"index must be one of {', '.join(INDEXES)}, got {self.index!r}")
        if self.block_mb < 1:
            raise ValueError(f"block_mb must be >= 1, got {self.block_mb}")
        if not -1.0 <= self.accept_threshold <= 1.0:
            raise ValueError(f"accept_threshold must lie in [-1, 1], got {self.accept_threshold}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.nprobe < 1:
            raise ValueError(f"nprobe must be >= 1, got {self.nprobe}")


@dataclass
class MinedNegatives:
    """The negative chosen for each anchor.

    Attributes:
        index: corpus row of the negative per anchor, ``-1`` when none passed the guard.
        score: cosine of anchor and negative (the cross-encoder's score when rescoring), NaN when none.
        reason_codes: per anchor, 0 = mined, 1 = no candidate outside the anchor's group, 2 = all rejected.
        rejected: candidates rejected, by guard rule.
        index_used: ``exact`` or ``faiss``.
        seconds: wall time of search and guard.
    """

    index: np.ndarray
    score: np.ndarray
    reason_codes: np.ndarray
    rejected: Counter = field(default_factory=Counter)
    index_used: str = EXACT
    seconds: float = 0.0

    _REASONS = (MINED, NONE_NO_CANDIDATE, NONE_ALL_REJECTED)

    def reasons(self) -> list[str]:
        """The reason per anchor as a string (``mined`` or ``none:<why>``)."""
        return [self._REASONS[code] for code in self.reason_codes.tolist()]

    def counts(self) -> Counter:
        """Anchors per reason."""
        return Counter({self._REASONS[code]: int(n) for code, n in zip(*np.unique(self.reason_codes, return_counts=True))})


# --- search ------------------------------------------------------------------------------


def search_exact(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    groups_query: np.ndarray | None = None,
    groups_corpus: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    block_mb: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner products, one block of scores at a time (memory bounded by ``block_mb``).

    Args:
        queries: ``(nq, d)`` float32, L2-normalised.
        corpus: ``(nc, d)`` float32, L2-normalised.
        k: neighbours per query.
        groups_query, groups_corpus: integer group per row; a query never gets a corpus row of its group.
        exclude: ``(nq,)`` or ``(nq, m)`` corpus rows to skip per query (e.g. its own positive); -1 is ignored.
        block_mb: size of one block of scores; the search never holds more than about twice this.

    Returns:
        ``(scores, indices)``, each ``(nq, k)``, best first; missing neighbours are ``-inf`` / ``-1``.

    Example:
        >>> v = np.eye(3, dtype=np.float32)
        >>> search_exact(v, v, k=1, exclude=np.arange(3))[1].ravel().tolist()  # self excluded
        [1, 0, 0]
    """
    import torch

    nq, nc = len(queries), len(corpus)
    scores_out = np.full((nq, k), -np.inf, dtype=np.float32)
    index_out = np.full((nq, k), -1, dtype=np.int64)
    if nq == 0 or nc == 0:
        return scores_out, index_out
    q_all = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    c_all = torch.from_numpy(np.ascontiguousarray(corpus, dtype=np.float32))
    gq = None if groups_query is None else torch.from_numpy(np.asarray(groups_query, dtype=np.int64))
    gc = None if groups_corpus is None else torch.from_numpy(np.asarray(groups_corpus, dtype=np.int64))
    ex = None
    if exclude is not None:
        ex = torch.from_numpy(np.asarray(exclude, dtype=np.int64).reshape(nq, -1))
    # Small groups (a task's templates, one pair's positive) are cheaper to drop after the search than to
    # mask in every block: fetch as many extra neighbours as the largest group has rows.
    largest = 0 if gc is None else int(np.unique(gc.numpy(), return_counts=True)[1].max())
    post_filter = gc is not None and largest <= _POST_FILTER_MAX
    fetch = k + largest if post_filter else k
    corpus_block, query_block = _block_shape(nq, nc, block_mb)
    neg_inf = torch.tensor(-math.inf)
    for q0 in range(0, nq, query_block):
        q = q_all[q0 : q0 + query_block]
        best_s = torch.full((len(q), fetch), -math.inf)
        best_i = torch.full((len(q), fetch), -1, dtype=torch.int64)
        for c0 in range(0, nc, corpus_block):
            block = q @ c_all[c0 : c0 + corpus_block].T  # (qb, cb) scores
            if gq is not None and not post_filter:
                same = gq[q0 : q0 + len(q), None] == gc[None, c0 : c0 + block.shape[1]]  # (qb, cb)
                block.masked_fill_(same, neg_inf)
            if ex is not None:
                local = ex[q0 : q0 + len(q)] - c0  # (qb, m)
                inside = (local >= 0) & (local < block.shape[1])
                rows = torch.arange(len(q))[:, None].expand_as(local)
                block[rows[inside], local[inside]] = neg_inf
            kk = min(fetch, block.shape[1])
            top_s, top_i = torch.topk(block, kk, dim=1)  # (qb, kk)
            merged_s = torch.cat([best_s, top_s], dim=1)
            merged_i = torch.cat([best_i, top_i + c0], dim=1)
            best_s, order = torch.topk(merged_s, fetch, dim=1)
            best_i = torch.gather(merged_i, 1, order)
            del block
        if post_filter:
            same = (best_i >= 0) & (gc[best_i.clamp(min=0)] == gq[q0 : q0 + len(q), None])  # (qb, fetch)
            best_s = best_s.masked_fill(same, neg_inf)
            best_s, order = torch.topk(best_s, k, dim=1)
            best_i = torch.gather(best_i, 1, order)
        best_i[torch.isinf(best_s)] = -1
        scores_out[q0 : q0 + len(q)] = best_s.numpy()
        index_out[q0 : q0 + len(q)] = best_i.numpy()
    return scores_out, index_out


_POST_FILTER_MAX = 256  # largest group dropped after the search instead of masked in each block


def _block_shape(nq: int, nc: int, block_mb: int) -> tuple[int, int]:
    """Corpus and query rows per block so that one float32 block of scores fits in ``block_mb``."""
    budget = block_mb * 2**20 // 4  # float32 scores per block
    corpus_block = min(nc, max(1024, budget // 256))  # at least 256 queries per block for GEMM efficiency
    query_block = max(1, min(nq, budget // corpus_block))
    return corpus_block, query_block


def search_faiss(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    groups_query: np.ndarray | None = None,
    groups_corpus: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    nlist: int | None = None,
    nprobe: int = 16,
    query_chunk: int = 16384,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top-``k`` inner products with a faiss IVF index (same contract as :func:`search_exact`).

    Same-group and excluded rows are removed after the search, so each query asks for ``k`` plus the size
    of its largest group plus the excluded count, and keeps the best ``k`` that remain.

    Raises:
        ImportError: faiss is not installed (``pip install faiss-cpu``).
    """
    try:
        import faiss
    except ImportError as err:
        raise ImportError("index='faiss' needs faiss: pip install faiss-cpu (or coin-toolkit[ann])") from err

    nq, nc = len(queries), len(corpus)
    scores_out = np.full((nq, k), -np.inf, dtype=np.float32)
    index_out = np.full((nq, k), -1, dtype=np.int64)
    if nq == 0 or nc == 0:
        return scores_out, index_out
    corpus = np.ascontiguousarray(corpus, dtype=np.float32)
    dim = corpus.shape[1]
    nlist = nlist or max(1, min(nc // 39, int(math.sqrt(nc))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    # k-means on a sample: faiss wants at least 39 points per cell and gains little beyond ~50
    train = corpus if nc <= nlist * 50 else corpus[np.sort(rng.choice(nc, nlist * 50, replace=False))]
    index.train(train)
    for start in range(0, nc, 262_144):  # add in chunks: no second full copy of the corpus
        index.add(corpus[start : start + 262_144])
    index.nprobe = min(nprobe, nlist)

    gq = None if groups_query is None else np.asarray(groups_query, dtype=np.int64)
    gc = None if groups_corpus is None else np.asarray(groups_corpus, dtype=np.int64)
    ex = None if exclude is None else np.asarray(exclude, dtype=np.int64).reshape(nq, -1)
    extra = (0 if ex is None else ex.shape[1]) + (0 if gc is None else int(np.bincount(gc - gc.min()).max()))
    fetch = min(nc, k + extra)
    for q0 in range(0, nq, query_chunk):
        q = np.ascontiguousarray(queries[q0 : q0 + query_chunk], dtype=np.float32)
        s, i = index.search(q, fetch)  # (qb, fetch); -1 where a cell ran out
        bad = i < 0
        if gq is not None:
            bad |= gc[np.maximum(i, 0)] == gq[q0 : q0 + len(q), None]
        if ex is not None:
            bad |= (i[:, :, None] == ex[q0 : q0 + len(q), None, :]).any(axis=2)
        s = np.where(bad, -np.inf, s).astype(np.float32)
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        s = np.take_along_axis(s, order, axis=1)
        i = np.where(np.isinf(s), -1, np.take_along_axis(i, order, axis=1))
        scores_out[q0 : q0 + len(q), : s.shape[1]] = s
        index_out[q0 : q0 + len(q), : i.shape[1]] = i
    return scores_out, index_out


def faiss_available() -> bool:
    """Whether the optional faiss package can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


# --- mining --------------------------------------------------------------------------------


def mine_negatives(
    anchors: np.ndarray,
    corpus: np.ndarray,
    groups_anchor: Sequence[int] | np.ndarray,
    groups_corpus: Sequence[int] | np.ndarray,
    positive_scores: Sequence[float] | np.ndarray | None = None,
    config: MineConfig | None = None,
    exclude: np.ndarray | None = None,
    rescorer: Rescorer | None = None,
    texts: "RescoreTexts | None" = None,
) -> MinedNegatives:
    """Choose, for each anchor, the nearest corpus row of another group that passes the guard.

    Args:
        anchors: ``(n, d)`` normalised anchor embeddings.
        corpus: ``(m, d)`` normalised candidate embeddings.
        groups_anchor, groups_corpus: integer group (task) per row; candidates of the anchor's own group
            are never considered.
        positive_scores: cosine of each anchor and its verified positive (paraphrase); ``None`` disables the
            margin rule.
        config: search and guard settings.
        exclude: corpus rows to skip per anchor (``(n,)`` or ``(n, m)``, -1 ignored).
        rescorer: optional cross-encoder; needs ``texts``.
        texts: anchor, corpus and positive texts for the rescorer.

    Returns:
        :class:`MinedNegatives` (one entry per anchor).
    """
    config = config or MineConfig()
    start = time.perf_counter()
    anchors = np.asarray(anchors, dtype=np.float32)
    corpus = np.asarray(corpus, dtype=np.float32)
    ga = np.asarray(groups_anchor, dtype=np.int64)
    gc = np.asarray(groups_corpus, dtype=np.int64)
    if len(ga) != len(anchors) or len(gc) != len(corpus):
        raise ValueError("groups_anchor / groups_corpus must have one entry per anchor / corpus row")
    use = choose_index(config, len(corpus))
    if use == FAISS:
        scores, indices = search_faiss(anchors, corpus, config.top_k, ga, gc, exclude, config.nlist, config.nprobe)
    else:
        scores, indices = search_exact(anchors, corpus, config.top_k, ga, gc, exclude, config.block_mb)
    rejected: Counter = Counter()
    valid = indices >= 0
    too_close = valid & (scores >= config.accept_threshold)
    rejected[REJECT_PARAPHRASE_LEVEL] = int(too_close.sum())
    passing = valid & ~too_close
    if positive_scores is not None:
        positive = np.asarray(positive_scores, dtype=np.float32)
        within = passing & (scores > positive[:, None] - config.margin)
        rejected[REJECT_MARGIN] = int(within.sum())
        passing &= ~within
    if rescorer is not None:
        if texts is None:
            raise ValueError("a rescorer needs texts (anchor, corpus and positive texts)")
        scores, passing, indices = rescore(scores, indices, passing, rescorer, texts, config, rejected)
    chosen_col = np.argmax(passing, axis=1)
    found = passing[np.arange(len(anchors)), chosen_col]
    index = np.where(found, indices[np.arange(len(anchors)), chosen_col], -1)
    score = np.where(found, scores[np.arange(len(anchors)), chosen_col], np.nan).astype(np.float32)
    codes = np.where(found, 0, np.where(valid.any(axis=1), 2, 1)).astype(np.int8)
    rejected = Counter({reason: n for reason, n in rejected.items() if n})
    return MinedNegatives(index, score, codes, rejected, use, round(time.perf_counter() - start, 3))


def choose_index(config: MineConfig, corpus_size: int) -> str:
    """The search ``config.index`` resolves to for a corpus of ``corpus_size`` rows."""
    if config.index == AUTO:
        return FAISS if corpus_size > config.exact_max and faiss_available() else EXACT
    return config.index
