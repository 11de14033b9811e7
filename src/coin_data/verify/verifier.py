"""Equivalence checks for candidate paraphrases: a verdict, a reason and the signals behind it.

Every candidate gets one verdict; the first check that fails decides:

=================  ===============================================================================
verdict            meaning
=================  ===============================================================================
``empty``          the candidate has no text
``slot_changed``   a ``{slot}`` or the options block was dropped, added or repeated
``too_short``      much shorter than the original (words were likely lost)
``too_long``       much longer than the original (something was likely added)
``not_equivalent`` a semantic signal says it asks for something else; ``reason`` names the signal
``duplicate``      the same text as an earlier candidate of the same template
``too_similar``    the instruction words barely changed (near-duplicate: too little to teach invariance)
``kept``           passed every check
=================  ===============================================================================

The semantic layer (:mod:`coin_data.verify.combine` has the rules) combines:

- ``embedding``: cosine of the two templates' masked texts (slots by name, options block removed), by the
  bundled all-MiniLM-L6-v2; every unique string is embedded once;
- ``lexdiff``: the lexical-semantic diff (:mod:`coin_data.verify.lexdiff`, offline WordNet): negation and
  antonym flips, changed numbers, positions, label words, scope, swapped arguments, unmatched words;
- ``combiner``: a logistic regression over the two above, fitted on the project's labelled pairs and on
  pairs built from PromptBench's prompt lists (:mod:`coin_data.verify.peer_pairs`), their ``fit`` parts only;
- optional, switched on by naming a model (:mod:`coin_data.verify.signals`): ``nli`` (a cross-encoder, both
  directions), ``judge`` (an LLM asked whether both instructions request the same output), and
  ``behaviour`` (a causal LM answers probe inputs under both instructions).

``duplicate`` and ``too_similar`` come after the semantic layer: such candidates were judged equivalent
but teach nothing new. :attr:`Verdict.equivalent` is the semantic judgement alone, and is what
``coin-data verify --report`` scores against labels.

Example:
    >>> from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder
    >>> from coin_data.templates import parse_template
    >>> t = parse_template("Review: {review}\\nIs this review positive or negative?\\n{options_}")
    >>> cache = EmbeddingCache(SentenceTransformerEmbedder())
    >>> [v.verdict for v in verify_candidates([
    ...     (t, "Here is a review:\\n{review}\\nDoes it express a positive or a negative opinion?\\n{options_}"),
    ...     (t, "Review: {review}\\nIs this review long or short?\\n{options_}"),
    ...     (t, "Review: the text\\nIs this review positive or negative?\\n{options_}")], cache)]
    ['kept', 'not_equivalent', 'slot_changed']
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence

from coin_data.templates import Template, instruction_overlap, parse_template, slot_lock_violation
from coin_data.verify.combine import Combiner
from coin_data.verify.embedding import EmbeddingCache
from coin_data.verify.lexdiff import LexDiff, LexicalDiff

KEPT = "kept"
NOT_EQUIVALENT = "not_equivalent"
PARAPHRASE_FAILED = "paraphrase_failed"  # the backend gave no candidate for the template (the build records it)
VERDICTS = ("kept", "empty", "slot_changed", "too_short", "too_long", "not_equivalent", "duplicate", "too_similar",
            PARAPHRASE_FAILED)
# Verdicts whose candidate the semantic layer judged equivalent (the last two are usefulness filters).
EQUIVALENT_VERDICTS = frozenset({"kept", "duplicate", "too_similar"})

# The signals on by default; nli, judge and behaviour are switched on by naming their model.
DEFAULT_SIGNALS = ("embedding", "lexdiff", "combiner")


@dataclass
class VerifyConfig:
    """Settings of the equivalence checks.

    Command: ``coin-data verify pairs.jsonl --report`` (labelled file) or
    ``coin-data verify pairs.jsonl --nli-model cross-encoder/nli-deberta-v3-base --out checked.jsonl``
    """

    # --- semantic layer ---------------------------------------------------------
    signals: tuple[str, ...] = field(
        default=DEFAULT_SIGNALS,
        metadata={"help": "Offline signals to run: any of 'embedding', 'lexdiff', 'combiner' (default: all "
                  "three; comma-separated on the command line). 'embedding' alone is the plain cosine threshold of "
                  "earlier versions. The optional signals switch on by naming their model."},
    )
    threshold: float = field(
        default=0.5,
        metadata={"help": "Embedding cosine floor: below it a candidate is 'not_equivalent' whatever else says. "
                  "With the 'embedding' signal alone it is the whole semantic check (0.75 suits that mode)."},
    )
    combiner_path: str | None = field(
        default=None,
        metadata={"help": "JSON file of combiner coefficients. Default: the shipped verify_data/combiner.json "
                  "(refit with scripts/fit_combiner.py)."},
    )
    combiner_threshold: float | None = field(
        default=None,
        metadata={"help": "p(equivalent) at or above which the combiner keeps a candidate; None uses the value "
                  "stored with the coefficients (0.5)."},
    )
    # --- optional signals (off unless a model is named) -------------------------
    nli_model: str | None = field(
        default=None,
        metadata={"help": "sentence-transformers CrossEncoder NLI model (name or folder), e.g. "
                  "cross-encoder/nli-deberta-v3-base; entailment is checked in both directions."},
    )
    nli_threshold: float = field(
        default=0.5,
        metadata={"help": "Minimum entailment probability, in the weaker direction, for the NLI signal to agree."},
    )
    judge: str | None = field(
        default=None,
        metadata={"help": "LLM judge: 'openai:MODEL' (any OpenAI-compatible server; key from OPENAI_API_KEY) or "
                  "'hf:MODEL' (local causal LM; 'hf:smollm2' is the bundled one)."},
    )
    judge_base_url: str | None = field(
        default=None, metadata={"help": "Endpoint for an 'openai:' judge. Default: OPENAI_BASE_URL, else OpenAI."}
    )
    behaviour_model: str | None = field(
        default=None,
        metadata={"help": "Causal LM (folder, Hub id or 'smollm2') that answers probe inputs under both "
                  "instructions; any different answer rejects the candidate."},
    )
    behaviour_probes: int = field(
        default=3, metadata={"help": "Probe inputs per pair for the behaviour signal."}
    )
    # --- surface checks -------------------------------------------------------
    near_duplicate: float = field(
        default=0.95,
        metadata={"help": "Word-level similarity ratio (0-1) of the instruction words at or above which an "
                  "equivalent candidate counts as a near-duplicate (too little change to teach invariance)."},
    )
    min_length_ratio: float = field(
        default=0.25, metadata={"help": "Candidate/original word-count ratio below which it is 'too_short'."}
    )
    max_length_ratio: float = field(
        default=4.0,
        metadata={"help": "Candidate/original word-count ratio above which it is 'too_long' (true rewordings "
                  "often run 2-3x longer: 'Sum up X' -> 'You will be given X. Read it and ...')."},
    )
    min_length_change: int = field(
        default=4,
        metadata={"help": "Length checks apply only when the word counts differ by at least this many words "
                  "(a 3-word instruction may grow to 8 words without adding a task)."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.signals, str):
            self.signals = tuple(s.strip() for s in self.signals.split(",") if s.strip())
        self.signals = tuple(self.signals)
        unknown = [s for s in self.signals if s not in DEFAULT_SIGNALS]
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}: choose from {list(DEFAULT_SIGNALS)} (the optional "
                             "signals switch on by naming their model)")
        if "embedding" not in self.signals:
            raise ValueError("the 'embedding' signal is required (the similarity score is recorded for every row)")
        if "combiner" in self.signals and "lexdiff" not in self.signals:
            raise ValueError("the 'combiner' signal needs 'lexdiff' (its features come from the diff)")
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [-1, 1], got {self.threshold}")
        if self.combiner_threshold is not None and not 0.0 <= self.combiner_threshold <= 1.0:
            raise ValueError(f"combiner_threshold must lie in [0, 1], got {self.combiner_threshold}")
        if not 0.0 <= self.nli_threshold <= 1.0:
            raise ValueError(f"nli_threshold must lie in [0, 1], got {self.nli_threshold}")
        if self.behaviour_probes < 1:
            raise ValueError(f"behaviour_probes must be >= 1, got {self.behaviour_probes}")
        if not 0.0 < self.near_duplicate <= 1.0:
            raise ValueError(f"near_duplicate must lie in (0, 1], got {self.near_duplicate}")
        if not 0.0 < self.min_length_ratio < 1.0 < self.max_length_ratio:
            raise ValueError("length ratios must satisfy 0 < min_length_ratio < 1 < max_length_ratio")
        if self.min_length_change < 0:
            raise ValueError(f"min_length_change must be >= 0, got {self.min_length_change}")

    @property
    def active_signals(self) -> tuple[str, ...]:
        """Offline signals plus every optional one whose model is named."""
        optional = (("nli", self.nli_model), ("judge", self.judge), ("behaviour", self.behaviour_model))
        return self.signals + tuple(name for name, model in optional if model)

    def describe(self) -> str:
        """One line for the dataset card and the CLI: what decides a verdict.

        Example:
            >>> VerifyConfig().describe()
            'signals embedding + lexdiff + combiner; embedding floor 0.5; combiner threshold (shipped)'
        """
        parts = [f"signals {' + '.join(self.active_signals)}", f"embedding floor {self.threshold}"]
        if "combiner" in self.signals:
            parts.append(
                f"combiner threshold {self.combiner_threshold if self.combiner_threshold is not None else '(shipped)'}"
                + (f" from {self.combiner_path}" if self.combiner_path else "")
            )
        if self.nli_model:
            parts.append(f"NLI `{self.nli_model}` (entailment >= {self.nli_threshold} both ways)")
        if self.judge:
            parts.append(f"LLM judge `{self.judge}`")
        if self.behaviour_model:
            parts.append(f"behaviour `{self.behaviour_model}` ({self.behaviour_probes} probes)")
        return "; ".join(parts)


@dataclass
class Verdict:
    """The outcome for one candidate.

    Attributes:
        verdict: ``kept`` or the name of the failed check (see the module table).
        reason: one human-readable line; for ``not_equivalent`` it starts with the deciding signal.
        similarity: the embedding cosine, or NaN when a structural check decided first.
        signals: every signal computed for the candidate with its score, e.g.
            ``{"embedding": 0.93, "lexdiff": {...}, "combiner": 0.88}``.
        deciding: the signal that decided a semantic verdict (``lexdiff``, ``embedding``, ``combiner``,
            ``nli``, ``judge``, ``behaviour``), the surface check's name, or ``""``.
    """

    verdict: str
    reason: str
    similarity: float = math.nan
    signals: dict[str, Any] = field(default_factory=dict)
    deciding: str = ""

    @property
    def kept(self) -> bool:
        return self.verdict == KEPT

    @property
    def equivalent(self) -> bool:
        """The semantic judgement: True for ``kept`` and for the usefulness rejections after it."""
        return self.verdict in EQUIVALENT_VERDICTS


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def surface_verdict(original: Template, candidate: str, config: VerifyConfig) -> Verdict | None:
    """Structural checks that need no model (empty, slots, length); ``None`` when all pass.

    Example:
        >>> t = parse_template("Text: {text}\\nWhat is the topic?")
        >>> surface_verdict(t, "Topic?", VerifyConfig()).verdict
        'slot_changed'
    """
    if not candidate or not candidate.strip():
        return Verdict("empty", "the candidate has no text", deciding="empty")
    violation = slot_lock_violation(original, candidate)
    if violation:
        return Verdict("slot_changed", violation, deciding="slot_changed")
    before, after = _words(original.literal_text), _words(parse_template(candidate).literal_text)
    if abs(len(after) - len(before)) >= config.min_length_change:
        length_ratio = len(after) / max(1, len(before))
        if length_ratio < config.min_length_ratio:
            return Verdict("too_short", f"length ratio {length_ratio:.2f} < {config.min_length_ratio}",
                           deciding="too_short")
        if length_ratio > config.max_length_ratio:
            return Verdict("too_long", f"length ratio {length_ratio:.2f} > {config.max_length_ratio}",
                           deciding="too_long")
    return None


def usefulness_verdict(original: Template, candidate: str, config: VerifyConfig) -> Verdict | None:
    """``too_similar`` when the instruction words barely changed; ``None`` otherwise.

    Example:
        >>> t = parse_template("Text: {text}\\nWhat is the topic?")
        >>> usefulness_verdict(t, "Text: {text}\\nWhat is the topic ?", VerifyConfig()).verdict
        'too_similar'
    """
    ratio = instruction_overlap(original, candidate)
    if ratio >= config.near_duplicate:
        return Verdict("too_similar", f"word overlap {ratio:.2f} >= {config.near_duplicate}", deciding="too_similar")
    return None


@lru_cache(maxsize=1)
def default_lexical_diff() -> LexicalDiff:
    """The process-wide :class:`LexicalDiff` (its WordNet caches are worth keeping)."""
    return LexicalDiff()


@lru_cache(maxsize=4)
def _load_combiner(path: str | None) -> Combiner:
    return Combiner.load(path)


def verify_candidates(
    pairs: Sequence[tuple[Template, str]], cache: EmbeddingCache, config: VerifyConfig | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[Verdict]:
    """Give every ``(original template, candidate text)`` pair a :class:`Verdict`.

    Args:
        pairs: originals with one candidate each; several candidates of one template may follow each other.
        cache: embedding cache shared across the build (each unique string embedded once).
        config: checks and signals; defaults to :class:`VerifyConfig` (offline: embedding + lexdiff + combiner).
        progress: called with the number of pairs settled (e.g. a tqdm bar's ``update``); the lexical diff,
            the slow part, advances it pair by pair.

    Returns:
        One verdict per pair, in order.

    Example:
        >>> from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder
        >>> t = parse_template("Answer in at most three words: {question}")
        >>> v = verify_candidates([(t, "Answer in at least three words: {question}")],
        ...                       EmbeddingCache(SentenceTransformerEmbedder()))[0]
        >>> v.verdict, v.deciding
        ('not_equivalent', 'lexdiff')
    """
    config = config or VerifyConfig()
    tick = progress or (lambda n: None)
    verdicts: list[Verdict | None] = [surface_verdict(original, candidate, config) for original, candidate in pairs]
    pending = [i for i, v in enumerate(verdicts) if v is None]
    tick(len(pairs) - len(pending))  # settled by the surface checks alone
    originals = [pairs[i][0].masked_text() for i in pending]
    candidates = [parse_template(pairs[i][1]).masked_text() for i in pending]
    scores = [float(s) for s in cache.cosine(originals, candidates)]
    signals: list[dict[str, Any]] = [{"embedding": round(s, 6)} for s in scores]
    diffs: list[LexDiff | None] = [None] * len(pending)
    if "lexdiff" in config.signals:
        differ = default_lexical_diff()
        for k, (a, b) in enumerate(zip(originals, candidates)):
            diffs[k] = differ.diff(a, b)
            signals[k]["lexdiff"] = _diff_record(diffs[k])
            tick(1)
    else:
        tick(len(pending))
    vetoes = _optional_vetoes(
        [pairs[i][0] for i in pending], [pairs[i][1] for i in pending], originals, candidates, config, signals
    )
    combiner = _combiner(config) if "combiner" in config.signals else None
    for k, i in enumerate(pending):
        verdicts[i] = _semantic_verdict(scores[k], diffs[k], vetoes[k], combiner, config, signals[k])
    seen: set[tuple[str, str, str, str]] = set()
    for i, (original, candidate) in enumerate(pairs):
        # one template = one (task, id, text): two tasks that share a template's text each keep their own candidates
        key = (original.task, original.template_id, original.text, " ".join(candidate.split()))
        verdict = verdicts[i]
        if verdict is not None and verdict.verdict == KEPT:
            if key in seen:
                verdicts[i] = _replace(verdict, "duplicate", "same text as an earlier candidate of this template")
            else:
                near = usefulness_verdict(original, candidate, config)
                if near is not None:
                    verdicts[i] = _replace(verdict, near.verdict, near.reason)
        seen.add(key)
    return verdicts  # type: ignore[return-value]


def _combiner(config: VerifyConfig) -> Combiner:
    combiner = _load_combiner(config.combiner_path)
    if config.combiner_threshold is not None:
        combiner = Combiner(combiner.weights, combiner.intercept, config.combiner_threshold,
                            combiner.min_similarity, combiner.meta)
    return combiner


def _semantic_verdict(
    score: float,
    diff: LexDiff | None,
    vetoes: list[tuple[str, str]],
    combiner: Combiner | None,
    config: VerifyConfig,
    signals: dict[str, Any],
) -> Verdict:
    if combiner is not None and diff is not None:
        decision = combiner.decide(score, diff, vetoes, min_similarity=config.threshold)
        if not math.isnan(decision.probability):
            signals["combiner"] = round(decision.probability, 6)
        verdict = KEPT if decision.equivalent else NOT_EQUIVALENT
        return Verdict(verdict, decision.reason, score, signals, decision.deciding)
    # Without the combiner: lexdiff findings, then the cosine threshold, then optional vetoes.
    if diff is not None and diff.findings:
        return Verdict(NOT_EQUIVALENT, f"lexdiff {diff.findings[0]}", score, signals, "lexdiff")
    if score < config.threshold:
        return Verdict(NOT_EQUIVALENT, f"embedding cosine {score:.3f} < {config.threshold}", score, signals,
                       "embedding")
    if vetoes:
        signal, reason = vetoes[0]
        return Verdict(NOT_EQUIVALENT, f"{signal} {reason}", score, signals, signal)
    return Verdict(KEPT, f"embedding cosine {score:.3f} >= {config.threshold}", score, signals, "embedding")


def _replace(verdict: Verdict, name: str, reason: str) -> Verdict:
    return Verdict(name, reason, verdict.similarity, verdict.signals, name)


def _diff_record(diff: LexDiff) -> dict[str, Any]:
    return {
        "findings": [str(f) for f in diff.findings],
        "dropped": list(diff.dropped),
        "added": list(diff.added),
        "overlap": round(diff.overlap, 4),
    }


def _optional_vetoes(
    templates: Sequence[Template],
    candidate_texts: Sequence[str],
    originals: Sequence[str],
    candidates: Sequence[str],
    config: VerifyConfig,
    signals: list[dict[str, Any]],
) -> list[list[tuple[str, str]]]:
    """Run the optional signals that are switched on; return their vetoes per pair (in signal order)."""
    vetoes: list[list[tuple[str, str]]] = [[] for _ in originals]
    if not (config.nli_model or config.judge or config.behaviour_model) or not originals:
        return vetoes
    from coin_data.verify import signals as optional

    checks = []
    if config.nli_model:
        checks.append(optional.get_nli(config.nli_model, config.nli_threshold))
    if config.judge:
        checks.append(optional.get_judge(config.judge, config.judge_base_url))
    if config.behaviour_model:
        checks.append(optional.get_behaviour(config.behaviour_model, config.behaviour_probes))
    for check in checks:
        results = check.check(templates, candidate_texts, originals, candidates)
        for k, result in enumerate(results):
            signals[k][check.signal] = result.score
            if not result.agrees:
                vetoes[k].append((check.signal, result.reason))
    return vetoes
