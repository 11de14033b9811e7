"""FLAN-format sources: rows of already rendered ``inputs`` + ``targets``, templates recovered by induction.

The FLAN collection on the Hub (``Muennighoff/flan``: one JSONL file per task and split, e.g.
``train/rte_10templates_train.jsonl``, rows ``{"inputs", "targets", "task"}``) ships prompts that are
already rendered: each row is one instance filled into one of the task's (up to 10) templates. To
paraphrase an *instruction* we need the template back. Instead of one hand-written regex per FLAN
template, :func:`induce_templates` recovers them from the rows themselves:

1. the ``OPTIONS:`` block (``OPTIONS:\\n- a\\n- b``) is set aside as one token;
2. rows are clustered by alignment: the text two rows of one template share is that template's
   instruction, the parts that differ are slots (``difflib`` matching blocks on word tokens);
3. each cluster is cleaned: a "slot" whose value is nearly constant is instruction text (odd rows are
   noise), a slot with a few recurring values marks two templates that differ by a word (split);
4. templates seen in fewer than ``min_support`` sampled rows are not trusted;
5. every row (not only the sample) is matched against the recovered templates; slots of different
   templates are paired by the statistics of their values (length, question marks) so that one instance
   can be rendered under every template of its task.

Rows that match no recovered template, or leave a slot empty, are counted with their reason and kept as
examples in the :class:`InductionReport` (the dataset card shows them): never dropped silently.

Example:
    >>> rows = [f'Premise: {p}\\nIs it true that "{h}"?\\nOPTIONS:\\n- yes\\n- no' for p, h in
    ...         [("A cat sat.", "a cat sat"), ("Rain fell all day.", "it was dry"), ("Birds sang.", "birds sang"),
    ...          ("The bus came late.", "the bus was late")]]
    >>> [t.text for t in induce_templates(rows, InductionConfig(min_support=2))]
    ['Premise: {premise}\\nIs it true that "{text}"?\\n{options_}']
"""

from __future__ import annotations

import difflib
import itertools
import math
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from coin_data.sources.embedded import CLASSIFICATION, GENERATION, Corpus, CorpusError, Instance, TaskSpec
from coin_data.sources.rows import Row, apply_column_map, read_rows
from coin_data.templates import OPTIONS_BLOCK as _OPTIONS_BLOCK
from coin_data.templates import OPTIONS_SLOT, Template, TemplateError, parse_options, parse_template

FLAN_REPO = "Muennighoff/flan"
# Short names users type -> the file names of Muennighoff/flan (``<name>_10templates_<split>.jsonl``).
FLAN_ALIASES = {"mrpc": "glue_mrpc", "qqp": "glue_qqp", "boolq": "bool_q", "mnli": "mnli_matched", "imdb": "imdb_reviews"}

NO_TEMPLATE_MATCH = "no_template_match"
EMPTY_FIELD = "empty_field"
EMPTY_INPUTS = "empty_inputs_or_targets"
MULTIPLE_OPTIONS = "multiple_options_blocks"

_OPT = "\x00"  # stands for the options block while templates are induced
# Whitespace runs, words and single punctuation marks are tokens (the text is their concatenation).
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
_FIELD_NAME = re.compile(r"^\s*([A-Za-z]+(?: [A-Za-z]+){0,2})\s*:\s*$")  # "Premise: ", "Test sentence:"
_SPLIT_SUFFIX = re.compile(r"_(train|validation|test)$")


class _Gap:
    """A slot in a skeleton; one shared instance, never equal to a text token."""

    def __repr__(self) -> str:
        return "<GAP>"


_GAP = _Gap()


@dataclass
class InductionConfig:
    """Settings of template induction.

    Command: ``coin-data build --source flan --data-files rte_10templates_train.jsonl``
    """

    sample_size: int = field(
        default=400, metadata={"help": "Rows per task used to induce templates; every row is matched afterwards."}
    )
    bootstrap: int = field(
        default=32, metadata={"help": "Sampled rows compared pairwise to seed the clusters (the rest join greedily)."}
    )
    min_support: int = field(
        default=3, metadata={"help": "A template must explain at least this many sampled rows to be trusted."}
    )
    min_support_fraction: float = field(
        default=0.02, metadata={"help": "... and at least this share of the sampled rows."}
    )
    relative_support: float = field(
        default=0.25,
        metadata={"help": "... and at least this share of the most frequent template's rows (FLAN spreads a "
                  "task's rows over its templates about evenly; chance patterns are rare)."},
    )
    min_shared_words: int = field(
        default=3, metadata={"help": "Words two rows must share (in order) to be taken as one template."}
    )
    keep_fraction: float = field(
        default=0.6, metadata={"help": "Share of a template's words a new row must keep to join its cluster."}
    )
    constant_share: float = field(
        default=0.8, metadata={"help": "A slot whose most common value covers this share is instruction text."}
    )
    window: int = field(
        default=150, metadata={"help": "Long rows are aligned on their first and last this many tokens only."}
    )
    examples_per_reason: int = field(default=3, metadata={"help": "Unrecovered rows kept as examples per task and reason."})
    seed: int = field(default=0, metadata={"help": "Seeds the sample."})

    def __post_init__(self) -> None:
        if self.sample_size < 2 or self.bootstrap < 2:
            raise ValueError("sample_size and bootstrap must be >= 2")
        if self.min_support < 2:
            raise ValueError(f"min_support must be >= 2, got {self.min_support}")
        if not 0.5 <= self.constant_share <= 1.0 or not 0.0 < self.keep_fraction <= 1.0:
            raise ValueError("constant_share must lie in [0.5, 1] and keep_fraction in (0, 1]")


