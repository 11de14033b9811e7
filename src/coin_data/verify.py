"""Equivalence checks for candidate paraphrases: a verdict, a reason and a score for every candidate.

Checks run cheapest first and the first failing one decides the verdict:

=================  ===============================================================
verdict            meaning
=================  ===============================================================
``empty``          the candidate has no text
``slot_changed``   a ``{slot}`` or the options block was dropped, added or repeated
``duplicate``      the same text as an earlier candidate of the same template
``too_similar``    the instruction words barely changed (near-duplicate)
``too_short``      much shorter than the original (words were likely lost)
``too_long``       much longer than the original (something was likely added)
``not_equivalent`` embedding cosine below the acceptance threshold
``kept``           passed every check
=================  ===============================================================

The similarity is the cosine of the two templates' masked texts (slots shown by name, options block
removed), embedded by the bundled all-MiniLM-L6-v2; every unique string is embedded once.

Example:
    >>> from coin_data.embed import EmbeddingCache, SentenceTransformerEmbedder
    >>> from coin_data.templates import parse_template
    >>> t = parse_template("Review: {review}\\nIs this review positive or negative?\\n{options_}")
    >>> cache = EmbeddingCache(SentenceTransformerEmbedder())
    >>> [v.verdict for v in verify_candidates([(t, "Review: {review}\\nIs the review favourable or unfavourable?\\n{options_}"),
    ...                                        (t, "Review: {review}\\n{options_}")], cache)]
    ['kept', 'slot_changed']
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from coin_data.embed import EmbeddingCache
from coin_data.templates import Template, TemplateError, parse_template, slot_lock_violation

KEPT = "kept"
VERDICTS = ("kept", "empty", "slot_changed", "duplicate", "too_similar", "too_short", "too_long", "not_equivalent")


@dataclass
class VerifyConfig:
    """Thresholds of the equivalence checks.

    Command: ``coin-data verify pairs.jsonl --threshold 0.75 --out checked.jsonl``
    """

    # --- semantic check -------------------------------------------------------
    threshold: float = field(
        default=0.75,
        metadata={"help": "Minimum embedding cosine between the masked templates for a candidate to be kept."},
    )
    # --- surface checks -------------------------------------------------------
    near_duplicate: float = field(
        default=0.95,
        metadata={"help": "Word-level similarity ratio (0-1) of the instruction words at or above which a "
                  "candidate counts as a near-duplicate (too little change to teach invariance)."},
    )
    min_length_ratio: float = field(
        default=0.5, metadata={"help": "Candidate/original word-count ratio below which it is 'too_short'."}
    )
    max_length_ratio: float = field(
        default=2.0, metadata={"help": "Candidate/original word-count ratio above which it is 'too_long'."}
    )

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [-1, 1], got {self.threshold}")
        if not 0.0 < self.near_duplicate <= 1.0:
            raise ValueError(f"near_duplicate must lie in (0, 1], got {self.near_duplicate}")
        if not 0.0 < self.min_length_ratio < 1.0 < self.max_length_ratio:
            raise ValueError("length ratios must satisfy 0 < min_length_ratio < 1 < max_length_ratio")


@dataclass
class Verdict:
    """The outcome for one candidate.

    Attributes:
        verdict: ``kept`` or the name of the failed check (see the module table).
        reason: a human-readable detail.
        similarity: the embedding cosine, or NaN when a cheaper check decided first.
    """

    verdict: str
    reason: str
    similarity: float = math.nan

    @property
    def kept(self) -> bool:
        return self.verdict == KEPT


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def surface_verdict(original: Template, candidate: str, config: VerifyConfig) -> Verdict | None:
    """Structural checks that need no model; ``None`` when all pass.

    Example:
        >>> t = parse_template("Text: {text}\\nWhat is the topic?")
        >>> surface_verdict(t, "Text: {text}\\nWhat is the topic?", VerifyConfig()).verdict
        'too_similar'
    """
    if not candidate or not candidate.strip():
        return Verdict("empty", "the candidate has no text")
    violation = slot_lock_violation(original, candidate)
    if violation:
        return Verdict("slot_changed", violation)
    candidate_template = parse_template(candidate)
    before, after = _words(original.literal_text), _words(candidate_template.literal_text)
    ratio = difflib.SequenceMatcher(a=before, b=after, autojunk=False).ratio()
    if ratio >= config.near_duplicate:
        return Verdict("too_similar", f"word overlap {ratio:.2f} >= {config.near_duplicate}")
    length_ratio = len(after) / max(1, len(before))
    if length_ratio < config.min_length_ratio:
        return Verdict("too_short", f"length ratio {length_ratio:.2f} < {config.min_length_ratio}")
    if length_ratio > config.max_length_ratio:
        return Verdict("too_long", f"length ratio {length_ratio:.2f} > {config.max_length_ratio}")
    return None


def verify_candidates(
    pairs: Sequence[tuple[Template, str]], cache: EmbeddingCache, config: VerifyConfig | None = None
) -> list[Verdict]:
    """Give every ``(original template, candidate text)`` pair a :class:`Verdict`.

    Args:
        pairs: originals with one candidate each; several candidates of one template may follow each other.
        cache: embedding cache shared across the build (each unique string embedded once).
        config: thresholds; defaults to :class:`VerifyConfig`.

    Returns:
        One verdict per pair, in order.
    """
    config = config or VerifyConfig()
    verdicts: list[Verdict | None] = []
    seen: set[tuple[str, str]] = set()
    for original, candidate in pairs:
        verdict = surface_verdict(original, candidate, config)
        key = (original.text, " ".join(candidate.split()))
        if verdict is None and key in seen:
            verdict = Verdict("duplicate", "same text as an earlier candidate of this template")
        seen.add(key)
        verdicts.append(verdict)
    pending = [i for i, v in enumerate(verdicts) if v is None]
    scores = cache.cosine(
        [pairs[i][0].masked_text() for i in pending], [parse_template(pairs[i][1]).masked_text() for i in pending]
    )
    for i, score in zip(pending, scores):
        score = float(score)
        if score < config.threshold:
            verdicts[i] = Verdict("not_equivalent", f"cosine {score:.3f} < {config.threshold}", score)
        else:
            verdicts[i] = Verdict(KEPT, f"cosine {score:.3f} >= {config.threshold}", score)
    return verdicts  # type: ignore[return-value]


# --- the `coin-data verify` file interface ------------------------------------

ORIGINAL_KEY = "original"
PARAPHRASE_KEY = "paraphrase"


class VerifyInputError(ValueError):
    """A row of a verify input file is unusable; the message names the file, line and field."""


def read_pairs(path: str | Path) -> list[tuple[Template, str, dict]]:
    """Read a JSONL file of ``{"original": ..., "paraphrase": ...}`` rows (extra keys are kept).

    Instructions may contain ``{slots}``; plain instructions without slots work too.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VerifyInputError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise VerifyInputError(f"{path}: not valid UTF-8 (byte {err.start})") from None
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise VerifyInputError(f"{where}: invalid JSON: {err.msg}") from None
        if not isinstance(row, dict):
            raise VerifyInputError(f"{where}: each line must be a JSON object")
        for key in (ORIGINAL_KEY, PARAPHRASE_KEY):
            if not isinstance(row.get(key), str):
                raise VerifyInputError(f"{where}: field {key!r} is missing or not a string")
        try:
            original = parse_template(row[ORIGINAL_KEY], template_id=f"line {line_no}")
        except TemplateError as err:
            raise VerifyInputError(f"{where}: field {ORIGINAL_KEY!r}: {err}") from None
        rows.append((original, row[PARAPHRASE_KEY], row))
    if not rows:
        raise VerifyInputError(f"{path}: no rows (the file is empty)")
    return rows


def verify_file(
    in_path: str | Path, out_path: str | Path, cache: EmbeddingCache, config: VerifyConfig | None = None
) -> Counter:
    """Verify every pair of ``in_path`` and write rows with ``verdict``, ``reason``, ``similarity`` added.

    Returns:
        Verdict counts.
    """
    rows = read_pairs(in_path)
    verdicts = verify_candidates([(original, paraphrase) for original, paraphrase, _ in rows], cache, config)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for (_, _, row), verdict in zip(rows, verdicts):
            record = {**row, **asdict(verdict)}
            record["similarity"] = None if math.isnan(verdict.similarity) else round(verdict.similarity, 6)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(out_path)
    return Counter(v.verdict for v in verdicts)
