"""``coin-data``: build, check and publish contrastive instruction datasets.

A thin layer over the Python API: every command parses options, calls one library function, and prints
a short summary. Errors in the input become one clear line and a non-zero exit code.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from pathlib import Path

import click

from coin_data import schema
from coin_data.build import SOURCES, BuildConfig
from coin_data.config_options import SeveralValues, config_field, config_option, field_default, shared_option
from coin_data.negatives.search import INDEXES, MineConfig
from coin_data.paraphrase.hf import HFOptions
from coin_data.paraphrase.openai_backend import OpenAIOptions
from coin_data.perturb.levels import PerturbConfig
from coin_data.verify.verifier import VerifyConfig

DEFAULT_OUT = "coin-flan-paraphrased"
# The settings of each paraphraser backend (BuildConfig.paraphraser_options); 'rules' takes none.
BACKEND_CONFIGS = {"openai": OpenAIOptions, "hf": HFOptions}
# Exit code of a build written with --allow-partial that lost templates (1: error, 2: usage error).
EXIT_PARTIAL = 3


def one_line_errors(expected: tuple[type[BaseException], ...], settings: tuple[type[BaseException], ...] = ()):
    """Decorator factory: ``expected`` errors become ``Error: <message>``, ``settings`` errors (config
    ``__post_init__`` checks) ``Error: invalid setting: <message>``; exit code 1 and no traceback.

    The one mechanism behind both CLIs (``coin-train`` passes its own error types).

    Example:
        >>> @one_line_errors((FileNotFoundError,))
        ... def command(): raise FileNotFoundError("data.jsonl: no such file")
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except expected as err:
                message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)  # no repr quotes
                message = getattr(err, "cli_message", message)  # the CLI's flags, not the Python arguments
                raise click.ClickException(str(message)) from None
            except settings as err:
                raise click.ClickException(f"invalid setting: {err}") from None

        return wrapper

    return decorate


def friendly_errors(func):
    """Turn the library's input errors into ``Error: <message>`` and exit code 1 (no traceback)."""
    from coin_data.hub.layout import EmptyDatasetError, OutputExistsError
    from coin_data.hub.publish import PublishError
    from coin_data.paraphrase import ParaphraserError
    from coin_data.sources.embedded import CorpusError
    from coin_data.templates import TemplateError
    from coin_data.verify.files import VerifyInputError

    expected = (
        CorpusError, TemplateError, OutputExistsError, EmptyDatasetError, VerifyInputError, ParaphraserError, PublishError,
        schema.SchemaError,
    )
    # ValueError: invalid settings caught by config __post_init__
    return one_line_errors(expected, settings=(ValueError,))(func)


def _backends_with(name: str) -> dict[str, type]:
    """The backends whose settings have the field ``name`` (the only ones a `build` option of that name fits)."""
    return {backend: cls for backend, cls in BACKEND_CONFIGS.items()
            if name in {f.name for f in dataclasses.fields(cls)}}


def backend_option(name: str, **click_kwargs):
    """A `build` option for the backend setting ``name``: unset unless given, help from the backends' fields."""
    return shared_option(_backends_with(name), name, **click_kwargs)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="coin-toolkit")
def main() -> None:
    """Build contrastive instruction datasets for CoIN (Contrastive Instruction Tuning).

    \b
    Quick start (offline, embedded corpus):
      coin-data build                       # -> ./coin-flan-paraphrased/
      python -c 'import datasets; print(datasets.load_dataset("coin-flan-paraphrased"))'
      coin-data stats coin-flan-paraphrased
      coin-data publish coin-flan-paraphrased --repo-id ORG/coin-flan-paraphrased --dry-run
    """
    from coin_data.verify.embedding import passive_thread_wait

    passive_thread_wait()  # before any command loads torch: idle threads sleep instead of spinning


@main.command()
@click.option("--out", default=DEFAULT_OUT, show_default=True, type=click.Path(file_okay=False),
              help="Output folder (Hub layout: data/*.parquet + README.md).")
