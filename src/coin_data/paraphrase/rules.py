"""The ``rules`` backend: offline, seeded rewordings of instruction templates.

No model and no network: each candidate combines

* sentence-level rewrites of the instruction lines (yes/no question <-> "Decide whether ..." directive,
  wh-question -> "Tell me which ...", imperative <-> "Could you ...?", short lead-ins such as "Please" or
  "Based on the text above,", a few fixed phrase swaps such as "whether" <-> "if");
* moving the instruction block before or after the input block when the template keeps them on separate
  lines (with "above"/"below" turned around so the words still point at the input);
* WordNet synonyms for content words outside slots, taken from the word's most frequent sense, ranked by
  WordNet's sense counts, with plural, -s, -ed, -ing and capitalisation carried over.

Slots (``{review}``, ``{options_}``) and protected label words are never edited, and every candidate is
checked with :func:`coin_data.templates.slot_lock_violation`. Randomness comes only from
``random.Random`` seeded by a SHA-256 of the template text and the request seed, so results do not
depend on the process or on ``PYTHONHASHSEED``.

Example:
    >>> from coin_data.templates import parse_template
    >>> from coin_data.paraphrase.base import ParaphraseRequest
    >>> req = ParaphraseRequest(parse_template("Review: {review}\\nIs this review positive or negative?\\n{options_}",
    ...                         "sentiment", "t0"), k=2, protected_words=("positive", "negative"))
    >>> RulesParaphraser().paraphrase([req])[0].candidates      # doctest: +SKIP
    ['Review: {review}\\nDecide whether this review is positive or negative.\\n{options_}', ...]
"""

from __future__ import annotations

import difflib
import random
import re
from collections import Counter
from dataclasses import dataclass
from os.path import commonprefix as os_commonprefix
from typing import Callable, Sequence

from coin_data.paraphrase.base import ParaphraseRequest, ParaphraseResult, ProgressFn, Usage
from coin_data.seeds import stable_seed
from coin_data.templates import Template, slot_lock_violation
from coin_data.text.words import STOP_WORDS
from coin_data.text.words import match_case as _match_case

# ---------------------------------------------------------------------------------------------------
# Word lists. Kept small and explicit: they encode where WordNet's general-purpose senses go wrong for
# instruction text.
# ---------------------------------------------------------------------------------------------------

_BE = frozenset({"is", "are", "was", "were"})
_DO = frozenset({"do", "does", "did"})
_HAVE = frozenset({"has", "have", "had"})
_MODALS = frozenset({"can", "could", "will", "would", "should", "must", "may", "might", "shall"})
_AUXILIARIES = _BE | _DO | _HAVE | _MODALS
_WH_WORDS = frozenset({"what", "which", "how", "who", "whom", "where", "when", "why"})
_DETERMINERS = frozenset(
    {"the", "a", "an", "this", "that", "these", "those", "its", "their", "your", "my", "our", "his", "her",
     "each", "every", "any", "some", "both", "either", "no", "one", "two", "another"}
)  # fmt: skip
_SUBJECT_PRONOUNS = frozenset({"it", "we", "you", "they", "he", "she", "i", "there", "this", "that", "these",
                               "those", "someone", "anyone", "everyone", "something"})  # fmt: skip
# Words after which the next word is most likely a verb in base form.
_VERB_CONTEXT = frozenset({"to", "please", "and", "then", "you", "we", "i", "not"}) | _MODALS | _DO
# Relative pronouns and conjunctions: a subject that runs into one of these is too complex to move.
_CLAUSE_WORDS = frozenset({"that", "which", "who", "whom", "whose", "where", "when", "while", "if", "whether"})

_STOP_WORDS = STOP_WORDS

