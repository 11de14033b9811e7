"""Option log-likelihoods after prompts, with one prompt pass and one packed pass over all options.

The tensor work under rank classification (:func:`coin_train.evaluate.rank_classify`): prompts are
left-padded with explicit positions, so every prompt's KV cache ends at the same column; all options of
a prompt then run packed in one row behind a block-diagonal mask (or, for attention kernels that take no
custom mask, with the cache repeated once per option); the tokens that open every prompt of a group run
once (:class:`SharedPrefix`). The scores equal those of one full forward pass per (prompt, option).

Example:
    >>> sums, counts = option_log_likelihoods(model, [[5, 6, 7]], [[9], [10, 11]], pad_id=0)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(row) for row in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, length - len(row) :] = torch.tensor(row)
            mask[i, length - len(row) :] = 1
    return ids.to(device), mask.to(device)


@dataclass
class SharedPrefix:
    """The key/value cache of the tokens that open the prompts of each group, computed once per group.

    The prompts of one instruction differ only after the instruction's opening words (the example comes
    later), so those tokens run once; a batch may mix groups, each row reading its own group's prefix.

    Attributes:
        tokens: the prefix token ids of each group (each non-empty).
        cache: the model's cache after the prefixes, one row per group, left-padded; never changed by
            its users (they select rows of a copy).
        mask: ``[G, P0]`` 1 on the prefix tokens, 0 on the padding.
    """

    tokens: list[list[int]]
    cache: object
    mask: torch.Tensor


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every row shares, leaving each row at least one token of its own.

    The last prompt token must run in the batch pass: its logits predict each option's first token.

    Example:
        >>> common_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]])
        2
        >>> common_prefix_length([[1, 2], [1, 2, 3]])
        1
    """
    if not rows:
        return 0
    limit = min(len(row) for row in rows) - 1
    first = rows[0]
    n = 0
    while n < limit and all(row[n] == first[n] for row in rows):
        n += 1
    return n


@torch.no_grad()
def encode_shared_prefix(model, prefixes: Sequence[Sequence[int]], pad_id: int = 0) -> SharedPrefix | None:
    """Run the prefixes once (left-padded, one row each) and keep their cache; ``None`` if there are none.

    Example:
        >>> prefix = encode_shared_prefix(model, [[1, 5, 6]])  # doctest: +SKIP
        >>> option_log_likelihoods(model, [[1, 5, 6, 7], [1, 5, 6, 8, 9]], [[3], [4]], 0, prefix)  # doctest: +SKIP
    """
    if not prefixes:
        return None
    if any(not row for row in prefixes):
        raise ValueError("a shared prefix must hold at least one token")
    ids, mask = _left_pad(prefixes, pad_id, _device(model))  # [G, P0]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    return SharedPrefix(tokens=[list(row) for row in prefixes], cache=out.cache, mask=mask)