@dataclass(frozen=True)
class FlanRow:
    """One rendered FLAN row and where it came from (``file:line`` or ``repo/file row n``)."""

    inputs: str
    targets: str
    where: str


@dataclass(frozen=True)
class UnrecoveredRow:
    """A row whose template could not be recovered, kept as an example for the card."""

    task: str
    where: str
    reason: str
    inputs: str


@dataclass
class TaskInduction:
    """What induction found for one source task."""

    task: str
    rows: int = 0
    recovered: int = 0
    templates: list[tuple[str, str, str, int]] = field(default_factory=list)  # (task, id, text, rows matched)
    unrecovered: Counter = field(default_factory=Counter)  # reason -> rows
    examples: list[UnrecoveredRow] = field(default_factory=list)


@dataclass
class InductionReport:
    """Recovered templates and unrecovered rows of every FLAN task (shown in the dataset card)."""

    tasks: dict[str, TaskInduction] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tasks.values())

    @property
    def recovered(self) -> int:
        return sum(t.recovered for t in self.tasks.values())

    def unrecovered(self) -> Counter:
        """Unrecovered rows per reason over all tasks."""
        total: Counter = Counter()
        for task in self.tasks.values():
            total.update(task.unrecovered)
        return total

    def examples(self) -> list[UnrecoveredRow]:
        return [example for task in self.tasks.values() for example in task.examples]


# --- reading ---------------------------------------------------------------------------------------


def task_name(name: str) -> str:
    """Our task name for a FLAN config or file stem: ``rte_10templates_train`` -> ``rte``.

    Example:
        >>> task_name("glue_mrpc_10templates_validation"), task_name("CoLA")
        ('glue_mrpc', 'cola')
    """
    name = _SPLIT_SUFFIX.sub("", Path(name).name.split(".")[0]).lower()
    name = re.sub(r"_\d+templates$", "", name)
    return re.sub(r"[^a-z0-9_]+", "_", name).strip("_") or "flan"


def hub_file(task: str, split: str = "train") -> str:
    """Path of one task's file inside ``Muennighoff/flan``.

    Example:
        >>> hub_file("mrpc")
        'train/glue_mrpc_10templates_train.jsonl'
    """
    config = task if re.search(r"_\d+templates$", task) else f"{FLAN_ALIASES.get(task, task)}_10templates"
    return f"{split}/{config}_{split}.jsonl"


def read_flan_files(
    paths: Sequence[str | Path],
    tasks: Sequence[str] | None = None,
    column_map: Mapping[str, str] | None = None,
    max_rows: int | None = None,
) -> dict[str, list[FlanRow]]:
    """Group the rows of local FLAN-format files by task.

    Args:
        paths: JSONL/JSON/CSV/Parquet files with ``inputs`` and ``targets`` (after ``column_map``); the task
            comes from a ``task`` column when present, else from the file name (``rte_10templates_train``).
        tasks: keep only these tasks (``None`` keeps all).
        column_map: ``{our_name: their_column}``, e.g. ``{"inputs": "source", "targets": "target"}``.
        max_rows: keep at most this many rows per task.

    Returns:
        ``task -> rows`` in file order.

    Raises:
        CorpusError: unreadable file, a row without ``inputs`` / ``targets`` strings, a requested task
            that has no rows.
    """
    grouped: dict[str, list[FlanRow]] = defaultdict(list)
    wanted = None if tasks is None else {task_name(t) for t in tasks}
    for path in paths:
        default_task = task_name(str(path))
        for where, row in apply_column_map(read_rows(path), column_map):
            name = task_name(str(row["task"])) if isinstance(row.get("task"), str) and row["task"] else default_task
            if wanted is not None and name not in wanted:
                continue
            if max_rows is not None and len(grouped[name]) >= max_rows:
                continue
            grouped[name].append(_flan_row(where, row))
    _check_tasks(grouped, wanted, ", ".join(map(str, paths)))
    return dict(sorted(grouped.items()))


def read_flan_hub(
    tasks: Sequence[str],
    split: str = "train",
    repo: str = FLAN_REPO,
    max_rows: int | None = None,
    column_map: Mapping[str, str] | None = None,
) -> dict[str, list[FlanRow]]:
    """Stream the rows of FLAN tasks from the Hub (``Muennighoff/flan`` by default).

    The repository still holds a loading script, which ``datasets`` no longer runs, so each task's JSONL
    file is read directly (``hf://datasets/<repo>/<split>/<task>_10templates_<split>.jsonl``), streamed.

    Args:
        tasks: task names such as ``rte``, ``cola``, ``mrpc`` (see :data:`FLAN_ALIASES`) or full config
            names such as ``rte_10templates``.
        split: ``train``, ``validation`` or ``test``.
        repo: the dataset repository.
        max_rows: read at most this many rows per task.

    Raises:
        CorpusError: a task file cannot be read (no network, unknown task), naming the file.
    """
    import datasets

    grouped: dict[str, list[FlanRow]] = {}
    for task in tasks:
        path = hub_file(task, split)
        label = f"{repo}/{path}"
        rows: list[FlanRow] = []
        try:
            stream = datasets.load_dataset("json", data_files=f"hf://datasets/{repo}/{path}", split="train",
                                           streaming=True)
            located = ((f"{label} row {index}", dict(row)) for index, row in enumerate(stream))
            for where, row in apply_column_map(located, column_map):
                if max_rows is not None and len(rows) >= max_rows:
                    break
                rows.append(_flan_row(where, row))
        except CorpusError:
            raise
        except Exception as err:  # network, unknown file: one clear line for the CLI
            raise CorpusError(f"{label}: cannot read FLAN task {task!r} ({type(err).__name__}: {err})") from None
        grouped[task_name(task)] = rows
    _check_tasks(grouped, {task_name(t) for t in tasks}, repo)
    return dict(sorted(grouped.items()))


