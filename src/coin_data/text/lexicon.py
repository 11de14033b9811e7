"""The one WordNet layer: base forms, parts of speech, senses, synonyms and inflection, for every stage.

The rules paraphraser (synonym swaps, part-of-speech cues), the perturbation levels (word swaps), the
paraphrase prompt's answer checks and the verifier's lexical diff all ask WordNet through one
:class:`Lexicon`. :func:`shared_lexicon` loads WordNet once per process (offline, through
:func:`coin_data.text.wordnet.ensure_wordnet`); ``Lexicon(None)`` runs without WordNet (no synonyms,
every part-of-speech question unanswered), as ``RulesParaphraser(use_wordnet=False)`` does.

Two questions look alike and are kept apart on purpose, because seeded outputs depend on each:

* :meth:`Lexicon.pos_weights` weighs each part of speech by its WordNet base form (1 + the sense counts of
  its lemmas): the paraphraser's "is this word used as a noun here" cue;
* :meth:`Lexicon.lemma_weights` weighs the lemmas of given forms (count + 1 each): the lexical diff's
  "mainly a noun / mainly a verb" test (its fitted combiner depends on it).

Example:
    >>> Lexicon().inflect("sum up", "v", "3sg")
    'sums up'
    >>> Lexicon().forms("children")
    ('children', 'child')
"""

from __future__ import annotations

import re
from functools import cached_property, lru_cache
from os.path import commonprefix as os_commonprefix
from typing import Sequence

from coin_data.text.words import STOP_WORDS

# Words that carry the task's meaning or structure: a WordNet synonym for them is usually a different
# concept in this setting ("premise" -> "assumption", "sentence" -> "conviction").
NEVER_SWAP = frozenset(
    """premise premises hypothesis hypotheses sentence sentences claim claims statement statements question
    questions answer answers option options label labels text texts word words true false correct
    incorrect grammar grammatical english spam news world sports business science topic emotion mood
    summary review reviews passage passages article paragraph context document excerpt source query
    inquiry evidence fact facts inference conclusion line lines version versions original replacement
    positive negative neutral yes no entail entails entailment contradiction contradict same meaning
    mean means formal informal casual plain tone style register task reference firm""".split()
)

# Synonyms WordNet ranks high that read wrongly in instructions (lemma -> rejected replacements).
_BAD_SYNONYMS: dict[str, frozenset[str]] = {
    key: frozenset(value.split(","))
    for key, value in {
        "assign": "delegate,designate",
        "choose": "take",
        "classify": "sort out,separate,class",
        "describe": "depict,draw",
        "determine": "find",
        "evaluate": "measure",
        "express": "show",
        "feel": "experience",
        "file": "register",
        "handle": "care,deal",
        "identify": "place",
        "keep": "hold",
        "like": "wish,care",
        "liked": "wish,care",
        "provide": "render,furnish",
        "report": "study",
        "review": "reexamine",
        "say": "tell",
        "tell": "say,state",
        "write": "pen",
        "check": "check out,look into,go over,check into",
        "produce": "bring forth",
        "generate": "bring forth",
        "remove": "take away",
        "accord": "fit in,agree",  # "according to" in an instruction means "as said by", never "agreeing to"
        "miss": "lose",  # "the missing word" is the absent one, not the lost one
        "story": "tale",
        "item": "point",
        "category": "family",
        "single": "individual",
        "study": "survey",
        "style": "mode",
        "lift": "raise,get up,elevate,bring up",
        "pull": "draw,force",
        "span": "sweep,traverse",
        "exactly": "just",
        "stand": "stand up",
        "strip": "deprive,divest",
        "sum": "amount",
        "native": "aborigine",
        "day": "twenty-four hours",
        "team": "team up",
        "needs": "take,involve",
        "need": "take,involve",
        "give": "spring",
        "hint": "breath",
        "person": "soul,mortal",
        "site": "land site",
        "respond": "react",
        "consult": "confer with",
        "resolve": "decide",
        "exercise": "workout",
        "gist": "effect",
        "manager": "director",
        "prepare": "set,ready",
        "key": "cardinal",
        "idea": "thought",
        "state": "province",
        "locate": "turn up",
        "find": "bump,encounter,happen,chance",
        "ask": "inquire,enquire",
        "plainly": "obviously,evidently,manifestly,patently,apparently",
        "appear": "seem,look",
        "letter": "missive",
        "preserve": "continue,carry on,uphold,keep up",
        "chatty": "talky",
        "polish": "smooth",
        "restate": "repeat,reiterate",
        "name": "call",
        "indicate": "bespeak,betoken,point,signal,designate,show",
        "assistant": "help",
        "snippet": "snip",
        "folder": "pamphlet",
        "folders": "pamphlet",
        "reporter": "newsman",
        "product": "merchandise,ware",
        "marketing": "selling,merchandising",
    }.items()
}

