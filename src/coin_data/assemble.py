"""Stage 5 of the build: every (instance, kept paraphrase or perturbation view) becomes a row.

The original template renders ``original_instruction``, the paraphrase ``paraphrased_instruction``; a
same-template negative is attached (:mod:`coin_data.negatives`), mined ones too when asked for; instances
are split into train/validation by group, and all rows of an instance (views included) go to its split.

Example:
    >>> row_id("nli", "t0", "i1", "p0") == row_id("nli", "t0", "i1", "p0")
    True
"""

from __future__ import annotations

import hashlib
import json
from array import array
from typing import TYPE_CHECKING, Callable, Sequence

import datasets
import pyarrow as pa
from datasets.table import InMemoryTable
from tqdm import tqdm

from coin_data import schema
from coin_data.negatives.same_template import NONE_ALL_SAME_TARGET, SAME_TEMPLATE, NegativePicker
from coin_data.perturb.training_views import PerturbationView, ViewPlan
from coin_data.seeds import stable_seed
from coin_data.sources.embedded import Corpus, Instance, ScaledInstances, TaskSpec
from coin_data.templates import Template
from coin_data.verify.embedding import EmbeddingCache

if TYPE_CHECKING:  # the build imports this stage; its config and stats are only annotations here
    from coin_data.build import BuildConfig, BuildStats, KeptParaphrase

TRAIN, VALIDATION = "train", "validation"


def split_instances(instances: Sequence[Instance], fraction: float) -> dict[str, Sequence[Instance]]:
    """Split one task's instances by group: a fixed share of groups (at least one) goes to validation.

    The order is a hash of the group, so the split does not depend on the seed or on file order. Scaled
    instances (:class:`~coin_data.sources.embedded.ScaledInstances`) are split by their originals (a copy
    keeps its original's group) and stay lazy: the same instances in the same order, none materialised.

    Example:
        >>> rows = [Instance(str(n), "t", {"x": str(n)}, "yes", group=str(n)) for n in range(10)]
        >>> {split: len(part) for split, part in split_instances(ScaledInstances(rows, 5), 0.1).items()}
        {'train': 45, 'validation': 5}
    """
    if isinstance(instances, ScaledInstances):
        return {split: ScaledInstances(part, instances.factor)
                for split, part in split_instances(instances.base, fraction).items()}
    groups = sorted({inst.group for inst in instances}, key=lambda g: stable_seed("split", g))
    n_validation = max(1, round(fraction * len(groups))) if len(groups) > 1 else 0
    if len(groups) == 1:  # a task with one instance (an Alpaca instruction seen once): the hash decides
        n_validation = int(stable_seed("split", groups[0]) % 10_000 < fraction * 10_000)
    validation_groups = set(groups[:n_validation])
    splits: dict[str, list[Instance]] = {TRAIN: [], VALIDATION: []}
    for inst in instances:
        splits[VALIDATION if inst.group in validation_groups else TRAIN].append(inst)
    return splits


def input_text(instance: Instance) -> str:
    """The instance's inputs as one string (what ``negative_similarity`` compares)."""
    return "\n".join(f"{name}: {value}" for name, value in instance.fields.items())


def row_id(task: str, template_id: str, instance_id: str, paraphrase_id: str) -> str:
    """Stable 16-hex id of a row."""
    key = "\x1f".join((task, template_id, instance_id, paraphrase_id)).encode("utf-8")
    return hashlib.sha1(key).hexdigest()[:16]


