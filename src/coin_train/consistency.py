"""Per-example robustness metrics: what CoIN changes, measured example by example so it can be bootstrapped.

``report.py`` averages over examples per (task, level). A paired comparison of two arms needs one value
per example instead, and metrics that look at an instruction *and its own perturbations* (the pairs
that CoIN's contrastive term pulls together), not at different instructions:

=======================  ================================================================================
metric                   per example (task ``t``, example ``e``)
=======================  ================================================================================
``accuracy``             share of correct predictions over the instructions and the chosen levels
``perturbation_flips``   share of (instruction, perturbed level) whose prediction differs from the same
                         instruction's clean prediction (report.py's ``flip_rate`` compares different
                         instructions of one level instead)
``label_divergence``     not per example: for each task and clean instruction, the generalized Jensen-
                         Shannon divergence (bits) between the label distributions (over the examples) of
                         the clean instruction and each of its perturbations; mean over instructions and
                         tasks. 0 = every variant predicts each label equally often
``pooled_cosine``        cosine between the pooled state (the state the contrastive loss reads) of the
                         clean instruction and of each perturbation, prompt + gold answer, mean over them
=======================  ================================================================================

The predictions come as ``report.json`` stores them: ``{task: {level: {instruction_id: [label per
example]}}}``; :func:`prediction_table` turns them into one integer array so that a bootstrap resample
of examples is a row selection.

Example:
    >>> preds = {"t": {"clean": {"h0": ["yes", "no"]}, "word": {"h0": ["yes", "yes"]}}}
    >>> table = prediction_table(preds, {"t": ["yes", "no"]}, {"t": ("yes", "no")}, ["clean", "word"])
    >>> perturbation_flips(table).tolist(), accuracy_per_example(table, ["word"]).tolist()
    ([0.0, 1.0], [1.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CLEAN = "clean"
MISSING = -2  # a variant the suite could not make (recorded in suite 'skipped'): left out of every mean
INVALID = -1  # a prediction that is none of the options (generate mode): wrong, and a label of its own


@dataclass(frozen=True)
class PredictionTable:
    """One model's predictions as arrays, examples in a fixed order (tasks in order, then examples).

    Attributes:
        labels: ``[examples, instructions, levels]`` option index, ``INVALID`` or ``MISSING``.
        gold: ``[examples]`` option index of the gold answer.
        tasks: ``[examples]`` task name (the bootstrap strata).
        n_options: ``[examples]`` number of options of the example's task.
        levels: level names of the last axis (``clean`` first).
        instructions: ``{task: [instruction id per position of the middle axis]}``.
    """

    labels: np.ndarray
    gold: np.ndarray
    tasks: np.ndarray
    n_options: np.ndarray
    levels: tuple[str, ...]
    instructions: Mapping[str, list[str]]


def prediction_table(predictions: Mapping, gold: Mapping[str, Sequence[str]], options: Mapping[str, Sequence[str]],
                     levels: Sequence[str]) -> PredictionTable:  # fmt: skip
    """Arrange one model's predictions as a :class:`PredictionTable`.

    Args:
        predictions: ``{task: {level: {instruction_id: [prediction per example]}}}`` (report.json's).
        gold: ``{task: [gold label per example]}``.
        options: ``{task: options}``.
        levels: the levels to keep, ``clean`` first.

    Returns:
        The table; tasks with fewer instructions than the widest are padded with ``MISSING``.

    Raises:
        ValueError: a prediction list whose length differs from the task's examples, or a gold label
            that is not an option.
    """
    levels = tuple(levels)
    rows, golds, tasks, sizes, ids_by_task = [], [], [], [], {}
    def instruction_ids(per_level: Mapping) -> list[str]:
        return list(dict.fromkeys(i for level in levels for i in (per_level.get(level) or {})))

    width = max(len(instruction_ids(per_level)) for per_level in predictions.values())
    for task, per_level in predictions.items():
        labels, n = list(options[task]), len(gold[task])
        index = {label: i for i, label in enumerate(labels)}
        ids = ids_by_task[task] = instruction_ids(per_level)
        block = np.full((n, width, len(levels)), MISSING, dtype=np.int64)
        for j, level in enumerate(levels):
            for k, instruction in enumerate(ids):
                column = (per_level.get(level) or {}).get(instruction)
                if column is None:
                    continue
                if len(column) != n:
                    raise ValueError(f"task {task!r}, {level} {instruction}: {len(column)} predictions for {n} examples")
                block[:, k, j] = [index.get(p, INVALID) for p in column]
        for label in gold[task]:
            if label not in index:
                raise ValueError(f"task {task!r}: gold label {label!r} is not one of its options {labels}")
        rows.append(block)
        golds += [index[label] for label in gold[task]]
        tasks += [task] * n
        sizes += [len(labels)] * n
    return PredictionTable(np.concatenate(rows), np.asarray(golds), np.asarray(tasks, dtype=object),
                           np.asarray(sizes), levels, ids_by_task)  # fmt: skip


def _level_columns(table: PredictionTable, levels: Sequence[str]) -> list[int]:
    unknown = [level for level in levels if level not in table.levels]
    if unknown:
        raise ValueError(f"level(s) {unknown} not in the table (has {list(table.levels)})")
    return [table.levels.index(level) for level in levels]


def accuracy_per_example(table: PredictionTable, levels: Sequence[str]) -> np.ndarray:
    """Per example: share of correct predictions over every instruction variant of ``levels``.

    Returns:
        ``[examples]`` floats in [0, 1] (NaN for an example without any variant of those levels).
    """
    labels = table.labels[:, :, _level_columns(table, levels)]  # [examples, instructions, levels]
    present = labels != MISSING
    correct = (labels == table.gold[:, None, None]) & present
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct.sum(axis=(1, 2)) / present.sum(axis=(1, 2))


def perturbation_flips(table: PredictionTable, levels: Sequence[str] | None = None) -> np.ndarray:
    """Per example: share of (instruction, perturbed level) pairs whose prediction differs from the clean one.

    Args:
        table: predictions, with the ``clean`` level.
        levels: perturbed levels to compare with clean (default: every non-clean level of the table).

    Returns:
        ``[examples]`` floats in [0, 1]; 0 = no perturbation ever changes this example's prediction.
    """
    levels = [lv for lv in table.levels if lv != CLEAN] if levels is None else list(levels)
    clean = table.labels[:, :, _level_columns(table, [CLEAN])]  # [examples, instructions, 1]
    perturbed = table.labels[:, :, _level_columns(table, levels)]  # [examples, instructions, levels]
    present = (perturbed != MISSING) & (clean != MISSING)
    changed = (perturbed != clean) & present
    with np.errstate(invalid="ignore", divide="ignore"):
        return changed.sum(axis=(1, 2)) / present.sum(axis=(1, 2))


def generalized_js_divergence(distributions: np.ndarray) -> float:
    """Jensen-Shannon divergence (bits) of several distributions with equal weights.

    ``H(mean of p_i) - mean of H(p_i)``: 0 when all are equal, at most ``log2(number of them)``.

    Args:
        distributions: ``[n, k]`` rows that each sum to 1.

    Example:
        >>> generalized_js_divergence(np.array([[1.0, 0.0], [0.0, 1.0]]))
        1.0
    """

    def entropy(p: np.ndarray) -> np.ndarray:
        safe = np.where(p > 0, p, 1.0)
        return -(p * np.log2(safe)).sum(axis=-1)

    distributions = np.asarray(distributions, dtype=float)
    return float(max(0.0, entropy(distributions.mean(axis=0)) - entropy(distributions).mean()))


def label_divergence(table: PredictionTable, indices: np.ndarray | None = None, levels: Sequence[str] | None = None) -> float:
    """Mean over tasks and clean instructions of the JS divergence between the variants' label distributions.

    For one task and one clean instruction, each variant (the clean one and one per perturbed level)
    predicts a label for each example; the counts over the examples make a distribution per variant
    (an invalid answer counts as one more label). A perturbation that shifts the model toward another
    label raises the divergence even when accuracy stays the same.

    Args:
        table: predictions.
        indices: the examples to use, repeats allowed (a bootstrap resample); default: all.
        levels: levels to compare (default: all of the table's, ``clean`` included).

    Returns:
        Divergence in bits (0 = identical label distributions under every variant).
    """
    indices = np.arange(len(table.gold)) if indices is None else np.asarray(indices)
    columns = _level_columns(table, table.levels if levels is None else levels)
    per_task = []
    tasks = table.tasks[indices]
    for task in sorted(set(tasks.tolist()), key=str):
        chosen = indices[tasks == task]
        k = int(table.n_options[chosen[0]]) + 1  # + invalid
        labels = table.labels[chosen][:, :, columns]  # [examples, instructions, levels]
        values = []
        for i in range(labels.shape[1]):
            variants = [labels[:, i, j] for j in range(labels.shape[2]) if (labels[:, i, j] != MISSING).all()]
            if len(variants) < 2:
                continue
            counts = np.stack([np.bincount(np.where(v == INVALID, k - 1, v), minlength=k) for v in variants])
            values.append(generalized_js_divergence(counts / counts.sum(axis=1, keepdims=True)))
        if values:
            per_task.append(float(np.mean(values)))
    return float(np.mean(per_task)) if per_task else float("nan")


def cosine_rows(a, b) -> np.ndarray:
    """Row-wise cosine similarity of two ``[n, dim]`` arrays.

    Example:
        >>> cosine_rows([[1.0, 0.0], [1.0, 1.0]], [[2.0, 0.0], [-1.0, -1.0]]).round(3).tolist()
        [1.0, -1.0]
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def pooled_states(model, tokenizer, prompt_format, instructions: Sequence[str], targets: Sequence[str],
                  pooling: str = "last", batch_size: int = 16) -> np.ndarray:  # fmt: skip
    """The pooled final-layer state of ``prompt + target`` for each pair, as the contrastive loss reads it.

    Args:
        model, tokenizer, prompt_format: a loaded model (:func:`coin_train.modeling.load_for_inference`)
            and the format it was trained with (EOS appended or not, as in training).
        instructions, targets: rendered instructions and their gold answers.
        pooling: ``last`` or ``mean`` (:func:`coin_train.pooling.pool`).
        batch_size: sequences per forward pass.

    Returns:
        ``[n, hidden]`` float32 array.
    """
    import torch

    from coin_train.pooling import pool

    device = next(model.parameters()).device
    decoder = model.get_decoder()  # a PEFT model forwards this to its base model (the adapters are inside)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    out = []
    for start in range(0, len(instructions), batch_size):
        rows = [prompt_format.encode(tokenizer, text, target)[0]
                for text, target in zip(instructions[start:start + batch_size], targets[start:start + batch_size])]  # fmt: skip
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)  # right padding
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
        with torch.no_grad():  # the decoder alone: its last_hidden_state is hidden_states[-1], without the logits
            hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state
        out.append(pool(hidden.float(), mask, pooling).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def pooled_cosine_per_example(model, tokenizer, prompt_format, suite, max_examples: int, pooling: str = "last",
                              batch_size: int = 16) -> dict[str, list[float]]:  # fmt: skip
    """Per example: mean cosine between the pooled states of each clean instruction and its perturbations.

    Args:
        model, tokenizer, prompt_format: the model under test.
        suite: a :class:`coin_train.suites.Suite` (held-out instructions and their variants).
        max_examples: the first N examples of each task (the cost is one forward pass per variant).
        pooling, batch_size: see :func:`pooled_states`.

    Returns:
        ``{task: [mean cosine per example]}`` over the task's first ``max_examples`` examples.
    """
    result = {}
    for task in suite.tasks:
        examples = task.examples[:max_examples]
        variants = [v for v in task.instructions if v.level == CLEAN] + [v for v in task.instructions if v.level != CLEAN]
        position = {v.id: i for i, v in enumerate(variants)}  # each variant's states computed once
        pairs = [(position[v.source_id], position[v.id]) for v in variants if v.level != CLEAN and v.source_id in position]
        if not pairs:
            result[task.name] = []
            continue
        texts = [v.render(example, task.options) for v in variants for example in examples]
        targets = [example.label for _ in variants for example in examples]
        states = pooled_states(model, tokenizer, prompt_format, texts, targets, pooling, batch_size)
        states = states.reshape(len(variants), len(examples), -1)  # [variants, examples, hidden]
        cosines = np.stack([cosine_rows(states[c], states[p]) for c, p in pairs])  # [pairs, examples]
        result[task.name] = cosines.mean(axis=0).tolist()
    return result
