"""Pack the views of a padded batch into fewer, fuller rows, each view attending only to itself.

A CoIN batch holds 2B (or 3B) views of different lengths, padded to the longest. Every padding position
still goes through every layer and keeps its activations for the backward pass. :func:`pack_views` lays
the views end to end instead, first-fit-decreasing into rows of up to 1.5 times the longest view, so the
number of positions drops towards the number of real tokens. ``position_ids`` restart at 0 for every
view, and the model is called without an ``attention_mask``: transformers then reads the restarts as
sequence boundaries and builds a block-diagonal causal mask, so no view sees another. The tail of a row
that is not full is one more (ignored) block of its own.

On the embedded dataset (SmolLM2 tokenizer, 8 rows = 24 views per batch) padding is 30% of the padded
positions; packed rows cut the positions by 17% (``benchmarks/packing.py``). Rows longer than the longest
view make attention work grow (1.2x), but at these lengths attention is a small part of a layer's work. :func:`packing_matches_padding` checks once per model, on a tiny input, that
the model really treats restarts as boundaries (models with their own mask code may not).

Example:
    >>> import torch
    >>> ids = torch.tensor([[5, 6, 0], [7, 8, 9], [4, 0, 0]])    # 3 views of 2, 3 and 1 tokens
    >>> packed = pack_views(ids, attention_mask=(ids != 0).long(), row_length_factor=1)
    >>> packed.input_ids.tolist(), packed.position_ids.tolist()
    ([[7, 8, 9], [5, 6, 4]], [[0, 1, 2], [0, 1, 0]])
    >>> packed.index.tolist()                                      # where each token went
    [[3, 4, -1], [0, 1, 2], [5, -1, -1]]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PAD_ID = 0  # token id written in unused tail positions (any valid id: the tail is its own block)
ROW_LENGTH_FACTOR = 1.5  # rows hold up to this many times the longest view


@dataclass
class PackedViews:
    """Views laid end to end in rows, and where each view's tokens went.

    Attributes:
        input_ids: ``[rows, row_length]``.
        position_ids: ``[rows, row_length]``, 0 at the start of every view and of the unused tail.
        index: ``[views, seq]`` position of each real token in ``input_ids.view(-1)``; -1 on padding.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    index: torch.Tensor

    def gather(self, packed: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """Rows of ``packed`` ``[rows, row_length, ...]`` at the view positions ``where`` ``[views, seq]`` (bool),
        in row-major order of ``where``: ``[where.sum(), ...]``."""
        flat = packed.reshape(-1, *packed.shape[2:])  # [rows * row_length, ...]
        return flat[self.index[where]]

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """``[rows, row_length, ...]`` back to the padded layout ``[views, seq, ...]``, zeros on padding."""
        real = self.index >= 0  # [views, seq]
        out = packed.new_zeros(*self.index.shape, *packed.shape[2:])
        out[real] = self.gather(packed, real)
        return out


def _first_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into bins of total length <= ``capacity``, longest first.

    Example:
        >>> _first_fit_decreasing([3, 2, 4], 4)
        [[2], [0], [1]]
    """
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(capacity - lengths[i])
    return bins


def pack_views(input_ids: torch.Tensor, attention_mask: torch.Tensor,
               row_length_factor: float = ROW_LENGTH_FACTOR) -> PackedViews:
    """Lay the real tokens of a padded batch end to end in rows of up to ``row_length_factor`` times its
    longest view.

    Args:
        input_ids: ``[views, seq]``, padded on either side.
        attention_mask: ``[views, seq]``, 1 on real tokens (a contiguous run per view).
        row_length_factor: row length over the longest view's (>= 1).

    Returns:
        A :class:`PackedViews`; call the model with its ``input_ids`` and ``position_ids`` and no
        ``attention_mask``.
    """
    real = attention_mask.bool()  # [V, L]
    lengths = real.sum(dim=1).tolist()  # [V]
    if row_length_factor < 1:
        raise ValueError(f"row_length_factor must be >= 1, got {row_length_factor}")
    bins = _first_fit_decreasing(lengths, int(max(lengths) * row_length_factor))
    capacity = max(sum(lengths[view] for view in views) for views in bins)  # the fullest row
    row_of, start_of, used = [0] * len(lengths), [0] * len(lengths), []
    for row, views in enumerate(bins):
        start = 0
        for view in views:
            row_of[view], start_of[view] = row, start
            start += lengths[view]
        used.append(start)

    device = input_ids.device
    rank = real.long().cumsum(dim=1) - 1  # [V, L] position of each real token within its view
    offset = torch.tensor(row_of, device=device) * capacity + torch.tensor(start_of, device=device)  # [V]
    index = torch.where(real, offset[:, None] + rank, -1)  # [V, L]
    flat = index[real]  # [real tokens]
    packed_ids = torch.full((len(bins) * capacity,), PAD_ID, dtype=input_ids.dtype, device=device)
    packed_ids[flat] = input_ids[real]
    # Tail of each row: positions 0, 1, ... from its first free slot (a block of its own); real tokens: rank.
    positions = torch.arange(capacity, device=device)[None, :] - torch.tensor(used, device=device)[:, None]
    positions = positions.clamp(min=0).reshape(-1)  # [rows * capacity]
    positions[flat] = rank[real]
    return PackedViews(packed_ids.view(len(bins), capacity), positions.view(len(bins), capacity), index)


def packing_matches_padding(model, token_ids: torch.Tensor, tolerance: float | None = None) -> bool:
    """Whether ``model`` gives the same logits for views packed in rows as for the same views padded.

    Two short views ``a`` (3 tokens) and ``b`` (4 tokens) are run padded, then packed as ``[a b]`` and
    ``[b a]``. A model that ignores the ``position_ids`` restarts lets ``b`` attend to ``a`` and fails.

    Args:
        model: the (possibly wrapped) causal LM; it is run in eval mode without gradient, then restored.
        token_ids: at least one valid token id to build the views from.
        tolerance: largest allowed difference, relative to the largest logit (default 1e-2, or 6e-2 when
            the logits are 16-bit or computed under autocast: rounding, not a view attending to another).
    """
    ids = token_ids.reshape(-1)
    seq = ids[torch.arange(7, device=ids.device) % ids.numel()]
    a, b = seq[:3], seq[3:]
    padded_ids = torch.stack([torch.cat([a, a[:1]]), b])  # [2, 4], a right-padded by one
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], device=ids.device)
    padded_pos = torch.arange(4, device=ids.device).expand(2, 4) * mask
    packed_ids = torch.stack([torch.cat([a, b]), torch.cat([b, a])])  # [2, 7]
    packed_pos = torch.tensor([[0, 1, 2, 0, 1, 2, 3], [0, 1, 2, 3, 0, 1, 2]], device=ids.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            padded = model(input_ids=padded_ids, attention_mask=mask, position_ids=padded_pos, use_cache=False).logits
            packed = model(input_ids=packed_ids, position_ids=packed_pos, use_cache=False).logits
    finally:
        model.train(was_training)
    if tolerance is None:
        low_precision = padded.dtype in (torch.bfloat16, torch.float16) or torch.is_autocast_enabled(ids.device.type)
        tolerance = 6e-2 if low_precision else 1e-2
    expected = torch.cat([padded[0, :3], padded[1], padded[1], padded[0, :3]]).float()  # [14, vocab]
    got = packed.reshape(-1, packed.shape[-1]).float()
    scale = expected.abs().max().clamp(min=1e-6)
    return bool(((got - expected).abs().max() / scale) <= tolerance)
