"""The CoIN objective: pure tensor functions, and :class:`CoinLoss`, the thin module the trainer calls.

For a batch of B rows with pooled views ``o`` (original), ``p`` (paraphrase) and K hard negatives ``n``::

    S_fwd = cos(o_i, [p ; n]_j) / tau      [B, B + K]   target j = i
    S_bwd = cos(p_i, [o ; n]_j) / tau      [B, B + K]   target j = i
    L_ctr = (CE(S_fwd) + CE(S_bwd)) / 2
    L_gen = CE(original answer tokens) + CE(paraphrase answer tokens)   (+ CE(negative) if asked)
    loss  = L_gen + balance(w * L_ctr)     (cap: value capped at L_gen, gradient scaled)

Candidates that are views of the anchor's own instance (other paraphrases of the same prompt) are
masked out of the softmax instead of being counted as negatives.

Example:
    >>> import torch
    >>> x = torch.nn.functional.one_hot(torch.arange(4), 8).float()
    >>> round(info_nce(x, x).item(), 4)  # aligned views: near 0
    0.0
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from coin_train.pooling import pool

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
ORIGINAL, PARAPHRASE, NEGATIVE = 0, 1, 2  # view kinds, in the order the collator stacks them
NO_GROUP = -1  # a candidate of unknown instance: never masked


# --- pure functions ------------------------------------------------------------------------
def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Upcast 16-bit tensors to float32 for a loss; float32 and float64 stay as they are.

    Example:
        >>> at_least_float32(torch.ones(1, dtype=torch.bfloat16)).dtype, at_least_float32(torch.ones(1).double()).dtype
        (torch.float32, torch.float64)
    """
    return x.to(torch.promote_types(x.dtype, torch.float32))


