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
from typing import Callable, Sequence

import numpy as np

EXACT, FAISS, AUTO = "exact", "faiss", "auto"
INDEXES = (AUTO, EXACT, FAISS)

MINED = "mined"
NONE_NO_CANDIDATE = "none:no_candidate_in_other_groups"
NONE_ALL_REJECTED = "none:all_candidates_rejected_by_guard"
REJECT_PARAPHRASE_LEVEL = "paraphrase_level"
REJECT_MARGIN = "margin"
REJECT_CROSS_ENCODER = "cross_encoder"

# A cross-encoder maps (anchor text, candidate text) pairs to scores; larger means more similar.
Rescorer = Callable[[Sequence[tuple[str, str]]], np.ndarray]


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
        metadata={"help": "Paraphrase acceptance level: a candidate at least this similar to the anchor may mean "
                  "the same thing and is rejected (match the verifier's --threshold)."},
    )
    margin: float = field(
        default=0.05,
        metadata={"help": "Reject a candidate whose similarity exceeds the positive's similarity minus this."},
    )
    # --- optional cross-encoder rescoring ------------------------------------------------
    cross_encoder: str | None = field(
        default=None,
        metadata={"help": "sentence-transformers CrossEncoder name or folder used to rescore the candidates that "
                  "pass the embedding guard; None skips rescoring."},
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
        scores, passing, indices = _rescore(scores, indices, passing, rescorer, texts, config, rejected)
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


@dataclass
class RescoreTexts:
    """Texts a cross-encoder needs: one per anchor, per corpus row, and the anchor's positive."""

    anchors: Sequence[str]
    corpus: Sequence[str]
    positives: Sequence[str]


def _rescore(scores, indices, passing, rescorer: Rescorer, texts: RescoreTexts, config: MineConfig, rejected):
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


# --- instruction-level mining for the build -----------------------------------------------------
#
# Anchors are the training templates that kept a paraphrase; candidates are the training templates of
# all tasks; a template's group is its task. The chosen template is applied to the anchor row's own
# instance when its slots allow (same input, different instruction), else to an instance of its task.

MINED_SAME_INSTANCE = "mined:same_instance"
MINED_OTHER_INSTANCE = "mined:other_instance"
NONE_NO_INSTANCE = "none:no_instance_of_negative_task_in_split"


@dataclass(frozen=True)
class TemplateNegative:
    """The mined negative of one anchor template (``template`` is None when none passed the guard)."""

    task: str | None
    template: object | None  # coin_data.templates.Template
    similarity: float | None
    reason: str


def plan_template_negatives(corpus, kept, cache, config: MineConfig, rescorer: Rescorer | None = None):
    """Mine, for every template with a kept paraphrase, the nearest template of another task.

    Args:
        corpus: the build's :class:`~coin_data.sources.Corpus`.
        kept: ``(task, template_id) -> kept paraphrases`` (each with ``.paraphrase`` and ``.similarity``).
        cache: the build's :class:`~coin_data.embed.EmbeddingCache` (templates are embedded once; their
            masked texts were already embedded by the verifier).
        config: search and guard settings; the positive score of a template is its *lowest* kept
            paraphrase similarity, so the margin holds for every row.
        rescorer: optional cross-encoder.

    Returns:
        ``(plan, found)``: ``(task, template_id) -> TemplateNegative`` and the raw :class:`MinedNegatives`.
    """
    templates = [(spec, template) for spec in corpus.tasks.values() for template in spec.templates]
    anchors = [i for i, (spec, t) in enumerate(templates) if kept.get((spec.name, t.template_id))]
    if not anchors:
        return {}, MinedNegatives(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int8))
    texts = [template.masked_text() for _, template in templates]
    vectors = cache.embed(texts)
    task_index = {name: i for i, name in enumerate(corpus.tasks)}
    groups = np.array([task_index[spec.name] for spec, _ in templates], dtype=np.int64)
    weakest = [min(kept[(templates[i][0].name, templates[i][1].template_id)], key=lambda k: k.similarity)
               for i in anchors]
    rescore_texts = RescoreTexts(
        anchors=[texts[i] for i in anchors], corpus=texts, positives=[k.paraphrase.masked_text() for k in weakest]
    )
    found = mine_negatives(
        vectors[anchors], vectors, groups[anchors], groups, [k.similarity for k in weakest], config,
        rescorer=rescorer, texts=rescore_texts if rescorer is not None else None,
    )
    plan = {}
    for anchor, index, score, reason in zip(anchors, found.index.tolist(), found.score.tolist(), found.reasons()):
        spec, template = templates[anchor]
        if index < 0:
            plan[(spec.name, template.template_id)] = TemplateNegative(None, None, None, reason)
        else:
            neg_spec, neg_template = templates[index]
            plan[(spec.name, template.template_id)] = TemplateNegative(neg_spec.name, neg_template, float(score), MINED)
    return plan, found


