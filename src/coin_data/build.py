"""The build pipeline: templates -> paraphrases -> verdicts -> rows with hard negatives -> DatasetDict.

Stages (each a small function below):

1. ``load``: read tasks and instances (the embedded corpus by default).
2. ``paraphrase``: one request per unique template asking for ``k`` candidates; cost never depends on
   the number of instances.
3. ``verify``: every candidate gets a verdict and a score (:mod:`coin_data.verify`).
4. ``perturb`` (only with ``perturbation_views``): one seeded perturbed copy of each template per level
   (:mod:`coin_data.perturb.training_views`), used like one more kept paraphrase.
5. ``assemble``: every (instance, kept paraphrase or perturbation view) becomes a row; the original
   template renders ``original_instruction``, the paraphrase ``paraphrased_instruction``; a
   same-template negative is attached (:mod:`coin_data.negatives`); instances are split into
   train/validation by group, and all rows of an instance (views included) go to its split.

No printing and no global state: progress bars appear only when asked for.

Example:
    >>> result = run_build(BuildConfig(tasks=("sentiment",), paraphrases_per_template=1))
    >>> sorted(result.dataset)
    ['train', 'validation']
    >>> result.stats.paraphrase_calls == result.stats.templates * 1
    True
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import datasets
from tqdm import tqdm

from coin_data import schema
from coin_data.assemble import TRAIN, VALIDATION, assemble, input_text, row_id, split_instances  # noqa: F401
from coin_data.negatives.same_template import stable_seed
from coin_data.negatives.search import MineConfig
from coin_data.paraphrase import ParaphraseRequest, ParaphraseResult, Usage, get_paraphraser
from coin_data.paraphrase.base import TemplatesLost
from coin_data.perturb.training_views import (
    VIEW_LEVELS,
    ViewPlan,
    check_perturbation_views,
    label_words,
)
from coin_data.sources.embedded import Corpus, TaskSpec, load_corpus_dir, load_embedded_corpus
from coin_data.templates import Template, parse_template
from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder
from coin_data.verify.verifier import KEPT, PARAPHRASE_FAILED, Verdict, VerifyConfig, verify_candidates

SOURCES = ("embedded", "templates", "flan", "alpaca", "hf")
STREAMED_CACHE_STRINGS = 100_000  # vectors a streamed build keeps (384 floats + text: about 170 MB)
STREAMED_BATCH_STRINGS = 8_192  # strings a streamed build embeds (and negative pairs it scores) at a time
SCRATCH_FOLDER = ".embeddings"  # a streamed build's own embedding store, in its partial folder (deleted)


@dataclass
class BuildConfig:
    """Everything that determines a build's output.

    Command: ``coin-data build --tasks sentiment,nli --paraphrases-per-template 2 --seed 0``
    """

    # --- source ---------------------------------------------------------------
    corpus: str | None = field(
        default=None, metadata={"help": "Folder of <task>.yaml + <task>.jsonl files. Default: the embedded corpus."}
    )
    tasks: tuple[str, ...] | None = field(default=None, metadata={"help": "Task names to build (comma-separated). Default: all."})
    source: str = field(
        default="embedded",
        metadata={"help": "'embedded' (or the --corpus folder), 'templates' (a templates file applied to rows), "
                  "'flan' (rendered FLAN rows; templates recovered by induction), 'alpaca' "
                  "(instruction/input/output rows) or 'hf' (any dataset, columns mapped onto those)."},
    )
    templates: str | None = field(
        default=None,
        metadata={"help": "Templates file: for 'templates' the tasks (YAML/JSON); for 'flan' the collection's own "
                  "template list (FLAN's templates.py, read without running it, or JSON/YAML), matched exactly "
                  "before induction."},
    )
    data_files: tuple[str, ...] | None = field(
        default=None, metadata={"help": "Local JSONL/JSON/CSV/Parquet files with the rows, instead of a Hub dataset: "
                                  "several files and glob patterns ('flan/*.jsonl', quoted) are accepted."}
    )
    dataset: str | None = field(
        default=None, metadata={"help": "Hub dataset id (streamed); for 'flan' the default is Muennighoff/flan."}
    )
    config_name: str | None = field(default=None, metadata={"help": "Config of the Hub dataset."})
    split: str = field(default="train", metadata={"help": "Split of the Hub dataset (or FLAN files) to read."})
    column_map: dict[str, str] = field(
        default_factory=dict, metadata={"help": "Our column -> theirs: {'output': 'response'}; on the command line "
                                       "'input=context,output=response' or a JSON object."}
    )
    max_rows: int | None = field(
        default=None, metadata={"help": "Read at most this many rows (per task for 'flan'). Default: all."}
    )
    license: str | None = field(
        default=None,
        metadata={"help": "License of the data for the card (a Hub license id: apache-2.0, cc-by-4.0, other ...). "
                  "Default: the source's (embedded corpus and FLAN: apache-2.0; Alpaca: cc-by-nc-4.0), else 'unknown'."},
    )
    # --- paraphrasing ---------------------------------------------------------
    paraphraser: str = field(
        default="rules", metadata={"help": "Backend spec: 'rules' (offline), 'openai:MODEL' or 'hf:MODEL'."}
    )
    paraphrases_per_template: int = field(default=2, metadata={"help": "Candidates requested per template (k)."})
    paraphraser_options: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Backend settings (e.g. base_url for openai). Never put secrets here."}
    )
    allow_partial: bool = field(
        default=False,
        metadata={"help": "Write the dataset even when templates got no answer from the server after their "
                  "retries (the card counts them; the CLI exits 3). Without it such a build stops (TemplatesLost, "
                  "exit 1) and writes nothing; a rerun asks again."},
    )
    # --- verification ---------------------------------------------------------
    verify: VerifyConfig = field(default_factory=VerifyConfig, metadata={"help": "Equivalence thresholds."})
    embedding_model: str | None = field(
        default=None, metadata={"help": "sentence-transformers model (name or folder). Default: the bundled all-MiniLM-L6-v2."}
    )
    embedding_cache: str | None = field(
        default=None,
        metadata={"help": "Folder of an on-disk embedding cache (embeddings.sqlite, keyed by model and text; safe to "
                  "share and to kill): every vector is read from it when there and written to it when new, so a "
                  "rerun embeds nothing it embedded before, and writes the same bytes. Default: none."},
    )
    # --- mined negatives (in addition to the same-template ones) ------------------
    mine_negatives: bool = field(
        default=False, metadata={"help": "Also mine, per template, the nearest instruction of another task as a negative "
                                    "(false-negative guarded, see the mining threshold)."}
    )
    mining: MineConfig = field(default_factory=MineConfig, metadata={"help": "Search and guard settings."})
    # --- perturbation views (extra positives besides the paraphrases) ---------------
    perturbation_views: tuple[str, ...] = field(
        default=(),
        metadata={"help": f"Perturbation levels ({', '.join(VIEW_LEVELS)}) whose seeded perturbation of each "
                  "template becomes one more positive row per instance (paraphrase_source 'perturb:<level>'). "
                  "Slots, the options block and label words are never edited. Comma-separated on the command line, "
                  "e.g. 'character,word,sentence'. Default: none."},
    )
    # --- split and randomness -------------------------------------------------
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Share of each task's instances placed in the validation split."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for paraphrasing and negatives."})
    scale: int = field(
        default=1, metadata={"help": "Repeat each instance this many times under new ids (benchmarks only)."}
    )
    # --- output at scale ------------------------------------------------------------
    shard_rows: int | None = field(
        default=None,
        metadata={"help": "Rows per parquet file (data/train-0000K-of-0000N.parquet). Set, the build streams: "
                  "rows are written as each shard fills, so memory stays flat however many rows there are "
                  "(not with mine_negatives, which needs every row). None: one file per split, built in memory."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.tasks, str):
            self.tasks = tuple(t.strip() for t in self.tasks.split(",") if t.strip())
        elif self.tasks is not None:
            self.tasks = tuple(self.tasks)
        if self.paraphrases_per_template < 1:
            raise ValueError(f"paraphrases_per_template must be >= 1, got {self.paraphrases_per_template}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction}")
        if self.scale < 1:
            raise ValueError(f"scale must be >= 1, got {self.scale}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if isinstance(self.data_files, str):
            self.data_files = (self.data_files,)
        elif self.data_files is not None:
            self.data_files = tuple(str(f) for f in self.data_files)
        if self.max_rows is not None and self.max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {self.max_rows}")
        self.perturbation_views = check_perturbation_views(self.perturbation_views)
        if self.shard_rows is not None and self.shard_rows < 1:
            raise ValueError(f"shard_rows must be >= 1, got {self.shard_rows}")

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready settings for the dataset card."""
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass
class BuildStats:
    """Counts and timings of one build; the dataset card is written from these."""

    tasks: int = 0
    templates: int = 0
    instances: int = 0
    paraphrase_calls: int = 0  # candidates requested = templates x k
    candidates: int = 0  # candidates returned by the backend
    verdicts: Counter = field(default_factory=Counter)
    failed_templates: Counter = field(default_factory=Counter)  # reason -> templates with no candidate
    lost_templates: Counter = field(default_factory=Counter)  # cause -> templates the server never answered
    templates_without_paraphrase: int = 0
    # task -> cause -> templates left with no kept paraphrase (backend failure, or the verdicts of all candidates)
    without_paraphrase_by_task: dict[str, Counter] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    negatives: Counter = field(default_factory=Counter)
    kept_similarities: list[float] = field(default_factory=list)
    negative_similarities: list[float] = field(default_factory=list)
    embedding_strings: int = 0  # strings sent to the embedding model
    embedding_from_cache: int = 0  # strings read from the on-disk embedding cache instead
    embedding_unique: int = 0  # distinct strings the build asked for
    embedding_requests: int = 0  # strings asked for, repeats included
    usage: Usage = field(default_factory=Usage)
    paraphrase_source: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    induction: Any = None  # coin_data.sources.flan.InductionReport for source 'flan'
    mined: Counter = field(default_factory=Counter)  # mined_negative_source -> rows
    mined_rejected: Counter = field(default_factory=Counter)  # guard rule -> candidates rejected
    mined_similarities: list[float] = field(default_factory=list)
    mining_index: str = ""
    perturbation_rows: Counter = field(default_factory=Counter)  # level -> rows added as perturbation views
    perturbation_templates: Counter = field(default_factory=Counter)  # level -> templates perturbed
    perturbation_skipped: Counter = field(default_factory=Counter)  # level -> templates it could not perturb
    perturbation_similarities: dict[str, list[float]] = field(default_factory=dict)  # level -> template cosines


