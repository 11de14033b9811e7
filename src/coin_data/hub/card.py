"""The dataset card (``README.md``): Hub metadata in YAML, then what a reader needs to trust the data.

The YAML header declares the two configs (``default``: the contrastive pairs; ``templates``: every
candidate paraphrase with its verdict), their data files and ``dataset_info``, so the folder loads with
``datasets.load_dataset`` exactly as it will from the Hub. The body reports the build parameters, counts,
verdicts, score distributions, negatives and paraphrasing cost.

Example:
    >>> print(histogram([0.8, 0.82, 0.9, 0.95], low=0.7, high=1.0, bins=3))  # doctest: +NORMALIZE_WHITESPACE
    | range | count | |
    |---|---:|---|
    | 0.70-0.80 | 0 | |
    | 0.80-0.90 | 2 | #################### |
    | 0.90-1.00 | 2 | #################### |
"""

from __future__ import annotations

import statistics
from array import array
from typing import Mapping, Sequence

import numpy as np
import yaml

from coin_data import schema
from coin_data.counts import count_summary

DEFAULT_CONFIG = "default"
TEMPLATES_CONFIG = "templates"
LICENSE = "apache-2.0"  # the embedded corpus, written by this project
UNKNOWN_LICENSE = "unknown"  # a Hub license id: the data's license was not given
# The license of each known source's data (Hub license ids): FLAN (google-research/FLAN) is Apache-2.0;
# Stanford Alpaca (tatsu-lab/alpaca) is CC BY-NC 4.0. A user's own rows or templates: unknown unless given.
SOURCE_LICENSES = {"embedded": LICENSE, "flan": "apache-2.0", "alpaca": "cc-by-nc-4.0"}


def data_path(config: str, split: str, shard: int = 0, shards: int = 1) -> str:
    """Relative path of parquet shard ``shard`` of ``shards`` of ``config``/``split`` in the Hub layout.

    Example:
        >>> data_path("default", "train"), data_path("default", "train", 2, 12)
        ('data/train-00000-of-00001.parquet', 'data/train-00002-of-00012.parquet')
    """
    folder = "data" if config == DEFAULT_CONFIG else config
    return f"{folder}/{split}-{shard:05d}-of-{shards:05d}.parquet"


def data_files_pattern(config: str, split: str, shards: int = 1) -> str:
    """What the card's ``data_files`` names for a split: its one file, or a pattern matching all its shards."""
    if shards == 1:
        return data_path(config, split)
    folder = "data" if config == DEFAULT_CONFIG else config
    return f"{folder}/{split}-*-of-{shards:05d}.parquet"


def split_files(folder, config: str, split: str) -> list:
    """The parquet shards of ``config``/``split`` in a built folder, in order (empty when the split has none).

    Example:
        >>> split_files("coin-flan-paraphrased", "default", "train")  # doctest: +SKIP
        [PosixPath('coin-flan-paraphrased/data/train-00000-of-00001.parquet')]
    """
    from pathlib import Path

    base = Path(folder) / data_path(config, split)
    return sorted(base.parent.glob(f"{split}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].parquet"))


def dataset_license(config) -> str:
    """The card's license: ``config.license`` when given, else the source's (:data:`SOURCE_LICENSES`).

    The embedded corpus is this project's (Apache-2.0); a ``--corpus`` folder, a templates file or mapped
    rows are the user's own data, whose license is ``unknown`` unless given.

    Example:
        >>> from types import SimpleNamespace
        >>> [dataset_license(SimpleNamespace(source=s, corpus=None, license=None)) for s in ("flan", "alpaca", "hf")]
        ['apache-2.0', 'cc-by-nc-4.0', 'unknown']
    """
    given = getattr(config, "license", None)
    if given:
        return given
    source = getattr(config, "source", "embedded")
    if source == "embedded" and getattr(config, "corpus", None):
        return UNKNOWN_LICENSE
    return SOURCE_LICENSES.get(source, UNKNOWN_LICENSE)