# Words that carry the task's meaning or structure: a WordNet synonym for them is usually a different
# concept in this setting ("premise" -> "assumption", "sentence" -> "conviction").
_NEVER_SWAP = frozenset(
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

# Fixed phrase swaps that keep the meaning in instruction text (applied case-sensitively as written,
# and with a capital first letter at a sentence start).
_PHRASE_SWAPS: tuple[tuple[str, str], ...] = (
    ("whether", "if"),
    ("tell me", "let me know"),
    ("in one sentence", "in a single sentence"),
    ("in a single sentence", "in one sentence"),
    ("one short sentence", "a single short sentence"),
    ("based on", "judging from"),
    ("answer with", "respond with"),
    ("pick one", "choose one"),
    ("choose one", "select one"),
    ("the best answer", "the most fitting answer"),
    ("here is", "this is"),
    ("make sure", "ensure"),
)

_YES_NO_DIRECTIVES = ("Decide whether", "Determine whether", "Tell me whether", "Say whether", "Decide if",
                      "Judge whether", "Indicate whether")  # fmt: skip
_WH_DIRECTIVES = ("Tell me", "Say", "Decide", "Determine", "Indicate")
_POLITE_OPENERS = ("Could you", "Can you", "Would you")
# Irregular simple past of verbs that follow "did" in instruction questions (verb.exc mixes past and
# participle forms, so it cannot tell "wrote" from "written").
_IRREGULAR_PAST = {
    "feel": "felt", "say": "said", "write": "wrote", "make": "made", "find": "found", "think": "thought",
    "give": "gave", "take": "took", "come": "came", "go": "went", "get": "got", "have": "had", "do": "did",
    "see": "saw", "know": "knew", "tell": "told", "read": "read", "mean": "meant", "leave": "left",
    "keep": "kept", "buy": "bought", "bring": "brought", "understand": "understood", "choose": "chose",
}  # fmt: skip

_WORD = re.compile(r"^([^A-Za-z{}]*)([A-Za-z](?:[A-Za-z']*[A-Za-z])?)([^A-Za-z{}]*)$")
_SLOT = re.compile(r"(?<!\{)\{[A-Za-z_][A-Za-z0-9_]*\}(?!\})")
# An input line is a slot with at most a short label ("Review text: {review}", "(1) {sentence1}").
_INPUT_LINE = re.compile(r"^\s*(?:[^{}:\s]+(?: [^{}:\s]+){0,2}:\s*)?[\"'“(]?\{[A-Za-z_][A-Za-z0-9_]*\}[\"'”)]?\s*$")
_SENTENCE_SPLIT = re.compile(r"(?<=[.?!])\s+(?=[A-Z\"'(])")
_INTRO = re.compile(r"^((?:Based on|Given|According to|Judging from|Using)\b[^,?.]{0,60}, )(.+)$")
_WORDS = re.compile(r"\{[^{}]*\}|[a-z]+(?:'[a-z]+)?")


def _request_seed(template_text: str, seed: int) -> int:
    """A 64-bit seed from the template and request seed (``hash()`` would change with PYTHONHASHSEED)."""
    return stable_seed("rules", seed, template_text, sep="\x00")


def _lcfirst(text: str) -> str:
    """Lower-case the first letter unless the first word is "I" or an acronym."""
    first = text.split(" ", 1)[0]
    if first in ("I", "I'm") or (len(first) > 1 and first.isupper()):
        return text
    return text[:1].lower() + text[1:]


def _ucfirst(text: str) -> str:
    return text[:1].upper() + text[1:]


def _bare(token: str) -> str:
    """The word inside ``token`` in lower case ("review," -> "review"), or "" for slots and symbols."""
    match = _WORD.match(token)
    return match.group(2).lower() if match else ""


def _article_for(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


# ---------------------------------------------------------------------------------------------------
# WordNet access: part of speech, base forms, synonyms and inflection.
# ---------------------------------------------------------------------------------------------------


class _Lexicon:
    """Cached WordNet lookups used by the rewrites.

    Args:
        wordnet: a loaded ``nltk.corpus.wordnet`` reader, or ``None`` to run without synonyms (every
            POS question then answers "unknown", and only fixed rewrites apply).
    """

    def __init__(self, wordnet=None) -> None:
        self._wn = wordnet
        self._weights: dict[str, dict[str, int]] = {}
        self._synonyms: dict[tuple[str, str], tuple[str, ...]] = {}
        self._verb_forms = self._read_exceptions("verb.exc")
        # "found" is also the base form of "to found": an irregular form must never be read as a base.
        self._irregular_verb_forms = {form for forms in self._verb_forms.values() for form in forms}
        self._irregular_nouns = set(self._read_exceptions("noun.exc"))

    def _read_exceptions(self, fileid: str) -> dict[str, list[str]]:
        """base -> inflected forms, from WordNet's exception list (e.g. "write" -> ["written", "wrote"])."""
        forms: dict[str, list[str]] = {}
        if self._wn is None:
            return forms
        with self._wn.open(fileid) as stream:
            for line in stream:
                inflected, *bases = line.split()
                for base in bases:
                    forms.setdefault(base, []).append(inflected)
        return forms

    def pos_weights(self, word: str) -> dict[str, int]:
        """How often ``word`` is used as each part of speech (``n v a r``), by WordNet sense counts.

        Every reading gets at least 1, so "has a reading" and "is frequent" are both visible.
        """
        word = word.lower()
        if word not in self._weights:
            weights: dict[str, int] = {}
            if self._wn is not None:
                for pos in "nvar":
                    base = self._wn.morphy(word, pos)
                    if base:
                        weights[pos] = 1 + sum(lemma.count() for lemma in self._wn.lemmas(base, pos))
            self._weights[word] = weights
        return self._weights[word]

    def dominant_pos(self, word: str) -> str | None:
        weights = self.pos_weights(word)
        # Ties resolve in the fixed order n, v, a, r: max() keeps the first maximum.
        return max(weights, key=weights.__getitem__) if weights else None

    def base(self, word: str, pos: str) -> str | None:
        return self._wn.morphy(word.lower(), pos) if self._wn is not None else None

    def is_base_verb(self, word: str) -> bool:
        return self.base(word, "v") == word.lower()

    def is_nounish(self, word: str) -> bool:
        """True when ``word`` most likely heads or modifies a noun phrase ("review", "news")."""
        return self.dominant_pos(word) == "n"

    def synonyms(self, base: str, pos: str) -> tuple[str, ...]:
        """Common synonyms of ``base`` in its most frequent sense, most used first.

        Only the first synset is used (WordNet orders senses by frequency), and only lemmas that the
        sense-tagged corpus has seen at least once: this drops most archaic and technical words.

        Example:
            >>> _Lexicon(wordnet).synonyms("choose", "v")     # doctest: +SKIP
            ('select', 'pick out')
        """
        key = (base, pos)
        if key not in self._synonyms:
            found: list[str] = []
            synsets = self._wn.synsets(base, pos) if self._wn is not None and base not in _NEVER_SWAP else []
            if synsets:
                lemmas = sorted(synsets[0].lemmas(), key=lambda lemma: (-lemma.count(), lemma.name()))
                for lemma in lemmas:
                    phrase = lemma.name().replace("_", " ")
                    if (
                        lemma.count() < 1
                        or phrase == base
                        or not re.fullmatch(r"[a-z]+(?: [a-z]+)?", phrase)  # no names, digits, apostrophes
                        or phrase in _BAD_SYNONYMS.get(base, ())
                        or phrase in _STOP_WORDS
                        or _same_stem(phrase, base)
                    ):
                        continue
                    found.append(phrase)
            self._synonyms[key] = tuple(found)
        return self._synonyms[key]

    # -- inflection ----------------------------------------------------------------------------------

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
            >>> _Lexicon().inflect("sum up", "v", "3sg")
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


# ---------------------------------------------------------------------------------------------------
# Sentence analysis: where the subject of a clause ends.
# ---------------------------------------------------------------------------------------------------


def _subject_end(words: Sequence[str], lex: _Lexicon, finite_verb: bool) -> int | None:
    """Index where the predicate starts in ``words`` (lower-case bare words beginning with a subject).

    Only simple subjects are handled: a pronoun, or a determiner followed by adjectives, nouns,
    possessives and "of"-phrases ("the tone of this review"). Anything else returns ``None`` so that the
    caller leaves the sentence alone rather than guessing.

    Args:
        words: the clause after the auxiliary (question) or after "whether" (statement).
        lex: WordNet lookups.
        finite_verb: the predicate starts with a finite verb ("follows", "is") rather than with the
            rest of a question ("positive or negative", "entail the hypothesis").

    Returns:
        The index of the first predicate word (``len(words)`` when the subject takes everything).

    Example:
        >>> _subject_end("the tone of this review positive".split(), _Lexicon(), False)   # doctest: +SKIP
        5
    """
    if not words:
        return None
    # "this"/"that" may be a determiner ("this review is") or a pronoun ("this means"): try the noun
    # phrase reading first and fall back to the pronoun.
    cut = _noun_phrase_end(words, lex, finite_verb) if words[0] in _DETERMINERS else None
    if cut is None and words[0] in _SUBJECT_PRONOUNS and len(words) > 1:
        cut = 1
    return cut


def _noun_phrase_end(words: Sequence[str], lex: _Lexicon, finite_verb: bool) -> int | None:
    """End of a noun phrase that starts with a determiner (see :func:`_subject_end`)."""
    index, seen_noun = 1, False
    while index < len(words):
        word = words[index]
        if word in _CLAUSE_WORDS or word in _AUXILIARIES and not seen_noun:
            return None
        if seen_noun and (word in _AUXILIARIES or word in _BE):
            return index
        if word == "of" and seen_noun:
            index += 2 if index + 1 < len(words) and words[index + 1] in _DETERMINERS else 1
            seen_noun = False
            continue
        if word.endswith("'s"):
            index += 1
            continue
        if seen_noun and _starts_predicate(word, lex, finite_verb):
            return index
        weights = lex.pos_weights(word)
        if word in _STOP_WORDS and word not in ("following", "one", "two"):
            return index if seen_noun else None
        if not weights:
            return None
        seen_noun = seen_noun or "n" in weights
        index += 1
    return index if seen_noun else None


def _starts_predicate(word: str, lex: _Lexicon, finite_verb: bool) -> bool:
    """Whether ``word``, met after a noun, begins the predicate rather than continuing the subject."""
    if finite_verb:
        return word.endswith("s") and lex.base(word, "v") not in (None, word) and not lex.is_nounish(word)
    if word.endswith("ly") and "r" in lex.pos_weights(word):
        return True
    if word.endswith("ed") and lex.base(word, "v"):
        return True
    return not lex.is_nounish(word)


def _split_tokens(sentence: str) -> tuple[list[str], str]:
    """Split a sentence into whitespace tokens and its final punctuation mark."""
    body = sentence.rstrip()
    end = body[-1] if body and body[-1] in ".?!" else ""
    body = body[:-1] if end else body
    return body.split(), end


# ---------------------------------------------------------------------------------------------------
# Sentence rewrites. Each takes one sentence and returns the rewritten sentence or None.
# ---------------------------------------------------------------------------------------------------


@dataclass
class _Context:
    """What a rewrite needs to know besides the sentence."""

    lex: _Lexicon
    rng: random.Random
    input_side: str | None  # "above" / "below": where the input sits relative to this sentence


def _yes_no_to_directive(sentence: str, ctx: _Context) -> str | None:
    """"Is this review positive or negative?" -> "Decide whether this review is positive or negative."

    Example:
        >>> ctx = _Context(_Lexicon(), random.Random(0), None)
        >>> _yes_no_to_directive("Is it spam?", ctx)
        'Indicate whether it is spam.'
    """
    tokens, end = _split_tokens(sentence)
    if end != "?" or len(tokens) < 3 or "?" in " ".join(tokens) or "," in " ".join(tokens):
        return None
    aux = tokens[0].lower()
    if aux not in _AUXILIARIES:
        return None
    rest = tokens[1:]
    words = [_bare(token) for token in rest]
    cut = _subject_end(words, ctx.lex, finite_verb=False)
    if cut is None or cut >= len(rest):
        return None
    subject, predicate = rest[:cut], rest[cut:]
    if _bare(predicate[0]) in ("or", "and", "but", "nor"):
        return None  # "this message spam | or not spam": the subject swallowed part of the predicate
    if aux in _MODALS and not ctx.lex.is_base_verb(_bare(predicate[0])):
        return None  # "could [above] be said": the subject guess ended too early
    if aux in _DO:
        verb = _bare(predicate[0])
        if not ctx.lex.is_base_verb(verb) or predicate[0] != verb:
            return None
        if aux == "does":
            verb = ctx.lex.inflect(verb, "v", "3sg")
        elif aux == "did":
            verb = ctx.lex.simple_past(verb)
        if verb is None:
            return None
        clause = subject + [verb] + predicate[1:]
    else:
        clause = subject + [aux] + predicate
    return f"{ctx.rng.choice(_YES_NO_DIRECTIVES)} {' '.join(clause)}."


def _directive_to_yes_no(sentence: str, ctx: _Context) -> str | None:
    """"Decide if the tone of this review is positive or negative." -> "Is the tone of this review ...?"

    Example:
        >>> _directive_to_yes_no("Tell me if it is spam.", _Context(_Lexicon(), random.Random(0), None))
        'Is it spam?'
    """
    match = re.match(r"^(?:Decide|Determine|Tell me|Say|Judge|Indicate|Check|Assess|State)\s+(?:whether|if)\s+(.+)$",
                     sentence.strip())  # fmt: skip
    if not match:
        return None
    tokens, end = _split_tokens(match.group(1))
    if end != "." or any(mark in " ".join(tokens) for mark in ",;:?"):
        return None
    if tokens[-2:] == ["or", "not"]:
        tokens = tokens[:-2]
    words = [_bare(token) for token in tokens]
    cut = _subject_end(words, ctx.lex, finite_verb=True)
    if cut is None or cut >= len(tokens) - 1:
        return None
    subject, verb, rest = tokens[:cut], words[cut], tokens[cut + 1 :]
    if verb in _BE or verb in _MODALS or verb in _HAVE:
        question = [verb] + subject + rest
    elif verb.endswith("s") and ctx.lex.base(verb, "v") not in (None, verb):
        question = ["does"] + subject + [ctx.lex.base(verb, "v")] + rest
    else:
        return None
    return _ucfirst(" ".join(question)) + "?"


def _wh_to_directive(sentence: str, ctx: _Context) -> str | None:
    """"Which topic is this news snippet about?" -> "Tell me which topic this news snippet is about."

    Example:
        >>> _wh_to_directive("Which topic is this snippet about?", ctx_with_wordnet)   # doctest: +SKIP
        'Tell me which topic this snippet is about.'
    """
    tokens, end = _split_tokens(sentence)
    if end != "?" or "," in " ".join(tokens) or not tokens or tokens[0].lower() not in _WH_WORDS:
        return None
    aux_at = next((i for i, token in enumerate(tokens) if token.lower() in _AUXILIARIES), None)
    if aux_at is None or aux_at > 3:
        return None
    wh_phrase, aux, rest = tokens[:aux_at], tokens[aux_at].lower(), tokens[aux_at + 1 :]
    wh_phrase = [_lcfirst(wh_phrase[0])] + wh_phrase[1:]
    words = [_bare(token) for token in rest]
    cut = _subject_end(words, ctx.lex, finite_verb=False)
    if cut is None:
        return None
    subject, predicate = rest[:cut], rest[cut:]
    if [_bare(token) for token in subject] == ["you"]:
        return None  # "Tell me how you would describe X" is clumsier than _polite_to_imperative's "Describe X"
    if aux in _MODALS and (not predicate or not ctx.lex.is_base_verb(_bare(predicate[0]))):
        return None
    if aux in _DO:
        if not predicate or not ctx.lex.is_base_verb(_bare(predicate[0])) or predicate[0] != _bare(predicate[0]):
            return None
        verb = predicate[0]
        verb = {"does": ctx.lex.inflect(verb, "v", "3sg"), "did": ctx.lex.simple_past(verb)}.get(aux, verb)
        if verb is None:
            return None
        clause = subject + [verb] + predicate[1:]
    else:
        clause = subject + [aux] + predicate
    if not subject:
        return None
    return f"{ctx.rng.choice(_WH_DIRECTIVES)} {' '.join(wh_phrase + clause)}."


def _polite_to_imperative(sentence: str, ctx: _Context) -> str | None:
    """"Could you summarize it?" / "How would you describe X?" -> "Summarize it." / "Describe X."

    Example:
        >>> _polite_to_imperative("How would you describe the opinion?", _Context(_Lexicon(), random.Random(0), None))
        'Describe the opinion.'
    """
    match = re.match(r"^(?:Can|Could|Would|Will) you (?:please )?(.+)\?$", sentence.strip())
    match = match or re.match(r"^How would you ((?:describe|summarize|rate|classify|rewrite)\b.+)\?$", sentence.strip())
    if not match or "?" in match.group(1):
        return None
    return _ucfirst(match.group(1)) + "."


def _imperative_to_polite(sentence: str, ctx: _Context) -> str | None:
    """"Classify this story by topic." -> "Could you classify this story by topic?"

    Example:
        >>> _imperative_to_polite("Please sort it.", _Context(_Lexicon(), random.Random(0), None))
        'Can you please sort it?'
    """
    body = sentence.strip()
    if not body.endswith(".") or "?" in body or ":" in body or not _is_imperative(body, ctx.lex):
        return None
    return f"{ctx.rng.choice(_POLITE_OPENERS)} {_lcfirst(body[:-1])}?"


def _is_imperative(sentence: str, lex: _Lexicon) -> bool:
    """A sentence that starts with a verb in base form ("Decide ...", "Please write ...")."""
    first = sentence.split(" ", 1)[0]
    word = _bare(first)
    if not first.isalpha():  # "Hint:" is a label, not a verb
        return False
    if word == "please":
        return True
    if not first[:1].isupper() or word in _STOP_WORDS or word in _WH_WORDS or word in _AUXILIARIES:
        return False
    if not lex.is_base_verb(word):
        return False
    # "People can ..." starts with a word that is only rarely a verb; "Rate the ..." is rare too but
    # the determiner after it shows the verb reading.
    weights = lex.pos_weights(word)
    following = _bare(sentence.split(" ", 2)[1]) if " " in sentence else ""
    return weights.get("v", 0) >= 0.3 * max(weights.values()) or following in _DETERMINERS | {"me", "it", "whether", "if"}


def _drop_please(sentence: str, ctx: _Context) -> str | None:
    if sentence.startswith("Please ") and len(sentence) > 8:
        return _ucfirst(sentence[len("Please ") :])
    return None


def _phrase_swap(sentence: str, ctx: _Context) -> str | None:
    """Swap one fixed phrase for an equivalent one ("whether" -> "if", "Tell me" -> "Let me know")."""
    options = []
    for old, new in _PHRASE_SWAPS:
        for variant_old, variant_new in ((old, new), (_ucfirst(old), _ucfirst(new))):
            if re.search(rf"(?<![A-Za-z]){re.escape(variant_old)}(?![A-Za-z])", sentence):
                options.append((variant_old, variant_new))
    if not options:
        return None
    old, new = ctx.rng.choice(options)
    return re.sub(rf"(?<![A-Za-z]){re.escape(old)}(?![A-Za-z])", new, sentence, count=1)


def _lead_in(sentence: str, ctx: _Context) -> str | None:
    """Prefix a lead-in that fits the sentence ("Please ...", "Your task: ...", "Based on the text above, ...")."""
    body = sentence.strip()
    choices: list[str] = []
    # "Read the text below and ..." would repeat a pointer the sentence already has.
    side = None if re.search(r"\b(?:above|below|following|preceding)\b", body) else ctx.input_side
    if body.endswith(".") and _is_imperative(body, ctx.lex) and not body.startswith("Please"):
        choices += [f"Please {_lcfirst(body)}", f"Your task: {_lcfirst(body)}"]
        first = _bare(body.split(" ", 1)[0])
        if side and first not in ("read", "look", "consider", "review", "examine", "study", "use"):
            choices.append(f"Read the text {side} and {_lcfirst(body)}")
    opener = body.lower().split(" ", 2)
    if (body.endswith("?") and side and not _INTRO.match(body) and opener[0] in _AUXILIARIES | _WH_WORDS
            and opener[1:2] != ["you"]):
        choices.append(f"Based on the text {side}, {_lcfirst(body)}")
    return ctx.rng.choice(choices) if choices else None


_Rewrite = Callable[[str, _Context], "str | None"]
_STRUCTURAL: tuple[tuple[str, _Rewrite], ...] = (
    ("yes_no_to_directive", _yes_no_to_directive),
    ("directive_to_yes_no", _directive_to_yes_no),
    ("wh_to_directive", _wh_to_directive),
    ("polite_to_imperative", _polite_to_imperative),
    ("imperative_to_polite", _imperative_to_polite),
    ("drop_please", _drop_please),
)


def _rewrite_with_intro(rewrite: _Rewrite, sentence: str, ctx: _Context) -> str | None:
    """Apply ``rewrite`` to a sentence, looking past an intro such as "Based on the paragraph above, "."""
    result = rewrite(sentence, ctx)
    if result is not None:
        return result
    match = _INTRO.match(sentence)
    if match:
        inner = rewrite(_ucfirst(match.group(2)), ctx)
        if inner is not None:
            return match.group(1) + _lcfirst(inner)
    return None


# ---------------------------------------------------------------------------------------------------
# Template layout: instruction lines, input lines, and moving the instruction block.
# ---------------------------------------------------------------------------------------------------

_INSTRUCTION, _INPUT, _MIXED, _BLANK, _OPTIONS = "instruction", "input", "mixed", "blank", "options"


def _line_kind(line: str) -> str:
    stripped = line.strip()
    if not stripped:
        return _BLANK
    if stripped == "{options_}":
        return _OPTIONS
    if not _SLOT.search(line):
        return _INSTRUCTION
    return _INPUT if _INPUT_LINE.match(line) else _MIXED


def _swap_blocks(lines: list[str]) -> tuple[list[str], bool] | None:
    """Move the instruction block to the other side of the input block.

    Only for templates shaped ``instructions / inputs / [options]`` or ``inputs / instructions /
    [options]``, where every input line is a bare (possibly labelled) slot.

    Returns:
        The new lines and whether the instructions now come after the input, or ``None``.
    """
    kinds = [_line_kind(line) for line in lines]
    tail_start = len(lines)
    while tail_start > 0 and kinds[tail_start - 1] in (_BLANK, _OPTIONS):
        tail_start -= 1
    if _OPTIONS in kinds[:tail_start] or _MIXED in kinds[:tail_start]:
        return None
    body = list(range(tail_start))
    roles = [kinds[i] for i in body if kinds[i] != _BLANK]
    changes = sum(1 for a, b in zip(roles, roles[1:]) if a != b)
    if changes != 1 or not roles:
        return None
    split = next(i for i in body if kinds[i] not in (_BLANK, roles[0]))
    first_end = max(i for i in range(split) if kinds[i] != _BLANK) + 1
    first, gap, second = lines[:first_end], lines[first_end:split], lines[split:tail_start]
    instructions_after = roles[0] == _INSTRUCTION
    return second + gap + first + lines[tail_start:], instructions_after


def _flip_deixis(line: str, instructions_after: bool) -> str:
    """Make "above"/"below"/"the following" point at the input again after the instruction moved."""
    if instructions_after:
        line = re.sub(r"\b([Tt])he following (\w+)", lambda m: _this_or_these(m.group(1), m.group(2)), line)
        line = re.sub(r"\bbelow\b", "above", line)
        return re.sub(r"\bfollowing\b", "preceding", line)
    line = re.sub(r"\babove\b", "below", line)
    return re.sub(r"\bpreceding\b", "following", line)


def _this_or_these(t: str, noun: str) -> str:
    plural = noun.endswith("s") and not noun.endswith("ss")
    return ("T" if t == "T" else "t") + ("hese " if plural else "his ") + noun


def _input_side(lines: Sequence[str], index: int) -> str | None:
    """Whether the input (a slot line other than the options) lies below or above line ``index``."""
    kinds = [_line_kind(line) for line in lines]
    if any(kind in (_INPUT, _MIXED) for kind in kinds[index + 1 :]):
        return "below"
    if any(kind in (_INPUT, _MIXED) for kind in kinds[:index]):
        return "above"
    return None


def _sentence_parts(line: str) -> tuple[str, list[str], str, str] | None:
    """Split a line into ``(indent, complete sentences, trailing clause, rest from the first slot on)``.

    Returns ``None`` for lines without rewritable words (inputs, options, literal braces).

    Example:
        >>> _sentence_parts("Given that, is it true? {hypothesis}")
        ('', ['Given that, is it true?'], '', ' {hypothesis}')
        >>> _sentence_parts("Read it. Then summarize it: {text}")
        ('', ['Read it.'], 'Then summarize it:', ' {text}')
    """
    kind = _line_kind(line)
    if kind not in (_INSTRUCTION, _MIXED) or "{{" in line or "}}" in line:
        return None
    indent = line[: len(line) - len(line.lstrip())]
    slot = _SLOT.search(line)
    head, rest = (line[len(indent) : slot.start()], line[slot.start() :]) if slot else (line[len(indent) :], "")
    # Keep the exact text between the words and the slot (a space, an opening quote).
    stripped = head.rstrip(" \"'“(")
    rest = head[len(stripped) :] + rest
    if not stripped.strip():
        return None
    sentences = _SENTENCE_SPLIT.split(stripped.strip())
    partial = "" if sentences[-1][-1:] in ".?!" else sentences.pop()
    return indent, sentences, partial, rest


# ---------------------------------------------------------------------------------------------------
# Synonym substitution over the editable words of a template.
# ---------------------------------------------------------------------------------------------------


def _editable_positions(lines: Sequence[str]) -> list[tuple[int, int]]:
    """(line, token) positions whose words may be replaced: instruction lines and the text of mixed lines.

    Labels of input lines ("Review:") and anything touching a slot stay as they are.
    """
    positions = []
    for line_no, line in enumerate(lines):
        if _line_kind(line) not in (_INSTRUCTION, _MIXED):
            continue
        for token_no, token in enumerate(line.split(" ")):
            if token_no == 0 and token.endswith(":"):
                continue  # a label such as "Hint:"
            if "{" not in token and "}" not in token and _WORD.match(token):
                positions.append((line_no, token_no))
    return positions


def _guess_pos(tokens: Sequence[str], index: int, lex: _Lexicon) -> str | None:
    """Part of speech of ``tokens[index]`` from WordNet's frequencies plus a few context cues."""
    word = _bare(tokens[index])
    weights = lex.pos_weights(word)
    if not weights:
        return None
    previous = tokens[index - 1] if index > 0 else ""
    sentence_start = not previous or previous[-1:] in ".?!:" or previous.startswith("{")
    prev_word = _bare(previous)
    if ("v" in weights and lex.is_base_verb(word)) and (sentence_start or prev_word in _VERB_CONTEXT):
        return "v"
    if prev_word in _DETERMINERS or prev_word.endswith("'s"):
        following = _bare(tokens[index + 1]) if index + 1 < len(tokens) else ""
        if "a" in weights and following and following not in _STOP_WORDS and "n" in lex.pos_weights(following):
            return "a"
        return "n" if "n" in weights else ("a" if "a" in weights else None)
    return lex.dominant_pos(word)


def _synonym_options(tokens: Sequence[str], index: int, lex: _Lexicon, protected: frozenset[str]) -> list[str]:
    """Replacement tokens for ``tokens[index]``, best first, with punctuation, case and inflection kept."""
    match = _WORD.match(tokens[index])
    if not match:
        return []
    before, word, after = match.groups()
    lower = word.lower()
    if lower in protected or lower in _STOP_WORDS or lower in _NEVER_SWAP or "'" in lower or len(lower) < 3:
        return []
    previous = _bare(tokens[index - 1]) if index > 0 else ""
    weights = lex.pos_weights(lower)
    if lower.endswith("s") and "n" in weights and "v" in weights and not (
        (previous in _DETERMINERS and previous != "that") or previous.endswith("'s")
    ):
        return []  # "keeps"/"captures": plural noun or verb? A wrong guess gives "livelihoods", so skip.
    pos = _guess_pos(tokens, index, lex)
    analysed = lex.form_of(lower, pos) if pos else None
    if analysed is None:
        return []
    base, form = analysed
    if base in _NEVER_SWAP or base in protected:
        return []
    options = []
    for synonym in lex.synonyms(base, pos):
        inflected = lex.inflect(synonym, pos, form)
        if inflected and not set(inflected.split()) & protected:
            options.append(before + _match_case(inflected, word) + after)
    return options


def _swap_synonyms(lines: list[str], ctx: _Context, protected: frozenset[str], max_swaps: int) -> list[str]:
    """Replace up to ``max_swaps`` random editable words by WordNet synonyms (fixing "a"/"an")."""
    candidates = []
    split_lines = [line.split(" ") for line in lines]
    for line_no, token_no in _editable_positions(lines):
        options = _synonym_options(split_lines[line_no], token_no, ctx.lex, protected)
        if options:
            candidates.append((line_no, token_no, options))
    if not candidates or max_swaps <= 0:
        return lines
    count = ctx.rng.randint(1, min(max_swaps, len(candidates)))
    for line_no, token_no, options in sorted(ctx.rng.sample(candidates, count)):
        # Prefer the most common synonym, but not always, so candidates differ from each other.
        choice = options[0] if len(options) == 1 or ctx.rng.random() < 0.6 else ctx.rng.choice(options[1:3])
        tokens = split_lines[line_no]
        tokens[token_no] = choice
        if token_no > 0 and _bare(tokens[token_no - 1]) in ("a", "an"):
            article = _article_for(_bare(choice) or choice)
            tokens[token_no - 1] = _match_case(article, tokens[token_no - 1])
    return [" ".join(tokens) for tokens in split_lines]


# ---------------------------------------------------------------------------------------------------
# Checks and diversity.
# ---------------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def _distance(a: str, b: str) -> float:
    """Word-level difference in [0, 1] (0: same word sequence)."""
    return 1.0 - difflib.SequenceMatcher(None, _words(a), _words(b), autojunk=False).ratio()


def _changed_words(original: str, candidate: str) -> int:
    """How many words were replaced, added or removed (multiset difference, larger side)."""
    before, after = Counter(_words(original)), Counter(_words(candidate))
    return max(sum((before - after).values()), sum((after - before).values()))


def _protected_counts(text: str, protected_words: Sequence[str]) -> dict[str, int]:
    """Occurrences of each protected word or phrase in the literal text (slots removed), case-insensitive."""
    literal = _SLOT.sub(" ", text)
    return {
        entry: len(re.findall(rf"(?<![A-Za-z]){re.escape(entry)}(?![A-Za-z])", literal, re.IGNORECASE))
        for entry in protected_words
        if entry.strip()
    }


def candidate_problem(template: Template, candidate: str, protected_words: Sequence[str] = ()) -> str | None:
    """Why ``candidate`` is not an acceptable rewording of ``template`` as far as rules can tell, or ``None``.

    Checks the slot lock and that every protected word occurs as often as in the original.

    Args:
        template: the original template.
        candidate: a candidate template text.
        protected_words: label words that must not change.

    Returns:
        A short reason, or ``None`` when the candidate passes.

    Example:
        >>> from coin_data.templates import parse_template
        >>> t = parse_template("{text}\\nIs it spam?\\n{options_}")
        >>> candidate_problem(t, "{text}\\nIs it junk?\\n{options_}", ["spam"])
        "protected word 'spam' changed"
    """
    violation = slot_lock_violation(template, candidate)
    if violation:
        return violation
    if candidate.strip() == template.text.strip():
        return "same as the original"
    before = _protected_counts(template.text, protected_words)
    after = _protected_counts(candidate, protected_words)
    for entry, count in before.items():
        if after[entry] != count:
            return f"protected word {entry!r} changed"
    return None


# ---------------------------------------------------------------------------------------------------
# The backend.
# ---------------------------------------------------------------------------------------------------


class RulesParaphraser:
    """Offline paraphraser: WordNet synonyms plus sentence-level rewrites, seeded and deterministic.

    Args:
        max_synonym_swaps: most words replaced by synonyms in one candidate.
        min_change: smallest word-level distance (0..1) between a candidate and the original.
        min_spread: smallest word-level distance between two candidates of the same template.
        attempts_per_candidate: generation attempts per wanted candidate before giving up.
        use_wordnet: load WordNet for synonyms and part-of-speech cues; ``False`` keeps only the fixed
            rewrites (faster, and usable without WordNet).

    Example:
        >>> p = RulesParaphraser(max_synonym_swaps=2)
        >>> p.name
        'rules'
    """

    name = "rules"

    def __init__(
        self,
        max_synonym_swaps: int = 3,
        min_change: float = 0.1,
        min_spread: float = 0.1,
        attempts_per_candidate: int = 15,
        use_wordnet: bool = True,
    ) -> None:
        if max_synonym_swaps < 0:
            raise ValueError(f"max_synonym_swaps must be >= 0, got {max_synonym_swaps}")
        if not (0.0 <= min_change < 1.0 and 0.0 <= min_spread < 1.0):
            raise ValueError(f"min_change and min_spread must lie in [0, 1), got {min_change}, {min_spread}")
        if attempts_per_candidate < 1:
            raise ValueError(f"attempts_per_candidate must be >= 1, got {attempts_per_candidate}")
        self.max_synonym_swaps = max_synonym_swaps
        self.min_change = min_change
        self.min_spread = min_spread
        self.attempts_per_candidate = attempts_per_candidate
        self.use_wordnet = use_wordnet
        self._lexicon: _Lexicon | None = None

    @property
    def lexicon(self) -> _Lexicon:
        """WordNet lookups, loaded on first use (``ensure_wordnet`` copies Debian files if needed)."""
        if self._lexicon is None:
            if self.use_wordnet:
                from coin_data.text.wordnet import ensure_wordnet

                ensure_wordnet()
                from nltk.corpus import wordnet

                self._lexicon = _Lexicon(wordnet)
            else:
                self._lexicon = _Lexicon(None)
        return self._lexicon

    def paraphrase(
        self, requests: Sequence[ParaphraseRequest], progress: ProgressFn | None = None
    ) -> list[ParaphraseResult]:
        """Return one result per request, in request order.

        Args:
            requests: one request per unique template.
            progress: called with 1 after each request.

        Returns:
            Results whose ``candidates`` hold up to ``k`` distinct rewordings; ``failure`` says why when
            there are none. ``usage.requests`` stays 0: nothing is called.
        """
        results = []
        for request in requests:
            candidates = self.candidates(request)
            failure = None if candidates else self._failure_reason(request.template)
            results.append(ParaphraseResult(request, candidates, self.name, failure, Usage(requests=0)))
            if progress is not None:
                progress(1)
        return results

    def candidates(self, request: ParaphraseRequest) -> list[str]:
        """Up to ``request.k`` distinct, checked rewordings of ``request.template``.

        Example:
            >>> RulesParaphraser(use_wordnet=False).candidates(ParaphraseRequest(
            ...     parse_template("{text}\\n{options_}"), k=3))                  # doctest: +SKIP
            []
        """
        template = request.template
        if request.k <= 0 or not self._has_editable_text(template):
            return []
        rng = random.Random(_request_seed(template.text, request.seed))
        protected = frozenset(word.lower() for entry in request.protected_words for word in entry.split())
        chosen: list[str] = []
        plans = self._plans(template.text, rng)
        for attempt in range(self.attempts_per_candidate * request.k):
            text = self._compose(template.text, plans[attempt % len(plans)], rng, protected)
            if self._acceptable(template, text, chosen, request.protected_words):
                chosen.append(text)
                if len(chosen) == request.k:
                    break
        return chosen

    # -- internals -----------------------------------------------------------------------------------

    @staticmethod
    def _failure_reason(template: Template) -> str:
        lines = template.text.split("\n")
        if not _editable_positions(lines):
            return "rules: no instruction words outside slots and labels to reword"
        return "rules: no rewording changed enough words while keeping slots and protected words"

    @staticmethod
    def _has_editable_text(template: Template) -> bool:
        return bool(re.search(r"[A-Za-z]", _SLOT.sub("", template.text)))

    def _plans(self, text: str, rng: random.Random) -> list[tuple[bool, str | None, bool]]:
        """Structural plans (move block?, rewrite of the main sentence, add a lead-in?), shuffled.

        Cycling through them gives each candidate a different sentence structure before synonyms are
        added on top.
        """
        can_move = _swap_blocks(text.split("\n")) is not None
        rewrites: list[str | None] = [None] + [name for name, _ in _STRUCTURAL] + ["phrase"]
        plans = [(move, rewrite, lead) for move in ([False, True] if can_move else [False])
                 for rewrite in rewrites for lead in (False, True)]  # fmt: skip
        rng.shuffle(plans)
        return plans

    def _compose(self, text: str, plan: tuple[bool, str | None, bool], rng: random.Random,
                 protected: frozenset[str]) -> str:  # fmt: skip
        """Build one candidate text from a structural plan plus random synonyms."""
        move, main_rewrite, lead = plan
        lines = text.split("\n")
        if move:
            swapped = _swap_blocks(lines)
            if swapped is not None:
                moved, after = swapped
                lines = [_flip_deixis(line, after) if _line_kind(line) == _INSTRUCTION else line for line in moved]
        lines = self._rewrite_sentences(lines, main_rewrite, lead, rng)
        if self.use_wordnet:
            ctx = _Context(self.lexicon, rng, None)
            lines = _swap_synonyms(lines, ctx, protected, self.max_synonym_swaps)
        return "\n".join(lines)

    def _rewrite_sentences(self, lines: list[str], main_rewrite: str | None, lead: bool,
                           rng: random.Random) -> list[str]:  # fmt: skip
        """Apply the planned rewrite to the first instruction sentence and random ones to the others.

        Instruction lines are rewritten whole. In a line that mixes words and slots, only the complete
        sentences before the first slot are ("Given that, is this true? {hypothesis}"); a clause that
        introduces the slot ("Summarize this: {text}") only gets a phrase swap or "Please".
        """
        out, first = list(lines), True
        for line_no, line in enumerate(lines):
            parts = _sentence_parts(line)
            if parts is None:
                continue
            indent, sentences, partial, rest = parts
            mixed = _line_kind(line) == _MIXED
            ctx = _Context(self.lexicon, rng, None if mixed else _input_side(lines, line_no))
            for index, sentence in enumerate(sentences):
                name = main_rewrite if first else rng.choice([None, None, "phrase"] + [n for n, _ in _STRUCTURAL])
                sentences[index] = self._rewrite_one(sentence, name, lead and first, ctx)
                first = False
            if partial:
                name = main_rewrite if first and main_rewrite in ("phrase", None) else rng.choice([None, "phrase"])
                partial = self._rewrite_one(partial, name, lead and first and _is_imperative(partial, ctx.lex), ctx)
                first = False
            out[line_no] = indent + " ".join(sentences + ([partial] if partial else [])) + rest
        return out

    @staticmethod
    def _rewrite_one(sentence: str, name: str | None, lead: bool, ctx: _Context) -> str:
        if name == "phrase":
            sentence = _phrase_swap(sentence, ctx) or sentence
        elif name is not None:
            sentence = _rewrite_with_intro(dict(_STRUCTURAL)[name], sentence, ctx) or sentence
        if lead:
            sentence = _lead_in(sentence, ctx) or sentence
        return sentence

    def _acceptable(self, template: Template, text: str, chosen: Sequence[str], protected: Sequence[str]) -> bool:
        if candidate_problem(template, text, protected) is not None or text in chosen:
            return False
        original_words = [w for w in _words(template.text) if not w.startswith("{")]
        needed = min(2, len(original_words))
        if _changed_words(template.text, text) < needed or _distance(template.text, text) < self.min_change:
            return False
        return all(_distance(text, other) >= self.min_spread for other in chosen)
