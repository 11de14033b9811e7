"""Instruction-level mining for the build: one mined negative per anchor template."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coin_data.negatives.guard import Rescorer, RescoreTexts
from coin_data.negatives.search import MINED, NONE_NO_CANDIDATE, MineConfig, MinedNegatives, mine_negatives

# --- instruction-level mining for the build -----------------------------------------------------
#
# Anchors are the training templates that kept a paraphrase; candidates are the training templates of
# all tasks; a template's group is its task. The chosen template is applied to the anchor row's own
# instance when its slots allow (same input, different instruction), else to an instance of its task.

MINED_SAME_INSTANCE = "mined:same_instance"
MINED_OTHER_INSTANCE = "mined:other_instance"
NONE_NO_INSTANCE = "none:no_instance_of_negative_task_in_split"


@dataclass(frozen=True)
class TemplateNegative:
    """The mined negative of one anchor template (``template`` is None when none passed the guard)."""

    task: str | None
    template: object | None  # coin_data.templates.Template
    similarity: float | None
    reason: str


def plan_template_negatives(corpus, kept, cache, config: MineConfig, rescorer: Rescorer | None = None):
    """Mine, for every template with a kept paraphrase, the nearest template of another task.

    Args:
        corpus: the build's :class:`~coin_data.sources.Corpus`.
        kept: ``(task, template_id) -> kept paraphrases`` (each with ``.paraphrase`` and ``.similarity``).
        cache: the build's :class:`~coin_data.verify.embedding.EmbeddingCache` (templates are embedded once; their
            masked texts were already embedded by the verifier).
        config: search and guard settings; the positive score of a template is its *lowest* kept
            paraphrase similarity, so the margin holds for every row.
        rescorer: optional cross-encoder.

    Returns:
        ``(plan, found)``: ``(task, template_id) -> TemplateNegative`` and the raw :class:`MinedNegatives`.
    """
    templates = [(spec, template) for spec in corpus.tasks.values() for template in spec.templates]
    anchors = [i for i, (spec, t) in enumerate(templates) if kept.get((spec.name, t.template_id))]
    if not anchors:
        return {}, MinedNegatives(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int8))
    texts = [template.masked_text() for _, template in templates]
    vectors = cache.embed(texts)
    task_index = {name: i for i, name in enumerate(corpus.tasks)}
    groups = np.array([task_index[spec.name] for spec, _ in templates], dtype=np.int64)
    weakest = [min(kept[(templates[i][0].name, templates[i][1].template_id)], key=lambda k: k.similarity)
               for i in anchors]
    rescore_texts = RescoreTexts(
        anchors=[texts[i] for i in anchors], corpus=texts, positives=[k.paraphrase.masked_text() for k in weakest]
    )
    found = mine_negatives(
        vectors[anchors], vectors, groups[anchors], groups, [k.similarity for k in weakest], config,
        rescorer=rescorer, texts=rescore_texts if rescorer is not None else None,
    )
    plan = {}
    for anchor, index, score, reason in zip(anchors, found.index.tolist(), found.score.tolist(), found.reasons()):
        spec, template = templates[anchor]
        if index < 0:
            plan[(spec.name, template.template_id)] = TemplateNegative(None, None, None, reason)
        else:
            neg_spec, neg_template = templates[index]
            plan[(spec.name, template.template_id)] = TemplateNegative(neg_spec.name, neg_template, float(score), MINED)
    return plan, found


def mined_row_values(negative: TemplateNegative, instance, corpus, pool, seed: int) -> dict[str, object]:
    """The four ``mined_negative_*`` values of one row.

    Args:
        negative: the plan entry of the row's template.
        instance: the row's instance.
        corpus: the corpus (for the negative task's answer set).
        pool: instances of the negative's task in the row's split (used when the slots do not allow
            rendering the row's own instance).
        seed: the build seed (the choice in ``pool`` is a stable hash of it and the row).

    Returns:
        ``{column: value}`` for :data:`coin_data.schema` ``MINED_*`` columns.
    """
    from coin_data import schema
    from coin_data.negatives.same_template import stable_seed

    if negative.template is None:
        return {schema.MINED_NEGATIVE: None, schema.MINED_NEGATIVE_TARGETS: None,
                schema.MINED_NEGATIVE_SIMILARITY: None, schema.MINED_NEGATIVE_SOURCE: negative.reason}
    spec = corpus.tasks[negative.task]
    template = negative.template
    if set(template.field_slots) <= set(instance.fields):
        # same input, different instruction: the answer to it is unknown, so no target
        text, target, source = template.render(instance.fields, spec.options), None, MINED_SAME_INSTANCE
    elif pool:
        other = pool[stable_seed(seed, "mined", instance.task, instance.id) % len(pool)]
        text, target, source = template.render(other.fields, spec.options), other.target, MINED_OTHER_INSTANCE
    else:
        return {schema.MINED_NEGATIVE: None, schema.MINED_NEGATIVE_TARGETS: None,
                schema.MINED_NEGATIVE_SIMILARITY: None, schema.MINED_NEGATIVE_SOURCE: NONE_NO_INSTANCE}
    return {schema.MINED_NEGATIVE: text, schema.MINED_NEGATIVE_TARGETS: target,
            schema.MINED_NEGATIVE_SIMILARITY: negative.similarity, schema.MINED_NEGATIVE_SOURCE: source}


def fill_mined_columns(columns, rows, pools, plan, corpus, seed: int, stats) -> None:
    """Write the mined columns of every assembled row (input: ``rows[split]`` = ``(row index, task,
    template_id, instance)``; output: the four ``mined_negative_*`` columns of ``columns[split]``) and
    count them into ``stats.mined`` / ``stats.mined_similarities``."""
    from coin_data import schema

    for split, refs in rows.items():
        for index, task, template_id, instance in refs:
            negative = plan.get((task, template_id)) or TemplateNegative(None, None, None, NONE_NO_CANDIDATE)
            pool = pools[split].get(negative.task, []) if negative.task else []
            values = mined_row_values(negative, instance, corpus, pool, seed)
            for name, value in values.items():
                columns[split][name][index] = value
            stats.mined[values[schema.MINED_NEGATIVE_SOURCE]] += 1
            if values[schema.MINED_NEGATIVE_SIMILARITY] is not None:
                stats.mined_similarities.append(values[schema.MINED_NEGATIVE_SIMILARITY])


# --- `coin-data mine`: add mined negatives to a built dataset folder -------------------------------
