"""What an LLM paraphraser is shown of a template, and how its rewrite is put back.

The model sees only the template's main instruction: input lines ("Review: {review}"), the options block
and answer labels stay out of view, the quotes around an inline slot are removed, and slots that end the
instruction ("Summarize this: {text}") are cut off. :meth:`Shown.restore` puts all of it back around the
rewrite, so the model can neither drop nor damage what it never saw.

Example:
    >>> from coin_data.templates import parse_template
    >>> shown = show_template(parse_template("Review: {review}\\nIs this review positive?\\n{options_}"))
    >>> shown.shown
    'Is this review positive?'
    >>> shown.restore("Does this review sound positive?")
    'Review: {review}\\nDoes this review sound positive?\\n{options_}'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coin_data.templates import Template

# A placeholder in the shown text: ``{name}`` (not ``{{literal}}``).
PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
# An inline slot with the quotes or brackets around it: kept out of view, put back as it was.
_INLINE_SLOT = re.compile(r"([\"'“‘(\[]?)\{([A-Za-z_][A-Za-z0-9_]*)\}([\"'”’)\]]?)")
# Slots (with quotes) that end the shown block, optionally after a colon: "Summarize this: {text}".
# A line that ends by bringing an input in: "Here is a sentence: {sentence}".
_LINE_SLOT = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}\W{0,2}$")
_TRAILER = re.compile(r"(:?[ \t]*(?:[\"'“‘(\[]?\{[A-Za-z_][A-Za-z0-9_]*\}[\"'”’)\]]?[ \t]*)+)$")


@dataclass(frozen=True)
class Shown:
    """The part of a template shown to the model, and what is put back around its rewrite.

    Attributes:
        head: template lines before the shown block (inputs, other instructions), kept verbatim.
        shown: the instruction text shown; inline slots appear as bare ``{name}`` placeholders.
        trailer: the slots (with their quotes) that end the block, kept out of view (``": {text}"``).
        tail: template lines after the shown block (inputs, the options block), kept verbatim.
        inline: placeholder name -> the original text around it (``'"{hypothesis}"'``).
    """

    head: tuple[str, ...]
    shown: str
    trailer: str
    tail: tuple[str, ...]
    inline: tuple[tuple[str, str], ...]

    @property
    def placeholders(self) -> list[str]:
        """Names of the placeholders the rewrite must keep, in order."""
        return PLACEHOLDER.findall(self.shown)

    def keep_slot_lines(self, rewrite: str) -> str | None:
        """``rewrite`` after the shown block's leading slot lines, when it dropped exactly their placeholders.

        A small model shown "Here is a sentence: {sentence}\\nIs it grammatical?" often rewords only the
        question. Its rewording still holds when the line that brings the input in is kept as written;
        any other loss of a placeholder is not repaired (``None``).

        Example:
            >>> from coin_data.templates import parse_template
            >>> shown = show_template(parse_template("Here is a sentence: {sentence}\\nIs it grammatical?\\n{options_}"))
            >>> shown.keep_slot_lines("Is this sentence grammatically correct?")
            'Here is a sentence: {sentence}\\nIs this sentence grammatically correct?'
            >>> shown.keep_slot_lines("Is {sentence} correct English?") is None  # placeholders moved: not repaired
            True
        """
        lines = self.shown.split("\n")
        lead = 0
        while lead < len(lines) - 1 and _LINE_SLOT.search(lines[lead]):
            lead += 1
        wanted = sorted(PLACEHOLDER.findall("\n".join(lines[lead:])))
        if not lead or sorted(PLACEHOLDER.findall(rewrite)) != wanted:
            return None
        return "\n".join([*lines[:lead], rewrite.strip()])

    def restore(self, rewrite: str) -> str:
        """The full template text with ``rewrite`` in place of the shown block.

        Example:
            >>> from coin_data.templates import parse_template
            >>> shown = show_template(parse_template('{premise}\\nIs "{hypothesis}" true? {hypothesis2}'))
            >>> shown.shown, shown.trailer
            ('Is {hypothesis} true?', ' {hypothesis2}')
            >>> shown.restore("Would you say {hypothesis} holds?")
            '{premise}\\nWould you say "{hypothesis}" holds? {hypothesis2}'
        """
        text = rewrite.strip()
        inline = dict(self.inline)
        for name, original in inline.items():
            text = re.sub(rf"[\"'“”‘’]?\{{{name}\}}[\"'“”‘’]?", lambda _, kept=original: kept, text)
        if self.trailer:
            if self.trailer.lstrip().startswith(":"):
                text = text.rstrip(" .:;")
                text = text + " " + self.trailer.lstrip(" \t:") if text.endswith("?") else text + self.trailer
            else:
                text += self.trailer
        return "\n".join([*self.head, text, *self.tail])


def show_template(template: Template) -> Shown | None:
    """Choose what the model sees of ``template``: its main instruction, without inputs, quotes or options.

    Lines that are inputs ("Review: {review}", "{options_}") stay out of view. Of the runs of instruction
    lines, the one with the most words is shown; slots that end it (after a colon or a question) are cut
    off and put back after the rewrite, and the quotes around an inline slot are removed and restored.

    Args:
        template: the original template.

    Returns:
        A :class:`Shown`, or ``None`` when the template has no instruction words to reword.

    Example:
        >>> from coin_data.templates import parse_template
        >>> shown = show_template(parse_template("Review: {review}\\nIs this review positive?\\n{options_}"))
        >>> shown.head, shown.shown, shown.tail
        (('Review: {review}',), 'Is this review positive?', ('{options_}',))
    """
    lines = template.text.split("\n")
    editable = [_instruction_line(line) for line in lines]
    runs, start = [], None
    for index, flag in enumerate([*editable, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index))
            start = None
    if not runs:
        return None
    start, end = max(runs, key=lambda run: (len(_literal_words("\n".join(lines[run[0] : run[1]]))), -run[0]))
    block = "\n".join(lines[start:end])
    trailer = ""
    match = _TRAILER.search(block)
    if match and _literal_words(block[: match.start()]):
        trailer, block = match.group(1), block[: match.start()].rstrip()
        if trailer.lstrip().startswith(":") and block[-1:] not in ".?!":
            block += "."  # a complete sentence reads better to the model; the colon comes back with the slot
    inline = tuple((m.group(2), m.group(0)) for m in _INLINE_SLOT.finditer(block))
    shown = _INLINE_SLOT.sub(lambda m: "{" + m.group(2) + "}", block)
    return Shown(tuple(lines[:start]), shown, trailer, tuple(lines[end:]), inline)


def _instruction_line(line: str) -> bool:
    """Whether a template line is instruction text the model may reword (not an input, label or options line)."""
    from coin_data.paraphrase.rules.syntactic import _INPUT, _INSTRUCTION, _MIXED, _line_kind

    if "{{" in line or "}}" in line or re.fullmatch(r"\s*[A-Za-z][A-Za-z ]{0,20}:\s*", line):
        return False  # literal braces, or a bare answer label such as "Answer:"
    kind = _line_kind(line)
    if kind == _INPUT:
        # "Answer this question: {question}" has the shape of a labelled input but its label is an instruction.
        return len(line.split(":", 1)[0].split()) >= 3
    return kind in (_INSTRUCTION, _MIXED)


def _literal_words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z']+", PLACEHOLDER.sub(" ", text))
