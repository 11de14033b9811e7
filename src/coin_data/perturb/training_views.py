"""Perturbation views: seeded typo, synonym and appended-sentence variants of a template as extra positives.

The CoIN paper pairs each prompt with paraphrases of its instruction and names noisier views (the
perturbations of its robustness evaluation) as future work. ``coin-data build --perturbation-views
character,word,sentence`` adds them: for every training template and every level asked for, one
perturbed copy of the template is made with :class:`coin_data.perturb.Perturber` (the same code as
``coin-data perturb``, so slots, the options block, input label lines and label words are never
edited), and every instance of that template gets one more row whose ``paraphrased_instruction`` is the
instance rendered with the perturbed template.

The extra rows look like paraphrase rows to the trainer: the same ``instance_id`` (so the contrastive
loss masks them as views of the anchor's own prompt, never as negatives), the same hard negative, and
provenance columns that say what they are:

=====================  ====================================================
column                 value for a perturbation view
=====================  ====================================================
``paraphrase_id``      ``perturb-<level>``, e.g. ``perturb-word``
``paraphrase_source``  ``perturb:<level>``, e.g. ``perturb:word``
``similarity``         embedding cosine of the two templates, slots masked
=====================  ====================================================

The semantic level is not offered: the build's verified paraphrases already are the semantic views.

Example:
    >>> check_perturbation_views("word,character")
    ('word', 'character')
    >>> view_source("word"), view_paraphrase_id("word")
    ('perturb:word', 'perturb-word')
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from coin_data.perturb.levels import CHARACTER, SEMANTIC, SENTENCE, WORD, Perturbation, PerturbConfig
from coin_data.perturb.perturber import Perturber
from coin_data.schema import PERTURBATION_SOURCE_PREFIX as SOURCE_PREFIX
from coin_data.seeds import stable_seed
from coin_data.templates import Template, parse_template
from coin_data.text.words import label_words

VIEW_LEVELS = (CHARACTER, WORD, SENTENCE)
ID_PREFIX = "perturb-"


def check_perturbation_views(levels: str | Iterable[str] | None) -> tuple[str, ...]:
    """Validate the levels asked for and return them as a tuple (order kept, repeats dropped).

    Args:
        levels: a comma-separated string (``"character,word"``), a sequence of level names, or ``None``.

    Raises:
        ValueError: a level that is not one of :data:`VIEW_LEVELS`; the message names it and the choices.

    Example:
        >>> check_perturbation_views(["sentence", "sentence"])
        ('sentence',)
        >>> check_perturbation_views("typo")
        Traceback (most recent call last):
        ...
        ValueError: unknown perturbation view 'typo' (choose from character, word, sentence)
    """
    if levels is None:
        return ()
    if isinstance(levels, str):
        levels = levels.split(",")
    names = tuple(dict.fromkeys(level.strip() for level in levels if level.strip()))
    choices = ", ".join(VIEW_LEVELS)
    for level in names:
        if level == SEMANTIC:
            raise ValueError(f"perturbation view 'semantic' is not offered: the build's verified paraphrases "
                             f"already are the semantic views (choose from {choices})")
        if level not in VIEW_LEVELS:
            raise ValueError(f"unknown perturbation view {level!r} (choose from {choices})")
    return names


def view_source(level: str) -> str:
    """The ``paraphrase_source`` of a view row, e.g. ``view_source("word") == "perturb:word"``."""
    return SOURCE_PREFIX + level


def view_paraphrase_id(level: str) -> str:
    """The ``paraphrase_id`` of a view row, e.g. ``view_paraphrase_id("word") == "perturb-word"``."""
    return ID_PREFIX + level


def view_variant(task: str, template_id: str) -> int:
    """The variant index a template is perturbed as: a stable hash of (task, template id).

    It does not depend on the order of templates, so adding a template leaves the views of the others
    unchanged; ``variant % 2`` picks the sentence method (random token or tautology) per template.

    Example:
        >>> view_variant("nli", "t0") == view_variant("nli", "t0")
        True
    """
    return stable_seed("perturbation-view", task, template_id) % (2**31)


@dataclass(frozen=True)
class PerturbationView:
    """A perturbed copy of one template; it fills a row the way a kept paraphrase does.

    Attributes mirror :class:`coin_data.build.KeptParaphrase` (``template``, ``paraphrase``,
    ``paraphrase_id``, ``similarity``, ``source``), plus the ``level`` and the ``edits`` made.
    """

    level: str
    template: Template
    paraphrase: Template
    similarity: float
    edits: tuple[str, ...] = ()

    @property
    def paraphrase_id(self) -> str:
        return view_paraphrase_id(self.level)

    @property
    def source(self) -> str:
        return view_source(self.level)


@dataclass
class ViewPlan:
    """The views of every template, and what could not be made.

    Attributes:
        views: ``(task, template_id) -> [PerturbationView, ...]`` (one per level that applied).
        skipped: ``level -> templates that level could not perturb`` (no editable word, no synonym kept).
    """

    views: dict[tuple[str, str], list[PerturbationView]] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)

    def get(self, key: tuple[str, str]) -> list[PerturbationView]:
        return self.views.get(key, [])


def plan_perturbation_views(tasks: Sequence, levels: Sequence[str], seed: int, cache,
                            perturber: Perturber | None = None) -> ViewPlan:  # fmt: skip
    """Perturb every template of ``tasks`` at each level and score each result against its template.

    Args:
        tasks: :class:`coin_data.sources.TaskSpec` objects (their ``templates`` and ``options``).
        levels: levels from :data:`VIEW_LEVELS` (check them with :func:`check_perturbation_views`).
        seed: the build seed; with the level, the variant (:func:`view_variant`) and the template text it
            fixes every choice.
        cache: the build's :class:`coin_data.verify.embedding.EmbeddingCache`, used for word-level similarity checks
            and for the ``similarity`` column (the same masked-template cosine the verifier computes).
        perturber: a ready perturber (default: one with ``PerturbConfig(seed=seed)`` over ``cache``).

    Returns:
        A :class:`ViewPlan`.

    Example:
        >>> plan = plan_perturbation_views(corpus.tasks.values(), ("sentence",), 0, cache)  # doctest: +SKIP
        >>> plan.get(("sentiment", "t0"))[0].source                                         # doctest: +SKIP
        'perturb:sentence'
    """
    levels = check_perturbation_views(levels)
    perturber = perturber or Perturber(PerturbConfig(seed=seed), embedding_cache=cache)
    plan = ViewPlan()
    for spec in tasks:
        protected = label_words(spec.options)
        variants = [view_variant(spec.name, t.template_id) for t in spec.templates]
        for level in levels:
            results = perturber.perturb_all(spec.templates, level, protected, variants)
            made = [(t, r) for t, r in zip(spec.templates, results) if r.ok]
            plan.skipped[level] += len(results) - len(made)
            for view in _scored_views(made, level, spec.name, cache):
                plan.views.setdefault((spec.name, view.template.template_id), []).append(view)
    return plan


def _scored_views(made: Sequence[tuple[Template, Perturbation]], level: str, task: str, cache) -> list[PerturbationView]:
    """Parse each perturbed text as a template and score it against its original (slots masked)."""
    perturbed = [parse_template(result.text, task, template.template_id) for template, result in made]
    scores = cache.cosine([t.masked_text() for t, _ in made], [p.masked_text() for p in perturbed])
    return [
        PerturbationView(level, template, view, float(score), result.edits)
        for (template, result), view, score in zip(made, perturbed, scores)
    ]
