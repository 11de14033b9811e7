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
  removes the bias against long options of untrained models. The tensor work lives in
  :mod:`coin_train.option_scores`. With ``rescore_margin`` a bfloat16 copy of the model scores every
  prompt and the float32 model rescores the close calls (:func:`screened_scores`).
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
import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from coin_data.models import resolve_model  # noqa: F401  (one alias resolver, re-exported here)
from coin_train.option_scores import (  # noqa: F401  (the rank scoring's tensor work, re-exported here)
    SharedPrefix,
    common_prefix_length,
    encode_shared_prefix,
    option_log_likelihoods,
)
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
    # --- bfloat16 screen, float32 rescoring ----------------------------------------------------------
    rescore_margin: float | None = field(
        default=None,
        metadata={"help": "rank: score every prompt with a bfloat16 copy of the (float32) model, then rescore "
                          "with the float32 model each prompt whose best option leads the second by less than "
                          "this (in the compared score: nats, or nats per token with normalize=mean); those "
                          "decisions are float32's, the others bfloat16's. Fast where bfloat16 matrix products "
                          "are (CPUs with AMX or AVX512-BF16, GPUs). Unset: float32 only; 0: bfloat16 only; "
                          "inf: every prompt rescored. 0.75 is the value measured for SmolLM2-135M "
                          "(docs/evaluation.md, Throughput)."},
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
        if self.rescore_margin is not None:
            if self.mode != RANK:
                raise ValueError(f"rescore_margin applies to rank mode only, got mode {self.mode!r}")
            if not self.rescore_margin >= 0:  # also refuses NaN
                raise ValueError(f"rescore_margin must be >= 0 (inf: rescore every prompt), got {self.rescore_margin}")

    def to_dict(self) -> dict:
        """The settings as JSON-ready values (an infinite ``rescore_margin`` as the string ``"inf"``)."""
        settings = asdict(self)
        if settings["rescore_margin"] == math.inf:
            settings["rescore_margin"] = "inf"  # strict JSON has no infinity
        return settings


# --- rank classification -------------------------------------------------------------------------


@dataclass
class BFloat16Screen:
    """A bfloat16 copy of a float32 model that scores first, and how many prompts float32 had to rescore.

    Attributes:
        model: the bfloat16 copy (the float32 model itself stays with the caller, unchanged).
        screened: prompts the copy scored (summed over calls).
        rescored: of those, the prompts rescored in float32 (their margin was below ``rescore_margin``).
    """

    model: object
    screened: int = 0
    rescored: int = 0


def bfloat16_screen(model) -> BFloat16Screen:
    """A bfloat16 copy of ``model`` (which must be float32) for :attr:`ScoringConfig.rescore_margin`.

    Example:
        >>> screen = bfloat16_screen(model)                                             # doctest: +SKIP
        >>> rank_classify(model, tok, fmt, texts, options, ScoringConfig(rescore_margin=0.75), screen=screen)  # doctest: +SKIP
        >>> screen.rescored, screen.screened                                            # doctest: +SKIP
        (9, 128)
    """
    dtype = next(model.parameters()).dtype
    if dtype != torch.float32:
        raise ValueError(f"rescore_margin rescores with the model as loaded, which must be float32 (it is {dtype}); "
                         "load it in float32 (--dtype float32)")  # fmt: skip
    return BFloat16Screen(copy.deepcopy(model).to(torch.bfloat16).eval())


def score_margins(scores: torch.Tensor) -> torch.Tensor:
    """How far each row's best score leads its second best (``inf`` when there is one option).

    Example:
        >>> score_margins(torch.tensor([[-1.0, -3.5, -2.0], [0.0, 0.0, -1.0]])).tolist()
        [1.0, 0.0]
    """
    if scores.shape[-1] < 2:
        return torch.full(scores.shape[:-1], math.inf)
    top = scores.topk(2, dim=-1).values  # [N, 2]
    return top[..., 0] - top[..., 1]


def rank_scores(model, prompts: Sequence[Sequence[int]], option_ids: Sequence[Sequence[int]], pad_id: int,
                config: ScoringConfig, groups: Sequence[object] | None = None, progress=None) -> torch.Tensor:  # fmt: skip
    """The score rank classification compares, for every option after every prompt: ``[N, K]`` float32 on CPU.

    The score is the option's summed token log-probability (divided by its token count with
    ``normalize="mean"``). Prompts are scored in length-sorted batches that may mix groups; with
    ``config.share_prefix`` the tokens that open every prompt of a group run once.

    Example:
        >>> rank_scores(model, [[5, 6, 7]], [[9, 2], [10, 11, 2]], 0, ScoringConfig())  # doctest: +SKIP
        tensor([[-7.1, -12.4]])
    """
    scores = torch.empty(len(prompts), len(option_ids))
    prefix, rows, own = _group_prefixes(model, prompts, groups, config.share_prefix, pad_id)
    for batch in _length_sorted_batches(own, config.batch_size):  # batches mix groups: full and length-sorted
        sums, counts = option_log_likelihoods(model, [prompts[i] for i in batch], option_ids, pad_id, prefix,
                                              [rows[i] for i in batch])  # fmt: skip
        scores[batch] = (sums / counts if config.normalize == "mean" else sums).cpu()  # [b, K]
        if progress is not None:
            progress(len(batch))
    return scores


def screened_scores(model, screen: BFloat16Screen, prompts, option_ids, pad_id: int, config: ScoringConfig,
                    groups: Sequence[object] | None = None, progress=None) -> torch.Tensor:  # fmt: skip
    """:func:`rank_scores` from the bfloat16 screen, with float32's scores for the close calls.

    A prompt is a close call when its best option leads the second by less than
    ``config.rescore_margin`` under bfloat16; the float32 ``model`` rescores those prompts (together, in
    their groups) and their rows are replaced. ``screen`` counts the prompts screened and rescored.

    Example:
        >>> scores = screened_scores(model, bfloat16_screen(model), prompts, option_ids, 0,
        ...                          ScoringConfig(rescore_margin=0.75))  # doctest: +SKIP
    """
    scores = rank_scores(screen.model, prompts, option_ids, pad_id, config, groups, progress)
    close = (score_margins(scores) < config.rescore_margin).nonzero()[:, 0].tolist()
    if close:
        keys = None if groups is None else [groups[i] for i in close]
        scores[close] = rank_scores(model, [prompts[i] for i in close], option_ids, pad_id, config, keys)
    screen.screened += len(prompts)
    screen.rescored += len(close)
    return scores


def rank_classify(model, tokenizer, prompt_format: PromptFormat, instructions: Sequence[str],
                  options: Sequence[str], config: ScoringConfig, groups: Sequence[object] | None = None,
                  progress=None, screen: BFloat16Screen | None = None) -> list[str]:  # fmt: skip
    """Predict one option per instruction by option log-likelihood (rank classification).

    Prompts are scored group by group (``groups``: e.g. the instruction variant of each prompt, whose
    examples share the instruction's opening tokens). With ``config.share_prefix`` the tokens that open
    every prompt of a group run once (:func:`encode_shared_prefix`); each group is cut into batches of
    similar length, so little padding is run. With ``config.rescore_margin`` a bfloat16 copy scores
    first and ``model`` (float32) rescores the close calls (:func:`screened_scores`).

    Args:
        model, tokenizer: the model under test and its tokenizer.
        prompt_format: the prompt format the model was trained with.
        instructions: rendered instructions (template filled with an example and the options block).
        options: the task's label words.
        config: batching, length normalisation, prefix sharing and rescoring.
        groups: a group key per instruction (default: all in one group; the shared prefix is then what
            all prompts open with, e.g. a chat template's header).
        progress: optional callable, called with the number of prompts of each batch once it is scored
            (by the screen, with ``rescore_margin``).
        screen: with ``config.rescore_margin``, the bfloat16 copy to use (:func:`bfloat16_screen`; made
            here if not given, pass one to reuse it and to read its counts).

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
    if config.rescore_margin is None:
        if screen is not None:
            raise ValueError("a bfloat16 screen was given but config.rescore_margin is not set")
        scores = rank_scores(model, prompts, option_ids, tokenizer.pad_token_id, config, groups, progress)
    else:
        screen = screen or bfloat16_screen(model)
        scores = screened_scores(model, screen, prompts, option_ids, tokenizer.pad_token_id, config, groups, progress)
    return [options[best] for best in scores.argmax(-1).tolist()]


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
                  progress=None, screen: BFloat16Screen | None = None) -> Predictions:  # fmt: skip
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
        screen: with ``config.rescore_margin``, the bfloat16 copy of ``model`` (:func:`bfloat16_screen`;
            made once here if not given); it counts the prompts rescored in float32.

    Returns:
        ``{task: {level: {instruction_id: [prediction per example]}}}``.
    """
    config = config or ScoringConfig()
    if config.rescore_margin is not None and screen is None:
        screen = bfloat16_screen(model)  # one copy for every task
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
            predicted = rank_classify(model, tokenizer, prompt_format, texts, task.options, config, groups, report,
                                      screen)  # fmt: skip
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
        start = time.perf_counter()  # the bfloat16 copy is part of the scoring time
        screen = bfloat16_screen(model) if scoring.rescore_margin is not None else None
        with tqdm(total=n_prompts, desc=name, unit="prompt", disable=not progress) as bar:
            predictions = predict_suite(model, tokenizer, prompt_format, suite, scoring,
                                        progress=lambda task, n, _bar=bar: _advance(_bar, task, n), screen=screen)  # fmt: skip
        seconds = time.perf_counter() - start
        results.append({"name": name, "model": str(model_id), "prompt_format": asdict(prompt_format),
                        "predictions": predictions, "seconds": seconds,
                        "rescored": None if screen is None else screen.rescored})  # fmt: skip
        del model, screen
    return build_report(suite, results, scoring.to_dict())