@config_option(BuildConfig, "corpus", type=click.Path(exists=True, file_okay=False))
@config_option(BuildConfig, "tasks")
@config_option(BuildConfig, "source", type=click.Choice(SOURCES))
@config_option(BuildConfig, "templates", "--templates", "templates_file", type=click.Path(exists=True, dir_okay=False))
@config_option(BuildConfig, "data_files", cls=SeveralValues, multiple=True, metavar="FILE|GLOB")
@config_option(BuildConfig, "dataset")
@config_option(BuildConfig, "config_name")
@config_option(BuildConfig, "split")
@config_option(BuildConfig, "column_map", type=str)
@config_option(BuildConfig, "max_rows", type=click.IntRange(min=1))
@config_option(BuildConfig, "license", "--license", "license_id", metavar="ID")
@config_option(BuildConfig, "mine_negatives")
@config_option(MineConfig, "accept_threshold", "--mine-threshold", "mine_threshold",
               type=click.FloatRange(-1, 1))
@config_option(BuildConfig, "perturbation_views", metavar="LEVELS")
@config_option(BuildConfig, "paraphraser")
@config_option(BuildConfig, "paraphrases_per_template", "-k", "--paraphrases-per-template", "k",
               type=click.IntRange(min=1))
@config_option(VerifyConfig, "threshold")
@config_option(BuildConfig, "validation_fraction")
@config_option(BuildConfig, "embedding_model")
@config_option(BuildConfig, "embedding_cache", type=click.Path(file_okay=False), metavar="DIR")
@config_option(BuildConfig, "seed")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists (only once the new build is complete).")
@config_option(BuildConfig, "shard_rows", type=click.IntRange(min=1))
@config_option(BuildConfig, "scale", type=click.IntRange(min=1), hidden=True)
@backend_option("base_url")
@backend_option("cache_dir")
@backend_option("concurrency", type=click.IntRange(min=1))
@backend_option("rpm", type=click.FloatRange(min=0, min_open=True))
@backend_option("timeout", type=click.FloatRange(min=0, min_open=True))
@backend_option("max_retries", type=click.IntRange(min=0))
@config_option(BuildConfig, "allow_partial")
@backend_option("price_in", type=click.FloatRange(min=0))
@backend_option("price_out", type=click.FloatRange(min=0))
@backend_option("max_cost", type=click.FloatRange(min=0))
@backend_option("max_calls", type=click.IntRange(min=0))
@backend_option("temperature", type=click.FloatRange(min=0))
@backend_option("samples", type=click.IntRange(min=0))
@click.option("--dry-run", is_flag=True, help="Print the calls, tokens and cost paraphrasing would need; run nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no summary.")
@friendly_errors
def build(out, corpus, tasks, paraphraser, k, threshold, validation_fraction, embedding_model, seed, overwrite,
          scale, shard_rows, quiet, dry_run, perturbation_views, license_id, allow_partial, **backend_values):
    """Paraphrase templates, verify them, mine hard negatives, and write the dataset.

    \b
    Example:
      coin-data build --tasks sentiment,nli -k 2 --seed 0 --out coin-flan-paraphrased
      OPENAI_API_KEY=... coin-data build --paraphraser openai:gpt-4o-mini --price-in 0.15 --price-out 0.6 \\
        --max-cost 1 --dry-run
      coin-data build --paraphraser openai:smollm2 --base-url http://127.0.0.1:8080/v1 --rpm 120
      coin-data build --paraphraser hf:smollm2      # offline, bundled SmolLM2-135M-Instruct
      coin-data build --source flan --data-files 'flan/rte_10templates/*.jsonl' --mine-negatives
      coin-data build --source flan --tasks rte,cola        # reads Muennighoff/flan from the Hub
      coin-data build --source flan --tasks rte,cola --templates templates.py   # FLAN's own template list first
      coin-data build --source alpaca --data-files alpaca.json --max-rows 2000
      coin-data build --source hf --dataset databricks/databricks-dolly-15k \\
        --column-map input=context,output=response
      coin-data build --source templates --templates tasks.yaml --data-files rows.csv
      coin-data build --tasks sentiment --perturbation-views character,word,sentence
      coin-data build --shard-rows 100000 --embedding-cache ~/.cache/coin-toolkit/embeddings  # large builds
    """
    from coin_data.build import build_to_folder, estimate_paraphrasing
    from coin_data.hub.layout import check_output
    from coin_data.paraphrase.base import lost_line
    from coin_data.sources.rows import parse_column_map

    # source and mining options arrive with the backend options (**backend_values): take them out first
    source_values = {name: backend_values.pop(name) for name in _SOURCE_OPTIONS}
    embedding_cache = backend_values.pop("embedding_cache")  # a build option, not a backend's

    if not dry_run:
        check_output(out, overwrite)
    config = BuildConfig(
        corpus=corpus,
        tasks=tasks,
        paraphraser=paraphraser,
        paraphrases_per_template=k,
        paraphraser_options=backend_options(paraphraser, backend_values),
        verify=VerifyConfig(threshold=threshold),
        embedding_model=embedding_model,
        embedding_cache=embedding_cache,
        validation_fraction=validation_fraction,
        seed=seed,
        scale=scale,
        shard_rows=shard_rows,
        source=source_values["source"],
        templates=source_values["templates_file"],
        data_files=source_values["data_files"] or None,
        dataset=source_values["dataset"],
        config_name=source_values["config_name"],
        split=source_values["split"],
        column_map=parse_column_map(source_values["column_map"]),
        max_rows=source_values["max_rows"],
        mine_negatives=source_values["mine_negatives"],
        mining=MineConfig(accept_threshold=source_values["mine_threshold"]),
        perturbation_views=perturbation_views,
        license=license_id,
        allow_partial=allow_partial,
    )
    if dry_run:
        click.echo(estimate_summary(estimate_paraphrasing(config), config))
        return
    result = build_to_folder(config, out, overwrite=overwrite, progress=not quiet)
    if not quiet:
        click.echo(build_summary(result, Path(out).absolute()))
    if result.stats.lost_templates:  # only with --allow-partial: without it the build raised TemplatesLost
        click.echo(f"Partial dataset: {lost_line(result.stats.lost_templates, result.stats.templates)}", err=True)
        sys.exit(EXIT_PARTIAL)


