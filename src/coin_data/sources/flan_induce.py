"""FLAN template induction: recover the templates behind rendered rows by aligning them.

The text that rows of one template share is that template's instruction; the parts that differ are slots
(``difflib`` matching blocks on word tokens). Rows are clustered by alignment, clusters are cleaned (near-
constant slots become text, slots with a few recurring values split a cluster, untrusted separators are
dropped) and weakly supported clusters are discarded. Where exactly each slot starts and ends is settled
afterwards by :mod:`coin_data.sources.flan_edges`; :mod:`coin_data.sources.flan` matches every row and builds the corpus.

Example:
    >>> rows = [f"Question: {q}\\nAnswer briefly." for q in ["why is it", "who came", "where is it"]]
    >>> [c.pattern.texts for c in _cluster(rows, InductionConfig(min_support=2))]
    [['Question: ', '\\nAnswer briefly.']]
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

from coin_data.sources.flan_skeleton import (
    _GAP,
    _OPT,
    _absorb_punctuation,
    _Cluster,
    _is_word,
    _literal_words,
    _Match,
    _merge,
    _runs,
    _tidy,
    _tokens,
    _window,
)
from coin_data.sources.flan_stock import generalise_extra_slots, settle_stock


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

# --- induction: skeletons --------------------------------------------------------------------------


def _cluster(masked: Sequence[str], config: InductionConfig,
             notes: list[tuple[list[int], str]] | None = None) -> list[_Cluster]:
    """Cluster (a sample of) masked rows by template and return trusted clusters, largest first.

    ``notes`` receives ``(rows, note)`` for clusters whose text the rows cannot settle (see
    :func:`~coin_data.sources.flan_stock.settle_stock`): the template that takes those rows is ambiguous.
    """
    sample = list(range(len(masked)))
    if len(sample) > config.sample_size:
        sample = sorted(random.Random(config.seed).sample(sample, config.sample_size))
    tokens = {i: _window(_tokens(masked[i]), config.window) for i in sample}
    refined = _fold_subsumed(_without_stock(_clusters_of(sample, masked, tokens, config), sample, masked, tokens,
                                            config), masked)
    # a host that took in other clusters' rows is cleaned again: the rows may show that it is several
    # templates differing in punctuation next to a slot
    again = [part for c in refined for part in _refine(c, masked, config)]
    refined = _fold_subsumed([c for c in again if _anchored(c.skeleton)], masked)
    refined = _without_stock(refined, sample, masked, tokens, config)  # cleaning can split on a stock phrase
    largest = max((len(c.members) for c in refined), default=0)
    support = max(config.min_support, math.ceil(config.min_support_fraction * len(sample)),
                  math.ceil(config.relative_support * largest))
    trusted = [c for c in refined if len(c.members) >= support and _anchored(c.skeleton)]
    if generalise_extra_slots(trusted, masked, config.min_support, [] if notes is None else notes):
        trusted = _fold_subsumed(trusted, masked)  # a specific copy of a generalised template joins it
    trusted.sort(key=lambda c: (-len(c.members), -_literal_words(c.skeleton)))
    return trusted


def _without_stock(clusters: list[_Cluster], sample: list[int], masked: Sequence[str], tokens,
                   config: InductionConfig) -> list[_Cluster]:
    """The clusters with the splits made by stock phrases of field text undone
    (:func:`~coin_data.sources.flan_stock.settle_stock`); rows that a dissolved cluster held and no cluster
    explains are clustered again."""
    placed = {i for c in clusters for i in c.members}
    clusters, loose = settle_stock(clusters, masked, config.min_support, [i for i in sample if i not in placed])
    if len(loose) >= 2 * config.min_support:  # rows a stock phrase held together, whose templates no cluster has
        again = _clusters_of(loose, masked, tokens, config)
        placed = {i for c in again for i in c.members}
        clusters, _ = settle_stock(clusters + again, masked, config.min_support, [i for i in loose if i not in placed])
    return clusters


def _clusters_of(sample: list[int], masked: Sequence[str], tokens, config: InductionConfig,
                 depth: int = 0, split: bool = True) -> list[_Cluster]:
    """Anchored clusters of the sampled rows.

    A cluster whose cleaned skeleton keeps no instruction text ("{a}{options_}") joined templates that share
    only a short phrase ("used correctly"), and cleaning ejects the rows of templates that joined a larger
    one: the rows left in no cluster are clustered again with stricter settings.
    """
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
    kept = [c for c in refined if _anchored(c.skeleton)]
    placed = {i for c in kept for i in c.members}
    lost = [i for i in sample if i not in placed]
    stricter = replace(config, keep_fraction=min(0.8, config.keep_fraction + 0.15),
                       min_shared_words=min(5, config.min_shared_words + 1))
    if lost and depth < 2 and len(lost) >= 2 * config.min_support:
        kept += _clusters_of(lost, masked, tokens, stricter, depth + 1, split=False)
    if depth == 0 and split:
        kept = [part for c in kept for part in _split_general(c, masked, tokens, stricter)]
    return kept


def _split_general(cluster: _Cluster, masked: Sequence[str], tokens, stricter: InductionConfig) -> list[_Cluster]:
    """Templates that share only a short phrase ("{a} used correctly?\n{options_}") as one cluster: its rows
    clustered with stricter settings fall into a few well supported groups that each share more instruction
    text. Stock phrases in field text split a template into many small groups instead, and are ignored.
    """
    words = _literal_words(cluster.skeleton)
    if len(cluster.members) < 2 * stricter.min_support or words > stricter.min_shared_words:
        return [cluster]  # only a cluster held together by a few words is suspect (stock phrases would split others)
    parts = _clusters_of(sorted(cluster.members), masked, tokens, stricter, split=False)
    covered = sum(len(p.members) for p in parts)
    if len(parts) >= 2 and covered >= 0.9 * len(cluster.members) and all(
        _literal_words(p.skeleton) > words and len(p.members) >= stricter.min_support for p in parts
    ):
        return parts
    return [cluster]


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
    return _dissolve_spread(clusters, masked)


def _dissolve_spread(clusters: list[_Cluster], masked: Sequence[str]) -> list[_Cluster]:
    """Dissolve a smaller cluster whose rows larger clusters explain between them, all or most of them.

    A phrase that recurs in field text (``What does "{a}" mean in {b}``) can gather rows of several
    templates (and a noise row or two) into a cluster of its own; a true template's rows all share its
    text, so larger clusters explain either none of them or all.
    """
    for guest in sorted(clusters, key=lambda c: len(c.members)):
        hosts = [c for c in clusters if c is not guest and len(c.members) > len(guest.members)]
        owners = {}
        for i in guest.members:
            owner = next((h for h in hosts if h.pattern.fullmatch(masked[i])), None)
            if owner is not None:
                owners[i] = owner
        if hosts and len(owners) >= 0.6 * len(guest.members):
            for i, owner in owners.items():
                owner.members.append(i)
            clusters = [c for c in clusters if c is not guest]
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
    split = _split_on_edge_marks(cluster, matches, config)
    if split is not None:
        return [part for piece in split for part in _refine(piece, masked, config, depth + 1)]
    for change in (_ambiguous_separator, _specialized):
        skeleton = change(cluster, matches, config)
        if skeleton is not None:
            return _refine(_Cluster(_tidy(skeleton), cluster.members), masked, config, depth + 1)
    return [cluster]


def _edge_marks(value: str, from_end: bool) -> str:
    """The characters before the first (after the last) letter or digit of a value."""
    size = 0
    for ch in reversed(value) if from_end else value:
        if ch.isalnum():
            break
        size += 1
    return value[len(value) - size:] if from_end else value[:size]


def _split_on_edge_marks(cluster: _Cluster, matches: Mapping[int, _Match], config: InductionConfig):
    """Split a cluster whose slot values start (end) with one of a few recurring runs of punctuation.

    Templates that differ only in punctuation next to a slot (``article -- {text}`` / ``article: "{text}"``)
    align into one cluster with the punctuation inside the slot. Field text starts with a letter in some rows,
    so a start made of punctuation in every row, in 2-4 forms, marks several templates. At the end a field's
    own final punctuation varies (``.``/``?``), so there the forms must share their first character
    (``."`` / ``.".``: the templates differ after the field's own full stop).
    """
    gaps = [index for index, token in enumerate(cluster.skeleton) if token is _GAP]
    for slot, position in enumerate(gaps, start=1):
        for from_end in (False, True):
            marks = {i: _edge_marks(m.group(slot), from_end) for i, m in matches.items()}
            forms = Counter(marks.values())
            if "" in forms or not 2 <= len(forms) <= 4 or min(forms.values()) < config.min_support:
                continue
            if from_end and len({form[0] for form in forms}) > 1:
                continue
            parts = []
            for form in forms:
                middle = [_GAP, *_tokens(form)] if from_end else [*_tokens(form), _GAP]
                skeleton = cluster.skeleton[:position] + middle + cluster.skeleton[position + 1 :]
                parts.append(_Cluster(_tidy(skeleton), [i for i, mark in marks.items() if mark == form]))
            return parts
    return None


def _separates(run: Sequence[object]) -> bool:
    """Whether a literal between two slots looks like template text: a line break, a label colon, a quote,
    the options block, or three words or more (shorter phrases recur in ordinary field text)."""
    text = "".join(str(t) for t in run)
    return any(mark in text for mark in ("\n", ":", '"', _OPT)) or _literal_words(run) >= 3


_BRACKETS = "\"'()[]<>{}*|"
_BREAK = re.compile(r"[^\w\s]*\n+[^\w\s]*(?:[A-Za-z]+(?: [A-Za-z]+){0,2}:[ \t]*)?")  # marks, line break, label


def _specialized(
    cluster: _Cluster, matches: Mapping[int, _Match], config: InductionConfig
) -> list[object] | None:
    """Split a slot at a labelled (or bracketed: ``?]\n``) line break that every one of its values contains
    exactly once.

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
        # alignment can miss a short run of marks around a line break ("?]\n") or the label after it
        # ("?\nPassage: ", when field words of two rows align across it): try those directly too
        breaks = [_tokens(m.group(0)) for m in re.finditer(_BREAK, values[0])]
        for run in [*_runs(common), *breaks]:
            text = "".join(str(t) for t in run)
            marked = _literal_words(run) >= 1 or any(mark in text for mark in _BRACKETS)
            if ("\n" in text.strip(" ") or ":" in text) and marked and all(
                v.count(text) == 1 and not v.startswith(text) and not v.endswith(text) for v in values
            ):
                return skeleton[:position] + [_GAP, *run, _GAP] + skeleton[position + 1 :]
    return None


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


