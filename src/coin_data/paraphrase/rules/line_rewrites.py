"""Whole-line rewrites of the rules paraphraser, for templates whose few instruction words resist the others.

Short FLAN-style templates ("{premise}\\nDoes it follow that {hypothesis}?", "Passage: {context}\\nQ:
{question}\\nA:") have a question with slots inside it, or no instruction sentence at all, so the sentence
rewrites and synonyms change one word or none. These rewrites work on whole lines and never touch a slot:

=======================  ===========================================================================
rewrite                  example
=======================  ===========================================================================
``wrap_question``        "Does it follow that {h}?" -> "Tell me: does it follow that {h}?"
``complete_question``    "Correct?" -> "Is it correct?"
``lead_clause``          "Make this easier: {s}" -> "Your task is to make this easier: {s}"
``point_at_input``       "Summarize this article: {a}" -> "Summarize the following article: {a}"
``expand_labels``        "Q: {question}" / "A:" -> "Question: {question}" / "Answer:" (and back)
``implied_instruction``  a template of labels only gets the instruction its labels imply, e.g.
                         "Answer the question." above "Context: {c}\\nQuestion: {q}\\nAnswer:", or
                         "Read the problem and write the solution." above "Problem: {p}\\nSolution:"
``move_condition``       "If X, is {h} true?" -> "Is {h} true if X?"
``label_lead``           "Question: {q}" -> "Here is the question: {q}" (third pass only)
``move_intro``           "Using only the text above, answer it: {q}" -> "Answer it using only the text
                         above: {q}" (third pass only)
=======================  ===========================================================================

Each takes the template's lines and a :class:`~coin_data.paraphrase.rules.syntactic._Context` and
returns new lines, or ``None`` when it does not apply. The generator adds them, in a seeded random
order, to a candidate that changed too few words, until it changed enough.

Example:
    >>> import random
    >>> from coin_data.text.lexicon import Lexicon
    >>> from coin_data.paraphrase.rules.syntactic import _Context
    >>> ctx = _Context(Lexicon(), random.Random(0), None)
    >>> expand_labels(["Passage: {context}", "Q: {question}", "A:"], ctx)
    ['Passage: {context}', 'Question: {question}', 'Answer:']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from coin_data.paraphrase.rules.lexical import (
    _AUXILIARIES,
    _DETERMINERS,
    _INTRO,
    _SLOT,
    _WH_WORDS,
    _bare,
    _lcfirst,
    _ucfirst,
)
from coin_data.paraphrase.rules.syntactic import (
    _INPUT,
    _INSTRUCTION,
    _MIXED,
    _Context,
    _is_imperative,
    _line_kind,
    _choose_text,
)

_QUESTION_WRAPPERS = ("Tell me: {}", "Here is my question: {}", "Please answer this: {}", "I would like to know: {}")


def _wrapped(lines: list[str], index: int, ctx: _Context, end: str = "") -> list[str] | None:
    """``lines`` with line ``index`` put behind a question lead-in (its indent kept, ``end`` appended), or
    None when no lead-in keeps the template's protected words."""
    question = lines[index].strip()
    return _reindent(lines, index, _choose_text(ctx, [form.format(_lcfirst(question)) + end for form in _QUESTION_WRAPPERS],
                                                question))  # fmt: skip
# Verbs that are stop words elsewhere (too common to swap) but open a command at the start of a line.
_STOP_WORD_COMMANDS = frozenset({"Make", "Give", "Take", "Let", "Get"})
# Framing only (no word of its own that a verifier would count as content: "You need to" adds "need").
_CLAUSE_LEADS = ("Please {}", "Your task is to {}", "I want you to {}", "Your job is to {}")
# Short labels and their spelled-out forms; both sides name the same part of the template.
_LABELS = {"Q": "Question", "A": "Answer"}
# What a template made only of labels asks for, keyed by the label that ends it or names the input.
_IMPLIED = (
    (re.compile(r"^(?:Question|Q):"), ("Answer the question.", "Please answer the question.",
                                      "Give the answer to the question.")),
    (re.compile(r"^(?:Headline|Title):\s*$"), ("Write a headline for the text.", "Give the text a headline.")),
    (re.compile(r"^Summary:\s*$"), ("Summarize the text.", "Write a summary of the text.")),
)  # fmt: skip

