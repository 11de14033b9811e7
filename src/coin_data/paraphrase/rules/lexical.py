"""Word lists and token helpers of the rules paraphraser (its WordNet lookups are :mod:`coin_data.text.lexicon`).

Example:
    >>> _bare("review,"), _article_for("answer")
    ('review', 'an')
"""


import re

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
# Swaps that add or drop a word the verifier's lexical diff counts as content ("as well" -> "too" drops
# "well", "the main point" -> "the central point" adds "central"), so their candidates were rejected. They
# stay in the list above and are still drawn, so every other random choice (and every candidate that did
# not use one of them) stays byte-identical, but a drawn one leaves the sentence as it was.
_RETIRED_SWAPS = frozenset({
    ("the best answer", "the most fitting answer"),
    ("as well", "too"),
    ("more plainly", "in plainer words"),
    ("using only", "relying only on"),
    ("is implied by", "follows from"),
    ("the main point", "the central point"),
    ("the key points", "the main points"),
})  # fmt: skip

_YES_NO_DIRECTIVES = ("Decide whether", "Determine whether", "Tell me whether", "Say whether", "Decide if",
                      "Judge whether", "Indicate whether")  # fmt: skip
_WH_DIRECTIVES = ("Tell me", "Say", "Decide", "Determine", "Indicate")
_POLITE_OPENERS = ("Could you", "Can you", "Would you")
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