def yaml_header(split_sizes: Mapping[str, tuple[int, int]], candidate_size: tuple[int, int],
                license_id: str = LICENSE, shards: Mapping[str, int] | None = None) -> str:
    """The YAML block the Hub and ``load_dataset`` read.

    Args:
        split_sizes: ``split -> (num_examples, num_bytes)`` of the default config (bytes of all its shards).
        candidate_size: ``(num_examples, num_bytes)`` of the templates config.
        license_id: Hub license identifier (:func:`dataset_license`).
        shards: ``split -> number of parquet files`` of the default config; missing splits have one.
    """
    shards = shards or {}
    total = sum(n for n, _ in split_sizes.values())
    meta = {
        "license": license_id,
        "language": ["en"],
        "pretty_name": "CoIN contrastive instruction pairs",
        "task_categories": ["text-generation"],
        "tags": ["instruction-tuning", "contrastive-learning", "paraphrase", "robustness", "coin"],
        "size_categories": [_size_category(total)],
        "configs": [
            {
                "config_name": DEFAULT_CONFIG,
                "default": True,
                "data_files": [{"split": split, "path": data_files_pattern(DEFAULT_CONFIG, split, shards.get(split, 1))}
                               for split in split_sizes],
            },
            {
                "config_name": TEMPLATES_CONFIG,
                "data_files": [{"split": "train", "path": data_path(TEMPLATES_CONFIG, "train")}],
            },
        ],
        "dataset_info": [
            {
                "config_name": DEFAULT_CONFIG,
                "features": schema.FEATURES._to_yaml_list(),
                "splits": [
                    {"name": split, "num_bytes": size, "num_examples": n} for split, (n, size) in split_sizes.items()
                ],
            },
            {
                "config_name": TEMPLATES_CONFIG,
                "features": schema.CANDIDATE_FEATURES._to_yaml_list(),
                "splits": [{"name": "train", "num_bytes": candidate_size[1], "num_examples": candidate_size[0]}],
            },
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "1M<n<10M"


def histogram(values: Sequence[float], low: float, high: float, bins: int = 10, width: int = 20) -> str:
    """A markdown table histogram of ``values`` over ``[low, high]`` (values outside are clamped)."""
    counts = [0] * bins
    step = (high - low) / bins
    for value in values:
        index = min(bins - 1, max(0, int((value - low) / step)))
        counts[index] += 1
    peak = max(counts) or 1
    lines = ["| range | count | |", "|---|---:|---|"]
    for i, count in enumerate(counts):
        bar = "#" * round(width * count / peak) if count else ""
        lines.append(f"| {low + i * step:.2f}-{low + (i + 1) * step:.2f} | {count} | {bar} |")
    return "\n".join(lines)


def without_paraphrase_table(by_task: dict) -> list[str]:
    """Card lines: per task, how many templates got no kept paraphrase and why (empty when none).

    Example:
        >>> from collections import Counter
        >>> without_paraphrase_table({"nli": Counter({"executed_instruction": 2})})[-2]
        '| nli | 2 | executed_instruction: 2 |'
    """
    if not by_task:
        return []
    rows = [f"| {task} | {sum(causes.values())} | "
            + "; ".join(f"{cause}: {n}" for cause, n in sorted(causes.items())) + " |"
            for task, causes in sorted(by_task.items())]  # fmt: skip
    return ["| task | templates without a kept paraphrase | why |", "|---|---:|---|", *rows, ""]


def failure_line(stats) -> str | None:
    """One line naming why the paraphraser failed, with the templates per cause; ``None`` when none failed.

    The cause is the backend's failure name without its per-call detail ("retries_exhausted: connection",
    "malformed_json", "executed_instruction", ...); a hint follows when every template failed the same way.

    Example:
        >>> from collections import Counter
        >>> class Stats:
        ...     templates, paraphrase_source = 4, "openai:m"
        ...     failed_templates = Counter({"retries_exhausted: connection": 2, "malformed_json": 1})
        >>> failure_line(Stats())
        'Paraphraser openai:m failed for 3 of 4 templates: retries_exhausted: connection 2, malformed_json 1.'
    """
    failed = stats.failed_templates
    total = sum(failed.values())
    if not total:
        return None
    causes = ", ".join(f"{cause} {n}" for cause, n in sorted(failed.items(), key=lambda item: (-item[1], item[0])))
    line = f"Paraphraser {stats.paraphrase_source} failed for {total} of {stats.templates} templates: {causes}."
    hints = [hint for name, hint in _FAILURE_HINTS if any(cause.startswith(name) for cause in failed)]
    return line + (" " + " ".join(hints) if hints and total == stats.templates else "")


# What to do about a cause that failed every template.
_FAILURE_HINTS = (
    ("retries_exhausted: connection", "Is the server at --base-url running?"),
    ("retries_exhausted: timeout", "The server answers slower than --timeout."),
    ("http_4", "The server rejected the requests (check --paraphraser MODEL and --base-url)."),
    ("malformed_json", "No answer could be read: try another model or --temperature."),
    ("executed_instruction", "The model answered the templates instead of rewording them: try a larger model."),
)


def without_paraphrase_summary(by_task: dict) -> str:
    """One line for the build summary: the per-task counts and causes of templates with no kept paraphrase.

    Example:
        >>> from collections import Counter
        >>> without_paraphrase_summary({"nli": Counter({"refusal": 1}), "qa": Counter({"slot_changed": 2})})
        '3 (nli 1: refusal 1; qa 2: slot_changed 2)'
        >>> without_paraphrase_summary({})
        '0'
    """
    total = sum(sum(causes.values()) for causes in by_task.values())
    if not total:
        return "0"
    parts = [f"{task} {sum(causes.values())}: " + ", ".join(f"{cause} {n}" for cause, n in sorted(causes.items()))
             for task, causes in sorted(by_task.items())]  # fmt: skip
    return f"{total} ({'; '.join(parts)})"


def summary_numbers(values: Sequence[float]) -> dict[str, float]:
    """``n, mean, min, p10, median, p90, max`` of ``values`` as numbers (``{"n": 0}`` when empty).

    Example:
        >>> summary_numbers([0.5, 1.0])
        {'n': 2, 'mean': 0.75, 'min': 0.5, 'p10': 0.5, 'median': 1.0, 'p90': 1.0, 'max': 1.0}
    """
    if not len(values):
        return {"n": 0}
    # A streamed build keeps its scores in a float32 array: sorted in numpy, not as millions of Python floats.
    ordered = np.sort(np.frombuffer(values, dtype=np.float32)) if isinstance(values, array) else sorted(values)

    def quantile(q: float) -> float:
        return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])

    return {"n": len(ordered), "mean": statistics.fmean(ordered), "min": float(ordered[0]), "p10": quantile(0.1),
            "median": quantile(0.5), "p90": quantile(0.9), "max": float(ordered[-1])}


