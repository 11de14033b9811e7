"""Whole-line rewrites of the rules paraphraser's fourth pass: question frames and polite commands.

Short FLAN templates often ask with a wh-question whose object holds a slot or ends at one ("What is the
main topic: {text}", "{story} What is the main {thing} here?"), ask a yes/no question without its question
mark ('Is "{claim}" supported by "{source}"'), or open with "Please" so that no lead-in fits ("Please
correct the spelling: {text}"). The earlier rewrites leave them alone; these turn the frame
around and keep every slot and every other word:

=====================  ============================================================================
rewrite                example
=====================  ============================================================================
``wh_to_request``      "What is the main topic: {q}" -> "Tell me the main topic: {q}";
                       "How do you spell this word in {lang}?" -> "Tell me how to spell this word in {lang}."
``mark_question``      'Is "{c}" supported by "{s}"' -> 'Tell me: is "{c}" supported by "{s}"?'
``please_to_task``     "Please correct the spelling: {t}" -> "Your task is to correct the spelling: {t}"
``verb_label``         "Simplify:" (a command shaped like a label) -> "Please simplify the following:"
``tail_sentence``      "Facts: {d}. Can you describe these facts?" -> "Facts: {d}. Describe these facts."
                       (the sentence rewrites, for a sentence after the line's last slot)
``same_what``          "Same author?" -> "Do they have the same author?"
``adverb_lead``        "Next, write a title: {q}" -> "Next, your task is to write a title: {q}"
=====================  ============================================================================

They run only in the fourth pass (templates still short of k candidates after the third), so every
earlier candidate stays byte-identical.

Example:
    >>> import random
    >>> from coin_data.text.lexicon import Lexicon
    >>> from coin_data.paraphrase.rules.syntactic import _Context
    >>> wh_to_request(["{story} What is the main {thing} here?"], _Context(Lexicon(), random.Random(0), None))
    ['{story} Give me the main {thing} here.']
"""

from __future__ import annotations

import re

from coin_data.paraphrase.rules.lexical import _AUXILIARIES, _DETERMINERS, _lcfirst
from coin_data.paraphrase.rules.line_rewrites import LineRewrite, _editable, _pick, _reindent, _wrapped
from coin_data.paraphrase.rules.syntactic import _STRUCTURAL, _Context, _choose_text, _is_imperative, _lead_in

# An optional leading slot, a wh-frame, its object (no "?", ":" or sentence end inside), and the mark that
# ends it ("?" or the ":" before a slot), then the rest of the line.
_WH_FRAME = re.compile(r"^(.*\}[.:]?\s+)?(What is|What's|What are|How do you|How can I) ([^?:.!]+?)([?:])(.*)$")
# "What is the question asking about?": an object that ends with a preposition is no noun phrase.
_PREPOSITIONS = frozenset("about for of to with in on from by at into as".split())
_REQUESTS = ("Tell me {}", "Give me {}")
_HOW_REQUESTS = ("Tell me how to {}", "Explain how to {}")
_TASK_LEADS = ("Your task is to {}", "I want you to {}", "Your job is to {}")
_VERB_LABEL = ("Please {} the following:", "{} the following:")


def wh_to_request(lines: list[str], ctx: _Context) -> list[str] | None:
    """Turn a wh-question about a noun phrase, or "How do you <verb> ...", into a request (see the module table)."""
    found = []
    for index, line in enumerate(lines):
        match = _WH_FRAME.match(line.strip())
        if match and _editable(line, ctx) and _fits_frame(match, ctx):
            found.append((index, match))
    if not found:
        return None
    index, match = ctx.rng.choice(found)
    lead, frame, body, mark, rest = match.groups()
    forms = _HOW_REQUESTS if frame.startswith("How") else _REQUESTS
    ending = "." if mark == "?" else mark
    request = _choose_text(ctx, [form.format(body) + ending for form in forms], match.group(0))
    return None if request is None else _reindent(lines, index, (lead or "") + request + rest)


def _fits_frame(match: re.Match, ctx: _Context) -> bool:
    """A "What is" object that starts with a determiner and does not end with a preposition, or a "How do
    you" clause that starts with a verb in base form; and nothing after a "?" but a slot or spaces."""
    _, frame, body, mark, rest = match.groups()
    words = body.split()
    if mark == "?" and rest.strip() and not re.fullmatch(r"\s*(\{\w+\}\s*)*", rest):
        return False
    if frame.startswith("How"):
        return bool(words) and words[0].isalpha() and ctx.lex.is_base_verb(words[0])
    if not words or words[0].lower() not in _DETERMINERS or words[0].lower() in ("no", "one", "two"):
        return False
    return mark == ":" or words[-1].lower() not in _PREPOSITIONS