# A leading condition and the clause it qualifies: "If the premise is true, is ...?"
_CONDITION = re.compile(r"^((?:If|When|Assuming|Assuming that|Supposing|Provided that)\s[^,?.:;]{3,80}), (\S.*)$")

# An input line with a label of one or two words ("Question: {question}", "Candidate answer: "{answer}"").
_LABELLED_INPUT = re.compile(r"^(\s*)([A-Z][a-z]+(?: [a-z]+)?): (\S.*)$")

# The instruction implied by an input label and an answer label ("Problem: {p}" ... "Solution:").
_LABEL_PAIR = ("Read the {x} and write the {y}.", "Write the {y} for the {x}.", "Given the {x}, write the {y}.")

LineRewrite = Callable[[list[str], _Context], "list[str] | None"]


def _editable(line: str, ctx: _Context) -> bool:
    """An instruction line, a line mixing words and slots, or an "input line" whose label is a command."""
    if "{{" in line or "}}" in line:
        return False
    kind = _line_kind(line)
    if kind == _INPUT:
        # "Answer this question: {question}" is shaped like a labelled input but its label is an instruction.
        label = line.strip().split(":", 1)[0]
        return " " in label and _commands(label, ctx)
    return kind in (_INSTRUCTION, _MIXED)


def _commands(text: str, ctx: _Context) -> bool:
    """Whether ``text`` starts with a command ("Summarize ...", and the stop-word verbs "Make ...", "Give ...")."""
    first = text.split(" ", 1)[0]
    return _is_imperative(text, ctx.lex) or (first in _STOP_WORD_COMMANDS and " " in text)


def _replace_line(lines: list[str], index: int, text: str | None) -> list[str] | None:
    """``lines`` with line ``index`` replaced by ``text``, or ``None`` when there is no ``text``."""
    if text is None:
        return None
    return [text if i == index else line for i, line in enumerate(lines)]


def _reindent(lines: list[str], index: int, text: str | None) -> list[str] | None:
    """``lines`` with line ``index`` replaced by ``text`` at that line's indent, or ``None`` when there is no ``text``."""
    line = lines[index]
    return _replace_line(lines, index, None if text is None else line[: len(line) - len(line.lstrip())] + text)


def _pick(ctx: _Context, indices: Sequence[int]) -> int | None:
    return ctx.rng.choice(list(indices)) if indices else None


def wrap_question(lines: list[str], ctx: _Context) -> list[str] | None:
    """Put a lead-in before a line that is one direct question ("Is "{s}" grammatical?" -> "Tell me: is ...").

    Example:
        >>> import random
        >>> from coin_data.text.lexicon import Lexicon
        >>> wrap_question(['Is "{s}" grammatical?'], _Context(Lexicon(), random.Random(1), None))
        ['Tell me: is "{s}" grammatical?']
    """
    found = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        condition = _CONDITION.match(stripped) if ctx.extended else None  # "If X, is ...?": the question after X
        first = _bare((condition.group(2) if condition else stripped).split(" ", 1)[0])
        if (_editable(line, ctx) and stripped.endswith("?") and stripped[:1].isupper() and stripped.count("?") == 1
                and first in _AUXILIARIES | _WH_WORDS and not re.search(r"[.!:]\s", stripped)):
            found.append(index)
    index = _pick(ctx, found)
    return None if index is None else _wrapped(lines, index, ctx)


