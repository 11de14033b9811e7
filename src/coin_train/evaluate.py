"""Robustness evaluation: score a model on every (task, level, instruction, example) of a suite.

Two scoring modes, both batched and both using the model's own :class:`~coin_train.prompt_format.PromptFormat`
(the one it was trained with, read from ``coin_prompt.json``):

* ``rank`` (default; rank classification): the log-likelihood of each option given the prompt; the
  prediction is the option with the highest score. The prompt is run once, and all its options are
  scored in one more short pass over its KV cache (packed in one row behind a block-diagonal mask), so a
  (prompt, options) group costs one prompt pass plus one pass over the option tokens. The tokens that open
  every prompt of one instruction run once (:class:`SharedPrefix`). Each option is scored as the target the model was trained on:
  the option's tokens, plus EOS when the prompt format adds EOS to targets (so ``spam`` cannot win just
  by being a prefix of a longer answer). ``normalize="sum"`` (default) compares total log-probabilities,
  i.e. the probability of the whole answer; ``"mean"`` divides by the number of scored tokens, which
  removes the bias against long options of untrained models.
* ``generate`` (the paper's mode): greedy decoding of a few tokens; the prediction is the option the
  output starts with (case-, space- and leading-punctuation-insensitive; the longest matching option
  wins, and the option must end at a word boundary), else ``invalid``.

Example:
    >>> from coin_train.suites import SuiteConfig, build_suite
    >>> suite = build_suite(SuiteConfig(tasks="sentiment", levels="clean", max_examples=4))  # doctest: +SKIP
    >>> predictions = predict_suite(model, tokenizer, PromptFormat(), suite, ScoringConfig())  # doctest: +SKIP
    >>> predictions["sentiment"]["clean"]["h0"]                                                # doctest: +SKIP
    ['positive', 'negative', 'negative', 'positive']
"""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from coin_data.models import resolve_model  # noqa: F401  (one alias resolver, re-exported here)
from coin_train.prompt_format import PromptFormat
from coin_train.report import INVALID, Predictions, build_report

logger = logging.getLogger(__name__)

RANK = "rank"
GENERATE = "generate"
MODES = (RANK, GENERATE)
# INVALID and Predictions live in coin_train.report (which never imports this module) and stay importable here.