_SOURCE_OPTIONS = ("source", "templates_file", "data_files", "dataset", "config_name", "split", "column_map",
                   "max_rows", "mine_negatives", "mine_threshold")

# Which `build` options each backend takes; anything else given for it is a usage error.
def backend_options(paraphraser: str, values: dict) -> dict:
    """The ``paraphraser_options`` for ``paraphraser`` from the given CLI values (``None`` = not given).

    Never holds secrets: the API key is read from the environment by the backend itself.

    Example:
        >>> backend_options("openai:m", {"rpm": 60.0, "timeout": None, "cache_dir": None})
        {'rpm': 60.0, 'cache_dir': '.coin-cache'}
    """
    backend = paraphraser.partition(":")[0]
    given = {name: value for name, value in values.items() if value is not None}
    for name in given:
        if backend not in _backends_with(name):
            users = list(_backends_with(name))
            raise click.UsageError(
                f"--{name.replace('_', '-')} applies to --paraphraser {' / '.join(u + ':MODEL' for u in users)}, "
                f"not {paraphraser!r}"
            )
    if backend in _backends_with("cache_dir"):  # recorded in the card's settings even when not given
        given.setdefault("cache_dir", field_default(config_field(BACKEND_CONFIGS[backend], "cache_dir")))
    return given


