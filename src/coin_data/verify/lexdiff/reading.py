"""Reading one instruction for the lexical diff: tokens, numbers, bounds, ordinals, answer labels, negations.

:func:`read_side` turns a text into a :class:`Side`: contractions split ("doesn't" -> "does not"), persona
clauses dropped ("As a grammar checker, ..."), multi-word phrases rewritten ("free of" -> "no"), comparator
phrases next to a number taken out as bounds ("at most 3" -> bound ``upper``), and the quantities, labels
and negations it states counted.

Example:
    >>> _extract_bounds("use at most 3 words".split())
    (['use', '3', 'words'], ['upper'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

from coin_data.verify.lexdiff.words import (
    _BOUNDARY, _CARDINALS, _COMPARATORS, _INPUT_NOUNS, _LABEL_DEFINITION, _LABEL_NOUNS, _MAKING_VERBS, _NEGATIONS,
    _ONLY, _OPTION_MARKER, _ORDINALS, _OUTPUT_PREPOSITIONS, _PARTIAL, _PERSONA_OPENERS, _PERSONA_WORDS, _PHRASES, _QUOTED, _STOP,
    _TOKEN, _TRAILING_BOUNDS, _UNIVERSAL, _VAGUE_AMOUNTS,
)  # fmt: skip

if TYPE_CHECKING:
    from coin_data.verify.lexdiff.relations import WordRelations


def _by_first_word(entries) -> dict[str, tuple]:
    """Phrase entries grouped by their first word, each group in the given order (a phrase is looked for
    only where its first word stands)."""
    groups: dict[str, list] = {}
    for entry in entries:
        groups.setdefault(entry[0][0], []).append(entry)
    return {word: tuple(group) for word, group in groups.items()}


_PHRASES_AT = _by_first_word(_PHRASES)
_COMPARATORS_AT = _by_first_word(sorted(_COMPARATORS, key=lambda c: -len(c[0])))  # longest first


@dataclass
class Side:
    """One text after normalisation."""

    tokens: list[str]  # normalised tokens, punctuation included
    words: list[str]  # tokens without punctuation
    numbers: list[str]
    bounds: list[str]
    ordinals: list[int]
    identifiers: list[int]  # numbers that name things: "Sentence 1", "event 2"
    negations: int
    makes: frozenset  # artefacts the instruction asks to write: {"question"}, {"answer"}
    definition_negations: int  # negations inside "'label' if ..." clauses (counted in ``negations`` too)
    defines_labels: bool
    only: bool
    universal: bool
    partial: bool
    labels: set[str]
    # ``words`` without a "yes or no" list that restates a polar question of the text ("Is it a pun? Answer
    # yes or no."); None when there is none (see :func:`without_restated_answers`).
    unformatted: list[str] | None = None
    # Ordinals inside capitalised names ("English as a Second Language"), left out of ``ordinals``.
    named_ordinals: tuple[int, ...] = ()



def read_side(text: str, relations: WordRelations) -> Side:
    """Normalise one instruction text into the facts the diff compares.

    Args:
        text: an instruction (for templates, ``Template.masked_text()``).
        relations: the WordNet relations (to tell an identifier such as "Sentence 1" from a count).

    Returns:
        A :class:`Side`.
    """
    text = _OPTION_MARKER.sub(" ", text.replace("’", "'"))  # "A) yes or B) no" offers "yes" or "no"
    quoted = [q.lower().replace("_", " ").strip() for q in _QUOTED.findall(text)]
    raw = [t if t.startswith("{") else t.lower() for t in _TOKEN.findall(text)]
    raw = _drop_persona([t for token in raw for t in _split_contraction(token)])
    tokens, bounds = _extract_bounds(_rewrite_phrases(raw))
    # Quoted words are the answer labels ('entailment' or 'not_entailment'); a negation inside a
    # label ("not_entailment") names an answer, it does not negate the instruction: negations are
    # counted with the quoted labels blanked out.
    labels = set(quoted) if quoted else _answer_lists(tokens)
    named = _ordinals_in_names(text)
    numbers, ordinals, identifiers = _quantities(tokens, relations, len(labels), named)
    unquoted, _ = _extract_bounds(_rewrite_phrases(_drop_persona(
        [t for token in _TOKEN.findall(_QUOTED.sub(" , ", text).lower()) for t in _split_contraction(token)])))
    negations = sum(1 for t in unquoted if t in _NEGATIONS and not (t == "no" and "no" in labels))
    definitions = [_negation_count(m) for m in _LABEL_DEFINITION.findall(text)]
    words = [t for t in tokens if t not in _BOUNDARY and t not in {",", "/"}]
    restated = _restated_yes_no(tokens) if labels == {"yes", "no"} else set()
    return Side(
        tokens=tokens, words=words, numbers=numbers, bounds=bounds, ordinals=ordinals, identifiers=identifiers,
        negations=negations, makes=_made_artefacts(tokens), definition_negations=sum(definitions), defines_labels=bool(definitions),
        only=any(t in _ONLY and not (t == "just" and _just_not_only(tokens, i, relations)) for i, t in enumerate(tokens)),
        universal=any(t in _UNIVERSAL for t in tokens),
        partial=any(t in _PARTIAL for t in tokens), labels=labels,
        named_ordinals=tuple(_ORDINALS[t] for t in tokens if t in named),
        unformatted=[t for i, t in enumerate(tokens) if t not in _BOUNDARY and t not in {",", "/"} and i not in restated]
        if restated else None,
    )


def without_restated_answers(a: Side, b: Side) -> tuple[Side, Side]:
    """``a`` and ``b`` for the word alignment: a side whose "yes or no" only restates its polar question
    ("Is it a paraphrase? Yes or No.") loses those words when the other side has no such list, so a
    format line added or dropped is not read as new content. Two sides that both have it keep it (the
    words match).

    Example:
        >>> a = Side([], ["is", "it", "a", "pun"], [], [], [], [], 0, frozenset(), 0, False, False, False, False, set())
        >>> b = replace(a, words=["is", "it", "a", "pun", "yes", "or", "no"], unformatted=["is", "it", "a", "pun"])
        >>> without_restated_answers(a, b)[1].words
        ['is', 'it', 'a', 'pun']
    """
    if (a.unformatted is None) == (b.unformatted is None):
        return a, b
    if a.unformatted is not None:
        return replace(a, words=a.unformatted), b
    return a, replace(b, words=b.unformatted)


def _just_not_only(tokens: Sequence[str], i: int, relations: WordRelations) -> bool:
    """ "just" that does not restrict: before a number ("just 3 words") or a past form of a verb, where it
    means "a moment ago" ("Ann just finished reading {title}").

    Example:
        >>> from coin_data.verify import default_lexical_diff
        >>> _just_not_only("ann just finished reading".split(), 1, default_lexical_diff().relations)
        True
    """
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    if _is_number(nxt):
        return True
    base = relations.lexicon.base(nxt, "v") if nxt.endswith("ed") else None
    return base is not None and base != nxt


# Verbs that open a polar question ("Does it ...?"), whose answer space is yes or no.
_AUXILIARIES = frozenset({"is", "are", "was", "were", "do", "does", "did", "can", "could", "would", "will", "should",
                          "shall", "has", "have", "had", "may", "might", "must"})
# Words that may lead into a restated answer list: "please answer either yes or no".
_ANSWER_LEAD = frozenset({"please", "answer", "reply", "respond", "say", "with", "by", "either"})


def _restated_yes_no(tokens: Sequence[str]) -> set[int]:
    """Positions of a "yes or no" list (and the "please answer" before it) that only restates the answer
    space of a polar question of the same text (an auxiliary opening a clause: "Is that a paraphrase? Yes
    or no." asks what "Is that a paraphrase?" asks; "Based on {a}, is it true?" is one too). Empty when the text asks no polar question ("Classify it: yes or no") or lists no
    such pair. The caller passes texts whose only answer words are yes and no ("yes, no, or maybe" offers
    a third answer and is left alone); the labels themselves stay in :attr:`Side.labels`.

    Example:
        >>> sorted(_restated_yes_no("is that a paraphrase ? please answer yes or no .".split()))
        [5, 6, 7, 8, 9]
        >>> _restated_yes_no("classify the pair : yes or no .".split())
        set()
    """
    if not _asks_polar_question(tokens):
        return set()
    spans: set[int] = set()
    for i in range(len(tokens) - 2):
        if {tokens[i], tokens[i + 2]} == {"yes", "no"} and tokens[i + 1] in ("or", ",", "/"):
            first = i
            while first > 0 and tokens[first - 1] in _ANSWER_LEAD:
                first -= 1
            spans.update(range(first, i + 3))
    return spans


def _asks_polar_question(tokens: Sequence[str]) -> bool:
    """True when a clause opens with an auxiliary ("Does it follow?", "Based on {a}, is it true?"), or a
    sentence ends in "?" with no clause opening with a wh-word ("Therefore, it must be true that {b}?").
    A bare answer list ("Yes or no?") is no question.

    Example:
        >>> _asks_polar_question("{a} therefore , it must be true that {b} ? yes or no ?".split())
        True
        >>> _asks_polar_question("{a} given the text , what is the topic ? yes or no ?".split())
        False
    """
    sentence: list[str] = []
    for tok in [*tokens, "."]:
        if tok not in _BOUNDARY:
            sentence.append(tok)
            continue
        at = [k for k, t in enumerate(sentence) if not t.startswith("{") and t != ","
              and (k == 0 or sentence[k - 1] == "," or sentence[k - 1].startswith("{"))]
        openers = [sentence[k] for k in at]
        # "Could you read it and answer with yes or no?" is a polite request, not a polar question.
        polite = any(_polite_request(sentence, k) for k in at)
        if any(sentence[k] in _AUXILIARIES for k in at) and not polite:
            return True
        words = [t for t in sentence if t not in _ANSWER_LEAD and t not in ("yes", "no", "or", "/", ",")
                 and not t.startswith("{")]
        if tok == "?" and words and not polite and not any(t in _WH_WORDS for t in openers):
            return True
        sentence = []
    return False


def _polite_request(sentence: Sequence[str], k: int) -> bool:
    """True for "can you", "could you", "would you" and "will you" (with "please") at ``k``: a request
    to do something, whose own yes or no is not the task's answer ("Do you think ...?" stays a question).

    Example:
        >>> _polite_request("could you please read it".split(), 0)
        True
    """
    rest = [t for t in sentence[k + 1 : k + 3] if t != "please"]
    return sentence[k] in ("can", "could", "would", "will") and rest[:1] == ["you"]


_WH_WORDS = frozenset({"what", "which", "who", "whom", "whose", "when", "where", "why", "how"})


def _ordinals_in_names(text: str) -> frozenset[str]:
    """Ordinal words that occur only inside capitalised names in ``text``: "English as a Second Language"
    names a subject, it picks no position. An ordinal counts as part of a name when it is capitalised,
    follows a lower-case word and comes before a capitalised word ("Copy The Second Sentence", written in
    title case, and "the second Sentence" still pick a position); none is a name when the text also has
    the word in lower case.

    Example:
        >>> sorted(_ordinals_in_names("For English as Second Language learners, rate {text}."))
        ['second']
        >>> sorted(_ordinals_in_names("Copy The Second Sentence of {text}."))
        []
    """
    named = {ordinal.lower() for before, ordinal in _ORDINAL_IN_NAME.findall(text) if before.islower()}
    return frozenset(w for w in named if not re.search(rf"\b{w}\b", text))


# A capitalised ordinal between a lower-case word and a capitalised one: "as Second Language".
_ORDINAL_IN_NAME = re.compile(r"\b([A-Za-z]+) (First|Second|Third|Fourth|Fifth)(?= [A-Z][a-z])")


def _quantities(tokens: Sequence[str], relations: WordRelations, label_count: int = 0,
                named: frozenset[str] = frozenset()) -> tuple[list[str], list[int], list[int]]:
    """``(numbers, ordinals, identifiers)`` stated by ``tokens``; "a few" and the like count as ``"few"``.
    ``label_count`` is the number of answer labels the text lists; ``named`` holds ordinal words that are
    part of names (:func:`_ordinals_in_names`)."""
    numbers: list[str] = []
    ordinals: list[int] = []
    identifiers: list[int] = []
    naming = 0  # ordinals that name an input: "the first sentence"
    for i, tok in enumerate(tokens):
        if _counts_the_labels(tokens, i, label_count):
            continue
        if _not_a_quantity(tokens, i, relations):
            if re.fullmatch(r"\d+", tok):
                identifiers.append(int(tok))
            continue
        prev = tokens[i - 1] if i else "\n"
        nxt = tokens[i + 1] if i + 1 < len(tokens) else "\n"
        if tok in named:
            continue
        if tok in _ORDINALS and not (tok == "first" and (nxt == "," or (prev in _BOUNDARY and relations.verbish(nxt)))):
            ordinals.append(_ORDINALS[tok])
            naming += _singular(nxt) in _NAMED_INPUTS
        elif re.fullmatch(r"\d+(?:st|nd|rd|th)", tok):
            ordinals.append(int(re.sub(r"\D", "", tok)))
        elif re.fullmatch(r"\d+(?:\.\d+)?", tok):
            numbers.append(str(float(tok)))
        elif tok in _CARDINALS:
            numbers.append(str(float(_CARDINALS[tok])))
        elif tok in _VAGUE_AMOUNTS - {"some"}:
            numbers.append("few")
    if _ordinals_name_the_inputs(tokens, ordinals, naming):
        return numbers, [], identifiers + ordinals
    return numbers, ordinals, identifiers


# Inputs an ordinal may name when the template holds one slot for each: "the second article".
_NAMED_INPUTS = frozenset({"sentence", "question", "text", "statement", "phrase", "passage", "document", "review",
                           "claim", "expression", "input", "article", "headline"})


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _ordinals_name_the_inputs(tokens: Sequence[str], ordinals: Sequence[int], naming: int) -> bool:
    """True when every ordinal stands before an input noun, together they are first, second (...), and the
    text has a slot for each: "Does the first sentence imply the second sentence? {a} {b}" names its two
    inputs (like "Sentence 1"), it does not pick a position.

    Example:
        >>> _ordinals_name_the_inputs("{a} {b} does the first sentence imply the second sentence".split(), [1, 2], 2)
        True
    """
    k = len(set(ordinals))
    return (k >= 2 and naming == len(ordinals) and sorted(set(ordinals)) == list(range(1, k + 1))
            and sum(t.startswith("{") for t in tokens) >= k)


def _counts_the_labels(tokens: Sequence[str], i: int, label_count: int) -> bool:
    """A number that counts the answer labels the text lists: "into two categories: 'acceptable' or
    'unacceptable'" (the labels fix it; a change of labels is the label finding's business).

    Example:
        >>> _counts_the_labels("into two categories : a or b".split(), 1, 2)
        True
    """
    tok = tokens[i]
    if label_count < 2 or not _is_number(tok) or float(_CARDINALS.get(tok, tok)) != label_count:
        return False
    return any(t in _LABEL_NOUNS for t in tokens[i + 1 : i + 3])


def _not_a_quantity(tokens: Sequence[str], i: int, relations: WordRelations) -> bool:
    """Numbers that name or describe rather than constrain.

    "Sentence 1:", "event 2 happened", "sentences 1 and 2" (identifiers after a noun) and "these two
    sentences" (the count of the inputs, which the input itself fixes); "in two or three sentences" bounds
    the output with both numbers.
    """
    tok = tokens[i]
    prev = tokens[i - 1] if i else ""
    nxt = tokens[i + 1] if i + 1 < len(tokens) else "\n"
    if prev in ("these", "those", "following") and _is_number(tok):
        return True
    # "sentences 1 and 2", "in two or three sentences": a number joined to the number before it reads as
    # that one does (an identifier, an input count or a bound), whatever noun follows it.
    if _is_number(tok) and prev in ("and", "or", ",", "to") and i >= 2 and _is_number(tokens[i - 2]):
        return _not_a_quantity(tokens, i - 2, relations)
    # "Analyze the two given sentences": the count of the inputs, which the input fixes. After "in",
    # "into", "with" ... it bounds the output instead ("answer in two sentences").
    if _is_number(tok) and prev not in _OUTPUT_PREPOSITIONS:
        rest = [t for t in tokens[i + 1 : i + 3] if t not in ("given", "provided", "input", "following")]
        if rest and rest[0] in _INPUT_NOUNS:
            return True
    # Partitive "which of the two products": the input fixes the count.
    if prev == "the" and i >= 2 and tokens[i - 2] == "of" and _is_number(tok):
        return True
    if re.fullmatch(r"\d+", tok) and prev.isalpha() and prev not in _STOP:
        return not nxt.isalpha() or relations.lexicon.base(nxt, "n") is None or relations.verbish(nxt)
    return False


def _split_contraction(token: str) -> tuple[str, ...]:
    """ "doesn't" -> ("does", "not"); "can't" -> ("can", "not"); other tokens unchanged."""
    if not token.endswith("n't") or len(token) <= 3:
        return (token,)
    stem = {"can't": "can", "won't": "will", "shan't": "shall"}.get(token, token[: -len("n't")])
    return (stem, "not")


def _made_artefacts(tokens: Sequence[str]) -> frozenset:
    """"question" or "answer" when a verb of making comes shortly before it ("write a question",
    "come up with an answer"); answering a question makes nothing here.

    Example:
        >>> sorted(_made_artefacts("write a question whose answer is x".split()))
        ['question']
        >>> sorted(_made_artefacts("will you come back ? my answer is".split()))
        []
    """
    made = set()
    for j, verb in enumerate(tokens):
        if verb not in _MAKING_VERBS or (verb == "come" and tuple(tokens[j + 1 : j + 3]) != ("up", "with")):
            continue  # "come" makes only in "come up with": "whether I will come again, my answer is"
        for tok in tokens[j + 1 : j + 5]:  # the first of the two nouns after the verb is its object
            noun = tok[:-1] if tok.endswith("s") else tok
            if noun in ("question", "answer"):
                made.add(noun)
                break
    return frozenset(made)


def _negation_count(text: str) -> int:
    """Negation words in a stretch of raw text ("isn't" counts once)."""
    tokens = [t for token in _TOKEN.findall(text.lower()) for t in _split_contraction(token)]
    return sum(t in _NEGATIONS for t in _rewrite_phrases(tokens))


def _drop_persona(tokens: list[str]) -> list[str]:
    """Tokens without persona clauses: a sentence that opens with "As a ...", "In your role as ...", or
    "With your expertise in ..." loses the words up to its first comma (at most 14 tokens), and
    "You are a bracket expert." loses the whole sentence.

    Example:
        >>> _drop_persona("as a grammar checker , judge the sentence .".split())
        ['judge', 'the', 'sentence', '.']
    """
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if i == 0 or tokens[i - 1] in _BOUNDARY:
            end = _persona_end(tokens, i)
            if end is not None:
                i = end
                continue
        out.append(tokens[i])
        i += 1
    return out


def _persona_end(tokens: Sequence[str], start: int) -> int | None:
    """The index after a persona clause that starts at ``start``, or ``None``."""
    head = tuple(tokens[start : start + 5])
    opener = any(head[: len(p)] == p for p in _PERSONA_OPENERS)
    if not opener and not ("your" in head[:3] and _PERSONA_WORDS.intersection(tokens[start : start + 6])):
        return None
    for j in range(start + 1, min(len(tokens), start + 15)):
        if tokens[j] == "," or (tokens[j] in (".", ":", "\n") and tokens[start] in ("you", "imagine", "pretend")):
            return j + 1
        if tokens[j] in _BOUNDARY or tokens[j].startswith("{"):
            return None
    return None


def _rewrite_phrases(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for words, replacement in _PHRASES_AT.get(tokens[i], ()):
            if tuple(tokens[i : i + len(words)]) == words:
                out.extend(replacement)
                i += len(words)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _is_number(token: str) -> bool:
    return bool(re.fullmatch(r"\d+(?:\.\d+)?", token)) or token in _CARDINALS


def _extract_bounds(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Remove comparator phrases next to a number and return them as bounds ("upper", "lower", "exact")."""
    out: list[str] = []
    bounds: list[str] = []
    i = 0
    while i < len(tokens):
        for words, bound in _COMPARATORS_AT.get(tokens[i], ()):
            n = len(words)
            if tuple(tokens[i : i + n]) == words and i + n < len(tokens) and _is_number(tokens[i + n]):
                bounds.append(bound)
                i += n
                break
        else:
            if i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) in _TRAILING_BOUNDS and out and (
                _is_number(out[-1]) or (len(out) > 1 and _is_number(out[-2]))
            ):
                bounds.append(_TRAILING_BOUNDS[(tokens[i], tokens[i + 1])])
                i += 2
                continue
            out.append(tokens[i])
            i += 1
    return out, bounds


