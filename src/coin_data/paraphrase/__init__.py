"""Paraphrasing backends, chosen by a spec string.

=================  ==========================================================
spec               backend
=================  ==========================================================
``rules``          offline WordNet synonyms + sentence rewrites (the default)
``openai:MODEL``   any OpenAI-compatible chat completions server
``hf:MODEL``       local generation with transformers (``hf:smollm2`` offline)
=================  ==========================================================

Example:
    >>> get_paraphraser("rules").name
    'rules'
"""

from __future__ import annotations

from typing import Any

from coin_data.paraphrase.base import (
    Paraphraser,
    ParaphraseRequest,
    ParaphraserError,
    ParaphraseResult,
    Usage,
)

__all__ = [
    "ParaphraseRequest",
    "ParaphraseResult",
    "Paraphraser",
    "ParaphraserError",
    "Usage",
    "get_paraphraser",
]


def get_paraphraser(spec: str, **options: Any) -> Paraphraser:
    """Build the backend named by ``spec`` (``rules``, ``openai:MODEL``, ``hf:MODEL``).

    Args:
        spec: backend spec.
        **options: backend-specific settings (e.g. ``base_url`` for ``openai``); ``None`` values are ignored.

    Raises:
        ParaphraserError: unknown backend or missing model name.
    """
    options = {key: value for key, value in options.items() if value is not None}
    backend, _, model = spec.partition(":")
    if backend == "rules":
        from coin_data.paraphrase.rules import RulesParaphraser

        return RulesParaphraser(**options)
    if backend in ("openai", "hf") and not model:
        raise ParaphraserError(f"paraphraser {spec!r}: name a model, e.g. '{backend}:MODEL'")
    if backend == "openai":
        from coin_data.paraphrase.openai_backend import OpenAIParaphraser

        return OpenAIParaphraser(model=model, **options)
    if backend == "hf":
        from coin_data.paraphrase.hf import HFParaphraser

        return HFParaphraser(model=model, **options)
    raise ParaphraserError(f"unknown paraphraser {spec!r}: use 'rules', 'openai:MODEL' or 'hf:MODEL'")