def assemble(
    corpus: Corpus,
    kept: dict[tuple[str, str], list[KeptParaphrase]],
    cache: EmbeddingCache,
    config: BuildConfig,
    stats: BuildStats,
    progress: bool = False,
    views: ViewPlan | None = None,
    sink: Callable[[str, pa.Table], None] | None = None,
) -> datasets.DatasetDict | None:
    """Turn (kept paraphrases + perturbation views) x instances into rows with negatives, split by instance group.

    A perturbation view is one more positive of its template: its rows get the same negative as the
    template's paraphrase rows, and only kept paraphrases inform mining (its guard compares with them).

    Args:
        sink: with ``config.shard_rows``, receives ``(split, table)`` for every ``shard_rows`` rows of a
            split as soon as they are complete (then nothing is returned and memory holds one shard per
            split); ``None`` keeps every row and returns the ``DatasetDict``. Mined negatives need every
            row, so they are not streamed.

    Returns:
        The ``DatasetDict`` (``train``/``validation``), or ``None`` when rows went to ``sink``.
    """
    views = views or ViewPlan()
    streaming = sink is not None
    if streaming and (not config.shard_rows or config.mine_negatives):
        raise ValueError("streaming rows to a sink needs shard_rows and no mine_negatives")
    buffers = {split: _Shard() for split in (TRAIN, VALIDATION)}
    if streaming:
        stats.rows = {TRAIN: 0, VALIDATION: 0}
        # one score per row is all a streamed build keeps of its rows: 4 bytes each (the scores are float32)
        stats.negative_similarities = array("f", stats.negative_similarities)
    mined_plan = _mine_plan(corpus, kept, cache, config, stats) if config.mine_negatives else None
    pools: dict[str, dict[str, list[Instance]]] = {TRAIN: {}, VALIDATION: {}}
    mined_rows: dict[str, list[tuple[int, str, str, Instance]]] = {TRAIN: [], VALIDATION: []}
    for spec in tqdm(corpus.tasks.values(), desc="assemble", unit="task", disable=not progress):
        stats.tasks += 1
        stats.instances += len(corpus.instances[spec.name])
        for split, instances in split_instances(corpus.instances[spec.name], config.validation_fraction).items():
            if not streaming:  # only mining reads the pools; a streamed build keeps no instance lists
                pools[split][spec.name] = instances
            picker = NegativePicker(instances, config.seed)
            shard = buffers[split]
            for instance in instances:
                inputs = _InstanceInputs(instance)
                for template in spec.templates:
                    key = (spec.name, template.template_id)
                    positives = [*kept.get(key, ()), *views.get(key)]
                    if not positives:
                        continue
                    negative = picker.pick(instance, template.template_id)
                    pair = (inputs.text, input_text(negative)) if negative is not None else None
                    shared, shared_for = {}, None
                    for paraphrase in positives:
                        if paraphrase.template is not shared_for:  # in practice every positive has `template`
                            shared_for = paraphrase.template
                            shared = _shared_values(spec, instance, shared_for, negative, inputs.fields_json)
                        index = _append_row(shard.columns, shared, spec.name, instance, paraphrase, spec.options)
                        stats.negatives[SAME_TEMPLATE if negative else NONE_ALL_SAME_TARGET] += 1
                        if isinstance(paraphrase, PerturbationView):
                            stats.perturbation_rows[paraphrase.level] += 1
                        if mined_plan is not None:
                            mined_rows[split].append((index, spec.name, template.template_id, instance))
                        if pair is not None:
                            shard.pending.append((index, *pair))
                    if streaming and len(shard) >= config.shard_rows:
                        sink(split, _finish_shard(shard, split, cache, stats, config.shard_rows))
    if streaming:
        for split, shard in buffers.items():
            while len(shard):
                sink(split, _finish_shard(shard, split, cache, stats, config.shard_rows))
        return None
    for shard in buffers.values():  # train is scored before validation, as the unsharded build always did
        _score_negatives(shard, cache, stats)
    columns = {split: shard.columns for split, shard in buffers.items()}
    if mined_plan is not None:
        from coin_data.negatives.plan import fill_mined_columns

        fill_mined_columns(columns, mined_rows, pools, mined_plan, corpus, config.seed, stats)
    stats.rows = {split: len(cols[schema.ID]) for split, cols in columns.items()}
    return datasets.DatasetDict({split: datasets.Dataset(InMemoryTable(rows_table(cols))) for split, cols in columns.items()})


def rows_table(columns: dict[str, list]) -> pa.Table:
    """The rows' columns as an Arrow table with the dataset's features (in the schema metadata, as ``datasets``
    writes them): what ``datasets.Dataset.from_dict(columns, features=schema.FEATURES).data.table`` gives,
    without encoding every value in Python first (about ten times faster).

    Example:
        >>> table = rows_table({name: [None] for name in schema.COLUMNS})
        >>> table.num_rows, table.schema.field(schema.SIMILARITY).type
        (1, DataType(float))
    """
    return pa.Table.from_pydict(columns, schema=schema.FEATURES.arrow_schema)


class _InstanceInputs:
    """What every row of one instance shares: its fields as JSON, and (made once, when first needed) its input text."""

    def __init__(self, instance: Instance):
        self.instance = instance
        self.fields_json = json.dumps(dict(instance.fields), ensure_ascii=False, sort_keys=True)
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = input_text(self.instance)
        return self._text