def read_flan_rows(rows: Iterable[Row], tasks: Sequence[str] | None = None, max_rows: int | None = None,
                   default_task: str = "flan") -> dict[str, list[FlanRow]]:
    """Group already-read rows (e.g. a column-mapped Hub dataset) by their ``task`` column."""
    grouped: dict[str, list[FlanRow]] = defaultdict(list)
    wanted = None if tasks is None else {task_name(t) for t in tasks}
    for where, row in rows:
        name = task_name(str(row["task"])) if isinstance(row.get("task"), str) and row["task"] else default_task
        if (wanted is None or name in wanted) and (max_rows is None or len(grouped[name]) < max_rows):
            grouped[name].append(_flan_row(where, row))
    _check_tasks(grouped, wanted, "the dataset")
    return dict(sorted(grouped.items()))


def _flan_row(where: str, row: Mapping) -> FlanRow:
    for name in ("inputs", "targets"):
        if not isinstance(row.get(name), str):
            raise CorpusError(f"{where}: field {name!r} is missing or not a string (FLAN rows need inputs and targets)")
    return FlanRow(row["inputs"], row["targets"], where)


def _check_tasks(grouped: Mapping[str, list], wanted: set[str] | None, source: str) -> None:
    if wanted is not None:
        missing = sorted(wanted - {name for name, rows in grouped.items() if rows})
        if missing:
            raise CorpusError(f"{source}: no rows for task(s) {', '.join(missing)}")
    if not any(grouped.values()):
        raise CorpusError(f"{source}: no FLAN rows found")


# --- induction: skeletons --------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _window(tokens: list[str], edge: int) -> list[object]:
    """The first and last ``edge`` tokens of a long row with a gap between them.

    Alignment cost grows with the product of the lengths; FLAN's long inputs (news articles) are one
    field with the instruction before or after it, so the middle never holds template text.
    """
    if len(tokens) <= 2 * edge:
        return list(tokens)
    return [*tokens[:edge], _GAP, *tokens[-edge:]]


def _is_word(token: object) -> bool:
    return isinstance(token, str) and any(ch.isalnum() for ch in token)


def _merge(skeleton: Sequence[object], row: Sequence[str]) -> list[object]:
    """The common skeleton of ``skeleton`` and ``row``: matched tokens stay literal, the rest become gaps."""
    matcher = difflib.SequenceMatcher(None, skeleton, row, autojunk=False)
    merged: list[object] = []
    done_a = done_b = 0
    for a, b, size in matcher.get_matching_blocks():
        if a > done_a or b > done_b:
            merged.append(_GAP)
        merged.extend(skeleton[a : a + size])
        done_a, done_b = a + size, b + size
    return _tidy(merged)


def _tidy(skeleton: Sequence[object]) -> list[object]:
    """Merge adjacent gaps and dissolve trivial literals between two gaps (a lone word of field text)."""
    runs: list[list[object]] = []
    for token in skeleton:
        if token is _GAP:
            runs.append([_GAP])
        elif runs and runs[-1][0] is not _GAP:
            runs[-1].append(token)
        else:
            runs.append([token])
    out: list[object] = []
    for index, run in enumerate(runs):
        between = 0 < index < len(runs) - 1 and runs[index - 1][0] is _GAP and runs[index + 1][0] is _GAP
        if run[0] is not _GAP and between and _trivial(run):
            run = [_GAP]
        if run[0] is _GAP and out and out[-1] is _GAP:
            continue
        out.extend(run)
    return out


def _trivial(run: Sequence[object]) -> bool:
    """Whitespace or one punctuation mark on one line: too common in field text to separate two slots.

    (A lone common word between two slots is dropped later, when it recurs inside the slots' text.)
    """
    text = "".join(t for t in run if isinstance(t, str))
    if "\n" in text or _OPT in text:
        return False
    words = sum(1 for t in run if _is_word(t))
    marks = sum(1 for t in run if isinstance(t, str) and t.strip() and not _is_word(t))
    return words == 0 and marks <= 1


def _absorb_punctuation(skeleton: Sequence[object]) -> list[object]:
    """Sentence-final punctuation right after a slot belongs to the field value, not to the template.

    The rows cannot tell ``{question}?`` from a question field that ends with '?'; field text usually
    carries its own punctuation, so the slot takes it.
    """
    out = list(skeleton)
    for index in range(len(out) - 1):
        if out[index] is _GAP and out[index + 1] in (".", "?", "!"):
            following = out[index + 2] if index + 2 < len(out) else ""
            if following is not _GAP:
                out[index + 1] = None  # dropped below; the gap's regex now captures it
    return [token for token in out if token is not None]


def _literal_words(skeleton: Sequence[object]) -> int:
    return sum(1 for token in skeleton if _is_word(token) or token == _OPT)


@dataclass(frozen=True)
class _Match:
    """The slot values of a row matched by a :class:`_Pattern` (``group(1)`` is the first slot)."""

    values: tuple[str, ...]

    def group(self, slot: int) -> str:
        return self.values[slot - 1]

    def groups(self) -> tuple[str, ...]:
        return self.values