def format_summary(numbers: Mapping[str, float]) -> str:
    """:func:`summary_numbers` as one line, three decimals.

    Example:
        >>> format_summary(summary_numbers([0.5, 1.0]))
        'n=2, mean=0.750, min=0.500, p10=0.500, median=1.000, p90=1.000, max=1.000'
    """
    return ", ".join(f"{name}={value}" if name == "n" else f"{name}={value:.3f}" for name, value in numbers.items())


def summary(values: Sequence[float]) -> str:
    """``n, mean, min, p10, median, p90, max`` of ``values`` as one line."""
    return format_summary(summary_numbers(values))


def render_card(result, split_sizes: Mapping[str, tuple[int, int]], candidate_size: tuple[int, int],
                shards: Mapping[str, int] | None = None) -> str:
    """The complete ``README.md`` for a :class:`~coin_data.build.BuildResult` (``shards``: files per split)."""
    stats, config = result.stats, result.config
    verify = config.verify
    body = [
        "# CoIN contrastive instruction pairs",
        "",
        "Pairs of prompts that ask for the same output in different words, for Contrastive Instruction Tuning "
        "(CoIN). Each row holds an instruction+input rendered with an original template "
        "(`original_instruction`), the same input under a verified paraphrase of that template "
        "(`paraphrased_instruction`), the expected output (`targets`), and a hard negative: the same "
        "template with another input whose answer differs (`negative_instruction`, `negative_targets`).",
        "",
        "Built by `coin-data build` (coin-toolkit). Load it with:",
        "",
        "```python",
        "from datasets import load_dataset",
        'pairs = load_dataset("coin-flan-paraphrased")              # this folder, or OWNER/NAME on the Hub',
        'candidates = load_dataset("coin-flan-paraphrased", "templates")  # every candidate and its verdict',
        "```",
        "",
        "## Columns",
        "",
        "| column | meaning |",
        "|---|---|",
        *[f"| `{name}` | {meaning} |" for name, meaning in _COLUMN_DOCS.items()],
        "",
        "## Build",
        "",
        f"- Source: {source_description(config)}; "
        f"tasks: {stats.tasks}; instances: {stats.instances}; templates: {stats.templates}",
        f"- Paraphraser: `{config.paraphraser}` ({stats.paraphrase_source}), "
        f"{config.paraphrases_per_template} candidate(s) per template, seed {config.seed}",
        f"- Verifier: embedding `{config.embedding_model or 'sentence-transformers/all-MiniLM-L6-v2'}`; "
        f"{verify.describe()}; near-duplicate when word overlap >= {verify.near_duplicate}; "
        f"length ratio within [{verify.min_length_ratio}, {verify.max_length_ratio}] "
        f"(when lengths differ by >= {verify.min_length_change} words)",
        f"- Split: by instance, {config.validation_fraction:.0%} of each task's instances in `validation`",
        f"- Rows: " + ", ".join(f"{split} {n}" for split, (n, _) in split_sizes.items()),
        f"- Paraphrase calls (candidates requested): {stats.paraphrase_calls} = {stats.templates} templates x "
        f"{config.paraphrases_per_template}; API requests {stats.usage.requests}; tokens in/out "
        f"{stats.usage.prompt_tokens}/{stats.usage.completion_tokens}; cost ${stats.usage.cost:.4f}",
        *([f"- API faults retried (no whole answer: status, timeout, connection, cut-off body): "
           f"{count_summary(stats.usage.faults)}; unusable answers re-asked: {count_summary(stats.usage.reasks)}"]
          if stats.usage.requests else []),
        # counted whether this run embedded them or read them from the on-disk cache: a rerun's card is the same
        f"- Unique strings embedded: {stats.embedding_strings + getattr(stats, 'embedding_from_cache', 0)}",
        "",
        "Reproduce: `coin-data build "
        + source_options(config)
        + (f"--corpus {config.corpus} " if config.corpus else "")
        + (f"--tasks {','.join(config.tasks)} " if config.tasks else "")
        + f"--paraphraser {config.paraphraser} --paraphrases-per-template {config.paraphrases_per_template} "
        + views_option(config)
        + (f"--license {config.license} " if getattr(config, "license", None) else "")
        + f"--threshold {verify.threshold} --seed {config.seed}`",
        "",
        "## Candidate verdicts",
        "",
        "Every candidate paraphrase is kept or rejected with a reason; none is dropped silently.",
        "",
        "| verdict | candidates |",
        "|---|---:|",
        *[f"| {verdict} | {count} |" for verdict, count in sorted(stats.verdicts.items())],
        "",
        f"Templates whose backend produced no candidate: {sum(stats.failed_templates.values())}"
        + "".join(f"; {reason}: {n}" for reason, n in sorted(stats.failed_templates.items())),
        f"Templates left with no kept paraphrase (no paraphrase rows): {stats.templates_without_paraphrase}",
        *([f"Templates lost (the server never answered; not in this dataset, allowed by --allow-partial): "
           f"{count_summary(stats.lost_templates)}"] if stats.lost_templates else []),
        "",
        *without_paraphrase_table(getattr(stats, "without_paraphrase_by_task", {})),
        "## Similarity of kept paraphrases",
        "",
        summary(stats.kept_similarities),
        "",
        histogram(stats.kept_similarities, low=max(0.0, min([verify.threshold, *stats.kept_similarities])), high=1.0),
        "",
        "## Hard negatives",
        "",
        "| negative_source | rows |",
        "|---|---:|",
        *[f"| {source} | {count} |" for source, count in sorted(stats.negatives.items())],
        "",
        "Cosine of the anchor's and the negative's inputs (all-MiniLM-L6-v2): "
        + summary(stats.negative_similarities),
        "",
        *induction_section(stats.induction),
        *views_section(stats, getattr(config, "perturbation_views", ())),
        *(mined_section(stats.mined, stats.mined_rejected, stats.mined_similarities, config.mining,
                        stats.mining_index) if getattr(config, "mine_negatives", False) else []),
        *license_section(config),
    ]
    return yaml_header(split_sizes, candidate_size, dataset_license(config), shards) + "\n" + "\n".join(body)