class _Shard:
    """The rows of one split not yet handed on: their columns and the negatives still to score."""

    def __init__(self) -> None:
        self.columns: dict[str, list] = {name: [] for name in schema.COLUMNS}
        self.pending: list[tuple[int, str, str]] = []  # (row index, input text of the instance, of its negative)

    def __len__(self) -> int:
        return len(self.columns[schema.ID])


def _score_negatives(shard: _Shard, cache: EmbeddingCache, stats: BuildStats) -> None:
    """Fill ``negative_similarity`` of the shard's pending rows (one batched embedding call)."""
    items = shard.pending
    scores = cache.cosine([a for _, a, _ in items], [n for _, _, n in items])
    for (index, _, _), score in zip(items, scores):
        shard.columns[schema.NEGATIVE_SIMILARITY][index] = float(score)
    stats.negative_similarities.extend(float(s) for s in scores)
    shard.pending = []


def _finish_shard(shard: _Shard, split: str, cache: EmbeddingCache, stats: BuildStats, size: int) -> pa.Table:
    """Take the shard's first ``size`` rows out of it as one Arrow table, their negatives scored and counted."""
    n = min(size, len(shard))
    head, rest = _Shard(), _Shard()
    head.columns = {name: values[:n] for name, values in shard.columns.items()}
    rest.columns = {name: values[n:] for name, values in shard.columns.items()}
    head.pending = [item for item in shard.pending if item[0] < n]
    rest.pending = [(index - n, a, b) for index, a, b in shard.pending if index >= n]
    _score_negatives(head, cache, stats)
    stats.rows[split] = stats.rows.get(split, 0) + n
    shard.columns, shard.pending = rest.columns, rest.pending
    return rows_table(head.columns)


def _mine_plan(corpus: Corpus, kept, cache: EmbeddingCache, config: BuildConfig, stats: BuildStats) -> dict:
    """Mined negatives per template (:func:`coin_data.negatives.plan.plan_template_negatives`), counted into stats."""
    from coin_data.negatives.guard import CrossEncoderRescorer
    from coin_data.negatives.plan import plan_template_negatives

    rescorer = CrossEncoderRescorer(config.mining.cross_encoder) if config.mining.cross_encoder else None
    plan, found = plan_template_negatives(corpus, kept, cache, config.mining, rescorer)
    stats.mined_rejected.update(found.rejected)
    stats.mining_index = found.index_used
    stats.seconds["mine"] = found.seconds
    return plan


def _shared_values(
    spec: TaskSpec, instance: Instance, template: Template, negative: Instance | None, fields_json: str
) -> dict[str, object]:
    """The values every row of (instance, template) shares, whichever paraphrase or view fills it."""
    return {
        schema.TASK: spec.name,
        schema.TEMPLATE_ID: template.template_id,
        schema.INSTANCE_ID: instance.id,
        schema.ORIGINAL: template.render(instance.fields, spec.options),
        schema.TARGETS: instance.target,
        schema.NEGATIVE: template.render(negative.fields, spec.options) if negative else None,
        schema.NEGATIVE_TARGETS: negative.target if negative else None,
        schema.NEGATIVE_SOURCE: SAME_TEMPLATE if negative else NONE_ALL_SAME_TARGET,
        schema.FIELDS: fields_json,
        schema.ORIGINAL_TEMPLATE: template.text,
        schema.NEGATIVE_SIMILARITY: None,  # scored per shard (one batched embedding call)
        schema.MINED_NEGATIVE: None,  # filled by the mining step when asked for
        schema.MINED_NEGATIVE_TARGETS: None,
        schema.MINED_NEGATIVE_SIMILARITY: None,
        schema.MINED_NEGATIVE_SOURCE: None,
    }


def _append_row(
    cols: dict[str, list],
    shared: dict[str, object],
    task: str,
    instance: Instance,
    paraphrase: KeptParaphrase | PerturbationView,
    options: Sequence[str],
) -> int:
    template = paraphrase.template
    values = {
        **shared,
        schema.ID: row_id(task, template.template_id, instance.id, paraphrase.paraphrase_id),
        schema.PARAPHRASE_ID: paraphrase.paraphrase_id,
        schema.PARAPHRASED: paraphrase.paraphrase.render(instance.fields, options),
        schema.PARAPHRASED_TEMPLATE: paraphrase.paraphrase.text,
        schema.SIMILARITY: paraphrase.similarity,
        schema.PARAPHRASE_SOURCE: paraphrase.source,
    }
    for name, value in values.items():
        cols[name].append(value)
    return len(cols[schema.ID]) - 1