@dataclass
class BuildResult:
    """The built dataset, every candidate with its verdict, and the build's stats."""

    dataset: datasets.DatasetDict
    candidates: datasets.Dataset
    stats: BuildStats
    config: BuildConfig


def build_dataset(config: BuildConfig | None = None) -> datasets.DatasetDict:
    """Build the contrastive dataset described by ``config``.

    Args:
        config: build settings; defaults build the embedded corpus with the rules paraphraser.

    Returns:
        ``DatasetDict`` with ``train`` and ``validation`` splits and the columns of :mod:`coin_data.schema`.

    Example:
        >>> ds = build_dataset(BuildConfig(tasks=("spam",), paraphrases_per_template=1))
        >>> ds["train"].column_names[:3]
        ['id', 'task', 'template_id']
    """
    return run_build(config).dataset


def run_build(config: BuildConfig | None = None, progress: bool = False, sink=None, scratch=None) -> BuildResult:
    """Run the pipeline and keep everything the card and the CLI summary need.

    Args:
        config: build settings.
        progress: show progress bars (on stderr).
        sink: ``(split, table)`` receiver of the rows as each ``config.shard_rows`` shard fills (see
            :func:`build_to_folder`); the result's ``dataset`` is then ``None``.
        scratch: with ``sink`` and no ``config.embedding_cache``, a folder for this build's own on-disk
            embeddings (vectors forgotten from memory are read back, not embedded again); the caller deletes it.
    """
    config = config or BuildConfig()
    stats = BuildStats()
    clock = _Clock(stats)
    with clock("load"):
        corpus = load_corpus(config)
    stats.induction = corpus.induction
    paraphraser = get_paraphraser(config.paraphraser, **config.paraphraser_options)
    stats.paraphrase_source = paraphraser.name
    requests = paraphrase_requests(corpus, config)
    with clock("paraphrase"):
        with tqdm(total=len(requests), desc="paraphrase", unit="template", disable=not progress) as bar:
            results = paraphraser.paraphrase(requests, progress=bar.update)
    lost = Counter(result.failure for result in results if result.lost)
    if lost and not config.allow_partial:
        raise TemplatesLost(lost, len(results))
    cache = embedding_cache(config, streamed=sink is not None, progress=progress, scratch=scratch)
    with clock("verify"):
        kept, candidates = verify_results(results, cache, config, stats, progress)
    views = ViewPlan()
    if config.perturbation_views:
        with clock("perturb"):
            views = perturbation_views(corpus, cache, config, stats)
    with clock("assemble"):
        dataset = assemble(corpus, kept, cache, config, stats, progress, views, sink)
    stats.embedding_strings = cache.strings_embedded
    stats.embedding_from_cache = cache.strings_from_store
    stats.embedding_unique = cache.unique_strings
    stats.embedding_requests = cache.strings_requested
    stats.seconds["embedding"] = round(cache.seconds, 3)
    if cache.store is not None:
        cache.store.close()
    return BuildResult(dataset=dataset, candidates=candidates, stats=stats, config=config)


