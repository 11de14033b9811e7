"""Mask-aware pooling of final-layer hidden states into one vector per sequence.

Both poolings read only real tokens (``attention_mask == 1``), so the result is the same whether a batch
is padded on the left or on the right (given explicit ``position_ids``; see ``coin_train.data``). The
reference code took position ``-1`` and averaged over padding (flaw 3 in ``method.md``).

Example:
    >>> import torch
    >>> hidden = torch.arange(12.0).view(2, 3, 2)       # [batch=2, seq=3, dim=2]
    >>> mask = torch.tensor([[1, 1, 0], [0, 1, 1]])      # right- and left-padded
    >>> last_token_pool(hidden, mask).tolist()
    [[2.0, 3.0], [10.0, 11.0]]
    >>> mean_pool(hidden, mask).tolist()
    [[1.0, 2.0], [9.0, 10.0]]
"""

from __future__ import annotations

import torch

POOLINGS = ("last", "mean")


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of the last real token of each sequence (the paper's pooling).

    Args:
        hidden: ``[batch, seq, dim]`` final-layer states.
        attention_mask: ``[batch, seq]``, 1 on real tokens, 0 on padding (either side).

    Returns:
        ``[batch, dim]``.
    """
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)  # [seq]
    last = (attention_mask.long() * positions).argmax(dim=1)  # [batch] index of the last real token
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # [batch, dim]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states over real tokens only.

    Args:
        hidden: ``[batch, seq, dim]`` final-layer states.
        attention_mask: ``[batch, seq]``, 1 on real tokens, 0 on padding.

    Returns:
        ``[batch, dim]``.
    """
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)  # [batch, seq, 1]
    total = (hidden * mask).sum(dim=1)  # [batch, dim]
    count = mask.sum(dim=1).clamp(min=1.0)  # [batch, 1]
    return total / count  # [batch, dim]


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, method: str = "last") -> torch.Tensor:
    """Dispatch to :func:`last_token_pool` (``"last"``) or :func:`mean_pool` (``"mean"``).

    Args:
        hidden: ``[batch, seq, dim]``.
        attention_mask: ``[batch, seq]``.
        method: one of ``POOLINGS``.

    Returns:
        ``[batch, dim]``.
    """
    if method == "last":
        return last_token_pool(hidden, attention_mask)
    if method == "mean":
        return mean_pool(hidden, attention_mask)
    raise ValueError(f"unknown pooling {method!r}; choose one of {POOLINGS}")