def mined_row_values(negative: TemplateNegative, instance, corpus, pool, seed: int) -> dict[str, object]:
    """The four ``mined_negative_*`` values of one row.

    Args:
        negative: the plan entry of the row's template.
        instance: the row's instance.
        corpus: the corpus (for the negative task's answer set).
        pool: instances of the negative's task in the row's split (used when the slots do not allow
            rendering the row's own instance).
        seed: the build seed (the choice in ``pool`` is a stable hash of it and the row).

    Returns:
        ``{column: value}`` for :data:`coin_data.schema` ``MINED_*`` columns.
    """
    from coin_data import schema
    from coin_data.negatives import stable_seed

    if negative.template is None:
        return {schema.MINED_NEGATIVE: None, schema.MINED_NEGATIVE_TARGETS: None,
                schema.MINED_NEGATIVE_SIMILARITY: None, schema.MINED_NEGATIVE_SOURCE: negative.reason}
    spec = corpus.tasks[negative.task]
    template = negative.template
    if set(template.field_slots) <= set(instance.fields):
        # same input, different instruction: the answer to it is unknown, so no target
        text, target, source = template.render(instance.fields, spec.options), None, MINED_SAME_INSTANCE
    elif pool:
        other = pool[stable_seed(seed, "mined", instance.task, instance.id) % len(pool)]
        text, target, source = template.render(other.fields, spec.options), other.target, MINED_OTHER_INSTANCE
    else:
        return {schema.MINED_NEGATIVE: None, schema.MINED_NEGATIVE_TARGETS: None,
                schema.MINED_NEGATIVE_SIMILARITY: None, schema.MINED_NEGATIVE_SOURCE: NONE_NO_INSTANCE}
    return {schema.MINED_NEGATIVE: text, schema.MINED_NEGATIVE_TARGETS: target,
            schema.MINED_NEGATIVE_SIMILARITY: negative.similarity, schema.MINED_NEGATIVE_SOURCE: source}


def fill_mined_columns(columns, rows, pools, plan, corpus, seed: int, stats) -> None:
    """Write the mined columns of every assembled row (input: ``rows[split]`` = ``(row index, task,
    template_id, instance)``; output: the four ``mined_negative_*`` columns of ``columns[split]``) and
    count them into ``stats.mined`` / ``stats.mined_similarities``."""
    from coin_data import schema

    for split, refs in rows.items():
        for index, task, template_id, instance in refs:
            negative = plan.get((task, template_id)) or TemplateNegative(None, None, None, NONE_NO_CANDIDATE)
            pool = pools[split].get(negative.task, []) if negative.task else []
            values = mined_row_values(negative, instance, corpus, pool, seed)
            for name, value in values.items():
                columns[split][name][index] = value
            stats.mined[values[schema.MINED_NEGATIVE_SOURCE]] += 1
            if values[schema.MINED_NEGATIVE_SIMILARITY] is not None:
                stats.mined_similarities.append(values[schema.MINED_NEGATIVE_SIMILARITY])


# --- `coin-data mine`: add mined negatives to a built dataset folder -------------------------------


@dataclass
class MineReport:
    """What :func:`mine_dataset` did: rows per ``mined_negative_source``, guard rejections, the index."""

    out: object
    sources: Counter
    rejected: Counter
    similarities: list[float]
    index_used: str
    seconds: float