class _Pattern:
    """Match a skeleton (texts separated by non-empty slots) against a whole row, without backtracking.

    Each text is placed at its leftmost occurrence after the previous one (the last one must end the
    row). If any placement fits, this one does, and it is the one a lazy regex ``(.+?)`` would choose;
    a regex with several lazy slots can instead backtrack for minutes on a long row that does not match.
    """

    def __init__(self, skeleton: Sequence[object]):
        self.texts: list[str] = [""]  # texts[0] before the first slot, texts[j] after slot j
        for token in skeleton:
            if token is _GAP:
                self.texts.append("")
            else:
                self.texts[-1] += str(token)

    def fullmatch(self, row: str) -> _Match | None:
        head, *rest = self.texts
        if not row.startswith(head):
            return None
        if not rest:
            return _Match(()) if row == head else None
        *inner, tail = rest
        end = len(row) - len(tail)
        if not row.endswith(tail):
            return None
        values, position = [], len(head)
        for text in inner:
            found = row.find(text, position + 1)  # + 1: a slot is never empty
            if found < 0 or found + len(text) > end - 1:
                return None
            values.append(row[position:found])
            position = found + len(text)
        if end <= position:
            return None
        values.append(row[position:end])
        return _Match(tuple(values))


@dataclass
class _Cluster:
    skeleton: list[object]
    members: list[int]
    _compiled: _Pattern | None = None

    @property
    def pattern(self) -> _Pattern:
        if self._compiled is None:
            self._compiled = _Pattern(self.skeleton)
        return self._compiled

    def set(self, skeleton: list[object]) -> None:
        self.skeleton, self._compiled = skeleton, None

    @property
    def gaps(self) -> int:
        return sum(1 for token in self.skeleton if token is _GAP)


def _mask_options(text: str) -> tuple[str, list[tuple[str, ...]], list[str]]:
    """Replace each options block by one token; return the masked text, the option lists and the blocks."""
    text = text.replace(_OPT, "")
    blocks = [m.group(0) for m in _OPTIONS_BLOCK.finditer(text)]
    options = [parse_options(block) for block in blocks]
    return _OPTIONS_BLOCK.sub(_OPT, text), options, blocks


def induce_templates(texts: Sequence[str], config: InductionConfig | None = None, task: str = "") -> list[Template]:
    """Recover the templates behind ``texts`` (rendered prompts of one task).

    Args:
        texts: rendered inputs (with their ``OPTIONS:`` blocks).
        config: induction settings.
        task: task name used in the templates.

    Returns:
        The recovered templates, most frequent first; slots are named after a ``Label:`` in front of them
        (else ``text``, ``text_2`` ...) and the options block is ``{options_}``. (:func:`flan_corpus` also
        pairs slots across templates and decides fixed versus per-row options.)
    """
    config = config or InductionConfig()
    masked = [_mask_options(t)[0] for t in texts]
    clusters = _cluster(masked, config)
    templates = []
    for index, cluster in enumerate(clusters):
        names = _slot_names(cluster.skeleton)
        templates.append(parse_template(_template_text(cluster.skeleton, names, OPTIONS_SLOT), task, f"t{index}"))
    return templates


def _cluster(masked: Sequence[str], config: InductionConfig) -> list[_Cluster]:
    """Cluster (a sample of) masked rows by template and return trusted clusters, largest first."""
    sample = list(range(len(masked)))
    if len(sample) > config.sample_size:
        sample = sorted(random.Random(config.seed).sample(sample, config.sample_size))
    tokens = {i: _window(_tokens(masked[i]), config.window) for i in sample}
    clusters: list[_Cluster] = []
    seeds: list[_Cluster] = []
    boot = sample[: config.bootstrap]
    _bootstrap(boot, tokens, clusters, seeds, config)
    for i in sample[config.bootstrap :]:
        _add(i, masked[i], tokens[i], clusters, seeds, config)
    clusters = _merge_clusters(clusters, config)
    refined: list[_Cluster] = []
    for cluster in clusters:
        refined.extend(_refine(cluster, masked, config))
    # a cleaned skeleton with no instruction text left ("{a}{options_}") would swallow every row
    refined = _fold_subsumed([c for c in refined if _anchored(c.skeleton)], masked)
    largest = max((len(c.members) for c in refined), default=0)
    support = max(config.min_support, math.ceil(config.min_support_fraction * len(sample)),
                  math.ceil(config.relative_support * largest))
    trusted = [c for c in refined if len(c.members) >= support and _anchored(c.skeleton)]
    trusted.sort(key=lambda c: (-len(c.members), -_literal_words(c.skeleton)))
    return trusted


def _anchored(skeleton: Sequence[object]) -> bool:
    """Whether a skeleton has instruction text: two words in a row, or a word on a labelled or own line.

    Skeletons made of single common words between slots ("{a} of {b} the {c}") are chance, and one
    without any word ("{a}\\n{options_}") cannot be told from field text: neither is a template.
    """
    for run in _runs(skeleton):
        text = "".join(str(t) for t in run)
        words = sum(1 for t in run if _is_word(t))
        if words >= 2 or (words == 1 and ("\n" in text or ":" in text)):
            return True
    return False


def _fold_subsumed(clusters: list[_Cluster], masked: Sequence[str]) -> list[_Cluster]:
    """Fold a cluster into a larger one whose template already explains all its rows.

    A few rows whose field happens to share a phrase ("If ... what would stand out?") otherwise form a
    more specific template of their own.
    """
    clusters = sorted(clusters, key=lambda c: -len(c.members))
    changed = True
    while changed:
        changed = False
        for host, guest in itertools.permutations(clusters, 2):
            if not all(host.pattern.fullmatch(masked[i]) for i in guest.members):
                continue
            # the more specific skeleton wins when it explains (nearly) all of the host's rows too: the
            # host then lost text to a chance alignment of field words
            explained = sum(1 for i in host.members if guest.pattern.fullmatch(masked[i]))
            if explained >= 0.9 * len(host.members):
                host.set(guest.skeleton)
            host.members.extend(guest.members)
            clusters.remove(guest)
            changed = True
            break
    return clusters