def estimate_summary(estimate, config) -> str:
    """What ``coin-data build --dry-run`` prints."""
    options = config.paraphraser_options
    prices = ""
    if options.get("price_in") or options.get("price_out"):
        prices = f" at ${options.get('price_in', 0):g} in / ${options.get('price_out', 0):g} out per million tokens"
    lines = [
        f"Dry run of --paraphraser {config.paraphraser}: nothing was called or written.",
        f"  templates              {estimate.templates} ({estimate.unique} distinct requests, {estimate.cached} cached)",
        f"  API calls needed       {estimate.calls} (at least; re-asks and retries come on top)",
        f"  estimated tokens       ~{estimate.prompt_tokens} in, ~{estimate.completion_tokens} out",
        f"  estimated cost         ~${estimate.cost:.4f}{prices}",
    ]
    if options.get("max_calls") is not None or options.get("max_cost") is not None:
        lines.append(f"  budget                 max calls {options.get('max_calls', '-')}, "
                     f"max cost {options.get('max_cost', '-')}")
    return "\n".join(lines)


def induction_summary(report) -> str:
    """The build summary's line on FLAN template recovery: exact rows, and ambiguous templates by name.

    Example:
        >>> from coin_data.sources.flan import InductionReport, TaskInduction
        >>> from coin_data.sources.flan_assemble import RecoveredTemplate
        >>> info = TaskInduction("rte", rows=12, recovered=8, ambiguous=4)
        >>> info.templates.append(RecoveredTemplate("rte", "t1", "{a}?", 4, notes=("slot 1: '?' ...",)))
        >>> induction_summary(InductionReport({"rte": info}))
        '8 of 12 exactly; 4 rows under 1 ambiguous template (rte/t1; see the card)'
    """
    text = f"{report.recovered} of {report.rows} exactly"
    ambiguous = report.ambiguous_templates()
    if ambiguous:
        names = ", ".join(f"{e.task}/{e.template_id}" for e in ambiguous[:8]) + (" ..." if len(ambiguous) > 8 else "")
        plural = "s" if len(ambiguous) > 1 else ""
        text += f"; {report.ambiguous} rows under {len(ambiguous)} ambiguous template{plural} ({names}; see the card)"
    return text


