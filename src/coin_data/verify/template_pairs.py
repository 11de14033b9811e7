"""Labelled pairs from the project's own instruction templates: fit data for the verifier's combiner.

The labelled sources the combiner was first fitted on lack one kind of pair: two templates of different
tasks whose embedding cosine clears the floor (0.5) and whose words barely overlap. PromptBench's
other-task pairs almost all fall below the floor, and the project's labelled changed pairs are near
copies, so nothing taught the combiner that an unrelated task with a moderate cosine is a change. This
module builds such pairs from templates the project wrote itself:

- the embedded corpus's training templates (``coin_data/corpus/tasks``, 12 tasks; the held-out
  templates stay out), and
- the tuning sets of the FLAN-style templates (``benchmarks/data/flan_style_templates.yaml``, splits
  ``tune`` and ``tune2``); its held-out splits are refused.

==============  ========================================================================================
kind            pair (label)
==============  ========================================================================================
``other_task``  two templates of different task families with the same slots once renamed by position
                (``{x1}``, ``{x2}``; ``{options_}`` kept) (``changed``)
``same_task``   two training templates of one embedded classification task listed in
                :data:`SAME_TASK_TASKS`, whose templates were read and ask for the same answer
                (``equivalent``)
==============  ========================================================================================

Tasks that ask for the same output share a family (:data:`FAMILIES`: the embedded ``sentiment`` and the
FLAN-style ``sst_like`` and ``tweet_like``), and are never paired as other-task. ``emotion`` shares the
sentiment family too: "How does the writer feel?" asks either, so such a pair says little. Every
row has ``split`` ``fit``: this source is fit data only and is not a benchmark.

Example:
    >>> a = TemplateGroup("spam", "spam", ("Is {message} spam?\\n{options_}",))
    >>> b = TemplateGroup("topic", "topic", ("What topic is {text} about?\\n{options_}",))
    >>> [r["paraphrase"] for r in other_task_pairs([a, b])]
    ['What topic is {x1} about?\\n{options_}']
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Callable, Sequence

import yaml

from coin_data.seeds import stable_seed
from coin_data.templates import OPTIONS_SLOT
from coin_data.verify.peer_common import FIT, SLOT_PATTERN, by_position

OWN_TEMPLATES = "own_templates"
# Tasks asking for the same output, by the family they share (the rest are their own family).
FAMILIES = {
    "sst_like": "sentiment", "tweet_like": "sentiment", "emotion": "sentiment", "rte_like": "nli",
    "qqp_like": "paraphrase", "cola_like": "grammar", "squad_like": "extractive_qa", "xsum_like": "summarize",
    "agnews_like": "topic",
}  # fmt: skip
# Embedded classification tasks whose six training templates were read and ask the same question with
# the same answers. The generation tasks are left out: their templates differ in scope ("in one
# sentence", "copy it exactly", "for a young reader").
SAME_TASK_TASKS = ("boolq", "emotion", "grammar", "nli", "paraphrase", "sentiment", "spam", "topic")
FLAN_TUNING_SPLITS = ("tune", "tune2")
# At most this many other-task partners per template (those above the floor first, when scored).
PARTNERS_PER_TEMPLATE = 3


@dataclass(frozen=True)
class TemplateGroup:
    """The templates of one task.

    Attributes:
        task: the task name (``sentiment``, ``sst_like``).
        family: tasks of one family ask for the same output (see :data:`FAMILIES`).
        texts: the template texts, slots with their own names.
    """

    task: str
    family: str
    texts: tuple[str, ...]


def family_of(task: str) -> str:
    """The family of a task (itself unless :data:`FAMILIES` names one).

    Example:
        >>> family_of("tweet_like"), family_of("spam")
        ('sentiment', 'spam')
    """
    return FAMILIES.get(task, task)


def _shape(text: str) -> tuple[int, bool]:
    """Number of input slots and whether the options block is there: pairs need the same shape."""
    names = set(SLOT_PATTERN.findall(text))
    return len(names - {OPTIONS_SLOT}), OPTIONS_SLOT in names


def embedded_groups(corpus) -> list[TemplateGroup]:
    """A corpus's training templates, one group per task (held-out templates left out).

    Args:
        corpus: a :class:`coin_data.sources.Corpus` (the caller loads it: the verify stage imports no
            other stage), e.g. ``load_embedded_corpus()``.
    """
    return [TemplateGroup(name, family_of(name), tuple(t.text for t in spec.templates))
            for name, spec in sorted(corpus.tasks.items())]


def flan_tuning_groups(path: str | Path, splits: Sequence[str] = FLAN_TUNING_SPLITS) -> list[TemplateGroup]:
    """The FLAN-style templates of the tuning splits, one group per task.

    Raises:
        ValueError: a split other than the tuning ones is asked for (the held-out sets stay unseen).
    """
    refused = [s for s in splits if s not in FLAN_TUNING_SPLITS]
    if refused:
        raise ValueError(f"only the tuning splits {FLAN_TUNING_SPLITS} may reach a fit, not {refused}")
    tasks = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["tasks"]
    return [TemplateGroup(t["name"], family_of(t["name"]), tuple(t["templates"]))
            for t in tasks if t["split"] in splits]


def other_task_pairs(groups: Sequence[TemplateGroup], score: Callable[[str, str], float] | None = None,
                     floor: float = 0.5, per_template: int = PARTNERS_PER_TEMPLATE) -> list[dict]:
    """``changed`` pairs: each template against up to ``per_template`` templates of other families with the
    same shape, both renamed by position; a pair of texts is made once (in either order).

    Args:
        groups: the templates per task.
        score: cosine of two renamed texts; when given, partners at or above ``floor`` come first (the
            combiner only sees those), the rest only fill up. None: seeded order only.
        floor: the embedding floor of the combiner.
        per_template: partners per template.

    Returns:
        Rows with ``original``, ``paraphrase``, ``label``, ``kind``, ``split``, ``task_type``, ``family``.
    """
    items = [(g, by_position(text)) for g in groups for text in g.texts]
    rows, seen = [], set()
    for group, text in items:
        pool = [(g, t) for g, t in items if g.family != group.family and _shape(t) == _shape(text)]
        pool.sort(key=lambda item: stable_seed("own-other", text, item[1]))
        if score is not None:
            pool.sort(key=lambda item: score(text, item[1]) < floor)  # stable: seeded order within each side
        made = 0
        for partner, other in pool:
            if made >= per_template:
                break
            if frozenset((text, other)) in seen:
                continue
            seen.add(frozenset((text, other)))
            rows.append(_row(text, other, "changed", "other_task", group))
            made += 1
    return rows


def same_task_pairs(groups: Sequence[TemplateGroup], tasks: Sequence[str] = SAME_TASK_TASKS) -> list[dict]:
    """``equivalent`` pairs: every two templates of one task listed in ``tasks``, renamed by position.

    Example:
        >>> g = TemplateGroup("spam", "spam", ("Is {message} spam?", "Spam or not: {message}"))
        >>> [(r["original"], r["paraphrase"]) for r in same_task_pairs([g])]
        [('Is {x1} spam?', 'Spam or not: {x1}')]
    """
    rows = []
    for group in groups:
        if group.task in tasks:
            rows += [_row(by_position(a), by_position(b), "equivalent", "same_task", group)
                     for a, b in combinations(group.texts, 2)]
    return rows


def cosine_scorer(cache, texts: Sequence[str]) -> Callable[[str, str], float]:
    """A ``score(a, b)`` for :func:`other_task_pairs`: the cosine of the masked templates, as the verifier
    computes it. Every text is embedded up front in one call, so the vectors (and their last bits) do not
    depend on the order in which pairs are scored.

    Args:
        cache: an :class:`~coin_data.verify.embedding.EmbeddingCache`.
        texts: every text that will be scored.
    """
    from coin_data.templates import parse_template

    masked = {t: parse_template(t).masked_text() for t in dict.fromkeys(texts)}
    vectors = dict(zip(masked, cache.embed(list(masked.values()))))
    return lambda a, b: float(vectors[a] @ vectors[b])


def own_template_pairs(corpus, flan_path: str | Path, cache=None, floor: float = 0.5) -> list[dict]:
    """Both kinds of pair from the embedded corpus and the FLAN-style tuning sets (see the module table).

    Args:
        corpus: the embedded corpus (``coin_data.sources.load_embedded_corpus()``).
        flan_path: ``benchmarks/data/flan_style_templates.yaml``.
        cache: an embedding cache; when given, other-task partners above ``floor`` are preferred
            (see :func:`other_task_pairs`). None: seeded order only.
        floor: the combiner's embedding floor.

    Returns:
        The same-task rows (embedded tasks only), then the other-task rows, in a fixed order.
    """
    embedded = embedded_groups(corpus)
    groups = embedded + flan_tuning_groups(flan_path)
    score = None
    if cache is not None:
        score = cosine_scorer(cache, [by_position(t) for g in groups for t in g.texts])
    return same_task_pairs(embedded) + other_task_pairs(groups, score, floor)


def _row(original: str, paraphrase: str, label: str, kind: str, group: TemplateGroup) -> dict:
    return {"original": original, "paraphrase": paraphrase, "label": label, "kind": kind, "split": FIT,
            "task_type": group.task, "family": group.family}