def _bootstrap(boot: list[int], tokens, clusters: list[_Cluster], seeds: list[_Cluster], config) -> None:
    """Pair the first rows by their best pairwise alignment: same-template pairs share the most words."""
    pairs = []
    for a, b in itertools.combinations(boot, 2):
        merged = _merge(tokens[a], tokens[b])
        pairs.append((_literal_words(merged), a, b, merged))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    owner: dict[int, _Cluster] = {}
    for words, a, b, merged in pairs:
        if words < config.min_shared_words:
            break
        if (a in owner and b in owner) or not _anchored(merged):
            continue
        if a not in owner and b not in owner:
            cluster = _Cluster(merged, [a, b])
            clusters.append(cluster)
            owner[a] = owner[b] = cluster
            continue
        cluster, new = (owner[a], b) if a in owner else (owner[b], a)
        candidate = _merge(cluster.skeleton, tokens[new])
        if _keeps(cluster.skeleton, candidate, config):
            cluster.set(candidate)
            cluster.members.append(new)
            owner[new] = cluster
    for i in boot:
        if i not in owner:
            seeds.append(_Cluster(list(tokens[i]), [i]))


def _merge_clusters(clusters: list[_Cluster], config: InductionConfig) -> list[_Cluster]:
    """Join clusters of one template that started apart (their seeds shared some field text by chance).

    Two clusters are one template when their common skeleton keeps most of one skeleton's words.
    """
    clusters = list(clusters)
    while True:
        best = None
        for a, b in itertools.combinations(range(len(clusters)), 2):
            merged = _merge(clusters[a].skeleton, clusters[b].skeleton)
            # one side may carry extra chance text (a stock sentence shared by its few rows)
            if _keeps(clusters[a].skeleton, merged, config) or _keeps(clusters[b].skeleton, merged, config):
                words = _literal_words(merged)
                if best is None or words > best[0]:
                    best = (words, a, b, merged)
        if best is None:
            return clusters
        _, a, b, merged = best
        joined = _Cluster(merged, clusters[a].members + clusters[b].members)
        clusters = [c for i, c in enumerate(clusters) if i not in (a, b)] + [joined]


def _keeps(old: Sequence[object], new: Sequence[object], config: InductionConfig) -> bool:
    """Whether the common skeleton ``new`` still describes the template ``old`` described."""
    words = _literal_words(new)
    return _shares(new, config) and words >= config.keep_fraction * _literal_words(old)


def _shares(skeleton: Sequence[object], config: InductionConfig) -> bool:
    """Whether two rows share enough instruction text to come from one template."""
    return _literal_words(skeleton) >= config.min_shared_words and _anchored(skeleton)


def _add(i: int, text: str, row: list[str], clusters: list[_Cluster], seeds: list[_Cluster], config) -> None:
    """Put row ``i`` into the cluster it matches, generalises best, or pairs with a seed; else seed it."""
    for cluster in clusters:
        if cluster.pattern.fullmatch(text):
            cluster.members.append(i)
            return
    best: tuple[int, _Cluster, list[object]] | None = None
    for cluster in clusters:
        candidate = _merge(cluster.skeleton, row)
        if _keeps(cluster.skeleton, candidate, config) and (best is None or _literal_words(candidate) > best[0]):
            best = (_literal_words(candidate), cluster, candidate)
    if best is not None:
        best[1].set(best[2])
        best[1].members.append(i)
        return
    best_seed: tuple[int, _Cluster, list[object]] | None = None
    for seed in seeds:
        candidate = _merge(seed.skeleton, row)
        words = _literal_words(candidate)
        if _shares(candidate, config) and (best_seed is None or words > best_seed[0]):
            best_seed = (words, seed, candidate)
    if best_seed is not None:
        seeds.remove(best_seed[1])
        clusters.append(_Cluster(best_seed[2], best_seed[1].members + [i]))
        return
    seeds.append(_Cluster(list(row), [i]))


def _refine(cluster: _Cluster, masked: Sequence[str], config: InductionConfig, depth: int = 0) -> list[_Cluster]:
    """Turn near-constant slots into text (ejecting odd rows) and split clusters on recurring slot values;
    drop separators that are ambiguous inside the field text; move whitespace every value shares out of slots."""
    cluster.set(_tidy(_absorb_punctuation(cluster.skeleton)))
    matches = {i: m for i in cluster.members if (m := cluster.pattern.fullmatch(masked[i])) is not None}
    cluster.members = list(matches)
    n = len(matches)
    if n < config.min_support or depth > 12:
        return [cluster]
    trimmed = _trim_whitespace(cluster, matches)
    if trimmed is not None:
        return _refine(_Cluster(trimmed, cluster.members), masked, config, depth + 1)
    gap_positions = [index for index, token in enumerate(cluster.skeleton) if token is _GAP]
    for slot, position in enumerate(gap_positions):
        values = Counter(m.group(slot + 1) for m in matches.values())
        top, top_count = values.most_common(1)[0]
        if top_count >= config.constant_share * n:
            kept = [i for i, m in matches.items() if m.group(slot + 1) == top]
            return _refine(_literalized(cluster, position, top, kept), masked, config, depth + 1)
        recurring = [(v, c) for v, c in values.items() if c >= config.min_support]
        if 2 <= len(recurring) <= 4 and sum(c for _, c in recurring) >= config.constant_share * n:
            parts = []
            for value, _ in recurring:
                kept = [i for i, m in matches.items() if m.group(slot + 1) == value]
                parts.extend(_refine(_literalized(cluster, position, value, kept), masked, config, depth + 1))
            return parts
    for change in (_ambiguous_separator, _specialized):
        skeleton = change(cluster, matches, config)
        if skeleton is not None:
            return _refine(_Cluster(_tidy(skeleton), cluster.members), masked, config, depth + 1)
    return [cluster]


