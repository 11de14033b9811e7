"""Dataset rows -> tokenized views -> one padded batch of all views.

Input columns (``coin_data.schema``): ``original_instruction``, ``paraphrased_instruction``, ``targets``
(required); ``task``, ``instance_id``, ``negative_instruction``, ``negative_targets``,
``negative_source`` (optional; a row without a usable negative simply has none).

Output columns of :func:`encode_dataset`, one row per dataset row that fits:

==========================  =====================================================================
``original_input_ids``      prompt + target token ids of the original view
``original_prompt_length``  number of leading prompt tokens (masked out of the labels)
``paraphrase_*``            the same for the paraphrased view
``negative_*``              the same for the hard negative (``[]`` / 0 when the row has none)
``group_id``                integer instance id: views of one prompt share it
``negative_group_id``       instance id of the negative when it is a row of this split, else -1
==========================  =====================================================================

Truncation keeps the prompt whole and cuts the target from the right; a row whose prompt leaves no
room for a single target token is dropped, and the drops are counted in one warning (a row is never
turned into an all-masked sequence with a NaN loss).

Example:
    >>> encoded = encode_dataset(dataset["train"], tokenizer, PromptFormat(), max_length=256)  # doctest: +SKIP
    >>> batch = CoinCollator(tokenizer.pad_token_id)([encoded[0], encoded[1]])                 # doctest: +SKIP
    >>> batch["input_ids"].shape  # 2 originals + 2 paraphrases + 2 negatives                 # doctest: +SKIP
    torch.Size([6, 41])
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from coin_data import schema
from coin_data.seeds import stable_seed
from coin_train.losses import IGNORE_INDEX, NO_GROUP
from coin_train.prompt_format import PromptFormat

logger = logging.getLogger(__name__)

VIEWS = ("original", "paraphrase", "negative")
GROUP_ID = "group_id"
NEGATIVE_GROUP_ID = "negative_group_id"
_FITS, _NEGATIVE_DROPPED, _TRUNCATED = "_fits", "_negative_dropped", "_truncated"


def ids_column(view: str) -> str:
    """Column of a view's token ids, e.g. ``ids_column("original") == "original_input_ids"``."""
    return f"{view}_input_ids"


def prompt_length_column(view: str) -> str:
    """Column of a view's prompt length."""
    return f"{view}_prompt_length"


# --- loading ------------------------------------------------------------------------------
DATA_FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


def load_coin_dataset(path: str, name: str | None = None, splits: tuple[str, ...] = ("train",)):
    """Read the published dataset (local folder, data file or Hub id) and check its training columns.

    A local path is checked before any Hub call (a missing folder fails at once), every parquet file must
    be readable and hold rows, and each requested split must have rows and the training columns.

    Args:
        path: ``load_dataset`` path, e.g. ``"coin-flan-paraphrased"`` or ``"ORG/coin-flan-paraphrased"``, or
            one ``.parquet``/``.jsonl``/``.json``/``.csv`` file (read as the ``train`` split).
        name: dataset config (``None``: the default one).
        splits: splits that must exist.

    Returns:
        The ``DatasetDict``.

    Raises:
        coin_train.sources.SourceError: no such folder or file, an unreadable or empty file, an unreachable Hub.
        coin_data.schema.SchemaError: a split lacks a training column or has no rows (the message names it).
        KeyError: a requested split does not exist (the message lists the splits there are).

    Example:
        >>> load_coin_dataset("coin-flan-paraphrased")["train"].num_rows  # doctest: +SKIP
        1008
    """
    import datasets
    from datasets.data_files import EmptyDatasetError
    from datasets.exceptions import DatasetGenerationError

    from coin_train.sources import SourceError, check_dataset

    check_dataset(path)
    builder = DATA_FILE_BUILDERS.get(Path(path).suffix.lower()) if Path(path).is_file() else None
    try:
        if builder is not None:
            loaded = datasets.load_dataset(builder, data_files={"train": str(path)})
        else:
            loaded = datasets.load_dataset(path, name)
    except EmptyDatasetError:
        raise SourceError(f"{path}: no data files in the folder (parquet, jsonl, json or csv); build a dataset "
                          f"with `coin-data build --out {path}`") from None
    except (DatasetGenerationError, ValueError, StopIteration) as err:
        if isinstance(err, schema.SchemaError):
            raise
        cause = err.__cause__ or err
        raise SourceError(f"{path}: cannot be read as a dataset ({type(cause).__name__}: {cause})") from None
    for split in splits:
        if split not in loaded:
            raise KeyError(f"{path}: no split {split!r} (has: {', '.join(loaded)})")
        where = f"{path} [{split}]"
        schema.require_columns(loaded[split].column_names, schema.TRAINING_COLUMNS, where)
        if loaded[split].num_rows == 0:
            raise schema.SchemaError(f"{where}: no rows; rebuild the dataset (coin-data build)")
    return loaded


