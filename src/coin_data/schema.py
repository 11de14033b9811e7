"""Column names, features and row validation for the published CoIN dataset.

Every stage refers to columns through these constants, never through string
literals, so a rename is one edit and a typo is an ``AttributeError``.

Example:
    >>> from coin_data import schema
    >>> schema.ORIGINAL
    'original_instruction'
"""

from __future__ import annotations

from typing import Iterable

import datasets

# --- identity -------------------------------------------------------------
ID = "id"  # stable hash of (task, template_id, instance_id, paraphrase_id)
TASK = "task"
TEMPLATE_ID = "template_id"
PARAPHRASE_ID = "paraphrase_id"
INSTANCE_ID = "instance_id"  # rows sharing it are views of one prompt: never negatives of each other

# --- the three columns the reference CoIN training code reads --------------
ORIGINAL = "original_instruction"
PARAPHRASED = "paraphrased_instruction"
TARGETS = "targets"

# --- hard negative: same template, another instance, another answer --------
NEGATIVE = "negative_instruction"
NEGATIVE_TARGETS = "negative_targets"
NEGATIVE_SOURCE = "negative_source"  # "same_template", or "none:<reason>" when no negative exists

# --- provenance and scores -------------------------------------------------
FIELDS = "fields"  # JSON object of the instance's template fields
ORIGINAL_TEMPLATE = "original_template"
PARAPHRASED_TEMPLATE = "paraphrased_template"
SIMILARITY = "similarity"  # cosine(original template, paraphrased template)
NEGATIVE_SIMILARITY = "negative_similarity"  # cosine(original prompt, negative prompt)
PARAPHRASE_SOURCE = "paraphrase_source"  # backend and model, e.g. "rules" or "openai:gpt-4o-mini"
PERTURBATION_SOURCE_PREFIX = "perturb:"  # paraphrase_source of a perturbation view: "perturb:<level>"

# --- mined negative (optional, `--mine-negatives`): the nearest instruction of another task ---------
MINED_NEGATIVE = "mined_negative_instruction"  # null when not mined
MINED_NEGATIVE_TARGETS = "mined_negative_targets"  # null when unknown (the row's own input)
MINED_NEGATIVE_SIMILARITY = "mined_negative_similarity"  # cosine(anchor template, negative template)
MINED_NEGATIVE_SOURCE = "mined_negative_source"  # "mined:same_instance" | "mined:other_instance" | "none:<why>"

COLUMNS: tuple[str, ...] = (
    ID,
    TASK,
    TEMPLATE_ID,
    PARAPHRASE_ID,
    INSTANCE_ID,
    ORIGINAL,
    PARAPHRASED,
    TARGETS,
    NEGATIVE,
    NEGATIVE_TARGETS,
    NEGATIVE_SOURCE,
    FIELDS,
    ORIGINAL_TEMPLATE,
    PARAPHRASED_TEMPLATE,
    SIMILARITY,
    NEGATIVE_SIMILARITY,
    PARAPHRASE_SOURCE,
    MINED_NEGATIVE,
    MINED_NEGATIVE_TARGETS,
    MINED_NEGATIVE_SIMILARITY,
    MINED_NEGATIVE_SOURCE,
)

# Columns a training run cannot do without; the rest are provenance.
TRAINING_COLUMNS: tuple[str, ...] = (ORIGINAL, PARAPHRASED, TARGETS)

_FLOAT_COLUMNS = {SIMILARITY, NEGATIVE_SIMILARITY, MINED_NEGATIVE_SIMILARITY}

FEATURES = datasets.Features(
    {
        name: datasets.Value("float32") if name in _FLOAT_COLUMNS else datasets.Value("string")
        for name in COLUMNS
    }
)

# --- the `templates` config: one row per candidate paraphrase --------------
VERDICT = "verdict"  # "kept" or the rejection reason
REASON = "reason"  # human-readable detail of the verdict
CANDIDATE = "candidate"
CANDIDATE_COLUMNS: tuple[str, ...] = (
    TASK,
    TEMPLATE_ID,
    PARAPHRASE_ID,
    ORIGINAL_TEMPLATE,
    CANDIDATE,
    SIMILARITY,
    VERDICT,
    REASON,
    PARAPHRASE_SOURCE,
)
CANDIDATE_FEATURES = datasets.Features(
    {
        name: datasets.Value("float32") if name in _FLOAT_COLUMNS else datasets.Value("string")
        for name in CANDIDATE_COLUMNS
    }
)


class SchemaError(ValueError):
    """A row or table does not have the columns a stage needs."""


def is_perturbation_view(source: str | None) -> bool:
    """Whether a row's ``paraphrase_source`` marks a perturbation view (not a paraphrase).

    Example:
        >>> is_perturbation_view("perturb:sentence"), is_perturbation_view("rules")
        (True, False)
    """
    return bool(source) and source.startswith(PERTURBATION_SOURCE_PREFIX)


def require_columns(available: Iterable[str], required: Iterable[str], where: str) -> None:
    """Raise :class:`SchemaError` naming every required column missing from ``available``.

    Args:
        available: column names present (e.g. ``dataset.column_names``).
        required: column names the caller needs.
        where: what is being checked, used in the message (a file, split or stage name).

    Example:
        >>> require_columns(["targets"], [ORIGINAL, TARGETS], "train split")
        Traceback (most recent call last):
        ...
        coin_data.schema.SchemaError: train split: missing column(s) 'original_instruction' (has: targets)
    """
    have = list(available)
    missing = [name for name in required if name not in have]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        raise SchemaError(f"{where}: missing column(s) {names} (has: {', '.join(have) or 'nothing'})")