def mark_question(lines: list[str], ctx: _Context) -> list[str] | None:
    """Give a yes/no question that lacks its "?" (a line that starts with an auxiliary and holds a slot) a
    lead-in and the question mark."""
    found = [i for i, line in enumerate(lines) if _editable(line, ctx) and "{" in line
             and line.strip().split(" ", 1)[0].lower() in _AUXILIARIES and not re.search(r"[?.!:]", line)]
    index = _pick(ctx, found)
    return None if index is None else _wrapped(lines, index, ctx, end="?")


def please_to_task(lines: list[str], ctx: _Context) -> list[str] | None:
    """"Please <verb> ..." -> "Your task is to <verb> ..." (the lead-ins that fit a command without "Please")."""
    found = [i for i, line in enumerate(lines) if _editable(line, ctx) and line.lstrip().startswith("Please ")
             and _is_imperative(line.strip()[len("Please "):].capitalize(), ctx.lex)]
    index = _pick(ctx, found)
    if index is None:
        return None
    line = lines[index]
    command = line.strip()[len("Please "):]
    return _reindent(lines, index, _choose_text(ctx, [lead.format(command) for lead in _TASK_LEADS], line.strip()))


def verb_label(lines: list[str], ctx: _Context) -> list[str] | None:
    """A line that is one command verb and a colon ("Simplify:") -> "Please simplify the following:", when
    a slot follows it."""
    found = [i for i, line in enumerate(lines) if re.fullmatch(r"[A-Z][a-z]+:", line.strip())
             and _verb_only(line.strip()[:-1].lower(), ctx) and "{" in "".join(lines[i + 1:])]
    index = _pick(ctx, found)
    if index is None:
        return None
    verb = lines[index].strip()[:-1]
    forms = [form.format(verb.lower() if form.startswith("Please") else verb) for form in _VERB_LABEL]
    return [_choose_text(ctx, forms, verb) or line if i == index else line for i, line in enumerate(lines)]


def _verb_only(word: str, ctx: _Context) -> bool:
    """Whether WordNet knows ``word`` as a base-form verb and not as a noun ("simplify", not "answer")."""
    weights = ctx.lex.pos_weights(word)
    return ctx.lex.is_base_verb(word) and "n" not in weights


# A line whose last slot is followed by one complete sentence without slots ("Facts: {d}. Describe them.").
_TAIL = re.compile(r"^(.*\}[.:]?\s+)([A-Z][^{}]*[.?!])$")


def tail_sentence(lines: list[str], ctx: _Context) -> list[str] | None:
    """Rewrite the sentence after a line's last slot with the sentence rewrites or a lead-in (the first of
    them, in a seeded order, that applies)."""
    found = [(i, m) for i, line in enumerate(lines) if _editable(line, ctx) and (m := _TAIL.match(line.rstrip()))]
    if not found:
        return None
    index, match = ctx.rng.choice(found)
    rewrites = [rewrite for _, rewrite in _STRUCTURAL] + [_lead_in]
    ctx.rng.shuffle(rewrites)
    if re.match(r"(?:Can|Could|Would|Will) you ", match.group(2)):  # a request, not a yes/no question
        rewrites = [rewrite for name, rewrite in _STRUCTURAL if name == "polite_to_imperative"]
    for rewrite in rewrites:
        new = rewrite(match.group(2), ctx)
        if new is not None and new != match.group(2):
            return [match.group(1) + new if i == index else line for i, line in enumerate(lines)]
    return None


def same_what(lines: list[str], ctx: _Context) -> list[str] | None:
    """Spell out a "Same <noun>?" fragment ("Same author?" -> "Do they have the same author?")."""
    found = [i for i, line in enumerate(lines) if re.fullmatch(r"Same [a-z]+\?", line.strip())]
    index = _pick(ctx, found)
    if index is None:
        return None
    noun = lines[index].strip()[len("Same "):-1]
    forms = [f"Do they have the same {noun}?", f"Is the {noun} the same?"]
    return [_choose_text(ctx, forms, lines[index]) or line if i == index else line for i, line in enumerate(lines)]


def adverb_lead(lines: list[str], ctx: _Context) -> list[str] | None:
    """A lead-in after an opening "Now, " / "Then, " / "Next, " before a command."""
    found = [i for i, line in enumerate(lines) if _editable(line, ctx)
             and (m := re.match(r"^(Now|Then|Next), (\S.*)$", line.strip())) and _is_imperative(m.group(2).capitalize(), ctx.lex)
             and not m.group(2).startswith("please ")]
    index = _pick(ctx, found)
    if index is None:
        return None
    adverb, command = lines[index].strip().split(", ", 1)
    led = _choose_text(ctx, [f"{adverb}, " + _lcfirst(lead.format(command)) for lead in _TASK_LEADS], lines[index].strip())
    return [led if i == index and led else line for i, line in enumerate(lines)]


FOURTH_LINE_REWRITES: tuple[tuple[str, LineRewrite], ...] = (
    ("wh_to_request", wh_to_request),
    ("mark_question", mark_question),
    ("please_to_task", please_to_task),
    ("verb_label", verb_label),
    ("tail_sentence", tail_sentence),
    ("same_what", same_what),
    ("adverb_lead", adverb_lead),
)