_COLUMN_DOCS = {
    schema.ID: "stable hash of (task, template_id, instance_id, paraphrase_id)",
    schema.TASK: "task name",
    schema.TEMPLATE_ID: "original template id within the task",
    schema.PARAPHRASE_ID: "which candidate paraphrase of the template (p0, p1, ...), or `perturb-<level>` for a "
    "perturbation view",
    schema.INSTANCE_ID: "the instance; rows sharing it are views of one prompt",
    schema.ORIGINAL: "prompt rendered with the original template",
    schema.PARAPHRASED: "the same instance rendered with the paraphrased template",
    schema.TARGETS: "expected output",
    schema.NEGATIVE: "same template, another instance whose answer differs (null when none exists)",
    schema.NEGATIVE_TARGETS: "the negative's expected output",
    schema.NEGATIVE_SOURCE: "`same_template`, or `none:<reason>`",
    schema.FIELDS: "JSON of the instance's template fields",
    schema.ORIGINAL_TEMPLATE: "original template with `{slots}`",
    schema.PARAPHRASED_TEMPLATE: "paraphrased template with `{slots}`",
    schema.SIMILARITY: "embedding cosine of the two templates (slots by name, options removed)",
    schema.NEGATIVE_SIMILARITY: "embedding cosine of the anchor's and the negative's inputs",
    schema.PARAPHRASE_SOURCE: "backend and model that produced the paraphrase, or `perturb:<level>` for a "
    "perturbation view (`--perturbation-views`)",
    schema.MINED_NEGATIVE: "mined negative: the nearest instruction of another task, on this row's input when its "
    "slots allow, else on an input of that task (null when not mined)",
    schema.MINED_NEGATIVE_TARGETS: "the mined negative's expected output (null when it uses this row's input: unknown)",
    schema.MINED_NEGATIVE_SIMILARITY: "embedding cosine of the two templates (below the false-negative guard)",
    schema.MINED_NEGATIVE_SOURCE: "`mined:same_instance`, `mined:other_instance`, or `none:<reason>`",
}