def build_summary(result, path: Path) -> str:
    """The closing table printed by ``coin-data build``."""
    from coin_data.counts import count_summary
    from coin_data.hub.card import failure_line, without_paraphrase_summary

    stats = result.stats
    kept = stats.verdicts.get("kept", 0)
    rejected = ", ".join(f"{v} {n}" for v, n in sorted(stats.verdicts.items()) if v != "kept") or "none"
    lines = [
        ("tasks / instances", f"{stats.tasks} / {stats.instances}"),
        ("templates", str(stats.templates)),
        ("paraphrase calls", f"{stats.paraphrase_calls} ({stats.templates} templates x {result.config.paraphrases_per_template})"),
        ("candidates kept", f"{kept} of {stats.candidates}"),
        ("rejected", rejected),
        ("templates failed", str(sum(stats.failed_templates.values()))
         + "".join(f"; {reason} {n}" for reason, n in sorted(stats.failed_templates.items()))),
        *([("templates lost", count_summary(stats.lost_templates))] if stats.lost_templates else []),
        ("no paraphrase", without_paraphrase_summary(getattr(stats, "without_paraphrase_by_task", {}))),
        ("api usage", f"{stats.usage.requests} requests, tokens in/out {stats.usage.prompt_tokens}/"
         f"{stats.usage.completion_tokens}, ${stats.usage.cost:.4f}"),
        *([("api faults retried", count_summary(stats.usage.faults)),
           ("answers re-asked", count_summary(stats.usage.reasks))] if stats.usage.requests else []),
        ("rows", ", ".join(f"{split} {n}" for split, n in stats.rows.items())),
        ("hard negatives", ", ".join(f"{s} {n}" for s, n in sorted(stats.negatives.items()))),
        *([("mined negatives", ", ".join(f"{s} {n}" for s, n in sorted(stats.mined.items())))]
          if stats.mined else []),
        *([("perturbation views", ", ".join(f"{level} {stats.perturbation_rows[level]}"
                                            for level in result.config.perturbation_views))]
          if result.config.perturbation_views else []),
        *([("flan rows recovered", induction_summary(stats.induction))] if stats.induction is not None else []),
        ("strings embedded", str(stats.embedding_strings)
         + (f" (+{stats.embedding_from_cache} from the embedding cache)" if stats.embedding_from_cache else "")),
        ("seconds", ", ".join(f"{stage} {s:.1f}" for stage, s in stats.seconds.items())),
    ]
    width = max(len(name) for name, _ in lines)
    table = "\n".join(f"  {name.ljust(width)}  {value}" for name, value in lines)
    parent = path.parent
    failed = failure_line(stats)
    return (
        f"\nWrote {path}\n{table}\n\nNext:\n"
        f"  cd {parent} && python -c 'import datasets; print(datasets.load_dataset(\"{path.name}\"))'\n"
        f"  coin-data stats {path}"
        + (f"\n\n{failed}" if failed else "")  # last, where it is seen: the build half-failed
    )


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--out", help="Output folder (default: FOLDER-mined beside the input).")
@config_option(MineConfig, "top_k", type=click.IntRange(min=1))
@config_option(MineConfig, "accept_threshold", "--threshold", "threshold", type=click.FloatRange(-1, 1))
@config_option(MineConfig, "margin", type=click.FloatRange(min=0))
@config_option(MineConfig, "index", type=click.Choice(INDEXES))
@config_option(MineConfig, "cross_encoder")
@config_option(BuildConfig, "embedding_model")
@config_option(BuildConfig, "seed", help="Seeds the choice of another task's input.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists (FOLDER itself with --out FOLDER).")
@friendly_errors
def mine(folder, out, top_k, threshold, margin, index, cross_encoder, embedding_model, seed, overwrite):
    """Add mined hard negatives to a built dataset: per template, the nearest instruction of another task.

    A candidate is rejected when it is as similar as a paraphrase (--threshold) or within --margin of the
    template's verified paraphrase; scores and reasons go into the mined_negative_* columns and the card.

    \b
    Example:
      coin-data mine coin-flan-paraphrased --out coin-flan-mined --top-k 10 --margin 0.05
    """
    from coin_data.hub.remine import mine_dataset
    from coin_data.negatives.guard import CrossEncoderRescorer

    out = out or str(Path(folder).with_name(Path(folder).name + "-mined"))
    config = MineConfig(top_k=top_k, accept_threshold=threshold, margin=margin, index=index,
                        cross_encoder=cross_encoder)
    rescorer = CrossEncoderRescorer(cross_encoder) if cross_encoder else None
    report = mine_dataset(folder, out, config, embedding_model, seed, overwrite, rescorer)
    rejected = ", ".join(f"{rule} {n}" for rule, n in sorted(report.rejected.items())) or "none"
    click.echo(f"Wrote {report.out}: " + ", ".join(f"{s} {n}" for s, n in sorted(report.sources.items()))
               + f"; candidates rejected: {rejected}; search {report.index_used}; {report.seconds:.1f} s")


@main.command()
@click.argument("in_path", metavar="[IN.jsonl]", type=click.Path(dir_okay=False), required=False)
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Output JSONL (default: IN.verified.jsonl beside the input; with --report, none unless given).")
@click.option("--report", is_flag=True,
              help="Score the verdicts against each row's \"label\" (equivalent/changed): accuracy, precision/recall "
              "of kept, and a confusion table by \"kind\". Without IN.jsonl: the project's labelled set.")
