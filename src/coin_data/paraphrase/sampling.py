"""Token sampling for ``hf:MODEL``: prompts that open alike run that opening once; each row draws with its own seed.

Every paraphrase prompt starts with the same system message and worked examples (about 290 of its
310-340 tokens with SmolLM2). :func:`encode_prefix` runs those tokens once and keeps the model's cache;
:func:`sample_rows` then runs only each prompt's own tokens against a copy of it, left-padded *between*
the prefix and the prompt's tokens (masked out, positions counting real tokens only), so each row sees
what a full forward pass would show it. Rows leave the batch as soon as they end (a stop token or their
own token limit), so one long answer does not keep the others running.

Each row draws from its own ``torch.Generator`` seeded by the caller: a row's tokens depend on its
seed and prompt, not on which other rows share its batch or on the global RNG (up to floating-point
summation order, which a batch shape can change in the last bits).

Example:
    >>> filter_top_p(__import__("torch").tensor([0.5, 0.3, 0.2]), 0.7).tolist()
    [0.625, 0.375, 0.0]
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from coin_data.models import left_pad


@dataclass
class PrefixCache:
    """The model's cache after ``tokens`` (batch of one), shared read-only by every batch that copies it.

    Attributes:
        tokens: the prefix token ids (at least one).
        cache: the model's key/value cache after them.
    """

    tokens: list[int]
    cache: Any


@dataclass(frozen=True)
class SamplingSettings:
    """How the next token is drawn: greedy when ``temperature`` is 0, else temperature and nucleus sampling."""

    temperature: float = 0.7
    top_p: float = 0.9


def shared_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Leading tokens all ``rows`` share, leaving every row at least one token of its own.

    Example:
        >>> shared_prefix_length([[1, 2, 3, 4], [1, 2, 5]]), shared_prefix_length([[1, 2], [1, 2, 3]])
        (2, 1)
    """
    if not rows:
        return 0
    limit, first, n = min(len(row) for row in rows) - 1, rows[0], 0
    while n < limit and all(row[n] == first[n] for row in rows):
        n += 1
    return n


def encode_prefix(model, tokens: Sequence[int]) -> PrefixCache:
    """Run ``tokens`` through ``model`` once and keep the cache (see :func:`sample_rows`).

    Example:
        >>> prefix = encode_prefix(model, [1, 5, 6])  # doctest: +SKIP
    """
    import torch

    if not tokens:
        raise ValueError("a prefix must hold at least one token")
    device = next(model.parameters()).device
    ids = torch.tensor([list(tokens)], device=device)  # [1, P]
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, logits_to_keep=1)
    return PrefixCache(list(tokens), out.cache)


def filter_top_p(probs, top_p: float):
    """``probs`` (last dimension) cut to the smallest set of most likely tokens with mass >= ``top_p``, renormalised.

    Example:
        >>> import torch
        >>> filter_top_p(torch.tensor([0.1, 0.6, 0.3]), 0.5).tolist()
        [0.0, 1.0, 0.0]
    """
    ordered, order = probs.sort(dim=-1, descending=True)
    before = ordered.cumsum(dim=-1) - ordered  # mass of the more likely tokens
    ordered = ordered.masked_fill(before >= top_p, 0.0)  # the most likely token always stays
    kept = ordered.new_zeros(probs.shape).scatter(-1, order, ordered)
    return kept / kept.sum(dim=-1, keepdim=True)


def next_tokens(logits, generators: Sequence[Any], settings: SamplingSettings) -> list[int]:
    """One token per row of ``logits`` ``[R, V]``: the argmax when greedy, else a draw with that row's generator.

    Example:
        >>> import torch
        >>> next_tokens(torch.tensor([[0.0, 3.0, 1.0]]), [None], SamplingSettings(temperature=0))
        [1]
    """
    import torch

    if settings.temperature == 0:
        return logits.argmax(dim=-1).tolist()
    probs = filter_top_p(torch.softmax(logits.float() / settings.temperature, dim=-1), settings.top_p)
    return [int(torch.multinomial(row, 1, generator=g)) for row, g in zip(probs, generators)]


def sample_rows(model, prompts: Sequence[Sequence[int]], seeds: Sequence[int], limits: Sequence[int],
                prefix: PrefixCache | None, pad_id: int, stop_ids: set[int],
                settings: SamplingSettings = SamplingSettings(),
                done: Callable[[int], None] | None = None) -> list[list[int]]:  # fmt: skip
    """The new tokens of each prompt, every row drawn with its own seed, in one batch.

    Args:
        model: a transformers causal LM that takes and returns ``cache``.
        prompts: each row's whole prompt; a row that starts with ``prefix.tokens`` runs only the rest.
        seeds: one seed per row.
        limits: most new tokens per row.
        prefix: the shared opening's cache (:func:`encode_prefix`), or ``None``.
        pad_id: padding token id.
        stop_ids: tokens that end a row (not included in its output).
        settings: greedy or sampling.
        done: called with a row's index as soon as that row has ended.

    Returns:
        Per row, its new token ids (without the stop token).

    Example:
        >>> sample_rows(model, [[1, 5, 6, 7]], [0], [8], encode_prefix(model, [1, 5]), 0, {2})  # doctest: +SKIP
        [[17, 4, 9]]
    """
    import torch

    device = next(model.parameters()).device
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    logits, cache, mask, position = _prompt_pass(model, prompts, prefix, pad_id, device)
    out: list[list[int]] = [[] for _ in prompts]
    active = list(range(len(prompts)))
    while active:
        drawn = next_tokens(logits, [generators[row] for row in active], settings)
        keep = []
        for index, (row, token) in enumerate(zip(active, drawn)):
            if token not in stop_ids:
                out[row].append(token)
                if len(out[row]) < limits[row]:
                    keep.append(index)
                    continue
            if done is not None:
                done(row)
        if not keep:
            break
        if len(keep) < len(active):
            select = torch.tensor(keep, device=device)
            cache.batch_select_indices(select)
            mask, position = mask[select], position[select]
        active = [active[i] for i in keep]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)  # [R, columns + 1]
        position = position + 1  # [R, 1]
        ids = torch.tensor([[drawn[i]] for i in keep], device=device)  # [R, 1]
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=position, cache=cache,
                           use_cache=True).logits[:, -1]  # fmt: skip
    return out


def _prompt_pass(model, prompts, prefix: PrefixCache | None, pad_id: int, device):
    """Run each prompt's own tokens after the prefix: ``(last logits [R, V], cache, mask [R, C], last position [R, 1])``."""
    import torch

    n = len(prefix.tokens) if prefix is not None else 0
    shared = [n > 0 and len(p) > n and list(p[:n]) == prefix.tokens for p in prompts]
    own_ids, own = left_pad([p[n:] if s else p for p, s in zip(prompts, shared)], pad_id, device)  # [R, S]
    offsets = torch.tensor([n if s else 0 for s in shared], device=device)[:, None]  # [R, 1]
    positions = offsets + (own.cumsum(-1) - 1).clamp(min=0)  # [R, S]
    cache, mask = None, own
    if n:
        cache = copy.deepcopy(prefix.cache)
        cache.batch_select_indices(torch.zeros(len(prompts), dtype=torch.long, device=device))  # one copy per row
        prefix_mask = torch.tensor(shared, dtype=own.dtype, device=device)[:, None].expand(-1, n)  # [R, P]
        mask = torch.cat([prefix_mask, own], dim=1)  # [R, P + S]
    with torch.no_grad():
        out = model(input_ids=own_ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                    logits_to_keep=1)  # fmt: skip
    return out.logits[:, -1], out.cache, mask, positions[:, -1:]
