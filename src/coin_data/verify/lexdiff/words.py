"""The lexical diff's word lists and token pattern: small and explicit, each a fact about instruction text
that WordNet lacks (negations, comparators, numbers, ordinals, framing words, persona openers ...).

Example:
    >>> _TOKEN.findall("Don't use {text}, at most 3 words.")
    ["Don't", 'use', '{text}', ',', 'at', 'most', '3', 'words', '.']
"""

from __future__ import annotations

import re

from coin_data.text.words import VERIFY_STOP_WORDS

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
# Words that never carry content on their own (the shared list's variant for the diff: coin_data.text.words).
_STOP = VERIFY_STOP_WORDS

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
# Nouns for the answer classes: a number before them counts the labels the text lists ("into two
# categories: 'acceptable' or 'unacceptable'").
_LABEL_NOUNS = frozenset({"categories", "classes", "labels", "options", "choices", "groups", "types", "classifications"})
# A letter that marks an answer option: "A) yes or B) no", "(b) no".
_OPTION_MARKER = re.compile(r"(?<![A-Za-z0-9])\(?[A-Ea-e]\)\s*")
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