def _separates(run: Sequence[object]) -> bool:
    """Whether a literal between two slots looks like template text: a line break, a label colon, a quote,
    the options block, or three words or more (shorter phrases recur in ordinary field text)."""
    text = "".join(str(t) for t in run)
    return any(mark in text for mark in ("\n", ":", '"', _OPT)) or _literal_words(run) >= 3


def _specialized(
    cluster: _Cluster, matches: Mapping[int, _Match], config: InductionConfig
) -> list[object] | None:
    """Split a slot at a labelled line break that every one of its values contains exactly once.

    Growing a cluster one row at a time can lose a separator ("\\n\\nSentence:\\n") when field words of
    two rows align across it; the separator is then still inside every value of the merged slot.
    """
    skeleton = cluster.skeleton
    gaps = [index for index, token in enumerate(skeleton) if token is _GAP]
    for slot, position in enumerate(gaps, start=1):
        values = [m.group(slot) for m in matches.values()]
        common: list[object] = _window(_tokens(values[0]), config.window)
        for value in values[1:]:
            common = _merge(common, _window(_tokens(value), config.window))
        for run in _runs(common):
            text = "".join(str(t) for t in run)
            if ("\n" in text.strip(" ") or ":" in text) and _literal_words(run) >= 1 and all(
                v.count(text) == 1 and not v.startswith(text) and not v.endswith(text) for v in values
            ):
                return skeleton[:position] + [_GAP, *run, _GAP] + skeleton[position + 1 :]
    return None


def _runs(skeleton: Sequence[object]) -> list[list[object]]:
    """The literal runs of a skeleton (the text between its gaps)."""
    runs, run = [], []
    for token in [*skeleton, _GAP]:
        if token is _GAP:
            if run:
                runs.append(run)
            run = []
        else:
            run.append(token)
    return runs


def _ambiguous_separator(
    cluster: _Cluster, matches: Mapping[int, _Match], config: InductionConfig  # noqa: ARG001 (same signature)
) -> list[object] | None:
    """The skeleton without a literal between two slots that recurs inside their text ("of the").

    Separators of one or two words on one line ("{a} the {b}") are dropped as well. A template's separator ("\\n\\nQuestion: ") occurs once where its two fields meet; a phrase that is
    common in the field text occurs there several times in many rows, so it cannot be told apart.
    """
    skeleton = cluster.skeleton
    gaps = [index for index, token in enumerate(skeleton) if token is _GAP]
    for slot, (left, right) in enumerate(itertools.pairwise(gaps), start=1):
        separator = "".join(str(t) for t in skeleton[left + 1 : right])
        spans = [m.group(slot) + separator + m.group(slot + 1) for m in matches.values()]
        repeated = sum(1 for span in spans if span.count(separator) > 1)
        if repeated > 0.3 * len(spans) or not _separates(skeleton[left + 1 : right]):
            return skeleton[:left] + [_GAP] + skeleton[right + 1 :]
    return None


def _trim_whitespace(cluster: _Cluster, matches: Mapping[int, _Match]) -> list[object] | None:
    """Text at the edge of every value of a slot belongs to the template when it is whitespace or
    label-like (``"Sentence:\\n"``, ``": "``): alignment sometimes leaves it inside the slot."""
    skeleton = list(cluster.skeleton)
    gaps = [index for index, token in enumerate(skeleton) if token is _GAP]
    for slot, position in enumerate(gaps, start=1):
        values = [_tokens(m.group(slot)) for m in matches.values()]
        for from_end in (False, True):
            edge = _common_edge(values, from_end)
            text = "".join(edge)
            if edge and (not text.strip() or ":" in text or "\n" in text):
                middle = [_GAP, *edge] if from_end else [*edge, _GAP]
                return skeleton[:position] + middle + skeleton[position + 1 :]
    return None


def _common_edge(values: Sequence[Sequence[str]], from_end: bool) -> list[str]:
    """The longest token prefix (or suffix) that every value shares and that leaves each value non-empty."""
    shortest = min(len(v) for v in values)
    edge: list[str] = []
    for k in range(shortest - 1):  # keep at least one token of each value
        column = {v[-1 - k] if from_end else v[k] for v in values}
        if len(column) != 1:
            break
        edge.append(column.pop())
    return edge[::-1] if from_end else edge


def _literalized(cluster: _Cluster, position: int, value: str, members: list[int]) -> _Cluster:
    skeleton = cluster.skeleton[:position] + _tokens(value) + cluster.skeleton[position + 1 :]
    return _Cluster(_tidy(skeleton), members)


def _slot_labels(skeleton: Sequence[object]) -> list[str | None]:
    """Per gap, the ``Label:`` written right before it on its line (``Premise: {premise}``), else ``None``."""
    labels: list[str | None] = []
    literal = ""
    for token in skeleton:
        if token is _GAP:
            match = _FIELD_NAME.search(literal.rsplit("\n", 1)[-1])
            labels.append(re.sub(r"\W+", "_", match.group(1).strip().lower()) if match else None)
            literal = ""
        else:
            literal += str(token)
    return labels