def move_condition(lines: list[str], ctx: _Context) -> list[str] | None:
    """Move a leading condition after the question or command it qualifies ("If X, is Y?" -> "Is Y if X?").

    Only a condition without slots, before a main clause that opens with an auxiliary, a wh-word or a
    command, is moved; the slots keep their order.

    Example:
        >>> import random
        >>> from coin_data.text.lexicon import Lexicon
        >>> move_condition(['If the text is true, is "{h}" true too?'], _Context(Lexicon(), random.Random(0), None, True))
        ['Is "{h}" true too if the text is true?']
    """
    found = []
    for index, line in enumerate(lines):
        match = _CONDITION.match(line.strip())
        if match and _editable(line, ctx) and not _SLOT.search(match.group(1)) and match.group(2)[-1:] in "?.":
            first = _bare(match.group(2).split(" ", 1)[0])
            if first in _AUXILIARIES | _WH_WORDS or _commands(match.group(2), ctx):
                found.append((index, match))
    if not found:
        return None
    index, match = ctx.rng.choice(found)
    condition, main = match.group(1), match.group(2)
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    out = list(lines)
    out[index] = f"{indent}{main[0].upper()}{main[1:-1]} {_lcfirst(condition)}{main[-1]}"
    return out


def complete_question(lines: list[str], ctx: _Context) -> list[str] | None:
    """Spell out a one-word adjective question ("Correct?" -> "Is it correct?").

    Example:
        >>> import random
        >>> from coin_data.text.lexicon import Lexicon
        >>> complete_question(["{q}", "Correct?"], _Context(Lexicon(), random.Random(0), None))   # doctest: +SKIP
        ['{q}', 'Is this correct?']
    """
    found = [i for i, line in enumerate(lines) if re.fullmatch(r"[A-Z][a-z]+\?", line.strip())
             and "a" in ctx.lex.pos_weights(line.strip()[:-1])]  # fmt: skip
    index = _pick(ctx, found)
    if index is None:
        return None
    word = lines[index].strip()
    questions = [f"{opener} {word.lower()}" for opener in ("Is it", "Is this")]
    return _replace_line(lines, index, _choose_text(ctx, questions, word))


def lead_clause(lines: list[str], ctx: _Context) -> list[str] | None:
    """Put a lead-in before a line that starts with an imperative ("Summarize it: {t}" -> "Please summarize ...").

    Example:
        >>> import random
        >>> from coin_data.text.lexicon import Lexicon
        >>> lead_clause(["Give a summary: {t}"], _Context(Lexicon(), random.Random(0), None))   # doctest: +SKIP
        ['Your task is to give a summary: {t}']
    """
    found = [i for i, line in enumerate(lines) if _editable(line, ctx) and not line.lstrip().startswith("Please ")
             and _commands(line.strip(), ctx)]  # fmt: skip
    index = _pick(ctx, found)
    if index is None:
        return None
    line = lines[index]
    indent = line[: len(line) - len(line.lstrip())]
    out = list(lines)
    led = _choose_text(ctx, [lead.format(_lcfirst(line.strip())) for lead in _CLAUSE_LEADS], line.strip())
    if led is None:
        return None
    out[index] = indent + led
    return out


def point_at_input(lines: list[str], ctx: _Context) -> list[str] | None:
    """"this article: {a}" -> "the following article: {a}" (and back) where the input comes right after.

    Only a noun directly before a colon that introduces the input on the same or the next line is
    changed, so the pointer keeps pointing at the same text.

    Example:
        >>> import random
        >>> from coin_data.text.lexicon import Lexicon
        >>> point_at_input(["Please summarize this short article: {a}"], _Context(Lexicon(), random.Random(0), None))
        ['Please summarize the following short article: {a}']
    """
    found = []
    for index, line in enumerate(lines):
        if not _editable(line, ctx):
            continue
        next_is_input = index + 1 < len(lines) and bool(_SLOT.search(lines[index + 1]))
        for match in re.finditer(r"\b(this|the following) ([a-z]+)\b(?=[^.?!:{}]*:\s*(\{|$))", line):
            if match.group(3) == "{" or next_is_input:
                found.append((index, match))
    if not found:
        return None
    index, match = ctx.rng.choice(found)
    new = "the following" if match.group(1) == "this" else "this"
    out = list(lines)
    line = lines[index]
    out[index] = line[: match.start()] + f"{new} {match.group(2)}" + line[match.end() :]
    return out


