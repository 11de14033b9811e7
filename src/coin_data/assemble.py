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
    buffers = {split: _Shard(chunk_rows=_ARROW_CHUNK_ROWS if streaming else None) for split in (TRAIN, VALIDATION)}
    if streaming:
        stats.rows = {TRAIN: 0, VALIDATION: 0}
        # one score per row is all a streamed build keeps of its rows: 4 bytes each (the scores are float32)
        stats.negative_similarities = array("f", stats.negative_similarities)
    mined_plan = _mine_plan(corpus, kept, cache, config, stats) if config.mine_negatives else None
    pools: dict[str, dict[str, Sequence[Instance]]] = {TRAIN: {}, VALIDATION: {}}
    mined_rows: dict[str, list[tuple[int, str, str, Instance]]] = {TRAIN: [], VALIDATION: []}
    for spec in tqdm(corpus.tasks.values(), desc="assemble", unit="task", disable=not progress):
        stats.tasks += 1
        stats.instances += len(corpus.instances[spec.name])
        positives = {t.template_id: [*kept.get((spec.name, t.template_id), ()), *views.get((spec.name, t.template_id))]
                     for t in spec.templates}
        for split, instances in split_instances(corpus.instances[spec.name], config.validation_fraction).items():
            if not streaming:  # only mining reads the pools; a streamed build keeps no instance lists
                pools[split][spec.name] = instances
            picker = NegativePicker(instances, config.seed)
            shard, mined = buffers[split], mined_rows[split] if mined_plan is not None else None
            for instance in instances:
                _add_rows(shard, spec, instance, positives, picker, stats, mined)
                if streaming and len(shard) >= config.shard_rows:
                    sink(split, _finish_shard(shard, split, cache, stats, config.shard_rows))
    if streaming:
        for split, shard in buffers.items():
            while len(shard):
                sink(split, _finish_shard(shard, split, cache, stats, config.shard_rows))
        return None
    columns = {split: _columns(shard.rows) for split, shard in buffers.items()}
    for split, shard in buffers.items():  # train is scored before validation, as the unsharded build always did
        _score_negatives(columns[split], shard.pending, cache, stats)
    if mined_plan is not None:
        from coin_data.negatives.plan import fill_mined_columns

        fill_mined_columns(columns, mined_rows, pools, mined_plan, corpus, config.seed, stats)
    stats.rows = {split: len(cols[schema.ID]) for split, cols in columns.items()}
    return datasets.DatasetDict({split: datasets.Dataset(InMemoryTable(rows_table(cols)))
                                 for split, cols in columns.items()})


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


class _Shard:
    """The rows of one split not yet handed on, and the negatives still to score:
    ``(row index, input text of the instance, input text of its negative)``.

    New rows are tuples in :data:`_ROW_COLUMNS` order; with ``chunk_rows`` (a streamed build) every
    ``chunk_rows`` of them become an Arrow table at once, whose strings take a fraction of the memory of
    Python's (a shard of 100,000 rows: about 1 KB a row less).
    """

    def __init__(self, chunk_rows: int | None = None):
        self.chunk_rows = chunk_rows
        self.rows: list[tuple] = []
        self.tables: list[pa.Table] = []  # earlier rows, converted (negative_similarity still null)
        self.converted = 0  # rows in self.tables
        self.pending: list[tuple[int, str, str]] = []

    def __len__(self) -> int:
        return self.converted + len(self.rows)

    def add(self, row: tuple) -> int:
        """Append one row; its index in the shard."""
        self.rows.append(row)
        if self.chunk_rows is not None and len(self.rows) >= self.chunk_rows:
            self.convert()
        return len(self) - 1

    def convert(self) -> None:
        """Move the rows still held as tuples into an Arrow table."""
        if self.rows:
            self.tables.append(rows_table(_columns(self.rows)))
            self.converted += len(self.rows)
            self.rows = []

    def take(self, n: int) -> tuple[pa.Table, list[tuple[int, str, str]]]:
        """Remove the first ``n`` rows: their table (chunked as converted) and their pending negatives."""
        self.convert()
        table = pa.concat_tables(self.tables) if len(self.tables) > 1 else self.tables[0]
        rest = table.slice(n)
        self.tables, self.converted = ([rest] if len(rest) else []), len(rest)
        head = [item for item in self.pending if item[0] < n]
        self.pending = [(i - n, a, b) for i, a, b in self.pending if i >= n]
        return table.slice(0, n), head


def _columns(rows: list[tuple]) -> dict[str, list]:
    """Rows (tuples in :data:`_ROW_COLUMNS` order) as one list per column."""
    if not rows:
        return {name: [] for name in schema.COLUMNS}
    return {name: list(values) for name, values in zip(_ROW_COLUMNS, zip(*rows))}


