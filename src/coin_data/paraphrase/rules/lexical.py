"""Word lists, token helpers and WordNet lookups (part of speech, synonyms, inflection) of the rules paraphraser.

Example:
    >>> _Lexicon().inflect("sum up", "v", "3sg")
    'sums up'
"""


import re
from os.path import commonprefix as os_commonprefix

from coin_data.seeds import stable_seed
from coin_data.text.words import STOP_WORDS
from coin_data.text.words import match_case as _match_case  # noqa: F401 (used by the generator)

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
    ("as well", "too"),
    ("each other", "one another"),
    ("would you say that", "do you think that"),
    ("more plainly", "in plainer words"),
    ("easier to understand", "simpler to understand"),
    ("find the answer", "look for the answer"),
    ("using only", "relying only on"),
    ("answer this question", "answer the following question"),
    ("read this", "read the following"),
    ("is implied by", "follows from"),
    ("the text above", "the preceding text"),
    ("the paragraph above", "the preceding paragraph"),
    ("a short", "a brief"),
    ("write a", "come up with a"),
    ("give a", "provide a"),
    ("the main point", "the central point"),
    ("the key points", "the main points"),
    ("generate a", "create a"),
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