def expand_labels(lines: list[str], ctx: _Context) -> list[str] | None:
    """Spell out short labels ("Q:" -> "Question:", "A:" -> "Answer:"), or shorten spelled-out ones.

    All labels of the template change the same way, so the template stays consistent.
    """
    short = [i for i, line in enumerate(lines) if re.match(rf"^({'|'.join(_LABELS)}):(\s|$)", line)]
    if short:
        return [re.sub(rf"^({'|'.join(_LABELS)}):", lambda m: _LABELS[m.group(1)] + ":", line) if i in short else line
                for i, line in enumerate(lines)]  # fmt: skip
    long_names = {value: key for key, value in _LABELS.items()}
    spelled = [i for i, line in enumerate(lines) if re.match(rf"^({'|'.join(long_names)}):(\s|$)", line)]
    if len(spelled) < 2:
        return None  # a lone "Question:" shortened to "Q:" is too small a change to be worth a candidate
    return [re.sub(rf"^({'|'.join(long_names)}):", lambda m: long_names[m.group(1)] + ":", line)
            if i in spelled else line for i, line in enumerate(lines)]  # fmt: skip


def implied_instruction(lines: list[str], ctx: _Context) -> list[str] | None:
    """Add the instruction that a template made only of labels and slots implies, as its first line.

    Example:
        >>> import random
        >>> from coin_data.text.lexicon import Lexicon
        >>> implied_instruction(["Text: {t}", "Headline:"], _Context(Lexicon(), random.Random(0), None))
        ['Give the text a headline.', 'Text: {t}', 'Headline:']
        >>> implied_instruction(["Problem: {p}", "Solution:"], _Context(Lexicon(), random.Random(0), None, True))
        ['Given the problem, write the solution.', 'Problem: {p}', 'Solution:']
    """
    if any(_line_kind(line) == _INSTRUCTION and not re.match(r"^\s*[A-Za-z ]{1,20}:\s*$", line) for line in lines):
        return None  # the template already says what to do
    for pattern, instructions in _IMPLIED:
        if any(pattern.match(line.strip()) for line in lines):
            fitting = _fitting(instructions, lines)
            return _with_first(_choose_text(ctx, fitting, ""), lines) if fitting else None
    # otherwise: "Problem: {p}" / "Solution:" asks for the solution to the problem
    wanted = re.fullmatch(r"([A-Z][a-z]+):", lines[-1].strip()) if lines and ctx.extended else None
    given = [m.group(1) for line in lines if (m := re.match(r"^([A-Z][a-z]+): \{\w+\}\s*$", line.strip()))]
    if wanted and len(given) == 1 and given[0] != wanted.group(1):
        x, y = given[0].lower(), wanted.group(1).lower()
        fitting = _fitting([form.format(x=x, y=y) for form in _LABEL_PAIR], lines)
        return _with_first(_choose_text(ctx, fitting, ""), lines) if fitting else None
    return None


def _with_first(instruction: str | None, lines: list[str]) -> list[str] | None:
    return None if instruction is None else [instruction, *lines]


def _fitting(instructions: Sequence[str], lines: Sequence[str]) -> list[str]:
    """The instructions that do not dwarf the template: at most three words added, or at most three times
    its own words (a two-word template of labels gets "Answer the question.", not a sentence of seven).

    Example:
        >>> _fitting(["Answer the question.", "Give the answer to the question."], ["{p}", "Question: {q}"])
        ['Answer the question.']
    """
    own = len(re.findall(r"[A-Za-z]+", _SLOT.sub(" ", "\n".join(lines))))
    return [text for text in instructions
            if len(re.findall(r"[A-Za-z]+", text)) < 4 or len(re.findall(r"[A-Za-z]+", text)) <= 3 * own]