@torch.no_grad()
def option_log_likelihoods(model, prompt_ids: Sequence[Sequence[int]], option_ids: Sequence[Sequence[int]],
                           pad_id: int, prefix: SharedPrefix | None = None,
                           prefix_rows: Sequence[int | None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Log-likelihood of every option after every prompt, with one prompt pass and one options pass.

    Prompts are left-padded and given explicit position ids (positions count real tokens only, as in
    training), so every prompt's cache ends at the same column and the options continue from it. The
    options pass feeds all options of a prompt packed into one row, with a block-diagonal causal mask
    (each option sees the prompt and its own earlier tokens only): no option padding and no copies of
    the prompt cache. Attention kernels that take no custom mask (flash, flex) get the cache repeated
    once per option instead.

    With ``prefix`` (see :func:`encode_shared_prefix`) only the rest of each prompt runs: each row reads
    its group's prefix cache (``prefix_rows``: the group of each prompt, default group 0; ``None``: no
    prefix), and the padding sits between the prefix and each prompt's own tokens (masked out, positions
    continuing after the prefix), so the scores are those of full forward passes.

    Args:
        model: a causal LM (plain or PEFT) that returns a KV cache.
        prompt_ids: B token-id lists (each non-empty, and longer than ``prefix`` when given).
        option_ids: K token-id lists (each non-empty), the same for every prompt.
        pad_id: padding token id.
        prefix: the cache of the tokens the prompts of each group start with, or ``None``.
        prefix_rows: for each prompt, its group in ``prefix`` (or ``None``: the prompt runs whole).

    Returns:
        ``(sums [B, K], counts [K])``: summed log-probabilities of each option's tokens, and the number of
        tokens scored per option.

    Example:
        >>> sums, counts = option_log_likelihoods(model, [[5, 6, 7]], [[9], [10, 11]], pad_id=0)  # doctest: +SKIP
        >>> sums.shape, counts.tolist()                                                       # doctest: +SKIP
        (torch.Size([1, 2]), [1, 2])
    """
    device = _device(model)
    out, mask, positions = _prompt_pass(model, prompt_ids, pad_id, prefix, prefix_rows)  # mask [B, P], positions [B, S]
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # [B, V]: predicts each option's token 0
    sums = first[:, torch.tensor([row[0] for row in option_ids], device=device)]  # [B, K]
    counts = torch.tensor([len(row) for row in option_ids], device=device)  # [K]
    if int(counts.max()) > 1:
        rest = _packed_options(model, out.cache, mask, positions, option_ids)
        if rest is None:
            rest = _repeated_options(model, out.cache, mask, positions, option_ids, pad_id)
        sums = sums + rest
    return sums, counts


def _prompt_pass(model, prompt_ids, pad_id, prefix: SharedPrefix | None, prefix_rows=None):
    """The prompts' forward pass (after their prefixes, if any): ``(output, mask [B, P], positions [B, S])``.

    ``mask`` covers every cached column (prefix and own tokens); ``positions`` the columns just run.
    """
    device = _device(model)
    if prefix is None:
        ids, own = _left_pad(prompt_ids, pad_id, device)  # [B, S]
        positions = (own.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=own, position_ids=positions, use_cache=True, logits_to_keep=1)
        return out, own, positions
    rows = list(prefix_rows) if prefix_rows is not None else [0] * len(prompt_ids)
    lengths = [0 if row is None else len(prefix.tokens[row]) for row in rows]
    for prompt, row, n in zip(prompt_ids, rows, lengths):
        if row is not None and (list(prompt[:n]) != prefix.tokens[row] or len(prompt) <= n):
            raise ValueError("every prompt must start with its shared prefix and go on after it")
    ids, own = _left_pad([prompt[n:] for prompt, n in zip(prompt_ids, lengths)], pad_id, device)  # [B, S]
    positions = torch.tensor(lengths, device=device)[:, None] + (own.cumsum(-1) - 1).clamp(min=0)  # [B, S]
    select = torch.tensor([0 if row is None else row for row in rows], device=device)
    cache = copy.deepcopy(prefix.cache)
    cache.batch_select_indices(select)  # row b: the cache of its group's prefix (rows may repeat)
    prefix_mask = prefix.mask[select] * torch.tensor([row is not None for row in rows], device=device)[:, None]
    mask = torch.cat([prefix_mask.to(own.dtype), own], dim=1)  # [B, P0 + S]
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                logits_to_keep=1)  # fmt: skip
    return out, mask, positions


def _packed_options(model, cache, mask, positions, option_ids) -> torch.Tensor | None:
    """Scores of option tokens 1.. with all options of a prompt in one row; ``None`` if the kernel needs a plain mask."""
    kernel = getattr(getattr(model, "config", None), "_attn_implementation", None) or "eager"
    if kernel not in ("sdpa", "eager"):
        return None
    device = mask.device
    n_prompts, n_options = mask.shape[0], len(option_ids)
    fed = [row[:-1] for row in option_ids]  # token j of an option predicts token j + 1
    owner = torch.tensor([k for k, row in enumerate(fed) for _ in row], device=device)  # [L]
    offset = torch.tensor([j for row in fed for j in range(len(row))], device=device)  # [L]
    feed = torch.tensor([t for row in fed for t in row], device=device)  # [L]
    target = torch.tensor([t for row in option_ids for t in row[1:]], device=device)  # [L]
    length = feed.shape[0]
    own_prefix = (owner[:, None] == owner[None, :]) & (offset[:, None] >= offset[None, :])  # [L, L]
    allowed = torch.cat([mask.bool()[:, None, :].expand(-1, length, -1),  # [B, L, P]: the real prompt tokens
                         own_prefix.expand(n_prompts, -1, -1)], dim=-1)[:, None]  # [B, 1, L, P+L]
    if kernel == "eager":  # eager attention adds the mask to the scores
        dtype = next(model.parameters()).dtype
        allowed = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(~allowed, torch.finfo(dtype).min)
    logits = model(input_ids=feed.expand(n_prompts, -1), attention_mask=allowed,
                   position_ids=positions[:, -1:] + 1 + offset[None, :], cache=cache,
                   use_cache=False).logits  # [B, L, V]
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, target.expand(n_prompts, -1)[..., None])[..., 0]  # [B, L]
    return torch.zeros(n_prompts, n_options, device=device).index_add_(1, owner, logp)  # [B, K]


def _repeated_options(model, cache, mask, positions, option_ids, pad_id) -> torch.Tensor:
    """Scores of option tokens 1.. with the prompt cache repeated once per option (any attention kernel)."""
    device = mask.device
    n_prompts, n_options = mask.shape[0], len(option_ids)
    longest = max(len(row) for row in option_ids)
    feed = torch.full((n_options, longest - 1), pad_id, dtype=torch.long, device=device)  # [K, T-1]
    target = torch.full((n_options, longest - 1), -1, dtype=torch.long, device=device)  # [K, T-1]
    for k, row in enumerate(option_ids):
        feed[k, : len(row) - 1] = torch.tensor(row[:-1], device=device)
        target[k, : len(row) - 1] = torch.tensor(row[1:], device=device)
    cache.batch_repeat_interleave(n_options)  # row b * K + k: prompt b, option k
    full_mask = torch.cat([mask.repeat_interleave(n_options, 0), (target >= 0).long().repeat(n_prompts, 1)], dim=1)
    feed_positions = positions[:, -1:].repeat_interleave(n_options, 0) + 1 + torch.arange(longest - 1, device=device)
    logits = model(input_ids=feed.repeat(n_prompts, 1), attention_mask=full_mask, position_ids=feed_positions,
                   cache=cache, use_cache=False).logits.float()  # [B*K, T-1, V]
    targets = target.repeat(n_prompts, 1)  # [B*K, T-1]
    picked = torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]  # [B*K, T-1]
    return picked.masked_fill(targets < 0, 0.0).sum(-1).view(n_prompts, n_options)  # [B, K]