@click.option("--split", help="With --report: score only rows whose \"split\" is this (e.g. heldout).")
@click.option("--json", "as_json", is_flag=True, help="With --report: print the report as JSON.")
@config_option(VerifyConfig, "signals")
@config_option(VerifyConfig, "threshold")
@config_option(BuildConfig, "embedding_model")
@config_option(VerifyConfig, "combiner_path", "--combiner", "combiner_path", type=click.Path(exists=True, dir_okay=False))
@config_option(VerifyConfig, "nli_model", tag="[optional signal]")
@config_option(VerifyConfig, "nli_threshold", type=click.FloatRange(0, 1))
@config_option(VerifyConfig, "judge", tag="[optional signal]")
@config_option(VerifyConfig, "judge_base_url")
@config_option(VerifyConfig, "behaviour_model", tag="[optional signal]")
@config_option(VerifyConfig, "behaviour_probes", type=click.IntRange(min=1))
@friendly_errors
def verify(in_path, out_path, report, split, as_json, signals, threshold, embedding_model, combiner_path, nli_model,
           nli_threshold, judge, judge_base_url, behaviour_model, behaviour_probes):
    """Check candidate paraphrases: add verdict, reason, similarity and per-signal scores to each row.

    Each input line is a JSON object with "original" and "paraphrase" (instructions, optionally with
    {slots}); other keys are passed through. Offline by default (embedding + WordNet diff + combiner);
    --nli-model, --judge and --behaviour-model add stronger signals.

    \b
    Example:
      coin-data verify pairs.jsonl --out checked.jsonl
      coin-data verify --report --split heldout            # the project's labelled set
      coin-data verify labelled.jsonl --report --nli-model cross-encoder/nli-deberta-v3-base
    """
    from coin_data.text.wordnet import WordNetMissingError
    from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder

    config = VerifyConfig(
        signals=signals, threshold=threshold, combiner_path=combiner_path, nli_model=nli_model,
        nli_threshold=nli_threshold, judge=judge, judge_base_url=judge_base_url, behaviour_model=behaviour_model,
        behaviour_probes=behaviour_probes,
    )
    cache = EmbeddingCache(SentenceTransformerEmbedder(embedding_model))
    try:
        _verify_run(in_path, out_path, report, split, as_json, config, cache)
    except WordNetMissingError as err:
        raise click.ClickException(f"{err}\n(or run without the WordNet diff: --signals embedding)") from None


def _verify_run(in_path, out_path, report, split, as_json, config, cache) -> None:
    """The body of ``coin-data verify`` (split out so that a missing WordNet becomes one clear error)."""
    from coin_data.verify.benchmark import labelled_pairs_path, report_file
    from coin_data.verify.files import verify_file

    if report:
        path = in_path or labelled_pairs_path()
        result = report_file(path, cache, config, split=split, out_path=out_path)
        if as_json:
            click.echo(json.dumps({"file": str(path), "split": split, "verifier": config.describe(),
                                   **result.to_dict()}, indent=2))
        else:
            click.echo(f"{path}{f' (split {split})' if split else ''}\nverifier: {config.describe()}\n")
            click.echo(result.format())
        return
    if in_path is None:
        raise click.UsageError("give IN.jsonl (only --report has a default: the project's labelled set)")
    if split:
        raise click.UsageError("--split applies to --report")
    out_path = out_path or str(Path(in_path).with_suffix("")) + ".verified.jsonl"
    counts = verify_file(in_path, out_path, cache, config)
    total = sum(counts.values())
    click.echo(f"Wrote {out_path}: {total} rows; " + ", ".join(f"{v} {n}" for v, n in counts.most_common()))


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@friendly_errors
def stats(folder, as_json):
    """Summarise a built dataset folder: rows, tasks, verdicts, scores.

    \b
    Example:
      coin-data stats coin-flan-paraphrased
    """
    from coin_data.hub.stats import dataset_stats, format_stats

    report = dataset_stats(folder)
    click.echo(json.dumps(report, indent=2) if as_json else format_stats(report))


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--repo-id", required=True, help="Hub dataset repo, OWNER/NAME.")
@click.option("--public", is_flag=True, help="Make the repo public (default: private).")
@click.option("--dry-run", is_flag=True, help="List what would be uploaded; contact nothing.")
@click.option("--message", "commit_message", help="Commit message.")
@friendly_errors
def publish(folder, repo_id, public, dry_run, commit_message):
    """Upload a built dataset folder to the Hugging Face Hub (private unless --public).

    The token comes from HF_TOKEN or `hf auth login`; it is never printed. HF_ENDPOINT selects
    another Hub server.

    \b
    Example:
      coin-data publish coin-flan-paraphrased --repo-id ORG/coin-flan-paraphrased --dry-run
    """
    from coin_data.hub.publish import publish as publish_folder

    report = publish_folder(folder, repo_id, public=public, dry_run=dry_run, commit_message=commit_message)
    verb = "Would upload" if report.dry_run else "Uploaded"
    visibility = "private" if report.private else "public"
    click.echo(f"{verb} {len(report.files)} file(s) to {report.url} ({visibility})")
    for path, size in report.files:
        click.echo(f"  {path}  {size:,} bytes")