def license_section(config) -> list[str]:
    """The card's "License" section: which license the YAML names, and why."""
    license_id = dataset_license(config)
    source = getattr(config, "source", "embedded")
    if getattr(config, "license", None):
        text = f"`{license_id}`, as given with `--license` when the dataset was built."
    elif source == "embedded" and not config.corpus:
        text = ("`apache-2.0`: the embedded corpus was written by the coin-toolkit developers and is released "
                "under Apache-2.0.")
    elif source == "flan":
        text = ("`apache-2.0`, the license of FLAN (google-research/FLAN), whose templates and rows this data "
                "was built from; the datasets FLAN collects keep their own licenses.")
    elif source == "alpaca":
        text = ("`cc-by-nc-4.0`, the license of the Stanford Alpaca data (tatsu-lab/alpaca) this was built from: "
                "non-commercial use only.")
    else:
        text = ("`unknown`: built from the user's own data, whose license was not given. Rebuild with "
                "`--license ID` (a Hub license identifier) to state it.")
    return ["## License", "", text + " Paraphrases and negatives are derived from that data.", ""]


def source_description(config) -> str:
    """One phrase naming where the tasks came from."""
    source = getattr(config, "source", "embedded")
    if source == "embedded":
        return "embedded default corpus" if config.corpus is None else str(config.corpus)
    where = ", ".join(config.data_files) if config.data_files else (config.dataset or "the Hub")
    labels = {"flan": "FLAN-format rows (templates recovered by induction)", "templates": "templates file "
              f"`{config.templates}` applied to rows", "alpaca": "Alpaca-style rows", "hf": "column-mapped rows"}
    return f"{labels[source]} from {where}" + (f" (split {config.split})" if not config.data_files else "")