# Irregular simple past of verbs that follow "did" in instruction questions (verb.exc mixes past and
# participle forms, so it cannot tell "wrote" from "written").
_IRREGULAR_PAST = {
    "feel": "felt", "say": "said", "write": "wrote", "make": "made", "find": "found", "think": "thought",
    "give": "gave", "take": "took", "come": "came", "go": "went", "get": "got", "have": "had", "do": "did",
    "see": "saw", "know": "knew", "tell": "told", "read": "read", "mean": "meant", "leave": "left",
    "keep": "kept", "buy": "bought", "bring": "brought", "understand": "understood", "choose": "chose",
}  # fmt: skip

# Irregular forms WordNet keeps as separate lemmas (so morphy does not reach the base).
_IRREGULAR_BASES = {"people": ("person",), "persons": ("person",), "children": ("child",), "men": ("man",),
                    "women": ("woman",), "biggest": ("big",), "largest": ("large",), "best": ("good",)}


@lru_cache(maxsize=1)
def shared_lexicon() -> "Lexicon":
    """The process-wide :class:`Lexicon` with WordNet loaded (read-only; its lookups are cached inside it).

    ``shared_lexicon.cache_clear()`` forgets it (a benchmark that wants cold caches).

    Raises:
        coin_data.text.wordnet.WordNetMissingError: no WordNet anywhere; the message says how to install it.

    Example:
        >>> shared_lexicon().base("reviews", "n")   # doctest: +SKIP
        'review'
    """
    from coin_data.text.wordnet import ensure_wordnet

    ensure_wordnet()
    from nltk.corpus import wordnet

    return Lexicon(wordnet)


def ancestors(synset, levels: int) -> set:
    """Hypernyms (and instance hypernyms) up to ``levels`` steps above ``synset``.

    Example:
        >>> from nltk.corpus import wordnet                                   # doctest: +SKIP
        >>> wordnet.synset("dog.n.01").hypernyms()[0] in ancestors(wordnet.synset("dog.n.01"), 1)  # doctest: +SKIP
        True
    """
    out: set = set()
    frontier = {synset}
    for _ in range(levels):
        frontier = {h for s in frontier for h in s.hypernyms() + s.instance_hypernyms()}
        out |= frontier
    return out