# --- grouping -----------------------------------------------------------------------------
def group_id(key: str) -> int:
    """A stable non-negative int64 for an instance key (equal keys, equal ids).

    Example:
        >>> group_id("nli/17") == group_id("nli/17") != group_id("nli/18")
        True
    """
    return stable_seed(key) >> 8  # 56 bits: fits int64 with room to spare


def _has_negative(instruction, target, source) -> bool:
    return bool(instruction) and bool(target) and not str(source or "").startswith("none")


def add_group_ids(dataset):
    """Add ``group_id`` (the row's instance) and ``negative_group_id`` (the negative's instance, if known).

    The instance key is ``(task, instance_id)``; datasets without ``instance_id`` fall back to the original
    prompt text. A negative whose prompt is the original prompt of a row in this split gets that row's
    group, so it is masked for that row's anchor instead of counted as a (false) negative.

    Input columns: ``original_instruction`` [, ``task``, ``instance_id``, ``negative_instruction``].
    Output columns: the same plus ``group_id``, ``negative_group_id``.
    """
    columns = dataset.column_names
    originals = dataset[schema.ORIGINAL]
    if schema.INSTANCE_ID in columns:
        tasks = dataset[schema.TASK] if schema.TASK in columns else [""] * len(dataset)
        keys = [f"{task}\x1f{instance}" for task, instance in zip(tasks, dataset[schema.INSTANCE_ID])]
    else:
        keys = [f"\x1e{text}" for text in originals]
    groups = [group_id(key) for key in keys]
    by_prompt = dict(zip(originals, groups))
    negatives = dataset[schema.NEGATIVE] if schema.NEGATIVE in columns else [None] * len(dataset)
    negative_groups = [by_prompt.get(text, NO_GROUP) if text else NO_GROUP for text in negatives]
    return dataset.add_column(GROUP_ID, groups).add_column(NEGATIVE_GROUP_ID, negative_groups)


# --- tokenization ---------------------------------------------------------------------------
def fit_view(prompt: list[int], target: list[int], max_length: int) -> list[int] | None:
    """``prompt + target`` cut to ``max_length`` from the target's end; ``None`` if no target token fits.

    Example:
        >>> fit_view([1, 2, 3], [7, 8, 9], 5)
        [1, 2, 3, 7, 8]
        >>> fit_view([1, 2, 3], [7], 3) is None
        True
    """
    room = max_length - len(prompt)
    if room < 1 or not target:
        return None
    return prompt + target[:room]


