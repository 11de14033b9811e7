"""Lexical-semantic diff of two instructions: the small edits that change what is asked.

An embedding scores "at most three words" and "at least three words" as near-identical. This module
compares the two texts word by word instead (offline: nltk's WordNet, no model) and reports
*findings*, each a kind of meaning change with the words that show it:

==================  =====================================================================================
finding             what it catches (original -> candidate)
==================  =====================================================================================
``negation``        a negation appears or disappears ("can be answered" -> "cannot be answered";
                    "contains errors" -> "is free of errors"; "based on" -> "ignoring")
``antonym``         a word is replaced by its opposite (true/false, most/least, cheap/expensive, ...)
``quantity``        numbers or bounds differ ("three" -> "five", "at most 20" -> "at least 20")
``ordinal``         positions differ ("first sentence" -> "second sentence", "last", "final" ...)
``argument_swap``   two arguments trade places around the same words ("from English to French" ->
                    "from French to English", "{a} minus {b}" -> "{b} minus {a}")
``direction``       what is produced turns around: writing a question vs answering one ("write a question
                    whose answer is X" -> "answer the question in X")
``label_change``    the answer words listed in the text differ ("yes or no" -> "true or false";
                    "positive, negative, or neutral" -> "positive or negative")
``scope``           the extent changes: "only" added or dropped; "all" -> "some"
``contrast``        a content word is replaced by a sibling concept that is not a synonym
                    (French -> German, haiku -> limerick, mammal -> bird)
==================  =====================================================================================

Besides findings, :class:`LexDiff` counts content words dropped or added without a synonym on the
other side, and a word-order overlap; :mod:`coin_data.verify.combine` weighs those with the embedding score.

Allowed differences never count: politeness ("please", "could you"), formatting and punctuation,
instruction framing ("tell me whether", "your task:", "based on the text below"), the direction words
"above"/"below" (they flip when an instruction moves past its input), inflection, and WordNet synonyms.

Texts are compared as given; for templates pass ``Template.masked_text()`` so that ``{slots}`` appear by
name (they act as arguments) and the options block is gone.

Example:
    >>> d = LexicalDiff().diff("Answer in at most three words.", "Answer in at least three words.")  # doctest: +SKIP
    >>> [f.kind for f in d.findings]                                                                   # doctest: +SKIP
    ['quantity']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Iterable, Sequence

# The kinds of finding, in the order they are reported (most specific first).
FINDING_KINDS = (
    "negation", "quantity", "ordinal", "argument_swap", "direction", "label_change", "scope", "antonym", "contrast",
)  # fmt: skip

# ---------------------------------------------------------------------------------------------------
# Word lists. Small and explicit: each encodes a fact about instruction text that WordNet lacks.
# ---------------------------------------------------------------------------------------------------

_NEGATIONS = frozenset({"not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "without", "ignore",
                        "disregard"})  # fmt: skip

# Multi-word rewrites applied before anything else: (words, replacement tokens). Longest first.
_PHRASES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = tuple(
    (tuple(a.split()), tuple(b.split()))
    for a, b in (
        ("whether or not", "whether"), ("or not", ""), ("each other", ""), ("one another", ""),
        ("thanks in advance", "thanks"), ("thank you in advance", "thanks"), ("how many", "count"), ("how much", "count"), ("the number of", "count"), ("nothing but", "only"), ("and nothing else", "only"),
        ("nothing else", "only"), ("free of", "no"), ("other than", "not"), ("can not", "not"),
        ("cannot", "not"), ("n't", "not"), ("a single", "1"), ("a couple of", "2"), ("a few", "few"),
        ("word for word", "exactly"), ("one at a time", "each"), ("one by one", "each"),
        # "without changing X" keeps X
        ("without changing", "keep"), ("without altering", "keep"), ("without modifying", "keep"),
        ("not change", "keep"), ("not alter", "keep"),
    )
)

# Comparator phrases: (words, bound). "upper" and "lower" bounds; "exact" is neutral.
_COMPARATORS: tuple[tuple[tuple[str, ...], str], ...] = tuple(
    (tuple(a.split()), b)
    for a, b in (
        ("no more than", "upper"), ("not more than", "upper"), ("at most", "upper"), ("up to", "upper"),
        ("fewer than", "upper"), ("less than", "upper"), ("under", "upper"), ("below", "upper"),
        ("within", "upper"), ("maximum of", "upper"), ("max", "upper"), ("a maximum of", "upper"),
        ("no fewer than", "lower"), ("no less than", "lower"), ("not fewer than", "lower"),
        ("not less than", "lower"), ("at least", "lower"), ("more than", "lower"), ("over", "lower"),
        ("above", "lower"), ("minimum of", "lower"), ("a minimum of", "lower"), ("exactly", "exact"),
        ("precisely", "exact"),
    )
)
# "N or fewer", "N or more" put the bound after the number.
_TRAILING_BOUNDS = {("or", "fewer"): "upper", ("or", "less"): "upper", ("or", "more"): "lower",
                    ("or", "greater"): "lower", ("or", "under"): "upper"}  # fmt: skip

_CARDINALS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "hundred": 100, "thousand": 1000, "dozen": 12, "single": 1, "once": 1,
    "twice": 2,
}  # fmt: skip
_VAGUE_AMOUNTS = frozenset({"few", "several", "many", "some"})
_ORDINALS = {
    "first": 1, "1st": 1, "opening": 1, "initial": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3,
    "fourth": 4, "4th": 4, "fifth": 5, "5th": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9,
    "tenth": 10, "last": -1, "final": -1, "closing": -1, "penultimate": -2,
}  # fmt: skip

# Words that point at the input; they flip when an instruction moves past it ("the text above").
_DEIXIS = frozenset({"above", "below", "following", "preceding", "aforementioned", "beneath"})
_ONLY = frozenset({"only", "alone", "solely", "exclusively", "merely", "just"})
_UNIVERSAL = frozenset({"all", "every", "each", "entire", "whole", "everything"})
_PARTIAL = frozenset({"some", "part", "several", "few", "partial", "portion"})

# Opposites WordNet does not list as direct antonyms (pairs, both directions).
_CURATED_ANTONYMS = frozenset(
    frozenset(pair.split("/"))
    for pair in """before/after always/never main/minor major/minor same/opposite simple/technical
    plain/technical brief/detailed short/detailed concise/long-winded polite/rude courteous/rude
    beginner/expert beginner/experienced sensible/nonsensical likely/unlikely agree/disagree
    positive/negative true/false yes/no correct/incorrect right/wrong ascending/descending
    increasing/decreasing smallest/largest shortest/longest earliest/latest top/bottom start/end
    beginning/end beginning/ending include/exclude author/reader writer/reader sender/recipient
    buyer/seller cause/effect cause/consequence strength/weakness advantage/disadvantage
    pro/con friendly/hostile legitimate/phishing legitimate/spam entail/contradict support/contradict
    support/refute similarity/difference synonym/antonym vowel/consonant day/night sunrise/sunset
    plus/minus add/subtract sum/difference agreed/disagreed""".split()
)  # fmt: skip

# Words that frame an instruction without changing what it asks: politeness, address, generic
# directive verbs, and references to the input ("the text below"). Dropping or adding them is allowed.
_FRAMING = frozenset(
    """please kindly thanks thank could can would will may might you your yours me us i we my our let
    know task job help here now then following follows below above aforementioned given provided
    based judging carefully simply just tell say state decide determine judge indicate answer respond
    reply give provide choose pick select output produce generate come up return figure work find
    identify specify predict assess evaluate consider examine look see think use using read reading
    write compose text input instruction instructions question questions whether if so also ok okay
    mention mentioned appear appears sure yes no true thing something anything way kind sort one ones mean means meaning describe
    say saying statement asked ask want like would get make note remember be is are was were being been
    do does did done have has had go""".split()
) - {"yes", "no", "true"}
# Words that never carry content on their own.
_STOP = frozenset(
    """a an the this that these those it its it's their them they his her he she him of in on at by for
    to from with into onto about as and or but than then so such there which who whom whose what when
    where why how each any other another some all every both either more most less least very too
    again further once own same just only not no nor also out off over under up down between through
    during before after while until because although though whereas since per via upon within without
    be is are was were being been do does did done have has had 's s""".split()
)