def mine_dataset(folder, out, config: MineConfig | None = None, embedding_model: str | None = None,
                 seed: int = 0, overwrite: bool = False, rescorer: Rescorer | None = None) -> MineReport:
    """Fill the ``mined_negative_*`` columns of a dataset folder built by ``coin-data build``.

    Templates, paraphrase scores, instances and answer sets are read back from the rows themselves
    (``original_template``, ``similarity``, ``fields``, the ``OPTIONS:`` block), so any folder in the
    published layout works, including ones built before mining existed. The result is written to ``out``
    atomically, with the card's YAML sizes and its "Mined negatives" section updated.

    Args:
        folder: the built dataset (``data/<split>-*.parquet`` + ``README.md``).
        out: destination folder (may equal ``folder`` with ``overwrite``).
        config: search and guard settings.
        embedding_model: sentence-transformers model (default: the bundled all-MiniLM-L6-v2).
        seed: seeds the choice of another-task instance.
        overwrite: replace ``out`` if it exists.
        rescorer: optional cross-encoder.

    Returns:
        A :class:`MineReport`.

    Example:
        ``coin-data mine coin-flan-paraphrased --out coin-flan-mined``
    """
    import shutil
    import tempfile
    from pathlib import Path

    import datasets
    import pyarrow.parquet as pq

    from coin_data import card, schema
    from coin_data.embed import EmbeddingCache, SentenceTransformerEmbedder
    from coin_data.layout import _swap_into_place, check_output
    from coin_data.sources import CorpusError

    config = config or MineConfig()
    start = time.perf_counter()
    folder, out = Path(folder), Path(out)
    if out.resolve() != folder.resolve():
        check_output(out, overwrite)
    elif not overwrite:
        raise CorpusError(f"{out}: is the input folder; pass --overwrite to update it in place")
    shards = sorted((folder / "data").glob("*.parquet"))
    if not shards:
        raise CorpusError(f"{folder}: no data/*.parquet files (not a dataset built by coin-data build)")
    splits = {path.name.split("-")[0]: pq.read_table(str(path)).to_pylist() for path in shards}
    corpus, kept, pools, by_id = _corpus_from_rows(splits, folder)
    cache = EmbeddingCache(SentenceTransformerEmbedder(embedding_model))
    plan, found = plan_template_negatives(corpus, kept, cache, config, rescorer)
    sources: Counter = Counter()
    similarities: list[float] = []
    for split, rows in splits.items():
        for row in rows:
            negative = plan.get((row[schema.TASK], row[schema.TEMPLATE_ID])) or TemplateNegative(
                None, None, None, NONE_NO_CANDIDATE)
            instance = by_id[(split, row[schema.TASK], row[schema.INSTANCE_ID])]
            pool = pools[split].get(negative.task, []) if negative.task else []
            row.update(mined_row_values(negative, instance, corpus, pool, seed))
            sources[row[schema.MINED_NEGATIVE_SOURCE]] += 1
            if row[schema.MINED_NEGATIVE_SIMILARITY] is not None:
                similarities.append(row[schema.MINED_NEGATIVE_SIMILARITY])

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        shutil.copytree(folder, partial, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
        sizes = {}
        for path in shards:
            split = path.name.split("-")[0]
            table = datasets.Dataset.from_list(
                [{name: row.get(name) for name in schema.COLUMNS} for row in splits[split]], features=schema.FEATURES
            ).data.table
            pq.write_table(table, str(partial / "data" / path.name))
            sizes[split] = (len(splits[split]), (partial / "data" / path.name).stat().st_size)
        readme = partial / "README.md"
        text = readme.read_text(encoding="utf-8") if readme.exists() else "---\n---\n"
        section = card.mined_section(sources, found.rejected, similarities, config, found.index_used)
        readme.write_text(_updated_card(text, sizes, partial, section), encoding="utf-8")
        _swap_into_place(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return MineReport(out, sources, found.rejected, similarities, found.index_used,
                      round(time.perf_counter() - start, 3))


def _corpus_from_rows(splits, folder):
    """Tasks, kept paraphrases, per-split instance pools and ``(split, task, id) -> Instance`` from rows."""
    import json

    from coin_data import schema
    from coin_data.sources import CLASSIFICATION, GENERATION, Corpus, CorpusError, Instance, TaskSpec
    from coin_data.templates import parse_template
    from coin_data.views import is_perturbation_view

    options_block = __import__("re").compile(r"OPTIONS:\n- [^\n]*(?:\n- [^\n]*)*")
    templates: dict[str, dict[str, object]] = {}
    options: dict[str, tuple[str, ...]] = {}
    kept: dict[tuple[str, str], list] = {}
    instances: dict[tuple[str, str, str], Instance] = {}
    pools: dict[str, dict[str, list]] = {}
    for split, rows in splits.items():
        pools[split] = {}
        for number, row in enumerate(rows):
            task, template_id = row.get(schema.TASK), row.get(schema.TEMPLATE_ID)
            if not task or not template_id or row.get(schema.ORIGINAL_TEMPLATE) is None:
                raise CorpusError(f"{folder}: {split} row {number}: columns task, template_id, original_template needed")
            if template_id not in templates.setdefault(task, {}):
                templates[task][template_id] = parse_template(row[schema.ORIGINAL_TEMPLATE], task, template_id)
            if task not in options:
                match = options_block.search(row.get(schema.ORIGINAL) or "")
                if match and "{options_}" in row[schema.ORIGINAL_TEMPLATE]:
                    options[task] = tuple(line[2:] for line in match.group(0).split("\n")[1:])
            if (row.get(schema.PARAPHRASED_TEMPLATE) and row.get(schema.SIMILARITY) is not None
                    and not is_perturbation_view(row.get(schema.PARAPHRASE_SOURCE))):  # the guard compares paraphrases
                kept.setdefault((task, template_id), []).append(_Kept(
                    parse_template(row[schema.PARAPHRASED_TEMPLATE], task, template_id), float(row[schema.SIMILARITY])))
            key = (split, task, row[schema.INSTANCE_ID])
            if key not in instances:
                fields = json.loads(row.get(schema.FIELDS) or "{}")
                instances[key] = Instance(row[schema.INSTANCE_ID], task, fields, row.get(schema.TARGETS) or "")
                pools[split].setdefault(task, []).append(instances[key])
    corpus = Corpus(tasks={})
    for task in sorted(templates):
        specs = tuple(templates[task].values())
        fields = tuple(dict.fromkeys(slot for t in specs for slot in t.field_slots))
        corpus.tasks[task] = TaskSpec(task, CLASSIFICATION if task in options else GENERATION, "", fields,
                                      options.get(task, ()), parse_template("{targets}", task, "target"), specs)
    return corpus, kept, pools, instances


@dataclass(frozen=True)
class _Kept:
    paraphrase: object
    similarity: float


def _updated_card(text: str, sizes, folder, section: list[str]) -> str:
    """The card with fresh YAML sizes and the "Mined negatives" section replaced or added."""
    import re

    import yaml

    from coin_data import card

    body = text.split("---\n", 2)[2] if text.startswith("---\n") and text.count("---\n") >= 2 else text
    templates_file = folder / card.data_path(card.TEMPLATES_CONFIG, "train")
    candidate_size = (0, 0)
    if templates_file.exists():
        import pyarrow.parquet as pq

        candidate_size = (pq.ParquetFile(str(templates_file)).metadata.num_rows, templates_file.stat().st_size)
    new = "\n".join(section)
    if "## Mined negatives" in body:
        body = re.sub(r"## Mined negatives\n.*?(?=\n## |\Z)", new.rstrip("\n"), body, flags=re.DOTALL)
    elif "## License" in body:
        body = body.replace("## License", new + "## License", 1)
    else:
        body = body.rstrip("\n") + "\n\n" + new
    meta = yaml.safe_load(text.split("---\n", 2)[1]) if text.startswith("---\n") and text.count("---\n") >= 2 else None
    license_id = meta.get("license", card.UNKNOWN_LICENSE) if isinstance(meta, dict) else card.UNKNOWN_LICENSE
    return card.yaml_header(sizes, candidate_size, license_id) + body  # the build's license stays