def _unique_names(labels: Sequence[str | None]) -> list[str]:
    """Slot names from labels: ``text`` where there is none, suffixes for repeats, no reserved names."""
    names: list[str] = []
    for label in labels:
        base = label or "text"
        if base in ("options", OPTIONS_SLOT, "target", "id", "task"):
            base += "_text"
        name, suffix = base, 2
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names.append(name)
    return names


def _slot_names(skeleton: Sequence[object]) -> list[str]:
    """A name per gap: the ``Label:`` right before it (``Premise: {premise}``), else ``text``."""
    return _unique_names(_slot_labels(skeleton))


def _template_text(skeleton: Sequence[object], names: Sequence[str], options_slot: str) -> str:
    parts, slot = [], 0
    for token in skeleton:
        if token is _GAP:
            parts.append("{" + names[slot] + "}")
            slot += 1
        else:
            parts.append(str(token).replace("{", "{{").replace("}", "}}").replace(_OPT, "{" + options_slot + "}"))
    return "".join(parts)


# --- from rows to a corpus ---------------------------------------------------------------------------


@dataclass
class _Matched:
    index: int  # position of the row in its task's input rows (part of the instance id)
    row: FlanRow
    values: list[str]
    options: tuple[str, ...] | None
    block: str | None


def flan_corpus(
    rows_by_task: Mapping[str, Sequence[FlanRow]], config: InductionConfig | None = None
) -> Corpus:
    """Induce templates per task, match every row, and return the tasks, instances and report.

    Args:
        rows_by_task: rows grouped by task (from :func:`read_flan_files` or :func:`read_flan_hub`).
        config: induction settings.

    Returns:
        A :class:`~coin_data.sources.Corpus` whose ``induction`` is the :class:`InductionReport`. Templates
        of one task that use a different number of slots become a separate task ``<task>_<n>slot``
        (an instance must fill every template of its task).

    Raises:
        CorpusError: no task has a recoverable template.
    """
    config = config or InductionConfig()
    report = InductionReport()
    corpus = Corpus(tasks={}, induction=report)
    for name, rows in rows_by_task.items():
        info = report.tasks.setdefault(name, TaskInduction(name))
        info.rows = len(rows)
        for spec, instances in _task_corpus(name, rows, config, info):
            corpus.tasks[spec.name] = spec
            corpus.instances[spec.name] = instances
    if not corpus.tasks:
        counts = ", ".join(f"{reason} {n}" for reason, n in report.unrecovered().items())
        raise CorpusError(f"no FLAN template could be recovered from {report.rows} rows ({counts})")
    corpus.tasks = dict(sorted(corpus.tasks.items()))
    corpus.instances = {name: corpus.instances[name] for name in corpus.tasks}
    return corpus


def _task_corpus(name: str, rows: Sequence[FlanRow], config: InductionConfig, info: TaskInduction):
    def reject(row: FlanRow, reason: str) -> None:
        info.unrecovered[reason] += 1
        if sum(1 for e in info.examples if e.reason == reason) < config.examples_per_reason:
            info.examples.append(UnrecoveredRow(name, row.where, reason, row.inputs))

    usable, masked_all, extras = [], [], []
    for position, row in enumerate(rows):
        masked, options, blocks = _mask_options(row.inputs)
        if not row.inputs.strip() or not row.targets.strip():
            reject(row, EMPTY_INPUTS)
        elif len(blocks) > 1:
            reject(row, MULTIPLE_OPTIONS)
        else:
            usable.append((position, row))
            masked_all.append(masked)
            extras.append((options[0] if options else None, blocks[0] if blocks else None))
    clusters = _cluster(masked_all, config) if masked_all else []
    # most specific first: a template with more literal text wins when two could match
    order = sorted(range(len(clusters)), key=lambda c: -_literal_words(clusters[c].skeleton))
    matched: dict[int, list[_Matched]] = defaultdict(list)
    for (position, row), masked, (options, block) in zip(usable, masked_all, extras):
        for c in order:
            m = clusters[c].pattern.fullmatch(masked)
            if m is None:
                continue
            values = list(m.groups())
            if any(not v.strip() for v in values):
                reject(row, EMPTY_FIELD)
            else:
                matched[c].append(_Matched(position, row, values, options, block))
            break
        else:
            reject(row, NO_TEMPLATE_MATCH)
    all_matches = [m for ms in matched.values() for m in ms]
    fixed = _fixed_options(all_matches)
    # an instance must fill every template of its task: templates with another slot count (or with
    # per-row options where others have none) form a task of their own
    groups: dict[tuple[int, bool], list[int]] = defaultdict(list)
    for c in range(len(clusters)):
        if matched.get(c):
            groups[(clusters[c].gaps, fixed is None and _OPT in clusters[c].skeleton)].append(c)
    if not groups:
        return
    main = max(groups, key=lambda g: sum(len(matched[c]) for c in groups[g]))
    for key, members in sorted(groups.items()):
        task = name if key == main else f"{name}_{key[0]}slot" + ("_options" if key[1] else "")
        spec, instances = _group_spec(task, members, clusters, matched, fixed, info)
        info.recovered += len(instances)
        yield spec, instances


def _fixed_options(matches: Sequence[_Matched]) -> tuple[str, ...] | None:
    """The task's answer set when every options block is the same and every target is one of it."""
    seen = {m.options for m in matches if m.options is not None}
    if len(seen) != 1:
        return None
    options = next(iter(seen))
    if len(options) < 2 or any(m.options is not None and m.row.targets.strip() not in options for m in matches):
        return None
    return options


