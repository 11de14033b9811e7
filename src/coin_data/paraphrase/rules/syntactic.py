"""Sentence-level rewrites of the rules paraphraser and the template layout they rely on.

Each rewrite takes one sentence (or the lines of a template) and returns the rewritten text or ``None``
when it does not apply; none of them touches a slot.

Example:
    >>> _polite_to_imperative("Could you summarize it?", _Context(Lexicon(), random.Random(0), None))
    'Summarize it.'
"""


import random
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from coin_data.paraphrase.rules.lexical import (
    _AUXILIARIES,
    _BE,
    _CLAUSE_WORDS,
    _DETERMINERS,
    _DO,
    _HAVE,
    _INPUT_LINE,
    _INTRO,
    _MODALS,
    _PHRASE_SWAPS,
    _POLITE_OPENERS,
    _RETIRED_SWAPS,
    _SENTENCE_SPLIT,
    _SLOT,
    _STOP_WORDS,
    _SUBJECT_PRONOUNS,
    _WH_DIRECTIVES,
    _WH_WORDS,
    _YES_NO_DIRECTIVES,
    _bare,
    _lcfirst,
    _ucfirst,
)
from coin_data.text.lexicon import Lexicon

# ---------------------------------------------------------------------------------------------------
# Sentence analysis: where the subject of a clause ends.
# ---------------------------------------------------------------------------------------------------


def _subject_end(words: Sequence[str], lex: Lexicon, finite_verb: bool) -> int | None:
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
        >>> _subject_end("the tone of this review positive".split(), Lexicon(), False)   # doctest: +SKIP
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


def _noun_phrase_end(words: Sequence[str], lex: Lexicon, finite_verb: bool) -> int | None:
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


def _starts_predicate(word: str, lex: Lexicon, finite_verb: bool) -> bool:
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

    lex: Lexicon
    rng: random.Random
    input_side: str | None  # "above" / "below": where the input sits relative to this sentence
    # the rewrites added after the first release (lists of alternatives with commas, conditions, label
    # pairs): used only for templates that got fewer than k candidates without them, so that every
    # earlier candidate stays byte-identical
    extended: bool = False
    # the third pass (templates still short of k after the second): rewrites added for issue 15 item 3,
    # and alternatives chosen among those that keep every protected label word's count (:func:`_choose_text`)
    third: bool = False
    protected: frozenset[str] = frozenset()


def _choose_text(ctx: _Context, options: Sequence[str], before: str) -> str | None:
    """``ctx.rng.choice(options)``; in the third pass, only among the options that keep the count of every
    protected word of ``before`` (a lead-in "I want you to ..." adds "to", which a label "it is not possible
    to tell" protects), ``None`` if no option does.

    Example:
        >>> ctx = _Context(Lexicon(), random.Random(0), None, True, True, frozenset({"tell"}))
        >>> _choose_text(ctx, ["Tell me: is it so?", "Please answer this: is it so?"], "Is it so?")
        'Please answer this: is it so?'
    """
    if ctx.third and ctx.protected:
        options = [option for option in options if not _changes_protected(before, option, ctx.protected)]
        if not options:
            return None
    return ctx.rng.choice(options)


def _changes_protected(before: str, after: str, protected: frozenset[str]) -> bool:
    """Whether some protected word occurs a different number of times in ``after`` than in ``before``."""
    old, new = re.findall(r"[a-z]+", before.lower()), re.findall(r"[a-z]+", after.lower())
    return any(old.count(word) != new.count(word) for word in protected)


def _yes_no_to_directive(sentence: str, ctx: _Context) -> str | None:
    """"Is this review positive or negative?" -> "Decide whether this review is positive or negative."

    Example:
        >>> ctx = _Context(Lexicon(), random.Random(0), None)
        >>> _yes_no_to_directive("Is it spam?", ctx)
        'Indicate whether it is spam.'
    """
    tokens, end = _split_tokens(sentence)
    clause = tokens[: _list_start(tokens)] if ctx.extended else tokens
    if end != "?" or len(tokens) < 3 or "?" in " ".join(tokens) or "," in " ".join(clause):
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
    return _choose_text(ctx, [f"{opener} {' '.join(clause)}." for opener in _YES_NO_DIRECTIVES], sentence)


def _list_start(tokens: Sequence[str]) -> int:
    """Where a closing list of alternatives with commas starts ("... positive, negative or neutral"), else
    ``len(tokens)``: the commas of such a list do not end a clause.

    Example:
        >>> _list_start("Is this tweet positive, negative or neutral".split())
        3
    """
    first = next((i for i, token in enumerate(tokens) if token.endswith(",")), None)
    if first is None or len(tokens) - first < 3:
        return len(tokens)
    items, tail = tokens[first:-2], tokens[-2:]
    if tail[0].lower() not in ("or", "and") or not all(t.endswith(",") and t[:-1].isalpha() for t in items[:-1]):
        return len(tokens)
    last = items[-1].rstrip(",")
    return first if last.isalpha() and tail[1].isalpha() and items[-1] in (last, last + ",") else len(tokens)


def _directive_to_yes_no(sentence: str, ctx: _Context) -> str | None:
    """"Decide if the tone of this review is positive or negative." -> "Is the tone of this review ...?"

    Example:
        >>> _directive_to_yes_no("Tell me if it is spam.", _Context(Lexicon(), random.Random(0), None))
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
    text = " ".join(wh_phrase + clause)
    return _choose_text(ctx, [f"{opener} {text}." for opener in _WH_DIRECTIVES], sentence)


def _polite_to_imperative(sentence: str, ctx: _Context) -> str | None:
    """"Could you summarize it?" / "How would you describe X?" -> "Summarize it." / "Describe X."

    Example:
        >>> _polite_to_imperative("How would you describe the opinion?", _Context(Lexicon(), random.Random(0), None))
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
        >>> _imperative_to_polite("Please sort it.", _Context(Lexicon(), random.Random(0), None))
        'Can you please sort it?'
    """
    body = sentence.strip()
    if not body.endswith(".") or "?" in body or ":" in body or not _is_imperative(body, ctx.lex):
        return None
    return _choose_text(ctx, [f"{opener} {_lcfirst(body[:-1])}?" for opener in _POLITE_OPENERS], sentence)


def _is_imperative(sentence: str, lex: Lexicon) -> bool:
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
    """Swap one fixed phrase for an equivalent one ("whether" -> "if", "Tell me" -> "Let me know").

    A drawn swap of :data:`_RETIRED_SWAPS` returns the sentence unchanged (not ``None``: callers that ask
    whether a swap applies still get the answer they got before it was retired).

    Example:
        >>> _phrase_swap("Is it true as well?", _Context(Lexicon(), random.Random(0), None))
        'Is it true as well?'
    """
    options = []
    for old, new in _PHRASE_SWAPS:
        for variant_old, variant_new in ((old, new), (_ucfirst(old), _ucfirst(new))):
            if re.search(rf"(?<![A-Za-z]){re.escape(variant_old)}(?![A-Za-z])", sentence):
                options.append((variant_old, variant_new, (old, new) in _RETIRED_SWAPS))
    if ctx.third and ctx.protected:  # only swaps that keep the protected words (see _choose_text)
        options = [o for o in options if not _changes_protected(o[0], o[1], ctx.protected)]
    if not options:
        return None
    old, new, retired = ctx.rng.choice(options)
    if retired:
        return sentence
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
    return _choose_text(ctx, choices, body) if choices else None


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