# Irregular forms WordNet keeps as separate lemmas.
_IRREGULAR = {"people": ("person",), "persons": ("person",), "children": ("child",), "men": ("man",),
              "women": ("woman",), "biggest": ("big",), "largest": ("large",), "best": ("good",)}

# Quoted answer words: 'positive', "not_entailment" (an apostrophe inside a word never opens a quote).
_QUOTED = re.compile(r"(?<![A-Za-z])['\"]([A-Za-z][A-Za-z_ -]{0,30}?)['\"](?![A-Za-z])")
# A quoted answer word followed by the condition under which it applies: "'not_entailment' if not".
_LABEL_DEFINITION = re.compile(r"(?<![A-Za-z])['\"][A-Za-z][A-Za-z_ -]{0,30}['\"]\s+(?:if|when|whenever)\b([^,.;:?!]*)",
                               re.IGNORECASE)
# Verbs of making: "write a question" produces one, "answer the question" consumes it.
_MAKING_VERBS = frozenset({"write", "generate", "create", "compose", "formulate", "produce", "pose", "draft", "devise",
                           "craft", "come", "make", "construct", "frame", "invent", "writing", "generating"})
# Nouns for the inputs of a task: a number before them counts the inputs ("the two sentences").
_INPUT_NOUNS = frozenset({"sentences", "questions", "texts", "statements", "phrases", "passages", "documents",
                          "reviews", "claims", "expressions", "inputs", "sentence", "question", "text"})
_OUTPUT_PREPOSITIONS = frozenset({"in", "into", "within", "with", "using", "than", "to", "under", "most",
                                  "least", "exactly"})
# Nouns that name the roles of a task; they are arguments even though they also frame instructions.
_ROLE_NOUNS = frozenset({"answer", "question", "context", "text", "input", "statement", "premise", "hypothesis",
                         "sentence", "passage", "source", "target", "claim", "evidence", "summary", "title"})
# Opposites that flip even when both words were already in the original.
_CURATED_FLIP_ALWAYS = frozenset({"true", "false", "positive", "negative", "most", "least", "yes", "no"})
# Openers of a persona clause ("As a grammar checker, ...", "In your role as ..."): who the model is
# asked to be, not what it is asked to do. The clause up to its comma is dropped before comparing.
_PERSONA_OPENERS = tuple(
    tuple(p.split())
    for p in """as a|as an|in your role as|in the role of|acting as|act as|working as|serving as|functioning as
    |operating as|in your capacity as|in the capacity of|taking on the role of|assuming the role of|emulating|embodying
    |pretend you are|imagine you are|you are a|you are an|being a|being an|as someone|as the""".split("|")
)
_PERSONA_WORDS = frozenset({"expertise", "knowledge", "role", "capacity", "experience", "proficiency", "skills",
                            "understanding", "familiarity"})