def contrastive_logits(
    queries: torch.Tensor,
    candidates: torch.Tensor,
    targets: torch.Tensor,
    *,
    temperature: float,
    query_groups: torch.Tensor | None = None,
    candidate_groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cosine similarities / temperature, with same-instance non-target candidates masked to ``-inf``.

    Args:
        queries: ``[B, D]``.
        candidates: ``[C, D]``.
        targets: ``[B]`` index of each query's positive among the candidates.
        temperature: tau.
        query_groups: ``[B]`` instance ids (>= 0); ``None`` disables masking.
        candidate_groups: ``[C]`` instance ids; ``NO_GROUP`` (-1) is never masked.

    Returns:
        ``[B, C]`` logits (at least float32).

    Example:
        >>> q = torch.eye(2); g = torch.tensor([7, 7])
        >>> contrastive_logits(q, q, torch.arange(2), temperature=1.0, query_groups=g, candidate_groups=g)
        tensor([[1., -inf],
                [-inf, 1.]])
    """
    q = F.normalize(at_least_float32(queries), dim=-1)  # [B, D]
    c = F.normalize(at_least_float32(candidates), dim=-1)  # [C, D]
    logits = q @ c.T / temperature  # [B, C]
    if query_groups is None or candidate_groups is None:
        return logits
    same = (query_groups[:, None] == candidate_groups[None, :]) & (query_groups[:, None] != NO_GROUP)  # [B, C]
    same[torch.arange(len(targets), device=same.device), targets] = False  # the positive itself stays
    return logits.masked_fill(same, float("-inf"))  # [B, C]


def symmetric_info_nce(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    *,
    anchor_candidates: torch.Tensor,
    positive_candidates: torch.Tensor,
    negative_candidates: torch.Tensor | None,
    targets: torch.Tensor,
    temperature: float,
    groups: torch.Tensor | None = None,
    candidate_groups: torch.Tensor | None = None,
    negative_groups: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE against explicit candidate sets (local, or gathered from all processes).

    Args:
        anchors: ``[B, D]`` local originals.
        positives: ``[B, D]`` local paraphrases (row i pairs with anchor i).
        anchor_candidates: ``[A, D]`` originals the paraphrases are scored against (A >= B).
        positive_candidates: ``[A, D]`` paraphrases the originals are scored against.
        negative_candidates: ``[K, D]`` hard negatives, extra candidates in both directions, or ``None``.
        targets: ``[B]`` index of row i's partner among the ``A`` candidates.
        temperature: tau.
        groups: ``[B]`` instance ids of the local rows (``None``: no masking).
        candidate_groups: ``[A]`` instance ids of the candidate rows.
        negative_groups: ``[K]`` instance ids of the hard negatives (``NO_GROUP`` when unknown).

    Returns:
        ``(loss, accuracy)``: scalar loss and the top-1 retrieval accuracy averaged over both directions.
    """
    negatives = [] if negative_candidates is None else [negative_candidates]
    cand_groups = None
    if groups is not None and candidate_groups is not None:
        if negative_candidates is not None and negative_groups is None:
            negative_groups = torch.full((len(negative_candidates),), NO_GROUP, device=groups.device)
        cand_groups = torch.cat([candidate_groups, *([negative_groups] if negatives else [])])  # [A + K]
    forward = contrastive_logits(anchors, torch.cat([positive_candidates, *negatives]), targets,  # [B, A + K]
                                 temperature=temperature, query_groups=groups, candidate_groups=cand_groups)
    backward = contrastive_logits(positives, torch.cat([anchor_candidates, *negatives]), targets,  # [B, A + K]
                                  temperature=temperature, query_groups=groups, candidate_groups=cand_groups)
    loss = 0.5 * (F.cross_entropy(forward, targets) + F.cross_entropy(backward, targets))  # []
    hits = torch.cat([forward.argmax(-1) == targets, backward.argmax(-1) == targets])  # [2B]
    return loss, hits.float().mean()


def info_nce(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    *,
    temperature: float = 0.05,
    groups: torch.Tensor | None = None,
    negative_groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE with in-batch negatives and optional hard negatives.

    Args:
        anchors: ``[B, D]`` (original views).
        positives: ``[B, D]`` (paraphrased views; row i is the positive of anchor i).
        negatives: ``[K, D]`` hard negatives, extra candidates for every anchor, or ``None``.
        temperature: tau; logits are ``cos / tau``.
        groups: ``[B]`` instance ids; a candidate of the anchor's own instance is masked, not a negative.
        negative_groups: ``[K]`` instance ids of the negatives (``-1``: unknown, never masked).

    Returns:
        Scalar loss; about ``log(B + K)`` for unrelated vectors, near 0 when views align.

    Example:
        >>> a, p = torch.randn(8, 16), torch.randn(8, 16)
        >>> bool(abs(info_nce(a, p, temperature=1.0) - info_nce(p, a, temperature=1.0)) < 1e-6)  # symmetric
        True
    """
    loss, _ = symmetric_info_nce(
        anchors, positives, anchor_candidates=anchors, positive_candidates=positives,
        negative_candidates=negatives, targets=torch.arange(len(anchors), device=anchors.device),
        temperature=temperature, groups=groups, candidate_groups=groups, negative_groups=negative_groups,
    )
    return loss


def generation_loss(logits: torch.Tensor, targets: torch.Tensor, token_kinds: torch.Tensor,
                    kind_counts: torch.Tensor | None = None) -> torch.Tensor:
    """Token cross-entropy averaged within each view kind, summed over kinds (``CE(orig) + CE(para)``).

    This equals the sum of the losses of separate per-view passes, as in the reference code.

    Args:
        logits: ``[N, vocab]`` at the labelled positions only.
        targets: ``[N]`` next-token ids.
        token_kinds: ``[N]`` view kind of each position (``ORIGINAL``, ``PARAPHRASE``, ``NEGATIVE``).
        kind_counts: ``[3]`` token count of each kind to divide by (default: the counts of ``token_kinds``).
            Data parallelism passes the mean count per process, so that the processes' losses average to
            the loss of their whole global batch.

    Returns:
        Scalar loss (0 when ``N == 0``).

    Example:
        >>> logits = torch.zeros(3, 5); kinds = torch.tensor([0, 0, 1])
        >>> round(generation_loss(logits, torch.tensor([1, 2, 3]), kinds).item(), 4)  # 2 * log(5)
        3.2189
    """
    token_loss = F.cross_entropy(at_least_float32(logits), targets, reduction="none")  # [N]
    sums = torch.zeros(3, device=logits.device, dtype=token_loss.dtype).index_add(0, token_kinds, token_loss)  # [3]
    counts = torch.bincount(token_kinds, minlength=3) if kind_counts is None else kind_counts  # [3]
    present = counts > 0  # [3]
    return (sums[present] / counts[present]).sum()  # []


def balance_contrastive(gen_loss: torch.Tensor, ctr_loss: torch.Tensor, weight: float,
                        rule: str = "cap", totals: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The weighted contrastive term ``c = w * L_ctr``, capped at ``L_gen`` under the paper's rule.

    With ``rule="cap"`` (the reference code's rule), when ``c > L_gen`` it becomes
    ``c * min(w, L_gen / c).detach()``. For ``w >= 1`` its value then equals ``L_gen`` and its gradient is
    the contrastive gradient scaled by ``L_gen / c``; for ``w < 1`` the factor is at most ``w``.
    ``rule="fixed"`` returns ``c``.

    Args:
        gen_loss: scalar L_gen.
        ctr_loss: scalar L_ctr.
        weight: w.
        rule: ``"cap"`` or ``"fixed"``.
        totals: ``(L_gen, L_ctr)`` of the whole global batch when ``gen_loss`` and ``ctr_loss`` are one
            process's share of it: the cap compares these, so every process scales alike, as one process
            holding the whole batch would (default: ``(gen_loss, ctr_loss)``).

    Returns:
        Scalar contrastive term to add to ``gen_loss``.

    Example:
        >>> balance_contrastive(torch.tensor(2.0), torch.tensor(0.5), 1000.0)
        tensor(2.)
    """
    weighted = weight * ctr_loss  # []
    if rule == "fixed":
        return weighted
    if rule != "cap":
        raise ValueError(f"unknown balance rule {rule!r}; choose 'cap' or 'fixed'")
    gen_total, ctr_total = (gen_loss, ctr_loss) if totals is None else totals
    weighted_total = weight * ctr_total  # []
    bounded = torch.clamp(gen_total / weighted_total, max=weight)  # [] min(w, L_gen / c)
    scale = torch.where(weighted_total > gen_total, bounded, torch.ones_like(weighted_total)).detach()  # []
    return weighted * scale


# --- distributed candidates -------------------------------------------------------------------
def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """``[n, ...]`` from every process stacked to ``[world * n, ...]``; backward sums gradients to the owner."""
    try:  # torch >= 2.6; torch.distributed.nn.functional.all_gather is deprecated there
        from torch.distributed._functional_collectives import all_gather_single_autograd
    except ImportError:
        import torch.distributed.nn.functional as dist_nn

        return torch.cat(dist_nn.all_gather(x))
    import torch.distributed as dist

    return all_gather_single_autograd(x, 0, dist.group.WORLD)


def mean_over_processes(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over all processes, without gradient (``x`` itself on a single process).

    Args:
        x: a tensor of the same shape on every process.

    Returns:
        The element-wise mean, detached.

    Example:
        >>> mean_over_processes(torch.tensor([2.0, 4.0]))  # one process
        tensor([2., 4.])
    """
    _, world = _world()
    if world == 1:
        return x.detach()
    import torch.distributed as dist

    total = x.detach().clone()
    dist.all_reduce(total)  # sum
    return total / world


def gather_rows(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Concatenate ``x`` ``[n, ...]`` from every process (``n`` may differ); gradients flow back to each owner.

    Returns:
        ``(all_rows [sum n, ...], offset)`` where ``offset`` is where this process's rows start.
    """
    rank, world = _world()
    if world == 1:
        return x, 0
    import torch.distributed as dist

    size = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    if max(sizes) == 0:  # e.g. no hard negative on any process: every process returns here
        return x, 0
    padded = torch.zeros((max(sizes), *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x
    if x.is_floating_point():
        parts = _all_gather_with_grad(padded).split(max(sizes))
    else:
        parts = [torch.zeros_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
    rows = torch.cat([part[:n] for part, n in zip(parts, sizes)])
    return rows, sum(sizes[:rank])


# --- the module -------------------------------------------------------------------------
@dataclass
class CoinLossOutput:
    """What one CoIN step computed: ``loss`` (to backpropagate) and detached parts for logging."""

    loss: torch.Tensor
    gen_loss: torch.Tensor
    contrastive_loss: torch.Tensor
    contrastive_accuracy: torch.Tensor


class CoinLoss(nn.Module):
    """Generation + contrastive loss over a batch made by :class:`coin_train.data.CoinCollator`.

    Args:
        temperature: InfoNCE tau.
        weight: w, the contrastive weight.
        balance: ``"cap"`` (the paper) or ``"fixed"``.
        pooling: ``"last"`` or ``"mean"``.
        contrastive: ``False`` trains generation only (the baseline); the contrastive loss and accuracy are
            still computed, without gradient, so both runs log comparable numbers.
        hard_negatives: use the batch's negative views as extra candidates.
        negative_gen_loss: also train generation on the negative views.
        gather_across_devices: score against the views of every process, not only the local ones, and
            treat the processes' micro-batches as one global batch: token and anchor means and the cap
            are taken over all of them, so that the processes' losses average to the loss of one process
            holding the global batch, and their averaged gradients (DDP, FSDP, DeepSpeed) to its gradients.
        pack_views: run the views packed into fuller rows instead of padded (:mod:`coin_train.packing`):
            the same loss with less memory and time. Checked once against the padded forward; a model
            that does not support it falls back to padding with a warning.

    Example:
        >>> loss_fn = CoinLoss(temperature=0.05, weight=1000.0)
        >>> out = loss_fn(model, batch)   # doctest: +SKIP
        >>> out.loss.backward()           # doctest: +SKIP
    """

    def __init__(self, temperature: float = 0.05, weight: float = 1000.0, balance: str = "cap",
                 pooling: str = "last", contrastive: bool = True, hard_negatives: bool = True,
                 negative_gen_loss: bool = False, gather_across_devices: bool = False, pack_views: bool = True):
        super().__init__()
        self.temperature = temperature
        self.weight = weight
        self.balance = balance
        self.pooling = pooling
        self.contrastive = contrastive
        self.hard_negatives = hard_negatives
        self.negative_gen_loss = negative_gen_loss
        self.gather_across_devices = gather_across_devices
        self.pack_views = pack_views
        self._packing_checked: bool | None = None  # set by the first batch when pack_views

    @classmethod
    def from_config(cls, config) -> CoinLoss:
        """Build from a :class:`coin_train.config.CoinConfig`."""
        return cls(temperature=config.temperature, weight=config.contrastive_weight, balance=config.balance,
                   pooling=config.pooling, contrastive=config.contrastive, hard_negatives=config.hard_negatives,
                   negative_gen_loss=config.negative_gen_loss, gather_across_devices=config.gather_across_devices,
                   pack_views=config.pack_views)

    def forward(self, model, batch: dict[str, torch.Tensor]) -> CoinLossOutput:
        from coin_train.modeling import labelled_forward

        input_ids, labels = batch["input_ids"], batch["labels"]  # [V, L], [V, L]
        groups = batch["group_ids"]  # [B]
        n_rows, n_views = groups.shape[0], input_ids.shape[0]
        kinds = torch.full((n_views,), NEGATIVE, device=input_ids.device)  # [V]
        kinds[:n_rows], kinds[n_rows : 2 * n_rows] = ORIGINAL, PARAPHRASE

        # Position t predicts token t+1: select positions whose next token is a label of a trained view.
        next_labels = labels[:, 1:]  # [V, L-1]
        trained = (kinds != NEGATIVE) | self.negative_gen_loss  # [V]
        select = torch.zeros_like(labels, dtype=torch.bool)  # [V, L]
        select[:, :-1] = (next_labels != IGNORE_INDEX) & trained[:, None]
        hidden, logits = labelled_forward(model, input_ids, batch["attention_mask"], batch["position_ids"],
                                          select, pack=self._packing(model, batch))  # [V, L, H], [N, vocab]
        token_kinds = kinds[:, None].expand_as(select)[select]  # [N]
        global_batch = self.gather_across_devices and _world()[1] > 1
        kind_counts = mean_over_processes(torch.bincount(token_kinds, minlength=3).float()) if global_batch else None
        gen = generation_loss(logits, next_labels[select[:, :-1]], token_kinds, kind_counts)

        with torch.set_grad_enabled(self.contrastive and torch.is_grad_enabled()):
            pooled = pool(hidden, batch["attention_mask"], self.pooling)  # [V, H]
            # Negatives may be empty ([0, H]) here; they are still passed, so that under gathering
            # every process joins the same collectives.
            ctr, accuracy = self.contrastive_term(
                pooled[:n_rows], pooled[n_rows : 2 * n_rows],
                pooled[2 * n_rows :] if self.hard_negatives else None,
                groups, batch.get("negative_group_ids") if self.hard_negatives else None,
            )
        if not self.contrastive:
            return CoinLossOutput(gen, gen.detach(), ctr.detach(), accuracy.detach())
        totals = tuple(mean_over_processes(torch.stack([gen, ctr]))) if global_batch and self.balance == "cap" else None
        loss = gen + balance_contrastive(gen, ctr, self.weight, self.balance, totals)
        return CoinLossOutput(loss, gen.detach(), ctr.detach(), accuracy.detach())

    def _packing(self, model, batch) -> bool:
        """Whether to pack this batch's views: ``pack_views`` and, checked on the first batch, the model
        gives packed views the same logits as padded ones."""
        if self.pack_views and self._packing_checked is None:
            from coin_train.packing import packing_matches_padding

            self._packing_checked = packing_matches_padding(model, batch["input_ids"][batch["attention_mask"].bool()])
            if not self._packing_checked:
                logger.warning("%s does not keep packed views apart (its attention ignores position_ids restarts): "
                               "padding every view instead; pass --no_pack_views to skip this check",
                               type(model).__name__)
        return bool(self.pack_views and self._packing_checked)

    def contrastive_term(self, originals, paraphrases, negatives, groups, negative_groups):
        """InfoNCE and retrieval accuracy of pooled views ``[B, H]`` (+ ``[K, H]`` negatives), across processes
        when ``gather_across_devices``."""
        if not self.gather_across_devices:
            anchor_cands, positive_cands, cand_groups, offset = originals, paraphrases, groups, 0
        else:
            anchor_cands, offset = gather_rows(originals)  # [A, H]
            positive_cands, _ = gather_rows(paraphrases)  # [A, H]
            cand_groups, _ = gather_rows(groups)  # [A]
            if negatives is not None:
                negatives, _ = gather_rows(negatives)  # [K_all, H]
                negative_groups = None if negative_groups is None else gather_rows(negative_groups)[0]
        targets = offset + torch.arange(len(originals), device=originals.device)  # [B]
        loss, accuracy = symmetric_info_nce(
            originals, paraphrases, anchor_candidates=anchor_cands, positive_candidates=positive_cands,
            negative_candidates=negatives, targets=targets, temperature=self.temperature, groups=groups,
            candidate_groups=cand_groups, negative_groups=negative_groups,
        )
        # Means over the local anchors, reweighted so that the processes' values average to the mean over
        # all anchors (micro-batches may differ in size, e.g. the last one of an epoch).
        share = len(originals) * _world()[1] / len(anchor_cands) if self.gather_across_devices else 1.0
        return loss * share, accuracy * share