def _group_spec(task, members, clusters, matched, fixed, info) -> tuple[TaskSpec, list[Instance]]:
    members = sorted(members, key=lambda c: -len(matched[c]))
    canonical = members[0]
    reference = _slot_features(matched[canonical])
    mappings = {
        c: list(range(len(reference))) if c == canonical else _pair_slots(_slot_features(matched[c]), reference)
        for c in members
    }
    # name each canonical slot by the label most templates write before it ("Premise:"), else "text"
    votes: list[Counter] = [Counter() for _ in reference]
    for c in members:
        for slot, label in zip(mappings[c], _slot_labels(clusters[c].skeleton)):
            if label is not None and slot < len(votes):
                votes[slot][label] += 1
    names = _unique_names([v.most_common(1)[0][0] if v else None for v in votes])
    templates: list[Template] = []
    instances: list[Instance] = []
    for index, c in enumerate(members):
        skeleton = clusters[c].skeleton
        slot_names = [names[j] for j in mappings[c]]
        options_slot = OPTIONS_SLOT if fixed is not None else "options"
        text = _template_text(skeleton, slot_names, options_slot)
        template_id = f"t{index}"
        try:
            template = parse_template(text, task, template_id)
        except TemplateError as err:  # cannot happen for induced text; fail loudly if it does
            raise CorpusError(f"task {task!r}: induced template is invalid: {err}") from None
        templates.append(template)
        info.templates.append((task, template_id, text, len(matched[c])))
        for m in matched[c]:
            fields = dict(zip(slot_names, m.values))
            if fixed is None and m.block is not None:
                fields["options"] = m.block
            inst_id = f"{task}-{m.index:06d}"  # the row's position among its task's input rows
            instances.append(Instance(inst_id, task, fields, m.row.targets.strip(), group=inst_id))
    uses_options = fixed is None and any("options" in t.field_slots for t in templates)
    all_fields = tuple(dict.fromkeys([*names, *(["options"] if uses_options else [])]))
    spec = TaskSpec(
        name=task,
        kind=CLASSIFICATION if fixed is not None else GENERATION,
        description=f"FLAN task {task} (templates recovered by induction)",
        fields=all_fields,
        options=tuple(fixed or ()),
        target=parse_template("{target}", task, "target"),
        templates=tuple(templates),
    )
    return spec, instances


def _slot_features(matches: Sequence[_Matched]) -> list[tuple[float, float, float]]:
    """Per slot: mean log length, share ending in '?', mean line count (what tells fields apart)."""
    if not matches:
        return []
    features = []
    for slot in range(len(matches[0].values)):
        values = [m.values[slot] for m in matches]
        features.append((
            sum(math.log1p(len(v)) for v in values) / len(values),
            sum(v.rstrip().endswith("?") for v in values) / len(values) * 3,
            sum(v.count("\n") for v in values) / len(values),
        ))
    return features


def _pair_slots(features: Sequence[tuple], reference: Sequence[tuple]) -> list[int]:
    """For each slot of a template, the canonical slot whose values look most alike (an injective map)."""
    n, m = len(features), len(reference)
    if n == 0:
        return []
    if n > m or m > 7:
        return list(range(n)) if n <= m else list(range(m)) + list(range(m, n))

    def cost(assign: Sequence[int]) -> float:
        return sum(sum((a - b) ** 2 for a, b in zip(features[i], reference[j])) for i, j in enumerate(assign))

    return list(min(itertools.permutations(range(m), n), key=cost))


def load_flan_corpus(
    data_files: Sequence[str | Path] | None = None,
    tasks: Sequence[str] | None = None,
    dataset: str | None = None,
    config_name: str | None = None,
    split: str = "train",
    column_map: Mapping[str, str] | None = None,
    max_rows: int | None = None,
    induction: InductionConfig | None = None,
) -> Corpus:
    """Read FLAN-format rows (local files, ``Muennighoff/flan``, or another Hub dataset) and induce templates.

    Args:
        data_files: local FLAN-format files; when given, nothing is read from the Hub.
        tasks: tasks to keep; required for ``Muennighoff/flan`` (one file per task).
        dataset: Hub id; ``None`` means ``Muennighoff/flan``. Other datasets are streamed whole and grouped
            by their ``task`` column (use ``column_map`` for other column names).
        config_name: config of another Hub dataset.
        split: the split to read.
        column_map: ``{our_name: their_column}`` for ``inputs``, ``targets``, ``task``.
        max_rows: rows per task to read.
        induction: induction settings.

    Returns:
        The corpus; ``corpus.induction`` holds the :class:`InductionReport`.

    Example:
        >>> load_flan_corpus()
        Traceback (most recent call last):
        ...
        coin_data.sources.embedded.CorpusError: --source flan needs --data-files FILE... or --tasks (e.g. rte,cola) to read Muennighoff/flan from the Hub
    """
    if data_files:
        rows = read_flan_files(data_files, tasks, column_map, max_rows)
    elif dataset is None or dataset == FLAN_REPO:
        if not tasks:
            raise CorpusError(
                "--source flan needs --data-files FILE... or --tasks (e.g. rte,cola) to read Muennighoff/flan from the Hub"
            )
        rows = read_flan_hub(tasks, split, FLAN_REPO, max_rows, column_map)
    else:
        from coin_data.sources.rows import read_hub_rows

        located = apply_column_map(read_hub_rows(dataset, config_name, split), column_map)
        rows = read_flan_rows(located, tasks, max_rows, default_task=task_name(dataset.split("/")[-1]))
    return flan_corpus(rows, induction)
