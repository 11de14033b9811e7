"""How two words relate in WordNet, as the lexical diff asks it: same form, synonym, antonym, more general or
more specific, a sibling concept, or named by the other's definition.

:class:`WordRelations` answers these questions on top of the shared :class:`coin_data.text.lexicon.Lexicon`
(base forms, senses, lemma antonyms) and caches each answer; it also decides which words count as content
(not a stop word, framing word, number or ordinal) and which can be the arguments of an instruction.

Example:
    >>> relations = WordRelations(shared_lexicon())          # doctest: +SKIP
    >>> relations.related("emotion", "feeling")               # doctest: +SKIP
    'generalization'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

from coin_data.text.lexicon import Lexicon, ancestors, shared_lexicon  # noqa: F401 (shared_lexicon: examples)
from coin_data.verify.lexdiff.words import (
    _CARDINALS, _CURATED_ANTONYMS, _DETERMINERS, _FRAMING, _ORDINALS, _ROLE_NOUNS, _STOP,
)  # fmt: skip


@dataclass(frozen=True)
class _Neighbourhood:
    """What :meth:`WordRelations.related` compares of one word, gathered once."""

    derived: frozenset[str]  # words derived from it, or its pertainyms ("summary" for "summarize")
    close: frozenset  # similar-to, see-also and verb-group senses
    up: frozenset  # senses up to two hypernym steps above its noun and verb senses


def _frozen_ancestors(synset, levels: int) -> frozenset:
    return frozenset(ancestors(synset, levels))


class WordRelations:
    """WordNet relations between words of two instructions; build once and reuse (answers are cached).

    Args:
        lexicon: the WordNet layer to ask.

    Example:
        >>> WordRelations(Lexicon()).is_content("haiku"), WordRelations(Lexicon()).is_content("please")
        (True, False)
    """

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self.forms = lexicon.forms  # the word and its base forms, in a fixed order
        self.senses = lexicon.senses  # synsets of all forms, most frequent first
        self.related = lru_cache(maxsize=None)(self._related_uncached)
        self.gloss = lru_cache(maxsize=None)(self._gloss_uncached)
        # Per word (or synset) once: the diff asks the same words of every pair.
        self.base = lru_cache(maxsize=None)(self._base_uncached)
        self.nounish = lru_cache(maxsize=None)(self._nounish_uncached)
        self.verbish = lru_cache(maxsize=None)(self._verbish_uncached)
        self.ancestors = lru_cache(maxsize=None)(_frozen_ancestors)
        self._neighbourhood = lru_cache(maxsize=None)(self._neighbourhood_uncached)

    # -- forms -------------------------------------------------------------------------------------

    def _base_uncached(self, word: str) -> str:
        """The shortest of the word's forms (ties: alphabetical): one key for all its inflections."""
        return min(self.forms(word), key=lambda f: (len(f), f))

    def has_form(self, word: str, others: Iterable[str]) -> bool:
        """True when ``word`` shares a form with one of ``others`` ("reviews" and "reviewed" share "review")."""
        forms = set(self.forms(word))
        return any(forms.intersection(self.forms(o)) for o in others)

    def all_forms(self, words: Sequence[str]) -> frozenset[str]:
        """Every form of every word: ``has_form(word, words)`` is true when ``word``'s forms meet this set."""
        return frozenset(form for word in words for form in self.forms(word))

    # -- how two words relate ----------------------------------------------------------------------

    def synonyms(self, x: str, y: str) -> bool:
        """True when ``x`` and ``y`` share a WordNet sense, or one derives from the other.

        Example:
            >>> WordRelations(shared_lexicon()).synonyms("writer", "author")   # doctest: +SKIP
            True
        """
        return self.related(x, y) == "synonym"

    def antonyms(self, x: str, y: str) -> bool:
        """True when ``y`` is a direct WordNet antonym of ``x`` (or a listed opposite, or x with un-/in-/dis-).

        Example:
            >>> WordRelations(shared_lexicon()).antonyms("cheaper", "expensive")   # doctest: +SKIP
            True
        """
        fx, fy = self.forms(x), self.forms(y)
        if any(frozenset({p, q}) in _CURATED_ANTONYMS for p in fx for q in fy):
            return True
        for p in fx:
            for q in fy:
                for prefix in ("un", "in", "im", "il", "ir", "dis", "non"):
                    if (q == prefix + p or p == prefix + q) and min(len(p), len(q)) > 3:
                        return True
        return bool(self.lexicon.lemma_antonyms(x).intersection(fy))

    def has_synonym(self, word: str, others: Iterable[str]) -> bool:
        """True when one of ``others`` is a synonym of ``word``."""
        return any(self.related(word, o) == "synonym" for o in others)

    def has_counterpart(self, word: str, others: Iterable[str], candidate_side: bool = False) -> bool:
        """A synonym among ``others``, or (original words only) a more general word for it."""
        allowed = {"synonym", "specialization" if candidate_side else "generalization"}
        return any(self.related(word, o) in allowed for o in others)

    def _related_uncached(self, x: str, y: str) -> str:
        """How ``y`` relates to ``x``: ``synonym``, ``generalization`` (y is a near hypernym of x),
        ``specialization`` (the reverse), ``contrast`` (close siblings, neither above the other) or ``other``."""
        sx, sy = self.senses(x), self.senses(y)
        if not sx or not sy:
            return "other"
        set_x, set_y = set(sx), set(sy)
        if set_x & set_y:
            return "synonym"
        near_x, near_y = self._neighbourhood(x), self._neighbourhood(y)
        # Derivation or pertainym in either direction: "summarize"/"summary", "mainly"/"main".
        if near_x.derived.intersection(self.forms(y)) or near_y.derived.intersection(self.forms(x)):
            return "synonym"
        if near_x.close & set_y:
            return "synonym"
        # A rewording may name the same thing more generally ("emotion" -> "feeling"); the reverse adds
        # information ("argument" -> "counterargument") and stays unmatched.
        if near_x.up & set_y:
            return "generalization"
        if near_y.up & set_x:
            return "specialization"
        return "contrast" if self._siblings(sx, sy) else "other"

    def _neighbourhood_uncached(self, word: str) -> _Neighbourhood:
        senses, forms = self.senses(word), self.forms(word)
        derived = {rel.name().lower() for s in senses for lemma in s.lemmas() if lemma.name().lower() in forms
                   for rel in lemma.derivationally_related_forms() + lemma.pertainyms()}
        close = {t for s in senses for t in s.similar_tos() + s.also_sees() + s.verb_groups()}
        up = {h for s in senses if s.pos() in "nv" for h in self.ancestors(s, 2)}
        return _Neighbourhood(frozenset(derived), frozenset(close), frozenset(up))

    def _siblings(self, sx: tuple, sy: tuple) -> bool:
        """Two frequent noun senses under a close, specific common parent, neither above the other."""
        nx = [s for s in sx if s.pos() == "n"][:3]
        ny = [s for s in sy if s.pos() == "n"][:3]
        for s in nx:
            up_s = self.ancestors(s, 2)
            for t in ny:
                up_t = self.ancestors(t, 2)
                if s in self.ancestors(t, 4) or t in self.ancestors(s, 4):
                    return False
                common = up_s & up_t
                if any(c.min_depth() >= 5 for c in common):
                    return True
        return False

    # -- definitions and compounds -----------------------------------------------------------------

    def gloss_related(self, word: str, other: str) -> bool:
        """True when the WordNet definition of ``word`` (two most frequent senses) names ``other``."""
        if len(other) < 3 or len(word) < 3 or self.antonyms(word, other):
            return False
        return bool(self.gloss(word).intersection(self.forms(other)))

    def _gloss_uncached(self, word: str) -> frozenset[str]:
        """Content words (base forms included) of the definitions of ``word``'s two most frequent senses."""
        words: set[str] = set()
        for synset in self.senses(word)[:2]:
            for token in re.findall(r"[a-z]+", synset.definition().lower()):
                if token not in _STOP and len(token) > 2:
                    words.update(self.forms(token))
        return frozenset(words)

    def compound_related(self, word: str, compound: str) -> bool:
        """True when ``compound`` (``junk_mail``) is a WordNet lemma sharing a sense with ``word`` or
        within two hypernym steps of it, either way."""
        sy = set(self.lexicon.synsets(compound))
        if not sy:
            return False
        sx = self.senses(word)
        if (sy.intersection(sx) or any(self.ancestors(s, 2) & sy for s in sx)
                or any(self.ancestors(t, 2).intersection(sx) for t in sy)):
            return True
        # A compound usually explains the word through a close relative: "spam" (electronic mail) and
        # "junk mail" (mail) meet one step up, at a specific concept.
        up_y = set().union(*(self.ancestors(t, 2) for t in sy))
        return any(c.min_depth() >= 5 for s in sx[:3] for c in self.ancestors(s, 2) & up_y)

    def split_related(self, word: str, head: str, tail: str) -> bool:
        """"keywords" = "key" + "words", and "words" is related to ``tail`` ("terms")."""
        if len(head) < 3 or not word.startswith(head) or len(word) - len(head) < 3:
            return False
        rest = word[len(head):]
        return self.has_form(rest, [tail]) or self.related(rest, tail) in ("synonym", "generalization",
                                                                              "specialization")

    # -- kinds of word -----------------------------------------------------------------------------

    def is_content(self, word: str) -> bool:
        if word.startswith("{"):
            return True
        return (
            word.isalpha() and len(word) > 1 and word not in _STOP and word not in _FRAMING
            and word not in _CARDINALS and word not in _ORDINALS and not _FRAMING.intersection(self.forms(word))
        )

    def is_argument(self, word: str) -> bool:
        if word in _ROLE_NOUNS:
            return True
        return word.isalpha() and word not in _STOP and word not in _FRAMING and word not in _DETERMINERS

    def keyed(self, tokens: Sequence[str]) -> list[str]:
        """The base form of every token except determiners."""
        return [self.base(t) if t.isalpha() else t for t in tokens if t not in _DETERMINERS]

    def _nounish_uncached(self, word: str) -> bool:
        """True when WordNet's sense counts make ``word`` mainly a noun (unknown words count as nouns)."""
        counts = self.lexicon.lemma_weights(self.forms(word), "nvar")
        return counts["n"] >= max(counts.values())

    def _verbish_uncached(self, word: str) -> bool:
        """True when WordNet knows ``word`` mainly as a verb ("First read ..." is discourse, not order)."""
        counts = self.lexicon.lemma_weights((word,), "nv")
        return counts["v"] > counts["n"]