def source_options(config) -> str:
    """The ``coin-data build`` options that select the source (none for the embedded corpus), and mining.

    Example:
        >>> from types import SimpleNamespace
        >>> source_options(SimpleNamespace(source="embedded", mine_negatives=True))
        '--mine-negatives '
    """
    source = getattr(config, "source", "embedded")
    parts = [] if source == "embedded" else [f"--source {source}"]
    if source == "embedded":
        return "--mine-negatives " if getattr(config, "mine_negatives", False) else ""
    if config.templates:
        parts.append(f"--templates {config.templates}")
    parts += [f"--data-files {f}" for f in config.data_files or ()]
    if config.dataset:
        parts.append(f"--dataset {config.dataset}")
    if config.config_name:
        parts.append(f"--config-name {config.config_name}")
    if config.split != "train":
        parts.append(f"--split {config.split}")
    if config.column_map:
        parts.append("--column-map " + ",".join(f"{k}={v}" for k, v in config.column_map.items()))
    if config.max_rows:
        parts.append(f"--max-rows {config.max_rows}")
    if getattr(config, "mine_negatives", False):
        parts.append("--mine-negatives")
    return " ".join(parts) + " "


def views_option(config) -> str:
    """The ``--perturbation-views`` option of the reproduce line (empty when no views were asked for)."""
    levels = getattr(config, "perturbation_views", ())
    return f"--perturbation-views {','.join(levels)} " if levels else ""


