"""Robustness evaluation: score a model on every (task, level, instruction, example) of a suite.

Two scoring modes, both batched and both using the model's own :class:`~coin_train.prompt_format.PromptFormat`
(the one it was trained with, read from ``coin_prompt.json``):

* ``rank`` (default; rank classification): the log-likelihood of each option given the prompt; the
  prediction is the option with the highest score. The prompt is run once, and all its options are
  scored in one more short pass over its KV cache (packed in one row behind a block-diagonal mask), so a
  (prompt, options) group costs one prompt pass plus one pass over the option tokens. Each option is scored as the target the model was trained on:
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

import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from coin_data.models import resolve_model  # noqa: F401  (one alias resolver, re-exported here)
from coin_train.prompt_format import PromptFormat

logger = logging.getLogger(__name__)

RANK = "rank"
GENERATE = "generate"
INVALID = "invalid"
MODES = (RANK, GENERATE)

# Predictions: task -> level -> instruction id -> one predicted option (or "invalid") per example.
Predictions = dict[str, dict[str, dict[str, list[str]]]]


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


@torch.no_grad()
def option_log_likelihoods(model, prompt_ids: Sequence[Sequence[int]], option_ids: Sequence[Sequence[int]],
                           pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Log-likelihood of every option after every prompt, with one prompt pass and one options pass.

    Prompts are left-padded and given explicit position ids (positions count real tokens only, as in
    training), so every prompt's cache ends at the same column and the options continue from it. The
    options pass feeds all options of a prompt packed into one row, with a block-diagonal causal mask
    (each option sees the prompt and its own earlier tokens only): no option padding and no copies of
    the prompt cache. Attention kernels that take no custom mask (flash, flex) get the cache repeated
    once per option instead.

    Args:
        model: a causal LM (plain or PEFT) that returns a KV cache.
        prompt_ids: B token-id lists (each non-empty).
        option_ids: K token-id lists (each non-empty), the same for every prompt.
        pad_id: padding token id.

    Returns:
        ``(sums [B, K], counts [K])``: summed log-probabilities of each option's tokens, and the number of
        tokens scored per option.

    Example:
        >>> sums, counts = option_log_likelihoods(model, [[5, 6, 7]], [[9], [10, 11]], pad_id=0)  # doctest: +SKIP
        >>> sums.shape, counts.tolist()                                                       # doctest: +SKIP
        (torch.Size([1, 2]), [1, 2])
    """
    device = _device(model)
    ids, mask = _left_pad(prompt_ids, pad_id, device)  # [B, P]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, P]
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # [B, V]: predicts each option's token 0
    sums = first[:, torch.tensor([row[0] for row in option_ids], device=device)]  # [B, K]
    counts = torch.tensor([len(row) for row in option_ids], device=device)  # [K]
    if int(counts.max()) > 1:
        rest = _packed_options(model, out.cache, mask, positions, option_ids)
        if rest is None:
            rest = _repeated_options(model, out.cache, mask, positions, option_ids, pad_id)
        sums = sums + rest
    return sums, counts


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
                  options: Sequence[str], config: ScoringConfig) -> list[str]:  # fmt: skip
    """Predict one option per instruction by option log-likelihood (rank classification).

    Args:
        model, tokenizer: the model under test and its tokenizer.
        prompt_format: the prompt format the model was trained with.
        instructions: rendered instructions (template filled with an example and the options block).
        options: the task's label words.
        config: batching and length normalisation.

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
    for batch in _length_sorted_batches(prompts, config.batch_size):
        sums, counts = option_log_likelihoods(model, [prompts[i] for i in batch], option_ids, tokenizer.pad_token_id)
        scores = sums / counts if config.normalize == "mean" else sums  # [b, K]
        for index, best in zip(batch, scores.argmax(-1).tolist()):
            predictions[index] = options[best]
    return predictions


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

    All prompts of a task (every level and instruction) are scored together, in length-sorted batches.

    Args:
        model, tokenizer, prompt_format: the model under test.
        suite: a :class:`coin_train.suites.Suite`.
        config: scoring mode and batching.
        progress: optional callable, called with the number of prompts just scored per task.

    Returns:
        ``{task: {level: {instruction_id: [prediction per example]}}}``.
    """
    config = config or ScoringConfig()
    classify = rank_classify if config.mode == RANK else generate_classify
    predictions: Predictions = {}
    for task in suite.tasks:
        keys, texts = [], []
        for variant in task.instructions:
            for example in task.examples:
                keys.append(variant)
                texts.append(variant.render(example, task.options))
        predicted = classify(model, tokenizer, prompt_format, texts, task.options, config)
        per_task: dict[str, dict[str, list[str]]] = {level: {} for level in suite.levels}
        for variant, prediction in zip(keys, predicted):
            per_task[variant.level].setdefault(variant.source_id, []).append(prediction)
        predictions[task.name] = per_task
        if progress is not None:
            progress(len(texts))
    return predictions


# --- models side by side ---------------------------------------------------------------------------

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
                    progress=None) -> dict:  # fmt: skip
    """Evaluate each model on ``suite`` (the same instructions and examples) and build the report.

    Args:
        models: paths or Hub ids (a ``coin-train train`` output, a PEFT adapter folder, any causal LM, or
            ``smollm2``); the first is the main model, the others are compared with it.
        suite: a built :class:`coin_train.suites.Suite`.
        scoring: scoring mode and batching.
        dtype: weight dtype for loading.
        progress: optional callable ``progress(model_name, n_prompts_scored)``.

    Returns:
        The report dict (see :func:`coin_train.report.build_report`).

    Example:
        >>> suite = build_suite(SuiteConfig(max_examples=16))                          # doctest: +SKIP
        >>> report = evaluate_models(["out/coin", "out/baseline"], suite)              # doctest: +SKIP
        >>> report["models"][0]["overall"]["mean"]                                      # doctest: +SKIP
        0.71
    """
    import time

    from coin_train.modeling import load_for_inference
    from coin_train.report import build_report

    scoring = scoring or ScoringConfig()
    results = []
    for name, model_id in zip(model_names(models), models):
        model, tokenizer, prompt_format = load_for_inference(resolve_model(model_id), dtype=dtype)
        start = time.perf_counter()
        callback = None if progress is None else (lambda n, _name=name: progress(_name, n))
        predictions = predict_suite(model, tokenizer, prompt_format, suite, scoring, progress=callback)
        seconds = time.perf_counter() - start
        results.append({"name": name, "model": str(model_id), "prompt_format": asdict(prompt_format),
                        "predictions": predictions, "seconds": seconds})  # fmt: skip
        del model
    return build_report(suite, results, scoring.to_dict())