def _encode_batch(batch, tokenizer, prompt_format: PromptFormat, max_length: int, with_negatives: bool):
    n = len(batch[schema.ORIGINAL])
    targets = prompt_format.encode_targets(tokenizer, batch[schema.TARGETS])
    out: dict[str, list] = {}
    fits = [True] * n
    truncated = [False] * n
    for view, column in (("original", schema.ORIGINAL), ("paraphrase", schema.PARAPHRASED)):
        prompts = prompt_format.encode_prompts(tokenizer, batch[column])
        ids_list, lengths = [], []
        for i, (prompt, target) in enumerate(zip(prompts, targets)):
            ids = fit_view(prompt, target, max_length)
            fits[i] = fits[i] and ids is not None
            truncated[i] = truncated[i] or (ids is not None and len(ids) < len(prompt) + len(target))
            ids_list.append(ids or [])
            lengths.append(len(prompt))
        out[ids_column(view)], out[prompt_length_column(view)] = ids_list, lengths

    # Hard negatives: optional per row; one that does not fit is dropped alone, the row stays.
    neg_ids, neg_lengths, neg_dropped = [[] for _ in range(n)], [0] * n, [False] * n
    if with_negatives and schema.NEGATIVE in batch and schema.NEGATIVE_TARGETS in batch:
        sources = batch.get(schema.NEGATIVE_SOURCE) or [None] * n
        rows = [i for i in range(n) if _has_negative(batch[schema.NEGATIVE][i], batch[schema.NEGATIVE_TARGETS][i],
                                                     sources[i])]
        prompts = prompt_format.encode_prompts(tokenizer, [batch[schema.NEGATIVE][i] for i in rows])
        neg_targets = prompt_format.encode_targets(tokenizer, [batch[schema.NEGATIVE_TARGETS][i] for i in rows])
        for i, prompt, target in zip(rows, prompts, neg_targets):
            ids = fit_view(prompt, target, max_length)
            if ids is None:
                neg_dropped[i] = True
            else:
                neg_ids[i], neg_lengths[i] = ids, len(prompt)
    out[ids_column("negative")], out[prompt_length_column("negative")] = neg_ids, neg_lengths
    out[_FITS], out[_NEGATIVE_DROPPED], out[_TRUNCATED] = fits, neg_dropped, truncated
    return out


def encode_dataset(dataset, tokenizer, prompt_format: PromptFormat | None = None, max_length: int = 256,
                   with_negatives: bool = True, num_proc: int | None = None):
    """Tokenize every row into its views and drop (with a counted warning) rows that cannot fit.

    Args:
        dataset: a split with the training columns (see the module docstring).
        tokenizer: the model's tokenizer.
        prompt_format: how prompts are laid out (default :class:`PromptFormat`).
        max_length: max tokens per view.
        with_negatives: tokenize the hard-negative view when the row has one.
        num_proc: processes for ``datasets.map``.

    Returns:
        A ``datasets.Dataset`` with only the output columns listed in the module docstring.

    Raises:
        coin_data.schema.SchemaError: a training column is missing (named in the message).
        ValueError: no row fits in ``max_length``.
    """
    schema.require_columns(dataset.column_names, schema.TRAINING_COLUMNS, "encode_dataset")
    prompt_format = prompt_format or PromptFormat()
    total = len(dataset)
    encoded = add_group_ids(dataset).map(
        _encode_batch, batched=True, num_proc=num_proc, remove_columns=dataset.column_names,
        fn_kwargs={"tokenizer": tokenizer, "prompt_format": prompt_format, "max_length": max_length,
                   "with_negatives": with_negatives},
        desc="Tokenizing CoIN views",
    )
    dropped = total - sum(encoded[_FITS])
    negatives_dropped, truncated = sum(encoded[_NEGATIVE_DROPPED]), sum(encoded[_TRUNCATED])
    kept = encoded.filter(lambda fits: fits, input_columns=_FITS).remove_columns([_FITS, _NEGATIVE_DROPPED, _TRUNCATED])
    if dropped:
        logger.warning("dropped %d of %d rows: the prompt leaves no room for the target within max_length=%d "
                       "(original or paraphrase view); raise max_length to keep them", dropped, total, max_length)
    if negatives_dropped:
        logger.warning("dropped %d of %d hard negatives that do not fit in max_length=%d (their rows are kept)",
                       negatives_dropped, total, max_length)
    if truncated:
        logger.info("cut the target of %d of %d rows to fit max_length=%d", truncated, total, max_length)
    if len(kept) == 0:
        raise ValueError(f"no row fits in max_length={max_length}: all {total} prompts are too long")
    return kept