def embedding_cache(config: BuildConfig, streamed: bool = False, progress: bool = False,
                    scratch=None) -> EmbeddingCache:
    """The build's :class:`EmbeddingCache`: over ``config.embedding_cache`` on disk when given; bounded when streamed.

    A streamed build keeps at most :data:`STREAMED_CACHE_STRINGS` vectors in memory and embeds at most
    :data:`STREAMED_BATCH_STRINGS` strings at a time: inputs that never repeat (a real collection) would
    otherwise keep one vector per row. What it forgets is read back from disk: from ``config.embedding_cache``,
    else from a store in ``scratch`` (when given), so every distinct string is still embedded once.

    Example:
        >>> embedding_cache(BuildConfig(), streamed=True).max_strings == STREAMED_CACHE_STRINGS
        True
    """
    embedder = SentenceTransformerEmbedder(config.embedding_model, progress=progress)
    store = None
    folder = config.embedding_cache or (scratch if streamed else None)
    if folder:
        from coin_data.verify.embedding_store import EmbeddingStore

        store = EmbeddingStore(folder, embedder.name)
    if not streamed:
        return EmbeddingCache(embedder, store=store)
    return EmbeddingCache(embedder, STREAMED_CACHE_STRINGS, store, STREAMED_BATCH_STRINGS)