class Lexicon:
    """Cached WordNet lookups.

    Args:
        wordnet: a loaded ``nltk.corpus.wordnet`` reader, or ``None`` to run without WordNet (no synonyms,
            no senses; every part-of-speech question then answers "unknown").

    Example:
        >>> Lexicon().inflect("reply", "n", "plural")
        'replies'
    """

    def __init__(self, wordnet=None) -> None:
        self.wordnet = wordnet
        self._weights: dict[str, dict[str, int]] = {}
        self._synonyms: dict[tuple[str, str], tuple[str, ...]] = {}
        # Per-instance caches of the word lookups (forms, senses, antonyms), as public methods.
        self.forms = lru_cache(maxsize=None)(self._forms_uncached)
        self.senses = lru_cache(maxsize=None)(self._senses_uncached)
        self.lemma_antonyms = lru_cache(maxsize=None)(self._lemma_antonyms_uncached)

    # -- base forms and parts of speech --------------------------------------------------------------

    def base(self, word: str, pos: str) -> str | None:
        """WordNet's base form of ``word`` (lower-cased) as ``pos`` (``n v a r``), or ``None``."""
        return self.wordnet.morphy(word.lower(), pos) if self.wordnet is not None else None

    def pos_weights(self, word: str) -> dict[str, int]:
        """How often ``word`` is used as each part of speech (``n v a r``), by WordNet sense counts.

        Every reading gets at least 1, so "has a reading" and "is frequent" are both visible.
        """
        word = word.lower()
        if word not in self._weights:
            weights: dict[str, int] = {}
            if self.wordnet is not None:
                for pos in "nvar":
                    base = self.wordnet.morphy(word, pos)
                    if base:
                        weights[pos] = 1 + sum(lemma.count() for lemma in self.wordnet.lemmas(base, pos))
            self._weights[word] = weights
        return self._weights[word]

    def dominant_pos(self, word: str) -> str | None:
        weights = self.pos_weights(word)
        # Ties resolve in the fixed order n, v, a, r: max() keeps the first maximum.
        return max(weights, key=weights.__getitem__) if weights else None

    def is_base_verb(self, word: str) -> bool:
        return self.base(word, "v") == word.lower()

    def is_nounish(self, word: str) -> bool:
        """True when ``word`` most likely heads or modifies a noun phrase ("review", "news")."""
        return self.dominant_pos(word) == "n"

    def lemma_weights(self, forms: Sequence[str], tags: str = "nvar") -> dict[str, int]:
        """Per part of speech in ``tags``: the lemmas of ``forms``, each weighted by its sense count + 1.

        Example:
            >>> Lexicon().lemma_weights(("dog",), "nv")   # no WordNet: nothing to weigh
            {'n': 0, 'v': 0}
        """
        lemmas = self.wordnet.lemmas if self.wordnet is not None else (lambda form, pos: ())
        return {pos: sum(lemma.count() + 1 for form in forms for lemma in lemmas(form, pos)) for pos in tags}

    def _forms_uncached(self, word: str) -> tuple[str, ...]:
        """The word and its base forms, in a fixed order (never a set: iteration order must not depend
        on string hashing, or results would change between processes)."""
        if word.startswith("{") or not word.isalpha():
            return (word,)
        forms = [word, *_IRREGULAR_BASES.get(word, ())]
        for pos in "nvar":
            base = self.wordnet.morphy(word, pos) if self.wordnet is not None else None
            if base and base not in forms:
                forms.append(base)
        return tuple(forms)

    # -- senses ---------------------------------------------------------------------------------------

    def synsets(self, lemma: str, pos: str | None = None) -> list:
        """WordNet's synsets of ``lemma`` exactly as written (``junk_mail``), most frequent first."""
        return self.wordnet.synsets(lemma, pos) if self.wordnet is not None else []

    def _senses_uncached(self, word: str) -> tuple:
        """Synsets of all forms in WordNet's order (most frequent sense first), without repeats."""
        if word.startswith("{") or not word.isalpha():
            return ()
        return tuple(dict.fromkeys(s for form in self.forms(word) for s in self.synsets(form)))

    def _lemma_antonyms_uncached(self, word: str) -> frozenset[str]:
        """The direct WordNet antonyms of every lemma of every form of ``word``, lower-cased."""
        out: set[str] = set()
        if self.wordnet is None:
            return frozenset()
        for form in self.forms(word):
            for lemma in self.wordnet.lemmas(form):
                out.update(a.name().lower() for a in lemma.antonyms())
        return frozenset(out)

    def synonyms(self, base: str, pos: str) -> tuple[str, ...]:
        """Common synonyms of ``base`` in its most frequent sense, most used first.

        Only the first synset is used (WordNet orders senses by frequency), and only lemmas that the
        sense-tagged corpus has seen at least once: this drops most archaic and technical words.

        Example:
            >>> shared_lexicon().synonyms("choose", "v")     # doctest: +SKIP
            ('select', 'pick out')
        """
        key = (base, pos)
        if key not in self._synonyms:
            found: list[str] = []
            synsets = self.wordnet.synsets(base, pos) if self.wordnet is not None and base not in NEVER_SWAP else []
            if synsets:
                lemmas = sorted(synsets[0].lemmas(), key=lambda lemma: (-lemma.count(), lemma.name()))
                for lemma in lemmas:
                    phrase = lemma.name().replace("_", " ")
                    if (
                        lemma.count() < 1
                        or phrase == base
                        or not re.fullmatch(r"[a-z]+(?: [a-z]+)?", phrase)  # no names, digits, apostrophes
                        or phrase in _BAD_SYNONYMS.get(base, ())
                        or phrase in STOP_WORDS
                        or _same_stem(phrase, base)
                    ):
                        continue
                    found.append(phrase)
            self._synonyms[key] = tuple(found)
        return self._synonyms[key]

    # -- inflection ----------------------------------------------------------------------------------

    def _read_exceptions(self, fileid: str) -> dict[str, list[str]]:
        """base -> inflected forms, from WordNet's exception list (e.g. "write" -> ["written", "wrote"])."""
        forms: dict[str, list[str]] = {}
        if self.wordnet is None:
            return forms
        with self.wordnet.open(fileid) as stream:
            for line in stream:
                inflected, *bases = line.split()
                for base in bases:
                    forms.setdefault(base, []).append(inflected)
        return forms

    @cached_property
    def _verb_forms(self) -> dict[str, list[str]]:
        return self._read_exceptions("verb.exc")

    @cached_property
    def _irregular_verb_forms(self) -> set[str]:
        # "found" is also the base form of "to found": an irregular form must never be read as a base.
        return {form for forms in self._verb_forms.values() for form in forms}

    @cached_property
    def _irregular_nouns(self) -> set[str]:
        return set(self._read_exceptions("noun.exc"))

    def form_of(self, word: str, pos: str) -> tuple[str, str] | None:
        """``(base, form)`` of ``word`` as ``pos``; form is base, plural, 3sg, past or ing; ``None`` if odd."""
        lower = word.lower()
        base = self.base(lower, pos)
        if not base:
            return None
        if pos == "v" and lower in self._irregular_verb_forms:
            return None
        if lower == base:
            return base, "base"
        if pos == "n":
            return (base, "plural") if lower.endswith("s") and base not in self._irregular_nouns else None
        if pos == "v":
            for suffix, form in (("ing", "ing"), ("ed", "past"), ("s", "3sg")):
                if lower.endswith(suffix):
                    return base, form
        return None  # comparatives, irregular verb forms: leave them alone

    def inflect(self, phrase: str, pos: str, form: str) -> str | None:
        """Put ``phrase`` (a synonym's base form) into ``form``, or ``None`` when unsure.

        Example:
            >>> Lexicon().inflect("sum up", "v", "3sg")
            'sums up'
        """
        if form == "base":
            return phrase
        words = phrase.split(" ")
        index = -1 if pos == "n" else 0  # nouns inflect the head (last word), verbs the first word
        head = words[index]
        if form == "plural":
            if head in self._irregular_nouns:
                return None
            inflected = _add_s(head)
        elif form == "3sg":
            inflected = {"have": "has", "be": "is", "do": "does", "go": "goes"}.get(head) or _add_s(head)
        elif form == "past":
            inflected = self._past(head)
        elif form == "ing":
            inflected = self._ing(head)
        else:
            return None
        if inflected is None:
            return None
        words[index] = inflected
        return " ".join(words)

    def _past(self, verb: str) -> str | None:
        listed = self._verb_forms.get(verb)
        if listed:
            # Listed verbs are either irregular ("show" -> "shown") or double a consonant ("stop" -> "stopped").
            regular = [form for form in listed if form.endswith("ed")]
            return regular[0] if regular else None
        if verb.endswith("e"):
            return verb + "d"
        if len(verb) > 1 and verb.endswith("y") and verb[-2] not in "aeiou":
            return verb[:-1] + "ied"
        return verb + "ed"

    def simple_past(self, verb: str) -> str | None:
        """Simple past for "did X verb" -> "X verbed"; ``None`` for unknown irregular verbs."""
        if verb in _IRREGULAR_PAST:
            return _IRREGULAR_PAST[verb]
        listed = [form for form in self._verb_forms.get(verb, []) if not form.endswith("ing")]
        if len(listed) == 1:  # one listed form serves as both past and participle ("felt", "made")
            return listed[0]
        return self._past(verb)

    def _ing(self, verb: str) -> str:
        listed = [form for form in self._verb_forms.get(verb, []) if form.endswith("ing")]
        if listed:
            return listed[0]
        if verb.endswith("ie"):
            return verb[:-2] + "ying"
        if verb.endswith("e") and not verb.endswith(("ee", "oe", "ye")) and len(verb) > 2:
            return verb[:-1] + "ing"
        return verb + "ing"


def _same_stem(a: str, b: str) -> bool:
    """Spelling or derivational variants ("analyze"/"analyse", "exercise"/"exercising") add no rewording."""
    shared = len(os_commonprefix([a, b]))
    return shared >= min(5, len(b) - 1)


def _add_s(word: str) -> str:
    """Regular plural / third person singular ("box" -> "boxes", "reply" -> "replies")."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"