def _score_negatives(columns: dict[str, list], pending: list[tuple[int, str, str]], cache: EmbeddingCache,
                     stats: BuildStats) -> None:
    """Fill ``negative_similarity`` of the pending rows (batched embedding calls)."""
    scores = cache.cosine([a for _, a, _ in pending], [n for _, _, n in pending])
    similarity = columns[schema.NEGATIVE_SIMILARITY]
    for (index, _, _), score in zip(pending, scores):
        similarity[index] = float(score)
    stats.negative_similarities.extend(float(s) for s in scores)


def _finish_shard(shard: _Shard, split: str, cache: EmbeddingCache, stats: BuildStats, size: int) -> pa.Table:
    """Take the shard's first ``size`` rows out of it as one Arrow table, their negatives scored and counted."""
    table, pending = shard.take(min(size, len(shard)))
    similarity: list[float | None] = [None] * len(table)
    scores = cache.cosine([a for _, a, _ in pending], [n for _, _, n in pending])
    for (index, _, _), score in zip(pending, scores):
        similarity[index] = float(score)
    stats.negative_similarities.extend(float(s) for s in scores)
    stats.rows[split] = stats.rows.get(split, 0) + len(table)
    position = table.schema.get_field_index(schema.NEGATIVE_SIMILARITY)
    field = table.schema.field(position)
    return table.set_column(position, field, pa.array(similarity, type=field.type))


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


_ARROW_CHUNK_ROWS = 4096  # rows a streamed shard holds as Python tuples before they become Arrow

# The order of a row tuple (checked against the schema below, so the two cannot drift apart).
_ROW_COLUMNS = (
    schema.ID, schema.TASK, schema.TEMPLATE_ID, schema.PARAPHRASE_ID, schema.INSTANCE_ID, schema.ORIGINAL,
    schema.PARAPHRASED, schema.TARGETS, schema.NEGATIVE, schema.NEGATIVE_TARGETS, schema.NEGATIVE_SOURCE,
    schema.FIELDS, schema.ORIGINAL_TEMPLATE, schema.PARAPHRASED_TEMPLATE, schema.SIMILARITY,
    schema.NEGATIVE_SIMILARITY, schema.PARAPHRASE_SOURCE, schema.MINED_NEGATIVE, schema.MINED_NEGATIVE_TARGETS,
    schema.MINED_NEGATIVE_SIMILARITY, schema.MINED_NEGATIVE_SOURCE,
)
if set(_ROW_COLUMNS) != set(schema.COLUMNS) or len(_ROW_COLUMNS) != len(schema.COLUMNS):
    raise ImportError("assemble._ROW_COLUMNS must name every column of coin_data.schema.COLUMNS once")


def _add_rows(shard: _Shard, spec: TaskSpec, instance: Instance, positives: dict[str, list], picker: NegativePicker,
              stats: BuildStats, mined: list | None) -> None:
    """Append the rows of one instance (every template with a positive, every positive) to ``shard``.

    The values an (instance, template) shares are made once, whichever paraphrase or view fills the row; the
    instance's input text is made once, when its first negative needs it. ``mined`` (when mining) gets
    ``(row index, task, template_id, instance)`` per row.
    """
    fields_json = json.dumps(dict(instance.fields), ensure_ascii=False, sort_keys=True)
    anchor_text = None
    for template in spec.templates:
        rows_of = positives[template.template_id]
        if not rows_of:
            continue
        negative = picker.pick(instance, template.template_id)
        source = SAME_TEMPLATE if negative else NONE_ALL_SAME_TARGET
        if negative is not None:
            anchor_text = input_text(instance) if anchor_text is None else anchor_text
            pair = (anchor_text, input_text(negative))
        shared_for, original, negative_text = None, None, None
        for paraphrase in rows_of:
            template_of = paraphrase.template  # in practice `template` for every positive: rendered once
            if template_of is not shared_for:
                shared_for, original = template_of, template_of.render(instance.fields, spec.options)
                negative_text = template_of.render(negative.fields, spec.options) if negative else None
            index = shard.add((
                row_id(spec.name, template_of.template_id, instance.id, paraphrase.paraphrase_id), spec.name,
                template_of.template_id, paraphrase.paraphrase_id, instance.id, original,
                paraphrase.paraphrase.render(instance.fields, spec.options), instance.target, negative_text,
                negative.target if negative else None, source, fields_json, template_of.text,
                paraphrase.paraphrase.text, paraphrase.similarity, None, paraphrase.source, None, None, None, None,
            ))
            stats.negatives[source] += 1
            if isinstance(paraphrase, PerturbationView):
                stats.perturbation_rows[paraphrase.level] += 1
            if mined is not None:
                mined.append((index, spec.name, template.template_id, instance))
            if negative is not None:
                shard.pending.append((index, *pair))