def _answer_lists(tokens: Sequence[str]) -> set[str]:
    """Words offered as alternatives: "positive, negative, or neutral", "yes or no", "Yes, No?", "A or B".

    Example:
        >>> sorted(_answer_lists("same meaning ? yes , no ?".split()))
        ['no', 'yes']
    """
    labels: set[str] = set()
    for i, tok in enumerate(tokens):
        if tok == "," and 0 < i < len(tokens) - 1 and {tokens[i - 1], tokens[i + 1]} == {"yes", "no"}:
            labels.update(("yes", "no"))  # "Yes, No?": the two answers, listed without "or"
        if tok not in ("or", "/"):
            continue
        right = i + 1
        # Skip "a", "by", "not" ...: "a customer or by an employee", "spam or not spam".
        while right < len(tokens) and tokens[right] in _STOP and tokens[right] not in ("yes", "no") and (
            right + 1 < len(tokens) and tokens[right + 1].isalpha() and right - i < 3
        ):
            right += 1
        left = i - 2 if i >= 2 and tokens[i - 1] == "," else i - 1  # "x, y, or z"
        if left < 0 or right >= len(tokens) or not tokens[left].isalpha() or not tokens[right].isalpha():
            continue
        items = [tokens[left], tokens[right]]
        j = left - 1
        while j >= 1 and tokens[j] == "," and tokens[j - 1].isalpha():  # "x, y, or z"
            items.append(tokens[j - 1])
            j -= 2
        if any(_is_number(w) for w in items):
            continue
        labels.update(w for w in items if w not in _STOP or w in ("yes", "no"))
    return labels