# A token: a slot by name, a word, a number, or punctuation that ends a clause or builds a list.
_TOKEN = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}|\d+(?:\.\d+)?(?:st|nd|rd|th)?|[A-Za-z]+(?:'[a-z]+)?|n't|[.?!;:\n,/]")
_BOUNDARY = frozenset({".", "?", "!", ";", ":", "\n"})
_DETERMINERS = frozenset({"a", "an", "the", "this", "that", "its", "their", "your"})
_SYMMETRIC_CONNECTORS = frozenset({"and", "or", ",", "/", "vs", "versus", "nor"})


@dataclass(frozen=True)
class Finding:
    """One meaning-changing difference.

    Attributes:
        kind: one of :data:`FINDING_KINDS`.
        detail: the words that show it, e.g. ``"'most' -> 'least'"``.
    """

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


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


@dataclass
class _Side:
    """One text after normalisation."""

    tokens: list[str]  # normalised tokens, punctuation included
    words: list[str]  # tokens without punctuation
    numbers: list[str]
    bounds: list[str]
    ordinals: list[int]
    identifiers: list[int]  # numbers that name things: "Sentence 1", "event 2"
    negations: int
    makes: frozenset  # artefacts the instruction asks to write: {"question"}, {"answer"}
    definition_negations: int  # negations inside "'label' if ..." clauses (counted in ``negations`` too)
    defines_labels: bool
    only: bool
    universal: bool
    partial: bool
    labels: set[str]


class LexicalDiff:
    """Compare instructions with WordNet; build once and reuse (lookups are cached).

    Args:
        wordnet: a loaded ``nltk.corpus.wordnet`` reader; ``None`` loads it with
            :func:`coin_data.text.wordnet.ensure_wordnet` on first use.

    Example:
        >>> differ = LexicalDiff()                                                      # doctest: +SKIP
        >>> differ.diff("Is the claim true?", "Is the claim false?").findings[0].kind    # doctest: +SKIP
        'antonym'
    """

    def __init__(self, wordnet=None) -> None:
        self._wn = wordnet
        self._forms = lru_cache(maxsize=None)(self._forms_uncached)
        self._synsets = lru_cache(maxsize=None)(self._synsets_uncached)
        self._antonyms = lru_cache(maxsize=None)(self._antonyms_uncached)
        self._related = lru_cache(maxsize=None)(self._related_uncached)
        self._gloss = lru_cache(maxsize=None)(self._gloss_uncached)

    @property
    def wn(self):
        if self._wn is None:
            from coin_data.text.wordnet import ensure_wordnet

            ensure_wordnet()
            from nltk.corpus import wordnet

            self._wn = wordnet
        return self._wn

    # --- the diff --------------------------------------------------------------------------------

    def diff(self, original: str, candidate: str) -> LexDiff:
        """Compare two instruction texts.

        Args:
            original: the original instruction (for templates, ``Template.masked_text()``).
            candidate: the candidate rewording.

        Returns:
            A :class:`LexDiff`.
        """
        a, b = self._side(original), self._side(candidate)
        findings: list[Finding] = []
        findings += self._negation(a, b)
        findings += self._quantity(a, b)
        findings += self._ordinal(a, b)
        findings += self._argument_swap(a, b)
        if a.makes != b.makes:
            findings.append(Finding("direction", f"produces {sorted(a.makes)} -> {sorted(b.makes)}"))
        findings += self._label_change(a, b)
        findings += self._scope(a, b)
        dropped_all = [w for w in dict.fromkeys(a.words) if not self._has_form(w, b.words)]
        added_all = [w for w in dict.fromkeys(b.words) if not self._has_form(w, a.words)]
        # Antonyms are looked for among words whose count changed, so that "true ... true" -> "false ...
        # true" is seen even though "true" is still there.
        findings += self._antonym(_count_drops(a.words, b.words, self._base), _count_drops(b.words, a.words, self._base),
                                  a.words)
        # A counterpart may sit anywhere in the other text: "a person ... people" -> "an individual ...
        # people" swaps person for individual even though "people" still matches "person".
        other_a, other_b = list(dict.fromkeys(a.words)), list(dict.fromkeys(b.words))
        dropped = [w for w in dropped_all if self._is_content(w) and not self._has_counterpart(w, other_b)]
        added = [w for w in added_all if self._is_content(w) and not self._has_counterpart(w, other_a, True)]
        dropped, added = self._match_compounds(dropped, added, a.words, b.words, True)
        added, dropped = self._match_compounds(added, dropped, b.words, a.words, False)
        findings += self._contrast(dropped, added)
        overlap = SequenceMatcher(a=[self._base(w) for w in a.words], b=[self._base(w) for w in b.words],
                                  autojunk=False).ratio()
        content = sum(1 for w in other_a if self._is_content(w)) + sum(1 for w in other_b if self._is_content(w))
        run = max(_longest_run(a.words, set(dropped), self._is_content), _longest_run(b.words, set(added), self._is_content))
        return LexDiff(findings=findings, dropped=tuple(dropped), added=tuple(added), overlap=overlap,
                       content=content, run=run)

    # --- normalisation ---------------------------------------------------------------------------

    def _side(self, text: str) -> _Side:
        text = text.replace("’", "'")
        quoted = [q.lower().replace("_", " ").strip() for q in _QUOTED.findall(text)]
        raw = [t if t.startswith("{") else t.lower() for t in _TOKEN.findall(text)]
        raw = _drop_persona([t for token in raw for t in _split_contraction(token)])
        tokens = _rewrite_phrases(raw)
        tokens, bounds = _extract_bounds(tokens)
        numbers: list[str] = []
        ordinals: list[int] = []
        identifiers: list[int] = []
        for i, tok in enumerate(tokens):
            if self._not_a_quantity(tokens, i):
                if re.fullmatch(r"\d+", tok):
                    identifiers.append(int(tok))
                continue
            prev = tokens[i - 1] if i else "\n"
            nxt = tokens[i + 1] if i + 1 < len(tokens) else "\n"
            if tok in _ORDINALS and not (tok == "first" and (nxt == "," or (prev in _BOUNDARY and self._verbish(nxt)))):
                ordinals.append(_ORDINALS[tok])
            elif re.fullmatch(r"\d+(?:st|nd|rd|th)", tok):
                ordinals.append(int(re.sub(r"\D", "", tok)))
            elif re.fullmatch(r"\d+(?:\.\d+)?", tok):
                numbers.append(str(float(tok)))
            elif tok in _CARDINALS:
                numbers.append(str(float(_CARDINALS[tok])))
            elif tok in _VAGUE_AMOUNTS - {"some"}:
                numbers.append("few")
        # Quoted words are the answer labels ('entailment' or 'not_entailment'); a negation inside a
        # label ("not_entailment") names an answer, it does not negate the instruction: negations are
        # counted with the quoted labels blanked out.
        labels = set(quoted) if quoted else _answer_lists(tokens)
        unquoted, _ = _extract_bounds(_rewrite_phrases(_drop_persona(
            [t for token in _TOKEN.findall(_QUOTED.sub(" , ", text).lower()) for t in _split_contraction(token)])))
        negations = sum(1 for t in unquoted if t in _NEGATIONS and not (t == "no" and "no" in labels))
        definitions = [_negation_count(m) for m in _LABEL_DEFINITION.findall(text)]
        words = [t for t in tokens if t not in _BOUNDARY and t not in {",", "/"}]
        return _Side(
            tokens=tokens, words=words, numbers=numbers, bounds=bounds, ordinals=ordinals, identifiers=identifiers,
            negations=negations, makes=_made_artefacts(tokens), definition_negations=sum(definitions), defines_labels=bool(definitions),
            only=any(t in _ONLY and not (t == "just" and i + 1 < len(tokens) and _is_number(tokens[i + 1]))
                     for i, t in enumerate(tokens)),
            universal=any(t in _UNIVERSAL for t in tokens),
            partial=any(t in _PARTIAL for t in tokens), labels=labels,
        )

    def _not_a_quantity(self, tokens: Sequence[str], i: int) -> bool:
        """Numbers that name or describe rather than constrain.

        "Sentence 1:", "event 2 happened" (identifiers after a noun) and "these two sentences" (the count
        of the inputs, which the input itself fixes).
        """
        tok = tokens[i]
        prev = tokens[i - 1] if i else ""
        nxt = tokens[i + 1] if i + 1 < len(tokens) else "\n"
        if prev in ("these", "those", "following") and _is_number(tok):
            return True
        # "Analyze the two given sentences": the count of the inputs, which the input fixes. After "in",
        # "into", "with" ... it bounds the output instead ("answer in two sentences").
        if _is_number(tok) and prev not in _OUTPUT_PREPOSITIONS:
            rest = [t for t in tokens[i + 1 : i + 3] if t not in ("given", "provided", "input", "following")]
            if rest and rest[0] in _INPUT_NOUNS:
                return True
        # Partitive "which of the two products": the input fixes the count.
        if prev == "the" and i >= 2 and tokens[i - 2] == "of" and _is_number(tok):
            return True
        if re.fullmatch(r"\d+", tok) and prev.isalpha() and prev not in _STOP:
            return not nxt.isalpha() or self.wn.morphy(nxt, "n") is None or self._verbish(nxt)
        return False

    def _nounish(self, word: str) -> bool:
        """True when WordNet's sense counts make ``word`` mainly a noun (unknown words count as nouns)."""
        counts = {pos: sum(lemma.count() + 1 for form in self._forms(word) for lemma in self.wn.lemmas(form, pos))
                  for pos in "nvar"}
        return counts["n"] >= max(counts.values())

    def _verbish(self, word: str) -> bool:
        """True when WordNet knows ``word`` mainly as a verb ("First read ..." is discourse, not order)."""
        counts = {pos: sum(lemma.count() + 1 for lemma in self.wn.lemmas(word, pos)) for pos in "nv"}
        return counts["v"] > counts["n"]

    # --- detectors -------------------------------------------------------------------------------

    def _negation(self, a: _Side, b: _Side) -> list[Finding]:
        # "'not_entailment' if there is no such implication" defines an answer word. When only one side
        # defines its labels, the definition's negations describe the label, not the instruction.
        na, nb = a.negations, b.negations
        if a.defines_labels != b.defines_labels:
            na, nb = max(0, na - a.definition_negations), max(0, nb - b.definition_negations)
        if na == nb:
            return []
        more, fewer = ("added", "dropped") if b.negations > a.negations else ("dropped", "added")
        words = [t for t in (b.tokens if more == "added" else a.tokens) if t in _NEGATIONS]
        return [Finding("negation", f"negation {more}: {', '.join(repr(w) for w in dict.fromkeys(words))}")]

    def _quantity(self, a: _Side, b: _Side) -> list[Finding]:
        # A lone "one" is usually an article in disguise ("pick one answer" = "pick an answer"), so
        # 1 counts only beside another number.
        # Likewise "a few" is only compared with other amounts.
        na = sorted(n for n in a.numbers if n not in ("1.0", "few") or len(set(a.numbers)) > 1)
        nb = sorted(n for n in b.numbers if n not in ("1.0", "few") or len(set(b.numbers)) > 1)
        if na != nb and _same_values(a, b):
            return []
        ba = sorted(x for x in a.bounds if x != "exact")
        bb = sorted(x for x in b.bounds if x != "exact")
        if na != nb:
            return [Finding("quantity", f"numbers {_fmt_numbers(a.numbers)} -> {_fmt_numbers(b.numbers)}")]
        if ba != bb and (na or nb):
            return [Finding("quantity", f"bounds {ba or ['none']} -> {bb or ['none']}")]
        return []

    def _ordinal(self, a: _Side, b: _Side) -> list[Finding]:
        if sorted(a.ordinals) == sorted(b.ordinals) or _same_values(a, b):
            return []
        return [Finding("ordinal", f"positions {_fmt_ordinals(a.ordinals)} -> {_fmt_ordinals(b.ordinals)}")]

    def _argument_swap(self, a: _Side, b: _Side) -> list[Finding]:
        """Two words that trade places around the same connecting words, within one clause.

        "{a} minus {b}" -> "{b} minus {a}" is a swap; "A or B" -> "B or A" is not (symmetric connector),
        nor is the passive "X entails Y" -> "Y is entailed by X" (the connecting words differ).
        """
        ka, kb = self._keyed(a.tokens), self._keyed(b.tokens)
        args = {k for k in set(ka) & set(kb) if k.startswith("{") or self._is_argument(k)}
        if len(args) < 2:
            return []
        pairs_a, pairs_b = _connected_pairs(ka, args), _connected_pairs(kb, args)
        for (x, y), betweens in pairs_a.items():
            for between in betweens:
                if (
                    between in pairs_b.get((y, x), ())
                    and between not in pairs_b.get((x, y), ())
                    and between not in pairs_a.get((y, x), ())
                ):
                    words = " ".join(between)
                    return [Finding("argument_swap", f"'{x} {words} {y}' -> '{y} {words} {x}'")]
        # The same sentence with its role nouns permuted ("if the context entails the answer" -> "if the
        # answer entails the context"), however far apart they stand.
        if len(ka) == len(kb) and ka != kb:
            where = [i for i, (x, y) in enumerate(zip(ka, kb)) if x != y]
            roles = [(ka[i], kb[i]) for i in where]
            # "the context and the question" -> "the question and the context" is one list, reordered.
            listed = len(where) == 2 and set(ka[where[0] + 1 : where[1]]) <= _SYMMETRIC_CONNECTORS
            if not listed and all(x in _ROLE_NOUNS or x.startswith("{") for pair in roles for x in pair):
                return [Finding("argument_swap", "roles exchanged: " + ", ".join(f"'{x}' -> '{y}'" for x, y in roles[:3]))]
        return []

    def _label_change(self, a: _Side, b: _Side) -> list[Finding]:
        if not a.labels or not b.labels:
            return []
        lost = sorted(w for w in a.labels if not self._has_synonym(w, b.labels) and not self._has_form(w, b.labels))
        new = sorted(w for w in b.labels if not self._has_synonym(w, a.labels) and not self._has_form(w, a.labels))
        if not lost and not new:
            return []
        return [Finding("label_change", f"answer words {sorted(a.labels)} -> {sorted(b.labels)}")]

    def _scope(self, a: _Side, b: _Side) -> list[Finding]:
        if a.only != b.only:
            return [Finding("scope", f"'only' {'added' if b.only else 'dropped'}")]
        if (a.universal and not a.partial and b.partial and not b.universal) or (
            a.partial and not a.universal and b.universal and not b.partial
        ):
            return [Finding("scope", f"{'all' if a.universal else 'some'} -> {'all' if b.universal else 'some'}")]
        return []

    def _antonym(self, dropped: Sequence[str], added: Sequence[str], original: Sequence[str] = ()) -> list[Finding]:
        for x in dropped:
            for y in added:
                # Both words already in the original ("answer the question ... an answer") and only their
                # counts moved: the rewording redistributes them, it does not flip one into the other.
                if self._has_form(y, original) and self._has_form(x, original) and x not in _CURATED_FLIP_ALWAYS:
                    continue
                if self.antonyms(x, y):
                    return [Finding("antonym", f"{x!r} -> {y!r}")]
        return []

    def _contrast(self, dropped: Sequence[str], added: Sequence[str]) -> list[Finding]:
        # Only for words used mainly as nouns: siblings among adjectives ("ascending"/"increasing") are
        # often synonyms in instruction text.
        dropped = [w for w in dropped if self._nounish(w)]
        added = [w for w in added if self._nounish(w)]
        for x in dropped:
            for y in added:
                if self._related(x, y) == "contrast" and x not in y and y not in x:
                    return [Finding("contrast", f"{x!r} -> {y!r} (related, not synonyms)")]
        return []

    def _match_compounds(
        self, unmatched: list[str], others: list[str], words: Sequence[str], other_words: Sequence[str],
        original_side: bool,
    ) -> tuple[list[str], list[str]]:
        """Match words of one side against two-word compounds of the other side.

        "spam" -> "junk mail" (a WordNet compound, here the hypernym) and "keywords" -> "key terms" (a
        closed compound split into a shared head and a related word) are rewordings: the word and the
        compound's words all count as matched.

        A definition names a more general word ("counterargument: an argument offered in opposition"), so
        a word of the original may be replaced by a word its definition names, never the reverse: the
        candidate would add information. ``original_side`` says which side ``unmatched`` is on.

        Returns:
            ``(unmatched, others)`` with the matched words removed.
        """
        if not others:
            return unmatched, others
        left, right = list(unmatched), list(others)
        pairs = [(x, y) for x, y in zip(other_words, other_words[1:]) if x.isalpha() and y.isalpha()]
        for word in list(left):
            explained = [w for w in right if (self._gloss_related(word, w) if original_side else
                                              self._gloss_related(w, word))]
            if explained:
                # "spam" -> "unsolicited junk mail": the definition of spam ("unwanted e-mail ...") names mail.
                left.remove(word)
                right = [w for w in right if w not in explained]
                continue
            for x, y in pairs:
                if x not in right and y not in right:
                    continue
                if self._compound_related(word, f"{x}_{self._base(y)}") or self._split_related(word, x, y):
                    left.remove(word)
                    right = [w for w in right if w not in (x, y)]
                    break
        # A word of this side, matched or not, may define an unmatched word of the other side: "email
        # spam" -> "email junk mail" (spam is "unwanted e-mail"); the compound's first word goes with it.
        content = [w for w in dict.fromkeys(words) if self._is_content(w) and not w.startswith("{")] if original_side else []
        for word in list(right):
            if word in right and any(self._gloss(x).intersection(self._forms(word)) for x in content):
                before = [p for p, q in pairs if q == word and p in right]
                right = [w for w in right if w != word and w not in before]
        return left, right

    def _gloss_related(self, word: str, other: str) -> bool:
        """True when the WordNet definition of ``word`` (two most frequent senses) names ``other``."""
        if len(other) < 3 or len(word) < 3 or self.antonyms(word, other):
            return False
        return bool(self._gloss(word).intersection(self._forms(other)))

    def _gloss_uncached(self, word: str) -> frozenset[str]:
        words: set[str] = set()
        for synset in self._synsets(word)[:2]:
            for token in re.findall(r"[a-z]+", synset.definition().lower()):
                if token not in _STOP and len(token) > 2:
                    words.update(self._forms(token))
        return frozenset(words)

    def _compound_related(self, word: str, compound: str) -> bool:
        """True when ``compound`` (``junk_mail``) is a WordNet lemma sharing a sense with ``word`` or
        within two hypernym steps of it, either way."""
        sy = set(self.wn.synsets(compound))
        if not sy:
            return False
        sx = self._synsets(word)
        if sy.intersection(sx) or any(_ancestors(s, 2) & sy for s in sx) or any(_ancestors(t, 2).intersection(sx) for t in sy):
            return True
        # A compound usually explains the word through a close relative: "spam" (electronic mail) and
        # "junk mail" (mail) meet one step up, at a specific concept.
        up_y = set().union(*(_ancestors(t, 2) for t in sy))
        return any(c.min_depth() >= 5 for s in sx[:3] for c in _ancestors(s, 2) & up_y)

    def _split_related(self, word: str, head: str, tail: str) -> bool:
        """"keywords" = "key" + "words", and "words" is related to ``tail`` ("terms")."""
        if len(head) < 3 or not word.startswith(head) or len(word) - len(head) < 3:
            return False
        rest = word[len(head):]
        return self._has_form(rest, [tail]) or self._related(rest, tail) in ("synonym", "generalization",
                                                                              "specialization")

    # --- word relations (WordNet) ----------------------------------------------------------------

    def _forms_uncached(self, word: str) -> tuple[str, ...]:
        """The word and its base forms, in a fixed order (never a set: iteration order must not depend
        on string hashing, or results would change between processes)."""
        if word.startswith("{") or not word.isalpha():
            return (word,)
        forms = [word, *_IRREGULAR.get(word, ())]
        for pos in "nvar":
            base = self.wn.morphy(word, pos)
            if base and base not in forms:
                forms.append(base)
        return tuple(forms)

    def _base(self, word: str) -> str:
        return min(self._forms(word), key=lambda f: (len(f), f))

    def _has_form(self, word: str, others: Iterable[str]) -> bool:
        forms = set(self._forms(word))
        return any(forms.intersection(self._forms(o)) for o in others)

    def _synsets_uncached(self, word: str) -> tuple:
        """Synsets of all forms in WordNet's order (most frequent sense first), without repeats."""
        if word.startswith("{") or not word.isalpha():
            return ()
        return tuple(dict.fromkeys(s for form in self._forms(word) for s in self.wn.synsets(form)))

    def synonyms(self, x: str, y: str) -> bool:
        """True when ``x`` and ``y`` share a WordNet sense, or one derives from the other.

        Example:
            >>> LexicalDiff().synonyms("writer", "author")   # doctest: +SKIP
            True
        """
        return self._related(x, y) == "synonym"

    def antonyms(self, x: str, y: str) -> bool:
        """True when ``y`` is a direct WordNet antonym of ``x`` (or a listed opposite, or x with un-/in-/dis-).

        Example:
            >>> LexicalDiff().antonyms("cheaper", "expensive")   # doctest: +SKIP
            True
        """
        fx, fy = self._forms(x), self._forms(y)
        if any(frozenset({p, q}) in _CURATED_ANTONYMS for p in fx for q in fy):
            return True
        for p in fx:
            for q in fy:
                for prefix in ("un", "in", "im", "il", "ir", "dis", "non"):
                    if (q == prefix + p or p == prefix + q) and min(len(p), len(q)) > 3:
                        return True
        return bool(self._antonyms(x).intersection(fy))

    def _antonyms_uncached(self, word: str) -> frozenset[str]:
        out: set[str] = set()
        for form in self._forms(word):
            for lemma in self.wn.lemmas(form):
                out.update(a.name().lower() for a in lemma.antonyms())
        return frozenset(out)

    def _has_synonym(self, word: str, others: Iterable[str]) -> bool:
        return any(self._related(word, o) == "synonym" for o in others)

    def _has_counterpart(self, word: str, others: Iterable[str], candidate_side: bool = False) -> bool:
        """A synonym among ``others``, or (original words only) a more general word for it."""
        allowed = {"synonym", "specialization" if candidate_side else "generalization"}
        return any(self._related(word, o) in allowed for o in others)

    def _related_uncached(self, x: str, y: str) -> str:
        """How ``y`` relates to ``x``: ``synonym``, ``generalization`` (y is a near hypernym of x),
        ``specialization`` (the reverse), ``contrast`` (close siblings, neither above the other) or ``other``."""
        sx, sy = self._synsets(x), self._synsets(y)
        if not sx or not sy:
            return "other"
        set_x, set_y = set(sx), set(sy)
        if set_x & set_y:
            return "synonym"
        # Derivation or pertainym in either direction: "summarize"/"summary", "mainly"/"main".
        for here, there, other in ((sx, x, y), (sy, y, x)):
            names = self._forms(other)
            for s in here:
                for lemma in s.lemmas():
                    if lemma.name().lower() in self._forms(there) and any(
                        rel.name().lower() in names for rel in lemma.derivationally_related_forms() + lemma.pertainyms()
                    ):
                        return "synonym"
        for s in sx:
            for t in s.similar_tos() + s.also_sees() + s.verb_groups():
                if t in set_y:
                    return "synonym"
        # A rewording may name the same thing more generally ("emotion" -> "feeling"); the reverse adds
        # information ("argument" -> "counterargument") and stays unmatched.
        if any(s.pos() in "nv" and (_ancestors(s, 2) & set_y) for s in sx):
            return "generalization"
        if any(t.pos() in "nv" and (_ancestors(t, 2) & set_x) for t in sy):
            return "specialization"
        return "contrast" if self._siblings(sx, sy) else "other"

    def _siblings(self, sx: tuple, sy: tuple) -> bool:
        """Two frequent noun senses under a close, specific common parent, neither above the other."""
        nx = [s for s in sx if s.pos() == "n"][:3]
        ny = [s for s in sy if s.pos() == "n"][:3]
        for s in nx:
            up_s = _ancestors(s, 2)
            for t in ny:
                up_t = _ancestors(t, 2)
                if s in _ancestors(t, 4) or t in _ancestors(s, 4):
                    return False
                common = up_s & up_t
                if any(c.min_depth() >= 5 for c in common):
                    return True
        return False

    def _is_content(self, word: str) -> bool:
        if word.startswith("{"):
            return True
        return (
            word.isalpha() and len(word) > 1 and word not in _STOP and word not in _FRAMING
            and word not in _CARDINALS and word not in _ORDINALS and not _FRAMING.intersection(self._forms(word))
        )

    def _is_argument(self, word: str) -> bool:
        if word in _ROLE_NOUNS:
            return True
        return word.isalpha() and word not in _STOP and word not in _FRAMING and word not in _DETERMINERS

    def _keyed(self, tokens: Sequence[str]) -> list[str]:
        """The base form of every token except determiners."""
        return [self._base(t) if t.isalpha() else t for t in tokens if t not in _DETERMINERS]


def _ancestors(synset, levels: int) -> set:
    """Hypernyms (and instance hypernyms) up to ``levels`` steps above ``synset``."""
    out: set = set()
    frontier = {synset}
    for _ in range(levels):
        frontier = {h for s in frontier for h in s.hypernyms() + s.instance_hypernyms()}
        out |= frontier
    return out


def _longest_run(words: Sequence[str], unmatched: set[str], is_content) -> int:
    """The most ``unmatched`` words in one stretch of ``words`` with no matched content word inside.

    Example:
        >>> _longest_run("rate it and say how sure you are".split(), {"sure", "rate"}, lambda w: w in {"rate", "sure", "it"})
        1
    """
    best = current = 0
    for w in words:
        if w in unmatched:
            current += 1
            best = max(best, current)
        elif is_content(w):
            current = 0
    return best


def _count_drops(words: Sequence[str], others: Sequence[str], base) -> list[str]:
    """Words of ``words`` (outside ``_DEIXIS``) that occur fewer times, by base form, in ``others``."""
    have: dict[str, int] = {}
    for w in others:
        have[base(w)] = have.get(base(w), 0) + 1
    out: list[str] = []
    for w in words:
        key = base(w)
        if have.get(key, 0) > 0:
            have[key] -= 1
        elif w not in _DEIXIS and w not in out:
            out.append(w)
    return out


def _connected_pairs(keys: Sequence[str], args: set[str]) -> dict[tuple[str, str], set[tuple[str, ...]]]:
    """Argument pairs of one clause with the 1-4 tokens between them (not merely "and"/"or")."""
    out: dict[tuple[str, str], set[tuple[str, ...]]] = {}
    for i, x in enumerate(keys):
        if x not in args:
            continue
        for j in range(i + 1, min(len(keys), i + 6)):
            if keys[j] in _BOUNDARY:
                break
            if keys[j] in args and keys[j] != x:
                between = tuple(keys[i + 1 : j])
                if between and not set(between) <= _SYMMETRIC_CONNECTORS:
                    out.setdefault((x, keys[j]), set()).add(between)
    return out


def _split_contraction(token: str) -> tuple[str, ...]:
    """ "doesn't" -> ("does", "not"); "can't" -> ("can", "not"); other tokens unchanged."""
    if not token.endswith("n't") or len(token) <= 3:
        return (token,)
    stem = {"can't": "can", "won't": "will", "shan't": "shall"}.get(token, token[: -len("n't")])
    return (stem, "not")


def _made_artefacts(tokens: Sequence[str]) -> frozenset:
    """"question" or "answer" when a verb of making comes shortly before it ("write a question",
    "come up with an answer"); answering a question makes nothing here.

    Example:
        >>> sorted(_made_artefacts("write a question whose answer is x".split()))
        ['question']
    """
    made = set()
    for j, verb in enumerate(tokens):
        if verb not in _MAKING_VERBS:
            continue
        for tok in tokens[j + 1 : j + 5]:  # the first of the two nouns after the verb is its object
            noun = tok[:-1] if tok.endswith("s") else tok
            if noun in ("question", "answer"):
                made.add(noun)
                break
    return frozenset(made)


def _negation_count(text: str) -> int:
    """Negation words in a stretch of raw text ("isn't" counts once)."""
    tokens = [t for token in _TOKEN.findall(text.lower()) for t in _split_contraction(token)]
    return sum(t in _NEGATIONS for t in _rewrite_phrases(tokens))


def _drop_persona(tokens: list[str]) -> list[str]:
    """Tokens without persona clauses: a sentence that opens with "As a ...", "In your role as ...", or
    "With your expertise in ..." loses the words up to its first comma (at most 14 tokens), and
    "You are a bracket expert." loses the whole sentence.

    Example:
        >>> _drop_persona("as a grammar checker , judge the sentence .".split())
        ['judge', 'the', 'sentence', '.']
    """
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if i == 0 or tokens[i - 1] in _BOUNDARY:
            end = _persona_end(tokens, i)
            if end is not None:
                i = end
                continue
        out.append(tokens[i])
        i += 1
    return out


def _persona_end(tokens: Sequence[str], start: int) -> int | None:
    """The index after a persona clause that starts at ``start``, or ``None``."""
    head = tuple(tokens[start : start + 5])
    opener = any(head[: len(p)] == p for p in _PERSONA_OPENERS)
    if not opener and not ("your" in head[:3] and _PERSONA_WORDS.intersection(tokens[start : start + 6])):
        return None
    for j in range(start + 1, min(len(tokens), start + 15)):
        if tokens[j] == "," or (tokens[j] in (".", ":", "\n") and tokens[start] in ("you", "imagine", "pretend")):
            return j + 1
        if tokens[j] in _BOUNDARY or tokens[j].startswith("{"):
            return None
    return None


def _rewrite_phrases(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for words, replacement in _PHRASES:
            if tuple(tokens[i : i + len(words)]) == words:
                out.extend(replacement)
                i += len(words)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _is_number(token: str) -> bool:
    return bool(re.fullmatch(r"\d+(?:\.\d+)?", token)) or token in _CARDINALS


def _extract_bounds(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Remove comparator phrases next to a number and return them as bounds ("upper", "lower", "exact")."""
    out: list[str] = []
    bounds: list[str] = []
    i = 0
    while i < len(tokens):
        for words, bound in sorted(_COMPARATORS, key=lambda c: -len(c[0])):
            n = len(words)
            if tuple(tokens[i : i + n]) == words and i + n < len(tokens) and _is_number(tokens[i + n]):
                bounds.append(bound)
                i += n
                break
        else:
            if i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) in _TRAILING_BOUNDS and out and (
                _is_number(out[-1]) or (len(out) > 1 and _is_number(out[-2]))
            ):
                bounds.append(_TRAILING_BOUNDS[(tokens[i], tokens[i + 1])])
                i += 2
                continue
            out.append(tokens[i])
            i += 1
    return out, bounds


def _answer_lists(tokens: Sequence[str]) -> set[str]:
    """Words offered as alternatives: "positive, negative, or neutral", "yes or no", "A or B"."""
    labels: set[str] = set()
    for i, tok in enumerate(tokens):
        if tok not in ("or", "/"):
            continue
        right = i + 1
        # Skip "a", "by", "not" ...: "a customer or by an employee", "spam or not spam".
        while right < len(tokens) and tokens[right] in _STOP and tokens[right] not in ("yes", "no") and (
            right + 1 < len(tokens) and tokens[right + 1].isalpha() and right - i < 3
        ):
            right += 1
        left = i - 2 if i >= 2 and tokens[i - 1] == "," else i - 1  # "x, y, or z"
        if left < 0 or right >= len(tokens) or not tokens[left].isalpha() or not tokens[right].isalpha():
            continue
        items = [tokens[left], tokens[right]]
        j = left - 1
        while j >= 1 and tokens[j] == "," and tokens[j - 1].isalpha():  # "x, y, or z"
            items.append(tokens[j - 1])
            j -= 2
        if any(_is_number(w) for w in items):
            continue
        labels.update(w for w in items if w not in _STOP or w in ("yes", "no"))
    return labels


def _same_values(a: _Side, b: _Side) -> bool:
    """True when the positive numbers agree once cardinals, ordinals and identifiers are pooled.

    "two decimal places" = "the second decimal place"; "the first event" = "event 1" (when event 1 is
    also named on the other side as an identifier).
    """

    def pooled(side: _Side) -> list[float]:
        values = [float(n) for n in side.numbers if n != "few"] + [float(o) for o in side.ordinals if o > 0]
        return sorted(set(values) | {float(i) for i in side.identifiers})

    if any(o < 0 for o in a.ordinals + b.ordinals) and sorted(a.ordinals) != sorted(b.ordinals):
        return False
    return pooled(a) == pooled(b)


def _fmt_numbers(numbers: Sequence[str]) -> str:
    return "[" + ", ".join(n[:-2] if n.endswith(".0") else n for n in numbers) + "]"


def _fmt_ordinals(ordinals: Sequence[int]) -> str:
    names = {1: "first", 2: "second", 3: "third", -1: "last", -2: "penultimate"}
    return "[" + ", ".join(names.get(o, f"#{o}") for o in ordinals) + "]"