def pair_with_negatives(encoded):
    """Reorder encoded rows as ``[anchor, its negative, anchor, its negative, ...]``.

    The negative of a row is a row of the instance its hard negative comes from (``group_id`` equal to the
    anchor's ``negative_group_id``), taken in dataset order and used once; each row appears at most once.
    With batches of 2 in this order, each row's in-batch negative is its partner, as in the reference
    code's data file. Rows left without a partner are dropped, and counted in a warning.

    Input columns: ``group_id``, ``negative_group_id`` (plus any others, kept).
    Output: the same columns, rows reordered (an even number of them).

    Example:
        >>> import datasets
        >>> rows = datasets.Dataset.from_dict({"group_id": [1, 2, 3, 4], "negative_group_id": [3, 3, 1, -1]})
        >>> list(pair_with_negatives(rows)["group_id"])
        [1, 3]
    """
    groups, negatives = encoded[GROUP_ID], encoded[NEGATIVE_GROUP_ID]
    rows_of_group: dict[int, list[int]] = {}
    for index, group in enumerate(groups):
        rows_of_group.setdefault(group, []).append(index)
    used = [False] * len(groups)
    order: list[int] = []
    for anchor, negative_group in enumerate(negatives):
        if used[anchor] or negative_group == NO_GROUP:
            continue
        candidates = rows_of_group.get(negative_group, [])
        while candidates and (used[candidates[0]] or candidates[0] == anchor):
            candidates.pop(0)
        if candidates:
            partner = candidates.pop(0)
            used[anchor] = used[partner] = True
            order += [anchor, partner]
    if len(order) < len(groups):
        logger.warning("pair_negatives: %d of %d rows have no unused row of their negative's instance and are "
                       "left out", len(groups) - len(order), len(groups))
    if not order:
        raise ValueError("pair_negatives: no row has its hard negative's instance among the rows; the dataset "
                         "needs negative_instruction values that are original prompts of other rows")
    return encoded.select(order)


# --- batching -----------------------------------------------------------------------------
@dataclass
class CoinCollator:
    """Stack all views of a list of encoded rows into one padded batch.

    Views are ordered ``[B originals; B paraphrases; K negatives]`` (K = rows that have a negative).
    ``position_ids`` count real tokens only, so the model sees the same positions under left and right
    padding.

    Args:
        pad_token_id: id used for padding (never read as a label: labels come from prompt lengths).
        padding_side: ``"right"`` or ``"left"``.
        pad_to_multiple_of: round the padded length up (tensor-core friendly lengths on GPUs).
        include_negatives: add the negative views.

    Returns (``__call__``):
        ``input_ids``, ``attention_mask``, ``position_ids``, ``labels`` ``[2B + K, L]`` (labels are -100 on
        prompt and padding), ``group_ids`` ``[B]``, ``negative_group_ids`` ``[K]``.

    Example:
        >>> rows = [{"original_input_ids": [5, 6, 7], "original_prompt_length": 2,
        ...          "paraphrase_input_ids": [8, 7], "paraphrase_prompt_length": 1,
        ...          "negative_input_ids": [], "negative_prompt_length": 0, "group_id": 3, "negative_group_id": -1}]
        >>> CoinCollator(pad_token_id=0)(rows)["labels"].tolist()
        [[-100, -100, 7], [-100, 7, -100]]
    """

    pad_token_id: int
    padding_side: str = "right"
    pad_to_multiple_of: int | None = None
    include_negatives: bool = True

    def __post_init__(self) -> None:
        if self.padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}")

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        views = [(f[ids_column(v)], f[prompt_length_column(v)]) for v in VIEWS[:2] for f in features]
        negative_groups = []
        if self.include_negatives:
            for f in features:
                if f.get(ids_column("negative")):
                    views.append((f[ids_column("negative")], f[prompt_length_column("negative")]))
                    negative_groups.append(f[NEGATIVE_GROUP_ID])

        length = max(len(ids) for ids, _ in views)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        shape = (len(views), length)
        input_ids = torch.full(shape, self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros(shape, dtype=torch.long)
        position_ids = torch.zeros(shape, dtype=torch.long)
        labels = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
        for row, (ids, prompt_length) in enumerate(views):
            start = length - len(ids) if self.padding_side == "left" else 0
            end = start + len(ids)
            input_ids[row, start:end] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, start:end] = 1
            position_ids[row, start:end] = torch.arange(len(ids))
            labels[row, start + prompt_length : end] = input_ids[row, start + prompt_length : end]
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "labels": labels,
            "group_ids": torch.tensor([f[GROUP_ID] for f in features], dtype=torch.long),
            "negative_group_ids": torch.tensor(negative_groups, dtype=torch.long),
        }