def views_section(stats, levels) -> list[str]:
    """Card lines for perturbation views: what each level does and how many rows it added.

    Example:
        >>> from collections import Counter
        >>> from types import SimpleNamespace
        >>> stats = SimpleNamespace(perturbation_rows=Counter(word=40), perturbation_templates=Counter(word=5),
        ...                         perturbation_skipped=Counter(word=1), perturbation_similarities={"word": [0.9]})
        >>> [line for line in views_section(stats, ("word",)) if line.startswith("| word")]
        ['| word | `perturb:word` | 5 | 1 | 40 | 0.900 | 0.900 |']
    """
    if not levels:
        return []
    similarities = stats.perturbation_similarities
    lines = [
        "## Perturbation views",
        "",
        "Besides its paraphrases, each template got one seeded perturbation per level below "
        "(`coin_data.perturb`, as in `coin-data perturb`); every instance of the template has one more row "
        "with the perturbed template in `paraphrased_instruction`, the same `instance_id` (a view of the same "
        "prompt, never a negative of it) and the same hard negative. Slots, the options block, input label "
        "lines and label words are never edited. Rows follow their instance into `train` or `validation`; "
        "filter on `paraphrase_source` to drop them from either.",
        "",
        "| level | paraphrase_source | templates perturbed | templates skipped | rows | mean similarity | "
        "min similarity |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for level in levels:
        scores = similarities.get(level, [])
        mean = f"{statistics.fmean(scores):.3f}" if scores else "-"
        low = f"{min(scores):.3f}" if scores else "-"
        lines.append(f"| {level} | `perturb:{level}` | {stats.perturbation_templates[level]} | "
                     f"{stats.perturbation_skipped[level]} | {stats.perturbation_rows[level]} | {mean} | {low} |")
    lines += [
        "",
        "A template is skipped at a level when nothing there can be edited (no editable instruction word, "
        "or no synonym swap that keeps the cosine to the original >= 0.85). Similarity is the embedding "
        "cosine of the two templates (slots masked, options removed), as for paraphrases; character and "
        "sentence views are not filtered by it.",
        "",
    ]
    return lines


def _clip(text: str, limit: int = 240) -> str:
    text = text if len(text) <= limit else text[:limit] + " ..."
    return text.replace("\n", "\\n").replace("|", "\\|").replace("`", "'")


def induction_section(report) -> list[str]:
    """Card lines for FLAN template recovery: templates (exact or ambiguous), unrecovered rows with examples."""
    if report is None:
        return []
    rate = report.recovered / report.rows if report.rows else 0.0
    ambiguous = report.ambiguous_templates()
    lines = [
        "## Template induction (FLAN rows)",
        "",
        "Templates were matched against the collection's own template list where one was given "
        "(`patterns_file`), else recovered from the rendered rows (the text rows of one template share is "
        f"the instruction; the parts that vary are slots). Rows recovered exactly: {report.recovered} of "
        f"{report.rows} ({rate:.1%}); rows kept under an ambiguous template or split: {report.ambiguous} "
        f"({len(ambiguous)} ambiguous templates, listed below).",
        "",
        "| task | template | rows | method | ambiguous | recovered template |",
        "|---|---|---:|---|---|---|",
        *[f"| {e.task} | {e.template_id} | {e.rows} | {e.method} | {'yes' if e.ambiguous else 'no'} | "
          f"`{_clip(e.text, 160)}` |" for e in report.templates()],
        "",
    ]
    if ambiguous:
        lines += ["Ambiguous templates (the rows fit more than one reading; the one used is shown above):", "",
                  "| task | template | rows | why |", "|---|---|---:|---|"]
        lines += [f"| {e.task} | {e.template_id} | {e.rows} | "
                  f"{_clip('; '.join(e.notes) or f'{e.ambiguous_rows} rows split more than one way', 400)} |"
                  for e in ambiguous]
        lines.append("")
    lines += [
        "Rows whose template could not be recovered (not used, counted here):",
        "",
        "| reason | rows |",
        "|---|---:|",
        *[f"| {reason} | {n} |" for reason, n in sorted(report.unrecovered().items())],
        "",
    ]
    examples = report.examples()
    if examples:
        lines += ["Examples:", "", "| task | where | reason | inputs |", "|---|---|---|---|"]
        lines += [f"| {e.task} | {_clip(e.where, 80)} | {e.reason} | `{_clip(e.inputs)}` |" for e in examples[:30]]
        lines.append("")
    return lines


def mined_section(sources, rejected, similarities, mining, index_used: str = "") -> list[str]:
    """Card lines for mined negatives: settings, rows per source, guard rejections, similarity summary."""
    return [
        "## Mined negatives",
        "",
        "In addition to the same-template negatives, each template's nearest template of *another task* "
        "(close in wording, different in meaning) is applied to the row's own input when its slots allow "
        "(`mined:same_instance`, target unknown) or else to an input of that task (`mined:other_instance`). "
        f"False-negative guard: a candidate is rejected when its cosine to the anchor is at least "
        f"{mining.accept_threshold} (paraphrase level) or within {mining.margin} of the anchor's verified "
        "paraphrase" + (f"; cross-encoder `{mining.cross_encoder}` rescored the rest" if mining.cross_encoder else "")
        + f". Search: {index_used or mining.index}, top {mining.top_k} candidates per template.",
        "",
        "| mined_negative_source | rows |",
        "|---|---:|",
        *[f"| {source} | {n} |" for source, n in sorted(sources.items())],
        "",
        "| candidates rejected by | count |",
        "|---|---:|",
        *([f"| {rule} | {n} |" for rule, n in sorted(rejected.items())] or ["| (none) | 0 |"]),
        "",
        "Cosine of anchor and mined template: " + summary(similarities),
        "",
    ]