def label_lead(lines: list[str], ctx: _Context) -> list[str] | None:
    """Say what a noun label of an input line names ("Question: {q}" -> "Here is the question: {q}").

    For templates with next to no instruction words ("{passage}\n\nQuestion: {question}"). Only a label of
    one or two words whose last word can be a noun in WordNet, so not "Q:", "Sentence 1:", "The text:" or
    "Quickly:"; a plural noun gets "Here are the".

    Example:
        >>> import random
        >>> from coin_data.text.lexicon import shared_lexicon
        >>> label_lead(["{p}", "Question: {question}"], _Context(shared_lexicon(), random.Random(0), None))
        ['{p}', 'Here is the question: {question}']
    """
    found = []
    for index, line in enumerate(lines):
        match = _LABELLED_INPUT.match(line)
        if match is None or _line_kind(line) != _INPUT or "{{" in line:
            continue
        words = match.group(2).lower().split()
        if words[0] not in _DETERMINERS and len(words[-1]) > 2 and "n" in ctx.lex.pos_weights(words[-1]):
            found.append((index, match, " ".join(words)))
    if not found:
        return None
    index, match, label = ctx.rng.choice(found)
    plural = _plural_noun(label.split()[-1], ctx)
    text = f"{match.group(1)}Here {'are' if plural else 'is'} the {label}: {match.group(3)}"
    return _replace_line(lines, index, _choose_text(ctx, [text], lines[index]))


def move_intro(lines: list[str], ctx: _Context) -> list[str] | None:
    """Move a leading phrase such as "Using only the text above," after the clause it qualifies.

    "Using only the text above, answer this question: {q}" -> "Answer this question using only the text
    above: {q}". The phrase (:data:`~coin_data.paraphrase.rules.lexical._INTRO`, three words or more, no
    slot: "Given that," would lose what "that" points at) goes before the clause's closing "?", "." or
    ":"; the clause must open with an auxiliary, a wh-word or a command, and what follows the mark (a
    slot, say) stays where it was.

    Example:
        >>> import random
        >>> from coin_data.text.lexicon import shared_lexicon
        >>> ctx = _Context(shared_lexicon(), random.Random(0), None, True, True)
        >>> move_intro(["{context}", "Based on the text above, answer this question: {q}"], ctx)
        ['{context}', 'Answer this question based on the text above: {q}']
    """
    found = []
    for index, line in enumerate(lines):
        match = _INTRO.match(line.strip())
        if not match or not _editable(line, ctx) or _SLOT.search(match.group(1)):
            continue
        if len(match.group(1).split()) < 3:
            continue
        main = match.group(2)
        end = re.search(r"[?.:](?=\s*(?:[\"'“(]?\{|$))", main)
        first = _bare(main.split(" ", 1)[0])
        if end and (first in _AUXILIARIES | _WH_WORDS or _commands(_ucfirst(main), ctx)):
            found.append((index, match, end.start()))
    if not found:
        return None
    index, match, cut = ctx.rng.choice(found)
    intro, main = match.group(1)[:-2], match.group(2)
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    out = list(lines)
    out[index] = f"{indent}{_ucfirst(main[:cut])} {_lcfirst(intro)}{main[cut:]}"
    return out


def _plural_noun(word: str, ctx: _Context) -> bool:
    """Whether ``word`` is a plural noun ("triples", "instructions"; not "data", "news", "passage")."""
    if (ctx.lex.form_of(word, "n") or ("", ""))[1] == "plural":
        return True
    return word.endswith("s") and not word.endswith("ss") and "n" in ctx.lex.pos_weights(word[:-1])


LINE_REWRITES: tuple[tuple[str, LineRewrite], ...] = (
    ("wrap_question", wrap_question),
    ("complete_question", complete_question),
    ("lead_clause", lead_clause),
    ("point_at_input", point_at_input),
    ("expand_labels", expand_labels),
    ("implied_instruction", implied_instruction),
)
# Added later; used with ``ctx.extended`` only (see :class:`~coin_data.paraphrase.rules.syntactic._Context`).
EXTENDED_LINE_REWRITES: tuple[tuple[str, LineRewrite], ...] = (("move_condition", move_condition),)
# Added for issue 15 item 3; used in the third pass only (templates still short of k after the second).
THIRD_LINE_REWRITES: tuple[tuple[str, LineRewrite], ...] = (
    ("label_lead", label_lead),
    ("move_intro", move_intro),
)
