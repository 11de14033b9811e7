"""``coin-data mine``: add mined negatives to a built dataset folder (rewritten atomically)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from coin_data import schema
from coin_data.negatives.guard import Rescorer
from coin_data.negatives.plan import TemplateNegative, mined_row_values, plan_template_negatives
from coin_data.negatives.search import NONE_NO_CANDIDATE, MineConfig


@dataclass
class MineReport:
    """What :func:`mine_dataset` did: rows per ``mined_negative_source``, guard rejections, the index."""

    out: object
    sources: Counter
    rejected: Counter
    similarities: list[float]
    index_used: str
    seconds: float


# The columns `coin-data mine` reads back from a built folder (templates, instances, answers, scores).
MINE_INPUT_COLUMNS = (schema.TASK, schema.TEMPLATE_ID, schema.INSTANCE_ID, schema.ORIGINAL, schema.ORIGINAL_TEMPLATE,
                      schema.FIELDS, schema.TARGETS)

def mine_dataset(folder, out, config: MineConfig | None = None, embedding_model: str | None = None,
                 seed: int = 0, overwrite: bool = False, rescorer: Rescorer | None = None) -> MineReport:
    """Fill the ``mined_negative_*`` columns of a dataset folder built by ``coin-data build``.

    Templates, paraphrase scores, instances and answer sets are read back from the rows themselves
    (``original_template``, ``similarity``, ``fields``, the ``OPTIONS:`` block), so any folder in the
    published layout works, including ones built before mining existed. The result is written to ``out``
    atomically, with the card's YAML sizes and its "Mined negatives" section updated.

    Args:
        folder: the built dataset (``data/<split>-*.parquet`` + ``README.md``).
        out: destination folder (may equal ``folder`` with ``overwrite``).
        config: search and guard settings.
        embedding_model: sentence-transformers model (default: the bundled all-MiniLM-L6-v2).
        seed: seeds the choice of another-task instance.
        overwrite: replace ``out`` if it exists.
        rescorer: optional cross-encoder.

    Returns:
        A :class:`MineReport`.

    Example:
        ``coin-data mine coin-flan-paraphrased --out coin-flan-mined``
    """
    import shutil
    from pathlib import Path

    import datasets
    import pyarrow.parquet as pq

    from coin_data import schema
    from coin_data.hub import card
    from coin_data.hub.layout import OutputExistsError, check_output, new_partial, swap_into_place
    from coin_data.sources.embedded import CorpusError
    from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder

    config = config or MineConfig()
    start = time.perf_counter()
    folder, out = Path(folder), Path(out)
    if out.resolve() != folder.resolve():
        check_output(out, overwrite)
    elif not overwrite:
        raise OutputExistsError(out, "is the input folder", "pass overwrite=True to update it in place",
                                "pass --overwrite to update it in place")
    shards = sorted((folder / "data").glob("*.parquet"))
    if not shards:
        raise CorpusError(f"{folder}: no data/*.parquet files (not a dataset built by coin-data build)")
    for path in shards:  # refuse a folder without the columns mining reads, before loading anything
        schema.require_columns(pq.read_schema(str(path)).names, MINE_INPUT_COLUMNS, str(path))
    # A split may be several shards (train-0000K-of-0000N): rows are mined as one split, written back per shard.
    splits: dict[str, list[dict]] = {}
    spans = []  # (shard path, split, first row, rows)
    for path in shards:
        split, rows = path.name.split("-")[0], pq.read_table(str(path)).to_pylist()
        spans.append((path, split, len(splits.setdefault(split, [])), len(rows)))
        splits[split].extend(rows)
    corpus, kept, pools, by_id = _corpus_from_rows(splits, folder)
    cache = EmbeddingCache(SentenceTransformerEmbedder(embedding_model))
    plan, found = plan_template_negatives(corpus, kept, cache, config, rescorer)
    sources: Counter = Counter()
    similarities: list[float] = []
    for split, rows in splits.items():
        for row in rows:
            negative = plan.get((row[schema.TASK], row[schema.TEMPLATE_ID])) or TemplateNegative(
                None, None, None, NONE_NO_CANDIDATE)
            instance = by_id[(split, row[schema.TASK], row[schema.INSTANCE_ID])]
            pool = pools[split].get(negative.task, []) if negative.task else []
            row.update(mined_row_values(negative, instance, corpus, pool, seed))
            sources[row[schema.MINED_NEGATIVE_SOURCE]] += 1
            if row[schema.MINED_NEGATIVE_SIMILARITY] is not None:
                similarities.append(row[schema.MINED_NEGATIVE_SIMILARITY])

    partial = new_partial(out)
    try:
        shutil.copytree(folder, partial, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
        sizes: dict[str, tuple[int, int]] = {}
        files: Counter = Counter()
        for path, split, first, count in spans:
            table = datasets.Dataset.from_list(
                [{name: row.get(name) for name in schema.COLUMNS} for row in splits[split][first:first + count]],
                features=schema.FEATURES,
            ).data.table
            pq.write_table(table, str(partial / "data" / path.name))
            rows, size = sizes.get(split, (0, 0))
            sizes[split] = (rows + count, size + (partial / "data" / path.name).stat().st_size)
            files[split] += 1
        readme = partial / "README.md"
        text = readme.read_text(encoding="utf-8") if readme.exists() else "---\n---\n"
        section = card.mined_section(sources, found.rejected, similarities, config, found.index_used)
        readme.write_text(_updated_card(text, sizes, partial, section, files), encoding="utf-8")
        swap_into_place(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return MineReport(out, sources, found.rejected, similarities, found.index_used,
                      round(time.perf_counter() - start, 3))


def _corpus_from_rows(splits, folder):
    """Tasks, kept paraphrases, per-split instance pools and ``(split, task, id) -> Instance`` from rows."""
    import json

    from coin_data import schema
    from coin_data.schema import is_perturbation_view
    from coin_data.sources.embedded import CLASSIFICATION, GENERATION, Corpus, CorpusError, Instance, TaskSpec
    from coin_data.templates import OPTIONS_BLOCK, parse_options, parse_template

    templates: dict[str, dict[str, object]] = {}
    options: dict[str, tuple[str, ...]] = {}
    kept: dict[tuple[str, str], list] = {}
    instances: dict[tuple[str, str, str], Instance] = {}
    pools: dict[str, dict[str, list]] = {}
    for split, rows in splits.items():
        pools[split] = {}
        for number, row in enumerate(rows):
            task, template_id = row.get(schema.TASK), row.get(schema.TEMPLATE_ID)
            if not task or not template_id or row.get(schema.ORIGINAL_TEMPLATE) is None:
                raise CorpusError(f"{folder}: {split} row {number}: columns task, template_id, original_template needed")
            if template_id not in templates.setdefault(task, {}):
                templates[task][template_id] = parse_template(row[schema.ORIGINAL_TEMPLATE], task, template_id)
            if task not in options:
                match = OPTIONS_BLOCK.search(row.get(schema.ORIGINAL) or "")
                if match and "{options_}" in row[schema.ORIGINAL_TEMPLATE]:
                    options[task] = parse_options(match.group(0))
            if (row.get(schema.PARAPHRASED_TEMPLATE) and row.get(schema.SIMILARITY) is not None
                    and not is_perturbation_view(row.get(schema.PARAPHRASE_SOURCE))):  # the guard compares paraphrases
                kept.setdefault((task, template_id), []).append(_Kept(
                    parse_template(row[schema.PARAPHRASED_TEMPLATE], task, template_id), float(row[schema.SIMILARITY])))
            key = (split, task, row[schema.INSTANCE_ID])
            if key not in instances:
                fields = json.loads(row.get(schema.FIELDS) or "{}")
                instances[key] = Instance(row[schema.INSTANCE_ID], task, fields, row.get(schema.TARGETS) or "")
                pools[split].setdefault(task, []).append(instances[key])
    corpus = Corpus(tasks={})
    for task in sorted(templates):
        specs = tuple(templates[task].values())
        fields = tuple(dict.fromkeys(slot for t in specs for slot in t.field_slots))
        corpus.tasks[task] = TaskSpec(task, CLASSIFICATION if task in options else GENERATION, "", fields,
                                      options.get(task, ()), parse_template("{targets}", task, "target"), specs)
    return corpus, kept, pools, instances


@dataclass(frozen=True)
class _Kept:
    paraphrase: object
    similarity: float


def _updated_card(text: str, sizes, folder, section: list[str], shards=None) -> str:
    """The card with fresh YAML sizes and the "Mined negatives" section replaced or added."""
    import re

    import yaml

    from coin_data.hub import card

    body = text.split("---\n", 2)[2] if text.startswith("---\n") and text.count("---\n") >= 2 else text
    templates_file = folder / card.data_path(card.TEMPLATES_CONFIG, "train")
    candidate_size = (0, 0)
    if templates_file.exists():
        import pyarrow.parquet as pq

        candidate_size = (pq.ParquetFile(str(templates_file)).metadata.num_rows, templates_file.stat().st_size)
    new = "\n".join(section)
    if "## Mined negatives" in body:
        body = re.sub(r"## Mined negatives\n.*?(?=\n## |\Z)", new.rstrip("\n"), body, flags=re.DOTALL)
    elif "## License" in body:
        body = body.replace("## License", new + "## License", 1)
    else:
        body = body.rstrip("\n") + "\n\n" + new
    meta = yaml.safe_load(text.split("---\n", 2)[1]) if text.startswith("---\n") and text.count("---\n") >= 2 else None
    license_id = meta.get("license", card.UNKNOWN_LICENSE) if isinstance(meta, dict) else card.UNKNOWN_LICENSE
    return card.yaml_header(sizes, candidate_size, license_id, shards) + body  # the build's license stays
