"""Seeded, non-adaptive instruction perturbations at four levels, for robustness evaluation.

=============  ==========================================================================================
level          what changes (outside ``{slots}``, the options block, input labels and label words)
=============  ==========================================================================================
``character``  typo-style edits (DeepWordBug-like): a few words get one adjacent swap, substitution,
               deletion or insertion of a letter
``word``       WordNet synonym swaps (TextFooler-like), each kept only while the embedding cosine of the
               whole instruction to the original stays at or above ``min_similarity``
``sentence``   a random 10-character token appended (CheckList-like) or a tautology appended
               (StressTest-like, ``and true is true``); variants alternate between the two
``semantic``   a rewording from a paraphraser backend (``rules`` offline by default) that passes the
               equivalence checks of :mod:`coin_data.verify`
=============  ==========================================================================================

*Non-adaptive* means that no model under test is queried: the same instruction, level, seed and variant
index always give the same text, whatever model is evaluated on it. Randomness comes from
``random.Random`` seeded with a SHA-256 of (seed, level, variant, template text), so results do not depend
on call order, the process or ``PYTHONHASHSEED``.

What is never edited: ``{slots}`` (the instance fields), ``{options_}`` (the answer list), words of the
label set (``protected_words``), and input label lines such as ``Premise: {premise}``. A perturbation
that cannot be made (no editable word, no synonym kept, no paraphrase verified) comes back with
``text=None`` and a ``reason``; nothing is dropped silently.

Example:
    >>> check_level("word")
    'word'
    >>> typo("review", "swap", random.Random(0)) != "review"
    True
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from coin_data.seeds import stable_seed
from coin_data.text.words import FUNCTION_WORDS
from coin_data.text.words import label_word_set as protected_word_set

CLEAN = "clean"
CHARACTER = "character"
WORD = "word"
SENTENCE = "sentence"
SEMANTIC = "semantic"
LEVELS = (CLEAN, CHARACTER, WORD, SENTENCE, SEMANTIC)
PERTURBATION_LEVELS = LEVELS[1:]

CHAR_OPERATIONS = ("swap", "substitute", "delete", "insert")
SENTENCE_METHODS = ("checklist", "stresstest")

# Tokens of a template: escaped braces, a slot, or a word (letters with inner apostrophes).
_TOKEN = re.compile(r"\{\{|\}\}|\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z](?:[A-Za-z']*[A-Za-z])?")
# A line that only labels an input ("Premise: {premise}", "Text: \"{text}\""): its words belong to the
# input format, not to the instruction (PromptBench perturbs the instruction only).
_INPUT_LABEL_LINE = re.compile(r"^\s*[^{}:\n]{0,40}:\s*[\"'“(]?\{[A-Za-z_][A-Za-z0-9_]*\}[\"'”)]?\s*$")


class PerturbationError(ValueError):
    """Bad perturbation input: unknown level, or an instruction that does not parse."""


@dataclass
class PerturbConfig:
    """Settings of the four perturbation levels.

    Command: ``coin-data perturb instructions.jsonl --level word --seed 0``
    """

    # --- randomness -------------------------------------------------------------------------
    seed: int = field(default=0, metadata={"help": "Seed; with the level, variant and text it fixes every choice."})
    # --- character level ----------------------------------------------------------------------
    char_words: int = field(default=2, metadata={"help": "Words that get one typo each (character level)."})
    char_operations: tuple[str, ...] = field(
        default=CHAR_OPERATIONS, metadata={"help": "Typo kinds to draw from: swap, substitute, delete, insert."}
    )
    min_word_length: int = field(
        default=3, metadata={"help": "Shorter words are never edited (a typo in 'is' just reads as another word)."}
    )
    # --- word level ---------------------------------------------------------------------------
    max_word_swaps: int = field(default=2, metadata={"help": "Most words replaced by WordNet synonyms (word level)."})
    min_similarity: float = field(
        default=0.85,
        metadata={"help": "Lowest embedding cosine of the perturbed instruction to the original for a synonym "
                  "swap to be kept (word level)."},
    )
    # --- sentence level -----------------------------------------------------------------------
    sentence_methods: tuple[str, ...] = field(
        default=SENTENCE_METHODS,
        metadata={"help": "checklist: append a random token; stresstest: append a tautology. Variant i uses "
                  "method i mod len(methods)."},
    )
    token_length: int = field(default=10, metadata={"help": "Length of the random CheckList token."})
    tautology: str = field(default="and true is true", metadata={"help": "The StressTest tautology appended."})
    # --- semantic level -----------------------------------------------------------------------
    paraphraser: str = field(
        default="rules", metadata={"help": "Paraphraser backend spec: rules (offline), openai:MODEL, hf:MODEL."}
    )
    candidates: int = field(default=4, metadata={"help": "Candidate rewordings requested per instruction."})
    semantic_threshold: float = field(
        default=0.75, metadata={"help": "Lowest embedding cosine for a rewording to count as equivalent."}
    )
    embedding_model: str | None = field(
        default=None, metadata={"help": "sentence-transformers model (default: the bundled all-MiniLM-L6-v2)."}
    )

    def __post_init__(self) -> None:
        self.char_operations = tuple(self.char_operations)
        self.sentence_methods = tuple(self.sentence_methods)
        unknown = [op for op in self.char_operations if op not in CHAR_OPERATIONS]
        if unknown or not self.char_operations:
            raise ValueError(f"char_operations must be a non-empty subset of {CHAR_OPERATIONS}, got {self.char_operations}")
        unknown = [m for m in self.sentence_methods if m not in SENTENCE_METHODS]
        if unknown or not self.sentence_methods:
            raise ValueError(f"sentence_methods must be a non-empty subset of {SENTENCE_METHODS}, got {self.sentence_methods}")
        if self.char_words < 1 or self.max_word_swaps < 1 or self.candidates < 1:
            raise ValueError("char_words, max_word_swaps and candidates must be >= 1")
        if self.min_word_length < 2:
            raise ValueError(f"min_word_length must be >= 2, got {self.min_word_length}")
        if self.token_length < 1 or not self.tautology.strip():
            raise ValueError("token_length must be >= 1 and tautology non-empty")
        if not (-1.0 <= self.min_similarity <= 1.0 and -1.0 <= self.semantic_threshold <= 1.0):
            raise ValueError("min_similarity and semantic_threshold must lie in [-1, 1]")


@dataclass(frozen=True)
class Perturbation:
    """One perturbed instruction (or why there is none).

    Attributes:
        level: ``character``, ``word``, ``sentence`` or ``semantic``.
        original: the instruction (template) text perturbed.
        text: the perturbed text with the same slots, or ``None`` when the level could not be applied.
        method: ``typo``, ``synonym``, ``checklist``, ``stresstest`` or ``paraphrase:<backend>``.
        edits: what changed, e.g. ``("review -> reveiw",)`` or ``("+ LkF0FZxMZ4",)``.
        similarity: embedding cosine to the original (word and semantic levels), else ``None``.
        reason: why ``text`` is ``None``.
        variant: the variant index the perturbation was drawn for.
    """

    level: str
    original: str
    text: str | None
    method: str
    edits: tuple[str, ...] = ()
    similarity: float | None = None
    reason: str | None = None
    variant: int = 0

    @property
    def ok(self) -> bool:
        return self.text is not None

    def to_dict(self) -> dict:
        return {
            "level": self.level, "variant": self.variant, "method": self.method, "perturbed": self.text,
            "edits": list(self.edits), "similarity": self.similarity, "reason": self.reason,
        }  # fmt: skip


def check_level(level: str, allow_clean: bool = False) -> str:
    """Return ``level`` if it names a perturbation level, else raise :class:`PerturbationError`.

    Example:
        >>> check_level("word")
        'word'
    """
    allowed = LEVELS if allow_clean else PERTURBATION_LEVELS
    if level not in allowed:
        raise PerturbationError(f"unknown perturbation level {level!r} (choose from {', '.join(allowed)})")
    return level


def perturbation_rng(seed: int, level: str, variant: int, text: str) -> random.Random:
    """The random generator of one (seed, level, variant, text): independent of call order and process.

    Example:
        >>> perturbation_rng(0, "word", 0, "x").random() == perturbation_rng(0, "word", 0, "x").random()
        True
    """
    return random.Random(stable_seed(seed, level, variant, text, sep="\x00"))


@dataclass(frozen=True)
class EditableWord:
    start: int
    end: int
    text: str
    line: int


def editable_words(text: str, protected_words: Iterable[str] = (), min_length: int = 1) -> list[EditableWord]:
    """Instruction words that a perturbation may edit, with their character spans in ``text``.

    Excluded: slots, escaped braces, words of input label lines (``Premise: {premise}``), protected
    (label) words, the word ``OPTIONS``, and words shorter than ``min_length``.

    Example:
        >>> [w.text for w in editable_words("Premise: {premise}\\nIs it true? Answer yes or no.\\n{options_}", ["yes", "no"], 3)]
        ['true', 'Answer']
    """
    protected = protected_word_set(protected_words) | {"options"}
    words: list[EditableWord] = []
    offset = 0
    for line_no, line in enumerate(text.split("\n")):
        if not _INPUT_LABEL_LINE.match(line):
            for match in _TOKEN.finditer(line):
                token = match.group(0)
                if token[0] in "{}" or len(token) < min_length or token.lower() in protected:
                    continue
                words.append(EditableWord(offset + match.start(), offset + match.end(), token, line_no))
        offset += len(line) + 1
    return words


def replace_spans(text: str, replacements: Sequence[tuple[EditableWord, str]]) -> str:
    for word, new in sorted(replacements, key=lambda item: item[0].start, reverse=True):
        text = text[: word.start] + new + text[word.end :]
    return text


# --- character level ------------------------------------------------------------------------------


def typo(word: str, operation: str, rng: random.Random) -> str:
    """Apply one typo ``operation`` to ``word`` (the result always differs from ``word``).

    Args:
        word: a word of at least 2 letters.
        operation: ``swap`` (two adjacent letters), ``substitute``, ``delete`` or ``insert`` (one letter).
        rng: the random generator to draw positions and letters from.

    Returns:
        The edited word; the case of each kept letter is preserved.

    Example:
        >>> import random
        >>> typo("review", "delete", random.Random(0)) != "review"
        True
    """
    letters = string.ascii_uppercase if word.isupper() else string.ascii_lowercase
    if operation == "swap":
        spots = [i for i in range(len(word) - 1) if word[i].lower() != word[i + 1].lower()]
        if spots:
            i = rng.choice(spots)
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        operation = "substitute"  # "aa": no swap changes it
    if operation == "substitute":
        i = rng.randrange(len(word))
        new = rng.choice([c for c in letters if c != word[i].lower() and c != word[i].upper()])
        return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1 :]
    if operation == "delete":
        i = rng.randrange(len(word))
        edited = word[:i] + word[i + 1 :]
        return edited if edited != word else word[1:]
    if operation == "insert":
        i = rng.randrange(len(word) + 1)
        return word[:i] + rng.choice(letters) + word[i:]
    raise PerturbationError(f"unknown typo operation {operation!r} (choose from {', '.join(CHAR_OPERATIONS)})")


def perturb_character(text: str, rng: random.Random, config: PerturbConfig, protected_words: Sequence[str] = ()) -> Perturbation:
    """Typo-style edits in ``config.char_words`` random instruction words.

    Example:
        >>> import random
        >>> p = perturb_character("{text}\\nClassify the topic of this article.\\n{options_}", random.Random(1), PerturbConfig())
        >>> p.text.startswith("{text}\\n") and p.text.endswith("\\n{options_}") and p.text != p.original
        True
    """
    words = [w for w in editable_words(text, protected_words, config.min_word_length) if "'" not in w.text]
    content = [w for w in words if w.text.lower() not in FUNCTION_WORDS] or words
    if not content:
        return Perturbation(CHARACTER, text, None, "typo", reason="no editable instruction word")
    protected = protected_word_set(protected_words)
    chosen = sorted(rng.sample(content, min(config.char_words, len(content))), key=lambda w: w.start)
    replacements = []
    for word in chosen:
        edited = word.text
        for _ in range(10):  # an edit must not turn the word into a label word ("nos" -> "no")
            edited = typo(word.text, rng.choice(config.char_operations), rng)
            if edited.lower() not in protected:
                break
        replacements.append((word, edited))
    edits = tuple(f"{w.text} -> {new}" for w, new in replacements)
    return Perturbation(CHARACTER, text, replace_spans(text, replacements), "typo", edits)


# --- sentence level -------------------------------------------------------------------------------


def _anchor_line(text: str, protected_words: Sequence[str]) -> int | None:
    """The line that ends the instruction: the last one with instruction words that does not end in a slot.

    Lines without slots are preferred ("Is this review positive or negative?"); a mixed line such as
    "Assume this is true: {premise}" ends in the input and is only used when nothing else exists.
    """
    lines = text.split("\n")
    with_words = {w.line for w in editable_words(text, protected_words)}
    eligible = [i for i in sorted(with_words) if not re.search(r"\}[\"'”)]?\s*$", lines[i])]
    without_slots = [i for i in eligible if not re.search(r"(?<!\{)\{[A-Za-z_]", lines[i])]
    if without_slots:
        return without_slots[-1]
    if eligible:
        return eligible[-1]
    return max(with_words) if with_words else None


def perturb_sentence(text: str, rng: random.Random, config: PerturbConfig, protected_words: Sequence[str] = (),
                     variant: int = 0) -> Perturbation:  # fmt: skip
    """Append a random token (CheckList) or a tautology (StressTest) to the end of the instruction.

    Variant ``i`` uses ``config.sentence_methods[i % len(methods)]``, so a list of instructions gets both
    kinds in turn.

    Example:
        >>> import random
        >>> perturb_sentence("{text}\\nWhat is the topic?\\n{options_}", random.Random(0), PerturbConfig(), variant=1).text
        '{text}\\nWhat is the topic? and true is true\\n{options_}'
    """
    method = config.sentence_methods[variant % len(config.sentence_methods)]
    line_no = _anchor_line(text, protected_words)
    if line_no is None:
        return Perturbation(SENTENCE, text, None, method, reason="no instruction sentence to append to", variant=variant)
    if method == "checklist":
        alphabet = string.ascii_letters + string.digits
        addition = "".join(rng.choice(alphabet) for _ in range(config.token_length))
    else:
        addition = config.tautology.strip()
    lines = text.split("\n")
    line = lines[line_no]
    if re.search(r"\}[\"'”)]?\s*$", line):  # only mixed lines ending in the input: insert before it
        last = [w for w in editable_words(text, protected_words) if w.line == line_no][-1]
        offset = len("\n".join(lines[:line_no])) + (1 if line_no else 0)
        cut = last.end - offset
        cut += len(re.match(r"[^\s{]*", line[cut:]).group(0))  # keep "?" or ":" with the word
        lines[line_no] = line[:cut] + " " + addition + line[cut:]
    else:
        lines[line_no] = line.rstrip() + " " + addition
    return Perturbation(SENTENCE, text, "\n".join(lines), method, (f"+ {addition}",), variant=variant)
