"""The lexical diff itself: :class:`LexicalDiff` reads both instructions, runs the rules, aligns the words,
and returns a :class:`LexDiff` (findings, unmatched words, overlap).

Example:
    >>> LexDiff(findings=[Finding("scope", "'only' dropped")]).summary()
    "scope: 'only' dropped"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from coin_data.text.lexicon import Lexicon, shared_lexicon
from coin_data.verify.lexdiff.alignment import align
from coin_data.verify.lexdiff.findings import FINDING_KINDS, Finding, antonym, contrast, sentence_findings
from coin_data.verify.lexdiff.reading import read_side, without_restated_answers
from coin_data.verify.lexdiff.relations import WordRelations


@dataclass
class LexDiff:
    """The diff of one (original, candidate) pair.

    Attributes:
        findings: meaning changes found, most specific kind first (empty when none).
        dropped: content words of the original with no counterpart (same word, inflection or synonym)
            in the candidate.
        added: content words of the candidate with no counterpart in the original.
        overlap: word-sequence similarity of the two texts (0-1, difflib ratio over base forms).
        content: content words of both texts together (distinct per text), persona clauses left out;
            ``(len(dropped) + len(added)) / content`` is the unmatched share.
        run: the most unmatched content words in one unbroken stretch of either text (no matched
            content word between them): a clause inserted or removed whole ("... and also say how
            confident you are") shows as a long run, a scattered rewording as short ones.
    """

    findings: list[Finding] = field(default_factory=list)
    dropped: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    overlap: float = 0.0
    content: int = 0
    run: int = 0

    @property
    def changed(self) -> bool:
        """True when at least one finding says the meaning changed."""
        return bool(self.findings)

    def features(self) -> dict[str, float]:
        """Every numeric feature of the diff, for analysis or a custom combiner (names are stable).

        Example:
            >>> LexDiff(dropped=("haiku",), added=("limerick",), overlap=0.9).features()["dropped"]
            1.0
        """
        kinds = {f.kind for f in self.findings}
        return {
            "findings": float(len(self.findings)),
            "dropped": float(len(self.dropped)),
            "added": float(len(self.added)),
            "overlap": float(self.overlap),
            "content": float(self.content),
            "run": float(self.run),
            **{f"finding_{kind}": float(kind in kinds) for kind in FINDING_KINDS},
        }

    def summary(self) -> str:
        """One line: the findings, else the unmatched words."""
        if self.findings:
            return "; ".join(str(f) for f in self.findings)
        return f"dropped {list(self.dropped)}, added {list(self.added)}, overlap {self.overlap:.2f}"


class LexicalDiff:
    """Compare instructions with WordNet; build once and reuse (lookups are cached).

    Args:
        wordnet: a loaded ``nltk.corpus.wordnet`` reader; ``None`` uses the process-wide
            :func:`coin_data.text.lexicon.shared_lexicon` (WordNet loaded on first use).

    Example:
        >>> differ = LexicalDiff()                                                      # doctest: +SKIP
        >>> differ.diff("Is the claim true?", "Is the claim false?").findings[0].kind    # doctest: +SKIP
        'antonym'
    """

    def __init__(self, wordnet=None) -> None:
        self._wordnet = wordnet

    @cached_property
    def lexicon(self) -> Lexicon:
        """The WordNet layer (loaded on first use)."""
        return Lexicon(self._wordnet) if self._wordnet is not None else shared_lexicon()

    @cached_property
    def relations(self) -> WordRelations:
        """The word relations the rules ask (cached answers)."""
        return WordRelations(self.lexicon)

    @cached_property
    def _read(self):
        # A template is compared with each of its candidates: its reading is worth keeping (never mutated).
        return lru_cache(maxsize=4096)(lambda text: read_side(text, self.relations))

    def diff(self, original: str, candidate: str) -> LexDiff:
        """Compare two instruction texts.

        Args:
            original: the original instruction (for templates, ``Template.masked_text()``).
            candidate: the candidate rewording.

        Returns:
            A :class:`LexDiff`.
        """
        relations = self.relations
        a, b = self._read(original), self._read(candidate)
        findings = sentence_findings(a, b, relations)
        a, b = without_restated_answers(a, b)
        aligned = align(a, b, relations)
        findings += antonym(aligned.fewer, aligned.more, a.words, relations)
        findings += contrast(aligned.dropped, aligned.added, relations)
        return LexDiff(findings=findings, dropped=aligned.dropped, added=aligned.added, overlap=aligned.overlap,
                       content=aligned.content, run=aligned.run)

    def synonyms(self, x: str, y: str) -> bool:
        """True when ``x`` and ``y`` share a WordNet sense, or one derives from the other.

        Example:
            >>> LexicalDiff().synonyms("writer", "author")   # doctest: +SKIP
            True
        """
        return self.relations.synonyms(x, y)

    def antonyms(self, x: str, y: str) -> bool:
        """True when ``y`` is a direct WordNet antonym of ``x`` (or a listed opposite, or x with un-/in-/dis-).

        Example:
            >>> LexicalDiff().antonyms("cheaper", "expensive")   # doctest: +SKIP
            True
        """
        return self.relations.antonyms(x, y)