@dataclass
class ScoringConfig:
    """How predictions are made.

    Command: ``coin-train eval --model out/coin --suite default --out eval/coin --mode rank --batch-size 16``
    """

    # --- mode --------------------------------------------------------------------------------
    mode: str = field(default=RANK, metadata={"help": "rank: option log-likelihood; generate: greedy + parse."})
    normalize: str = field(
        default="sum", metadata={"help": "rank: 'sum' of option token log-probs, or their 'mean'."}
    )
    # --- batching and generation ----------------------------------------------------------------
    batch_size: int = field(default=16, metadata={"help": "Prompts per forward pass (rank) or generate call."})
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "generate: tokens to decode (default: longest option + 2)."}
    )
    share_prefix: bool = field(
        default=True,
        metadata={"help": "rank: run the tokens that open every prompt of an instruction once (same scores, faster)."},
    )

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.normalize not in ("sum", "mean"):
            raise ValueError(f"normalize must be 'sum' or 'mean', got {self.normalize!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    def to_dict(self) -> dict:
        return asdict(self)


# --- rank classification -------------------------------------------------------------------------


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


def rank_classify(model, tokenizer, prompt_format: PromptFormat, instructions: Sequence[str],
                  options: Sequence[str], config: ScoringConfig, groups: Sequence[object] | None = None,
                  progress=None) -> list[str]:  # fmt: skip
    """Predict one option per instruction by option log-likelihood (rank classification).

    Prompts are scored group by group (``groups``: e.g. the instruction variant of each prompt, whose
    examples share the instruction's opening tokens). With ``config.share_prefix`` the tokens that open
    every prompt of a group run once (:func:`encode_shared_prefix`); each group is cut into batches of
    similar length, so little padding is run.

    Args:
        model, tokenizer: the model under test and its tokenizer.
        prompt_format: the prompt format the model was trained with.
        instructions: rendered instructions (template filled with an example and the options block).
        options: the task's label words.
        config: batching, length normalisation and prefix sharing.
        groups: a group key per instruction (default: all in one group; the shared prefix is then what
            all prompts open with, e.g. a chat template's header).
        progress: optional callable, called with the number of prompts of each batch once it is scored.

    Returns:
        The predicted option for each instruction.

    Example:
        >>> rank_classify(model, tok, PromptFormat(), ["Is it spam? ..."], ["spam", "not spam"], ScoringConfig())  # doctest: +SKIP
        ['spam']
    """
    prompts = prompt_format.encode_prompts(tokenizer, list(instructions))
    option_ids = prompt_format.encode_targets(tokenizer, list(options))
    if any(not row for row in option_ids):
        raise ValueError(f"an option tokenizes to nothing: {list(options)}")
    predictions: list[str] = [""] * len(prompts)
    prefix, rows, own = _group_prefixes(model, prompts, groups, config.share_prefix, tokenizer.pad_token_id)
    for batch in _length_sorted_batches(own, config.batch_size):  # batches mix groups: full and length-sorted
        sums, counts = option_log_likelihoods(model, [prompts[i] for i in batch], option_ids, tokenizer.pad_token_id,
                                              prefix, [rows[i] for i in batch])  # fmt: skip
        scores = sums / counts if config.normalize == "mean" else sums  # [b, K]
        for index, best in zip(batch, scores.argmax(-1).tolist()):
            predictions[index] = options[best]
        if progress is not None:
            progress(len(batch))
    return predictions


def _group_prefixes(model, prompts, groups, share: bool, pad_id: int):
    """The groups' shared prefixes run once: ``(prefix or None, prefix row per prompt, own tokens per prompt)``."""
    if not share:
        return None, [None] * len(prompts), prompts
    tokens: list[list[int]] = []
    rows: list[int | None] = [None] * len(prompts)
    for members in _groups(groups if groups is not None else [0] * len(prompts)):
        shared = common_prefix_length([prompts[i] for i in members])
        if shared and len(members) > 1:  # a prefix of one prompt saves nothing
            for i in members:
                rows[i] = len(tokens)
            tokens.append(list(prompts[members[0]][:shared]))
    own = [prompt[len(tokens[row]) :] if row is not None else prompt for prompt, row in zip(prompts, rows)]
    return encode_shared_prefix(model, tokens, pad_id), rows, own


def _groups(keys: Sequence[object]) -> list[list[int]]:
    """Indices grouped by key, in order of first appearance.

    Example:
        >>> _groups(["a", "b", "a"])
        [[0, 2], [1]]
    """
    members: dict[object, list[int]] = {}
    for index, key in enumerate(keys):
        members.setdefault(key, []).append(index)
    return list(members.values())


def _length_sorted_batches(rows: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar length (less padding); results are put back in order by index."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


# --- generate and parse ----------------------------------------------------------------------------


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def parse_prediction(output: str, options: Sequence[str]) -> str:
    """The option that a generated answer starts with, or ``"invalid"``.

    Matching ignores case, repeated spaces and leading quotes, dashes, bullets and colons; the longest
    matching option wins ("not spam" before "spam"), and the option must end at a word boundary.

    Example:
        >>> parse_prediction("  Not Spam.", ["spam", "not spam"])
        'not spam'
        >>> parse_prediction("- positive", ["positive", "negative"]), parse_prediction("yesterday", ["yes", "no"])
        ('positive', 'invalid')
    """
    text = _normal(output).lstrip(" \"'`*-:>•")
    for option in sorted(options, key=len, reverse=True):
        word = _normal(option)
        if text.startswith(word) and not re.match(r"\w", text[len(word) : len(word) + 1]):
            return option
    return INVALID


@torch.no_grad()
def generate_answers(model, tokenizer, prompt_format: PromptFormat, instructions: Sequence[str],
                     max_new_tokens: int, batch_size: int = 16) -> list[str]:  # fmt: skip
    """Greedy answers (decoded new tokens) for each instruction, batched with left padding.

    Args:
        model, tokenizer, prompt_format: as for :func:`rank_classify`.
        instructions: rendered instructions.
        max_new_tokens: tokens to decode at most (decoding stops earlier when every row ended with EOS).
        batch_size: prompts per ``generate`` call.

    Returns:
        The decoded answers, special tokens removed.

    Example:
        >>> generate_answers(model, tok, PromptFormat(), ["Is it spam? ..."], max_new_tokens=4)  # doctest: +SKIP
        ['spam']
    """
    from transformers import GenerationConfig

    from coin_data.models import generate_new_tokens

    prompts = prompt_format.encode_prompts(tokenizer, list(instructions))
    settings = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    new = generate_new_tokens(model, prompts, tokenizer.pad_token_id, batch_size, generation_config=settings)
    return [tokenizer.decode(row, skip_special_tokens=True) for row in new]


def generate_classify(model, tokenizer, prompt_format: PromptFormat, instructions: Sequence[str],
                      options: Sequence[str], config: ScoringConfig) -> list[str]:  # fmt: skip
    """Predict by greedy generation and label-prefix parsing (``invalid`` when no option matches)."""
    if config.max_new_tokens is not None:
        max_new = config.max_new_tokens
    else:
        max_new = max(len(ids) for ids in tokenizer(list(options), add_special_tokens=False)["input_ids"]) + 2
    answers = generate_answers(model, tokenizer, prompt_format, instructions, max_new, config.batch_size)
    return [parse_prediction(answer, options) for answer in answers]


# --- a whole suite ---------------------------------------------------------------------------------


def predict_suite(model, tokenizer, prompt_format: PromptFormat, suite, config: ScoringConfig | None = None,
                  progress=None) -> Predictions:  # fmt: skip
    """Predictions for every task, level, instruction variant and example of ``suite``.

    Rank mode scores the prompts of each instruction variant together (their shared opening runs once;
    with ``share_prefix=False`` all prompts of a task together, the earlier behaviour); generate mode
    scores all prompts of a task together. Both use length-sorted batches.

    Args:
        model, tokenizer, prompt_format: the model under test.
        suite: a :class:`coin_train.suites.Suite`.
        config: scoring mode and batching.
        progress: optional callable ``progress(task_name, n_prompts_just_scored)``, called after each
            batch (rank) or each task (generate).

    Returns:
        ``{task: {level: {instruction_id: [prediction per example]}}}``.
    """
    config = config or ScoringConfig()
    predictions: Predictions = {}
    for task in suite.tasks:
        keys, groups, texts = [], [], []
        for number, variant in enumerate(task.instructions):
            for example in task.examples:
                keys.append(variant)
                groups.append(number)  # the examples of one instruction share its opening tokens
                texts.append(variant.render(example, task.options))
        if config.mode == RANK:
            report = None if progress is None else (lambda n, _task=task.name: progress(_task, n))
            groups = groups if config.share_prefix else None  # without: batches across the task, as before
            predicted = rank_classify(model, tokenizer, prompt_format, texts, task.options, config, groups, report)
        else:
            predicted = generate_classify(model, tokenizer, prompt_format, texts, task.options, config)
            if progress is not None:
                progress(task.name, len(texts))
        per_task: dict[str, dict[str, list[str]]] = {level: {} for level in suite.levels}
        for variant, prediction in zip(keys, predicted):
            per_task[variant.level].setdefault(variant.source_id, []).append(prediction)
        predictions[task.name] = per_task
    return predictions


# --- models side by side ---------------------------------------------------------------------------


def _advance(bar, task: str, n: int) -> None:
    """Move a progress bar by ``n`` prompts and show which task is being scored (tqdm shows the time left)."""
    bar.set_postfix_str(f"task {task}", refresh=False)
    bar.update(n)


def model_names(models: Sequence[str]) -> list[str]:
    """Short unique display names: the last path part, extended with parents until unique.

    Example:
        >>> model_names(["runs/coin/final", "runs/base/final", "gpt2"])
        ['coin/final', 'base/final', 'gpt2']
    """
    parts = [str(m).rstrip("/").split("/") for m in models]
    depth = 1
    while True:
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names) or depth >= max(len(p) for p in parts):
            break
        depth += 1
    seen: dict[str, int] = {}
    unique = []
    for name in names:  # the same model twice: name, name#2
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique


def evaluate_models(models: Sequence[str], suite, scoring: ScoringConfig | None = None, dtype: str = "float32",
                    progress: bool = False) -> dict:  # fmt: skip
    """Evaluate each model on ``suite`` (the same instructions and examples) and build the report.

    Args:
        models: paths or Hub ids (a ``coin-train train`` output, a PEFT adapter folder, any causal LM, or
            ``smollm2``); the first is the main model, the others are compared with it.
        suite: a built :class:`coin_train.suites.Suite`.
        scoring: scoring mode and batching.
        dtype: weight dtype for loading.
        progress: show a progress bar per model on stderr (the task being scored and the time left).

    Returns:
        The report dict (see :func:`coin_train.report.build_report`).

    Example:
        >>> suite = build_suite(SuiteConfig(max_examples=16))                          # doctest: +SKIP
        >>> report = evaluate_models(["out/coin", "out/baseline"], suite)              # doctest: +SKIP
        >>> report["models"][0]["overall"]["mean"]                                      # doctest: +SKIP
        0.71
    """
    from tqdm import tqdm

    from coin_train.modeling import load_for_inference

    scoring = scoring or ScoringConfig()
    n_prompts = sum(len(task.instructions) * len(task.examples) for task in suite.tasks)
    results = []
    for name, model_id in zip(model_names(models), models):
        model, tokenizer, prompt_format = load_for_inference(resolve_model(model_id), dtype=dtype)
        start = time.perf_counter()
        with tqdm(total=n_prompts, desc=name, unit="prompt", disable=not progress) as bar:
            predictions = predict_suite(model, tokenizer, prompt_format, suite, scoring,
                                        progress=lambda task, n, _bar=bar: _advance(_bar, task, n))  # fmt: skip
        seconds = time.perf_counter() - start
        results.append({"name": name, "model": str(model_id), "prompt_format": asdict(prompt_format),
                        "predictions": predictions, "seconds": seconds})  # fmt: skip
        del model
    return build_report(suite, results, scoring.to_dict())