def build_to_folder(config: BuildConfig | None, out, overwrite: bool = False, progress: bool = False) -> BuildResult:
    """Build ``config`` into the folder ``out`` (Hub layout), streaming rows to disk when ``shard_rows`` is set.

    An existing ``out`` is refused before any work (unless ``overwrite``). The folder appears only
    complete: rows go into a hidden partial folder beside ``out`` that is renamed into place at the end,
    and deleted if the build fails. A streamed result's ``dataset`` reads the written files lazily (an
    ``IterableDatasetDict``); otherwise it is the in-memory ``DatasetDict``.

    Args:
        config: build settings (``None``: the defaults).
        out: destination folder.
        overwrite: replace an existing folder once the new one is complete.
        progress: show progress bars (on stderr).

    Returns:
        The :class:`BuildResult`.

    Raises:
        OutputExistsError: ``out`` exists and ``overwrite`` is false (raised at once, before building).

    Example:
        >>> result = build_to_folder(BuildConfig(tasks=("spam",), shard_rows=50), "/tmp/spam")  # doctest: +SKIP
        >>> sorted(p.name for p in Path("/tmp/spam/data").iterdir())[:2]                      # doctest: +SKIP
        ['train-00000-of-00004.parquet', 'train-00001-of-00004.parquet']
    """
    import shutil

    from coin_data.hub.layout import ShardWriter, check_output, check_rows, complete_folder, new_partial, write_dataset

    config = config or BuildConfig()
    out = check_output(out, overwrite).absolute()
    if not config.shard_rows or config.mine_negatives:
        result = run_build(config, progress)
        write_dataset(result, out, overwrite)
        return result
    partial = new_partial(out)
    try:
        writer = ShardWriter(partial)
        result = run_build(config, progress, sink=writer, scratch=partial / SCRATCH_FOLDER)
        shutil.rmtree(partial / SCRATCH_FOLDER, ignore_errors=True)
        check_rows(result, out, result.stats.rows.get(TRAIN, 0))
        complete_folder(result, writer, partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    result.dataset = _read_back(out)
    return result


def _read_back(out) -> datasets.IterableDatasetDict:
    """The written default config, read lazily (nothing loaded into memory)."""
    from coin_data.hub.card import DEFAULT_CONFIG, split_files

    files = {split: [str(p) for p in split_files(out, DEFAULT_CONFIG, split)] for split in (TRAIN, VALIDATION)}
    return datasets.load_dataset("parquet", data_files={s: f for s, f in files.items() if f}, streaming=True)


# --- stage 1: load -------------------------------------------------------------


def load_corpus(config: BuildConfig) -> Corpus:
    """Read the corpus named by ``config`` (its ``source``) and apply ``scale``."""
    from coin_data import sources

    rows = dict(data_files=sources.expand_data_files(config.data_files), dataset=config.dataset, config_name=config.config_name,
                split=config.split, column_map=config.column_map, max_rows=config.max_rows)
    if config.source == "flan":
        from coin_data.sources.flan import load_flan_corpus

        corpus = load_flan_corpus(tasks=config.tasks, templates=config.templates, **rows)
    elif config.source == "templates":
        if not config.templates:
            raise sources.CorpusError("source 'templates' needs a templates file (--templates FILE)")
        specs = sources.load_templates_file(config.templates)
        corpus = sources.templates_corpus(specs, sources.external_rows(**rows), config.tasks)
    elif config.source in ("alpaca", "hf"):
        if config.source == "alpaca" and not config.data_files and not config.dataset:
            rows["dataset"] = sources.ALPACA_DATASET
        prefix = "alpaca" if config.source == "alpaca" else "hf"
        corpus = sources.alpaca_corpus(sources.external_rows(**rows), prefix=prefix)
    elif config.corpus is None:
        corpus = load_embedded_corpus(config.tasks)
    else:
        corpus = load_corpus_dir(config.corpus, config.tasks)
    return corpus.scaled(config.scale)


# --- stage 2: paraphrase --------------------------------------------------------


def paraphrase_requests(corpus: Corpus, config: BuildConfig) -> list[ParaphraseRequest]:
    """One request per unique training template, with the task's label words protected."""
    requests = []
    for spec in corpus.tasks.values():
        protected = _label_words(spec)
        for template in spec.templates:
            seed = stable_seed(config.seed, spec.name, template.template_id) % (2**31)
            requests.append(ParaphraseRequest(template, config.paraphrases_per_template, protected, seed))
    return requests


def estimate_paraphrasing(config: BuildConfig):
    """What the paraphrase stage of ``config`` would spend, without calling anything (``--dry-run``).

    Backends with an ``estimate(requests)`` method (``openai``) count cached requests as free and
    estimate tokens and cost; for the others every template is one local call at no cost.

    Args:
        config: build settings.

    Returns:
        A :class:`~coin_data.paraphrase.prompt.CallEstimate`.

    Example:
        >>> estimate_paraphrasing(BuildConfig(tasks=("sentiment",), paraphraser="openai:m",
        ...                                   paraphraser_options={"cache_dir": ""})).calls
        6
    """
    from coin_data.paraphrase.prompt import CallEstimate

    requests = paraphrase_requests(load_corpus(config), config)
    paraphraser = get_paraphraser(config.paraphraser, **config.paraphraser_options)
    estimate = getattr(paraphraser, "estimate", None)
    if estimate is not None:
        return estimate(requests)
    return CallEstimate(templates=len(requests), unique=len(requests), cached=0, calls=len(requests),
                        prompt_tokens=0, completion_tokens=0)


def _label_words(spec: TaskSpec) -> tuple[str, ...]:
    return label_words(spec.options)


# --- stage 3: verify -------------------------------------------------------------


@dataclass(frozen=True)
class KeptParaphrase:
    """A verified paraphrase of one template."""

    template: Template
    paraphrase: Template
    paraphrase_id: str
    similarity: float
    source: str


def verify_results(
    results: Sequence[ParaphraseResult], cache: EmbeddingCache, config: BuildConfig, stats: BuildStats,
    progress: bool = False,
) -> tuple[dict[tuple[str, str], list[KeptParaphrase]], datasets.Dataset]:
    """Verify every candidate; return kept paraphrases per template and the table of all candidates.

    With ``progress``, a bar of verified candidates (and the embedding model's batch bar) goes to stderr.
    """
    pairs = [(r.request.template, c) for r in results for c in r.candidates[: r.request.k]]
    with tqdm(total=len(pairs), desc="verify", unit="candidate", disable=not progress) as bar:
        verdicts = iter(verify_candidates(pairs, cache, config.verify, progress=bar.update))
    kept: dict[tuple[str, str], list[KeptParaphrase]] = defaultdict(list)
    table: dict[str, list] = {name: [] for name in schema.CANDIDATE_COLUMNS}
    for result in results:
        template = result.request.template
        stats.templates += 1
        stats.paraphrase_calls += result.request.k
        stats.usage.add(result.usage)
        if result.failure and not result.candidates:
            (stats.lost_templates if result.lost else stats.failed_templates)[result.failure] += 1
            _add_candidate(table, template, "", "", Verdict(PARAPHRASE_FAILED, result.failure), result.source)
        given = []  # the verdicts of this template's candidates
        for index, text in enumerate(result.candidates[: result.request.k]):
            verdict = next(verdicts)
            given.append(verdict.verdict)
            stats.candidates += 1
            stats.verdicts[verdict.verdict] += 1
            paraphrase_id = f"p{index}"
            _add_candidate(table, template, paraphrase_id, text, verdict, result.source)
            if verdict.verdict == KEPT:
                stats.kept_similarities.append(verdict.similarity)
                kept[result.request.key].append(
                    KeptParaphrase(
                        template,
                        parse_template(text, template.task, template.template_id),
                        paraphrase_id,
                        verdict.similarity,
                        result.source,
                    )
                )
        if not kept.get(result.request.key):
            stats.templates_without_paraphrase += 1
            cause = no_paraphrase_cause(result, given)
            stats.without_paraphrase_by_task.setdefault(template.task, Counter())[cause] += 1
    return kept, datasets.Dataset.from_dict(table, features=schema.CANDIDATE_FEATURES)


def no_paraphrase_cause(result: ParaphraseResult, verdicts: Sequence[str]) -> str:
    """Why a template has no kept paraphrase: the backend's failure, or the verdicts its candidates got.

    Example:
        >>> from coin_data.paraphrase import ParaphraseRequest
        >>> request = ParaphraseRequest(parse_template("Q: {q}"), k=2)
        >>> no_paraphrase_cause(ParaphraseResult(request, ["a {q}", "b {q}"], "rules"), ["too_similar", "not_equivalent"])
        'all candidates rejected (not_equivalent, too_similar)'
        >>> no_paraphrase_cause(ParaphraseResult(request, [], "hf:m", failure="executed_instruction"), [])
        'executed_instruction'
    """
    if not result.candidates:
        return result.failure or "no candidate"
    return f"all candidates rejected ({', '.join(sorted(set(verdicts)))})"


def _add_candidate(table: dict, template: Template, paraphrase_id: str, text: str, verdict: Verdict, source: str) -> None:
    table[schema.TASK].append(template.task)
    table[schema.TEMPLATE_ID].append(template.template_id)
    table[schema.PARAPHRASE_ID].append(paraphrase_id)
    table[schema.ORIGINAL_TEMPLATE].append(template.text)
    table[schema.CANDIDATE].append(text)
    table[schema.SIMILARITY].append(None if verdict.similarity != verdict.similarity else verdict.similarity)
    table[schema.VERDICT].append(verdict.verdict)
    table[schema.REASON].append(verdict.reason)
    table[schema.PARAPHRASE_SOURCE].append(source)


# --- stage 4 (optional): perturbation views ----------------------------------------


def perturbation_views(corpus: Corpus, cache: EmbeddingCache, config: BuildConfig, stats: BuildStats) -> ViewPlan:
    """Seeded perturbations of every template at ``config.perturbation_views``, counted into ``stats``.

    Example:
        >>> config = BuildConfig(tasks=("sentiment",), perturbation_views=("sentence",))
        >>> plan = perturbation_views(load_corpus(config), cache, config, BuildStats())  # doctest: +SKIP
        >>> plan.get(("sentiment", "t0"))[0].paraphrase_id                               # doctest: +SKIP
        'perturb-sentence'
    """
    from coin_data.perturb.training_views import plan_perturbation_views

    plan = plan_perturbation_views(corpus.tasks.values(), config.perturbation_views, config.seed, cache)
    stats.perturbation_skipped.update(plan.skipped)
    for views in plan.views.values():
        for view in views:
            stats.perturbation_templates[view.level] += 1
            stats.perturbation_similarities.setdefault(view.level, []).append(view.similarity)
    return plan


# --- stage 5: assemble (coin_data.assemble) ------------------------------------------------


class _Clock:
    """Record the wall time of each stage into ``stats.seconds``."""

    def __init__(self, stats: BuildStats):
        self.stats = stats

    def __call__(self, stage: str) -> "_Clock":
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.stats.seconds[self._stage] = round(time.perf_counter() - self._start, 3)