@main.command("setup-wordnet")
@click.option("--download", is_flag=True,
              help="If neither nltk's data path nor Debian's files have WordNet, fetch it with nltk's downloader.")
def setup_wordnet_command(download):
    """Make WordNet available to nltk for the offline rules paraphraser.

    Looks on nltk's data path first, then builds nltk's layout from Debian's packages
    (apt-get install wordnet-base wordnet-sense-index), then, with --download, uses nltk's downloader.

    \b
    Example:
      coin-data setup-wordnet --download
    """
    from coin_data.text.wordnet import WordNetMissingError, default_data_root, setup_wordnet

    try:
        path = setup_wordnet()
    except WordNetMissingError as err:
        if not download:
            raise click.ClickException(str(err)) from None
        import nltk

        root = default_data_root()
        if not nltk.download("wordnet", download_dir=str(root), quiet=True):
            raise click.ClickException(f"nltk could not download WordNet into {root}.\n{err}") from None
        if str(root) not in nltk.data.path:
            nltk.data.path.append(str(root))
        path = setup_wordnet()
    click.echo(f"WordNet ready: {path}")



@main.command()
@click.argument("in_path", metavar="IN.jsonl", type=click.Path(dir_okay=False))
@click.option("--level", required=True, type=click.Choice(["character", "word", "sentence", "semantic", "all"]),
              help="Perturbation level ('all': one output row per level).")
@config_option(PerturbConfig, "seed")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Output JSONL (default: IN.<level>.jsonl beside the input).")
@config_option(PerturbConfig, "paraphraser", tag="[semantic]")
@config_option(PerturbConfig, "min_similarity")
@friendly_errors
def perturb(in_path, level, seed, out_path, paraphraser, min_similarity):
    """Perturb instructions for robustness tests (seeded; slots, options and label words are kept).

    Each input line is a JSON object with "instruction" (a template with {slots}, or plain text) and
    optionally "options" (label words to keep); other keys are passed through. Row i is drawn as
    variant i, so sentence-level rows alternate between a random token and a tautology. Rows that a
    level cannot perturb get "perturbed": null and a "reason".

    \b
    Example:
      coin-data perturb instructions.jsonl --level word --seed 0 --out word.jsonl
    """
    from coin_data.perturb.files import perturb_file
    from coin_data.perturb.levels import PERTURBATION_LEVELS, PerturbationError

    levels = PERTURBATION_LEVELS if level == "all" else (level,)
    out_path = out_path or str(Path(in_path).with_suffix("")) + f".{level}.jsonl"
    config = PerturbConfig(seed=seed, paraphraser=paraphraser, min_similarity=min_similarity)
    try:
        counts = perturb_file(in_path, out_path, levels, config)
    except PerturbationError as err:
        raise click.ClickException(str(err)) from None
    summary = ", ".join(f"{name} {done}/{total}" for name, (done, total) in counts.items())
    click.echo(f"Wrote {out_path}: perturbed {summary}")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
