"""Whole-line rewrites of the rules paraphraser's fallback pass, for templates that got no candidate at all.

Long templates whose question is led by a phrase ("From the story, could the hero have won?", "In the list
above, which item is "{x}"?") or asked with a modal ("How would you fix the bug below? {code}") keep
nearly every word through the earlier passes, so no candidate changes enough. These rewrites turn the
frame around and keep every slot, in order, and every other word:

=================  ==========================================================================================
rewrite            example
=================  ==========================================================================================
``front_question`` "From the story, could the hero have won?" -> "Could the hero have won from the story?"
``wrap_led``       "From the story, could the hero have won?" -> "Tell me: from the story, could ...?"
``how_modal``      "How would you fix the bug below? {c}" -> "Explain how you would fix the bug below: {c}"
=================  ==========================================================================================

The fallback pass (see :data:`~coin_data.paraphrase.rules.generator._PASSES`) runs them only for a
template that the earlier passes left without any candidate, so every earlier candidate stays
byte-identical.

Example:
    >>> import random
    >>> from coin_data.text.lexicon import Lexicon
    >>> from coin_data.paraphrase.rules.syntactic import _Context
    >>> front_question(["{s}", "From the story, could the hero have won?"], _Context(Lexicon(), random.Random(0), None))
    ['{s}', 'Could the hero have won from the story?']
"""

from __future__ import annotations

import re

from coin_data.paraphrase.rules.lexical import _AUXILIARIES, _SLOT, _WH_WORDS, _bare, _lcfirst, _ucfirst
from coin_data.paraphrase.rules.line_rewrites import LineRewrite, _editable, _pick, _reindent, _wrapped
from coin_data.paraphrase.rules.syntactic import _Context, _choose_text

# Words that open a leading phrase which can follow its question instead ("From this,", "In the text,").
_PHRASE_OPENERS = frozenset(
    "after before from in on at for with without by under within during according considering".split()
)
# A leading phrase (no comma or sentence mark; slots and quotes only for a lead-in) and the question after it.
_LED_QUESTION = re.compile(r"^([A-Z][^,?.!:;]{1,80}), (\S[^?]*)\?$")
# Words that end a question whose leading phrase would read badly after it ("what is it asking about?").
_STRANDED = frozenset("about for of to with in on from by at into as".split())
# "How would you <rest>?" and what follows the mark on the same line (a slot, say).
_HOW_MODAL = re.compile(r"^How (would|could|should|can|will) you ([a-z][^?:.!{}]*)\?(.*)$")
_HOW_FORMS = ("Explain how you {modal} {rest}", "Tell me how you {modal} {rest}", "Describe how you {modal} {rest}")


def _led_questions(lines: list[str], ctx: _Context, movable: bool = False) -> list[tuple[int, re.Match]]:
    """Lines that are one question after a leading phrase opened by a preposition ("From the story, could ...?").

    ``movable``: only those whose phrase may follow the question: no slot or quote in the phrase, one
    clause after it (no comma: "On a scale of 1-5, where 1 is low, how ...?"), no preposition at its end.
    """
    found = []
    for index, line in enumerate(lines):
        match = _LED_QUESTION.match(line.strip())
        if not match or not _editable(line, ctx) or line.count("?") != 1:
            continue
        opener, first = _bare(match.group(1).split(" ", 1)[0]), _bare(match.group(2).split(" ", 1)[0])
        if opener not in _PHRASE_OPENERS or first not in _AUXILIARIES | _WH_WORDS:
            continue
        last = _bare(match.group(2).rsplit(" ", 1)[-1])
        if not movable or not (re.search(r"[{\"“]", match.group(1)) or "," in match.group(2) or last in _STRANDED):
            found.append((index, match))
    return found


def front_question(lines: list[str], ctx: _Context) -> list[str] | None:
    """Move a leading phrase after the question it qualifies (see the module table); slots keep their order.

    Example:
        >>> import random
        >>> from coin_data.text.lexicon import Lexicon
        >>> front_question(['After reading it, is "{a}" right?'], _Context(Lexicon(), random.Random(0), None))
        ['Is "{a}" right after reading it?']
    """
    found = _led_questions(lines, ctx, movable=True)
    if not found:
        return None
    index, match = ctx.rng.choice(found)
    text = f"{_ucfirst(match.group(2))} {_lcfirst(match.group(1))}?"
    return _reindent(lines, index, _choose_text(ctx, [text], match.group(0)) or match.group(0))


def wrap_led(lines: list[str], ctx: _Context) -> list[str] | None:
    """Put a lead-in ("Tell me:", "Here is my question:") before a question led by a phrase.

    Example:
        >>> import random
        >>> from coin_data.text.lexicon import Lexicon
        >>> wrap_led(["In the text, what is {x}?"], _Context(Lexicon(), random.Random(0), None))
        ['I would like to know: in the text, what is {x}?']
    """
    index = _pick(ctx, [i for i, _ in _led_questions(lines, ctx)])
    return None if index is None else _wrapped(lines, index, ctx)


def how_modal(lines: list[str], ctx: _Context) -> list[str] | None:
    """"How would you <verb> ...?" -> "Explain how you would <verb> ..." (a colon before a slot on the line).

    Example:
        >>> import random
        >>> from coin_data.text.lexicon import Lexicon
        >>> how_modal(["How would you fix it?"], _Context(Lexicon(), random.Random(0), None))
        ['Tell me how you would fix it.']
    """
    found = []
    for index, line in enumerate(lines):
        match = _HOW_MODAL.match(line.strip())
        if match and _editable(line, ctx) and not _SLOT.search(match.group(2)):
            found.append((index, match))
    if not found:
        return None
    index, match = ctx.rng.choice(found)
    after = match.group(3)
    mark = ":" if _SLOT.match(after.strip()) else "."
    forms = [form.format(modal=match.group(1), rest=match.group(2)) + mark + after for form in _HOW_FORMS]
    return _reindent(lines, index, _choose_text(ctx, forms, match.group(0)))


FALLBACK_LINE_REWRITES: tuple[tuple[str, LineRewrite], ...] = (
    ("front_question", front_question),
    ("wrap_led", wrap_led),
    ("how_modal", how_modal),
)
