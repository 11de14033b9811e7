"""The ``rules`` backend: offline, seeded rewordings of instruction templates.

No model and no network: each candidate combines

* sentence-level rewrites of the instruction lines (yes/no question <-> "Decide whether ..." directive,
  wh-question -> "Tell me which ...", imperative <-> "Could you ...?", short lead-ins such as "Please" or
  "Based on the text above,", a few fixed phrase swaps such as "whether" <-> "if");
* moving the instruction block before or after the input block when the template keeps them on separate
  lines (with "above"/"below" turned around so the words still point at the input);
* WordNet synonyms for content words outside slots, taken from the word's most frequent sense, ranked by
  WordNet's sense counts, with plural, -s, -ed, -ing and capitalisation carried over.

Slots (``{review}``, ``{options_}``) and protected label words are never edited, and every candidate is
checked with :func:`coin_data.templates.slot_lock_violation`. Randomness comes only from
``random.Random`` seeded by a SHA-256 of the template text and the request seed, so results do not
depend on the process or on ``PYTHONHASHSEED``.

Example:
    >>> from coin_data.templates import parse_template
    >>> from coin_data.paraphrase.base import ParaphraseRequest
    >>> req = ParaphraseRequest(parse_template("Review: {review}\\nIs this review positive or negative?\\n{options_}",
    ...                         "sentiment", "t0"), k=2, protected_words=("positive", "negative"))
    >>> RulesParaphraser().paraphrase([req])[0].candidates      # doctest: +SKIP
    ['Review: {review}\\nDecide whether this review is positive or negative.\\n{options_}', ...]
"""


import difflib
import random
import re
from collections import Counter
from typing import Sequence

from coin_data.paraphrase.base import ParaphraseRequest, ParaphraseResult, ProgressFn, Usage
from coin_data.paraphrase.rules.fallback_rewrites import FALLBACK_LINE_REWRITES
from coin_data.paraphrase.rules.lexical import (
    _DETERMINERS,
    _SLOT,
    _STOP_WORDS,
    _VERB_CONTEXT,
    _WORD,
    _WORDS,
    _article_for,
    _bare,
    _match_case,
    _request_seed,
)
from coin_data.paraphrase.rules.line_rewrites import (
    EXTENDED_LINE_REWRITES,
    LINE_REWRITES,
    THIRD_LINE_REWRITES,
)
from coin_data.paraphrase.rules.question_rewrites import FOURTH_LINE_REWRITES
from coin_data.paraphrase.rules.syntactic import (
    _INSTRUCTION,
    _MIXED,
    _STRUCTURAL,
    _Context,
    _flip_deixis,
    _input_side,
    _is_imperative,
    _lead_in,
    _line_kind,
    _phrase_swap,
    _rewrite_with_intro,
    _sentence_parts,
    _swap_blocks,
)
from coin_data.templates import Template, instruction_overlap, slot_lock_violation
from coin_data.text.lexicon import NEVER_SWAP, Lexicon, shared_lexicon

# ---------------------------------------------------------------------------------------------------
# Synonym substitution over the editable words of a template.
# ---------------------------------------------------------------------------------------------------


def _editable_positions(lines: Sequence[str]) -> list[tuple[int, int]]:
    """(line, token) positions whose words may be replaced: instruction lines and the text of mixed lines.

    Labels of input lines ("Review:") and anything touching a slot stay as they are.
    """
    positions = []
    for line_no, line in enumerate(lines):
        if _line_kind(line) not in (_INSTRUCTION, _MIXED):
            continue
        for token_no, token in enumerate(line.split(" ")):
            if token_no == 0 and token.endswith(":"):
                continue  # a label such as "Hint:"
            if "{" not in token and "}" not in token and _WORD.match(token):
                positions.append((line_no, token_no))
    return positions


def nothing_to_reword(text: str) -> bool:
    """Whether a template has no word at all outside its slots (only slots, the options block, punctuation).

    Example:
        >>> nothing_to_reword("{question}?"), nothing_to_reword("Premise: {premise}")
        (True, False)
    """
    return not re.search(r"[A-Za-z]", _SLOT.sub("", text))


def _guess_pos(tokens: Sequence[str], index: int, lex: Lexicon) -> str | None:
    """Part of speech of ``tokens[index]`` from WordNet's frequencies plus a few context cues."""
    word = _bare(tokens[index])
    weights = lex.pos_weights(word)
    if not weights:
        return None
    previous = tokens[index - 1] if index > 0 else ""
    sentence_start = not previous or previous[-1:] in ".?!:" or previous.startswith("{")
    prev_word = _bare(previous)
    if ("v" in weights and lex.is_base_verb(word)) and (sentence_start or prev_word in _VERB_CONTEXT):
        return "v"
    if prev_word in _DETERMINERS or prev_word.endswith("'s"):
        following = _bare(tokens[index + 1]) if index + 1 < len(tokens) else ""
        if "a" in weights and following and following not in _STOP_WORDS and "n" in lex.pos_weights(following):
            return "a"
        return "n" if "n" in weights else ("a" if "a" in weights else None)
    return lex.dominant_pos(word)


# Particles that make a phrasal verb with the verb before them ("back up", "point out", "write down").
_PARTICLES = frozenset({"up", "out", "off", "down", "away"})


def _synonym_options(tokens: Sequence[str], index: int, lex: Lexicon, protected: frozenset[str]) -> list[str]:
    """Replacement tokens for ``tokens[index]``, best first, with punctuation, case and inflection kept."""
    match = _WORD.match(tokens[index])
    if not match:
        return []
    before, word, after = match.groups()
    lower = word.lower()
    if lower in protected or lower in _STOP_WORDS or lower in NEVER_SWAP or "'" in lower or len(lower) < 3:
        return []
    previous = _bare(tokens[index - 1]) if index > 0 else ""
    weights = lex.pos_weights(lower)
    if lower.endswith("s") and "n" in weights and "v" in weights and not (
        (previous in _DETERMINERS and previous != "that") or previous.endswith("'s")
    ):
        return []  # "keeps"/"captures": plural noun or verb? A wrong guess gives "livelihoods", so skip.
    pos = _guess_pos(tokens, index, lex)
    following = _bare(tokens[index + 1]) if index + 1 < len(tokens) else ""
    if pos == "v" and following in _PARTICLES:
        return []  # "backed up", "point out": the verb's sense is the pair's; a synonym of the verb alone strands it
    analysed = lex.form_of(lower, pos) if pos else None
    if analysed is None:
        return []
    base, form = analysed
    if base in NEVER_SWAP or base in protected:
        return []
    options = []
    for synonym in lex.synonyms(base, pos):
        inflected = lex.inflect(synonym, pos, form)
        if inflected and not set(inflected.split()) & protected:
            options.append(before + _match_case(inflected, word) + after)
    return options


def _swap_synonyms(lines: list[str], ctx: _Context, protected: frozenset[str], max_swaps: int,
                   own: frozenset[str] | None = None) -> list[str]:  # fmt: skip
    """Replace up to ``max_swaps`` random editable words by WordNet synonyms (fixing "a"/"an").

    With ``own`` (the template's words; the third pass), only those words: a synonym of a word a rewrite
    put in drifts twice ("would you say" -> "do you think" -> "do you believe").
    """
    candidates = []
    split_lines = [line.split(" ") for line in lines]
    for line_no, token_no in _editable_positions(lines):
        if own is not None and _bare(split_lines[line_no][token_no]) not in own:
            continue
        options = _synonym_options(split_lines[line_no], token_no, ctx.lex, protected)
        if options:
            candidates.append((line_no, token_no, options))
    if not candidates or max_swaps <= 0:
        return lines
    count = ctx.rng.randint(1, min(max_swaps, len(candidates)))
    for line_no, token_no, options in sorted(ctx.rng.sample(candidates, count)):
        # Prefer the most common synonym, but not always, so candidates differ from each other.
        choice = options[0] if len(options) == 1 or ctx.rng.random() < 0.6 else ctx.rng.choice(options[1:3])
        tokens = split_lines[line_no]
        tokens[token_no] = choice
        if token_no > 0 and _bare(tokens[token_no - 1]) in ("a", "an"):
            article = _article_for(_bare(choice) or choice)
            tokens[token_no - 1] = _match_case(article, tokens[token_no - 1])
    return [" ".join(tokens) for tokens in split_lines]


def _ends_with_answer_cue(lines: Sequence[str]) -> bool:
    """Whether the template ends with a bare label such as "Answer:" or "Sentence:" (its answer goes there).

    Moving the instruction block would put that label above the input, so the third pass does not move it.

    Example:
        >>> _ends_with_answer_cue(["Data: {triples}", "Sentence:"]), _ends_with_answer_cue(["{t}", "Sum up."])
        (True, False)
    """
    filled = [line.strip() for line in lines if line.strip() and line.strip() != "{options_}"]
    last = filled[-1] if filled else ""
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z ]{0,30}:", last))


def _introduces_input(lines: Sequence[str]) -> bool:
    """Whether an instruction line ends with a colon ("What is a good title for this:"): it points at
    the input after it, so the fourth pass does not move it below the input.

    Example:
        >>> _introduces_input(["Shorten this:", "", "{text}"]), _introduces_input(["{text}", "Shorten it."])
        (True, False)
    """
    return any(_line_kind(line) == _INSTRUCTION and line.rstrip().endswith(":") for line in lines)


def _swap_phrase_in_line(lines: list[str], ctx: _Context) -> list[str] | None:
    """One fixed phrase swap (:data:`_PHRASE_SWAPS`) anywhere in an instruction or mixed line, slots untouched."""
    found = [i for i, line in enumerate(lines) if _line_kind(line) in (_INSTRUCTION, _MIXED) and "{{" not in line
             and _phrase_swap(_SLOT.sub("", line), ctx) is not None]  # fmt: skip
    if not found:
        return None
    index = ctx.rng.choice(found)
    out = list(lines)
    out[index] = _phrase_swap(lines[index], ctx) or lines[index]
    return out


# ---------------------------------------------------------------------------------------------------
# Checks and diversity.
# ---------------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def _distance(a: str, b: str) -> float:
    """Word-level difference in [0, 1] (0: same word sequence)."""
    return 1.0 - difflib.SequenceMatcher(None, _words(a), _words(b), autojunk=False).ratio()


def _changed_words(original: str, candidate: str) -> int:
    """How many words were replaced, added or removed (multiset difference, larger side)."""
    before, after = Counter(_words(original)), Counter(_words(candidate))
    return max(sum((before - after).values()), sum((after - before).values()))


def _protected_counts(text: str, protected_words: Sequence[str]) -> dict[str, int]:
    """Occurrences of each protected word or phrase in the literal text (slots removed), case-insensitive."""
    literal = _SLOT.sub(" ", text)
    return {
        entry: len(re.findall(rf"(?<![A-Za-z]){re.escape(entry)}(?![A-Za-z])", literal, re.IGNORECASE))
        for entry in protected_words
        if entry.strip()
    }


def candidate_problem(template: Template, candidate: str, protected_words: Sequence[str] = ()) -> str | None:
    """Why ``candidate`` is not an acceptable rewording of ``template`` as far as rules can tell, or ``None``.

    Checks the slot lock and that every protected word occurs as often as in the original.

    Args:
        template: the original template.
        candidate: a candidate template text.
        protected_words: label words that must not change.

    Returns:
        A short reason, or ``None`` when the candidate passes.

    Example:
        >>> from coin_data.templates import parse_template
        >>> t = parse_template("{text}\\nIs it spam?\\n{options_}")
        >>> candidate_problem(t, "{text}\\nIs it junk?\\n{options_}", ["spam"])
        "protected word 'spam' changed"
    """
    violation = slot_lock_violation(template, candidate)
    if violation:
        return violation
    if candidate.strip() == template.text.strip():
        return "same as the original"
    before = _protected_counts(template.text, protected_words)
    after = _protected_counts(candidate, protected_words)
    for entry, count in before.items():
        if after[entry] != count:
            return f"protected word {entry!r} changed"
    return None


# ---------------------------------------------------------------------------------------------------
# The backend.
# ---------------------------------------------------------------------------------------------------

# Seed suffixes of the passes. A later pass runs only for a template the earlier ones left short of k
# candidates, on its own seed, with the rewrites added after them, so every template that got k candidates
# before a pass was added keeps them byte-identical: 0 the first release's rewrites, 1 "extended" (lists of
# alternatives, conditions, label pairs), 2 "third" (issue 15 item 3: label lead-ins, lead-ins before a
# later sentence, alternatives that keep the protected words), 3 "fourth" (question frames and polite
# commands of short FLAN templates, :mod:`.question_rewrites`), 4 "fallback" (only for a template with no
# candidate at all after the others: :mod:`.fallback_rewrites`, and a smaller change is enough, see
# :meth:`RulesParaphraser._acceptable`).
_PASSES = ("", "\x00extended", "\x00third", "\x00fourth", "\x00fallback")
_FALLBACK = _PASSES.index("\x00fallback")


class RulesParaphraser:
    """Offline paraphraser: WordNet synonyms plus sentence-level rewrites, seeded and deterministic.

    Args:
        max_synonym_swaps: most words replaced by synonyms in one candidate.
        min_change: smallest word-level distance (0..1) between a candidate and the original.
        min_spread: smallest word-level distance between two candidates of the same template.
        attempts_per_candidate: generation attempts per wanted candidate before giving up.
        fallback_overlap: for a template that no other pass gave a candidate, the largest instruction word
            overlap (exclusive; :func:`instruction_overlap`) a candidate of the fallback pass may keep: the
            verifier's default ``near_duplicate``.
        use_wordnet: load WordNet for synonyms and part-of-speech cues; ``False`` keeps only the fixed
            rewrites (faster, and usable without WordNet).

    Example:
        >>> p = RulesParaphraser(max_synonym_swaps=2)
        >>> p.name
        'rules'
    """

    name = "rules"

    def __init__(
        self,
        max_synonym_swaps: int = 3,
        min_change: float = 0.1,
        min_spread: float = 0.1,
        attempts_per_candidate: int = 15,
        use_wordnet: bool = True,
        fallback_overlap: float = 0.95,
    ) -> None:
        if max_synonym_swaps < 0:
            raise ValueError(f"max_synonym_swaps must be >= 0, got {max_synonym_swaps}")
        if not (0.0 <= min_change < 1.0 and 0.0 <= min_spread < 1.0):
            raise ValueError(f"min_change and min_spread must lie in [0, 1), got {min_change}, {min_spread}")
        if not 0.0 < fallback_overlap <= 1.0:
            raise ValueError(f"fallback_overlap must lie in (0, 1], got {fallback_overlap}")
        if attempts_per_candidate < 1:
            raise ValueError(f"attempts_per_candidate must be >= 1, got {attempts_per_candidate}")
        self.max_synonym_swaps = max_synonym_swaps
        self.min_change = min_change
        self.min_spread = min_spread
        self.attempts_per_candidate = attempts_per_candidate
        self.use_wordnet = use_wordnet
        self.fallback_overlap = fallback_overlap
        self._lexicon: Lexicon | None = None

    @property
    def lexicon(self) -> Lexicon:
        """WordNet lookups, loaded on first use (the process-wide :func:`~coin_data.text.lexicon.shared_lexicon`)."""
        if self._lexicon is None:
            self._lexicon = shared_lexicon() if self.use_wordnet else Lexicon(None)
        return self._lexicon

    def paraphrase(
        self, requests: Sequence[ParaphraseRequest], progress: ProgressFn | None = None
    ) -> list[ParaphraseResult]:
        """Return one result per request, in request order.

        Args:
            requests: one request per unique template.
            progress: called with 1 after each request.

        Returns:
            Results whose ``candidates`` hold up to ``k`` distinct rewordings; ``failure`` says why when
            there are none. ``usage.requests`` stays 0: nothing is called.
        """
        results = []
        for request in requests:
            candidates = self.candidates(request)
            failure = None if candidates else self._failure_reason(request.template)
            results.append(ParaphraseResult(request, candidates, self.name, failure, Usage(requests=0)))
            if progress is not None:
                progress(1)
        return results

    def candidates(self, request: ParaphraseRequest) -> list[str]:
        """Up to ``request.k`` distinct, checked rewordings of ``request.template``.

        Example:
            >>> RulesParaphraser(use_wordnet=False).candidates(ParaphraseRequest(
            ...     parse_template("{text}\\n{options_}"), k=3))                  # doctest: +SKIP
            []
        """
        template = request.template
        if request.k <= 0 or not self._has_editable_text(template):
            return []
        chosen: list[str] = []
        for stage, suffix in enumerate(_PASSES):
            if len(chosen) >= request.k or (stage == _FALLBACK and chosen):
                break
            rng = random.Random(_request_seed(template.text + suffix, request.seed))
            chosen = self._search(request, rng, chosen, stage)
        return chosen

    def _search(self, request: ParaphraseRequest, rng: random.Random, chosen: list[str],
                stage: int) -> list[str]:  # fmt: skip
        """Compose candidates from shuffled plans until ``request.k`` are acceptable or the attempts run out.

        ``stage``: which pass (0 first, 1 extended, 2 third, 3 fourth, 4 fallback; see :data:`_PASSES`)."""
        template = request.template
        protected = frozenset(word.lower() for entry in request.protected_words for word in entry.split())
        plans = self._plans(template.text, rng)
        for attempt in range(self.attempts_per_candidate * request.k):
            if len(chosen) == request.k:
                break
            text = self._compose(template.text, plans[attempt % len(plans)], rng, protected, stage)
            if self._acceptable(template, text, chosen, request.protected_words, stage == _FALLBACK):
                chosen = [*chosen, text]
        return chosen

    # -- internals -----------------------------------------------------------------------------------

    @staticmethod
    def _failure_reason(template: Template) -> str:
        if nothing_to_reword(template.text):
            return "rules: nothing to reword (no words outside slots)"
        lines = template.text.split("\n")
        if not _editable_positions(lines):
            return "rules: no instruction words outside slots and labels to reword"
        return "rules: no rewording changed enough words while keeping slots and protected words"

    @staticmethod
    def _has_editable_text(template: Template) -> bool:
        return not nothing_to_reword(template.text)

    def _plans(self, text: str, rng: random.Random) -> list[tuple[bool, str | None, bool]]:
        """Structural plans (move block?, rewrite of the main sentence, add a lead-in?), shuffled.

        Cycling through them gives each candidate a different sentence structure before synonyms are
        added on top.
        """
        can_move = _swap_blocks(text.split("\n")) is not None
        rewrites: list[str | None] = [None] + [name for name, _ in _STRUCTURAL] + ["phrase"]
        plans = [(move, rewrite, lead) for move in ([False, True] if can_move else [False])
                 for rewrite in rewrites for lead in (False, True)]  # fmt: skip
        rng.shuffle(plans)
        return plans

    def _compose(self, text: str, plan: tuple[bool, str | None, bool], rng: random.Random,
                 protected: frozenset[str], stage: int = 0) -> str:  # fmt: skip
        """Build one candidate text from a structural plan plus random synonyms (``stage`` >= 1: with the
        later rewrites of that pass, see :data:`_PASSES`)."""
        move, main_rewrite, lead = plan
        lines = text.split("\n")
        if move and not (stage >= 2 and _ends_with_answer_cue(lines)) and not (stage >= 3 and _introduces_input(lines)):
            swapped = _swap_blocks(lines)
            if swapped is not None:
                moved, after = swapped
                lines = [_flip_deixis(line, after) if _line_kind(line) == _INSTRUCTION else line for line in moved]
        lines = self._rewrite_sentences(lines, main_rewrite, lead, rng, stage, protected)
        if self.use_wordnet:
            ctx = _Context(self.lexicon, rng, None)
            own = frozenset(_words(text)) if stage >= 2 else None
            lines = _swap_synonyms(lines, ctx, protected, self.max_synonym_swaps, own)
        return "\n".join(self._add_line_rewrites(text, lines, rng, stage, protected))

    def _context(self, rng: random.Random, side: str | None, stage: int,
                 protected: frozenset[str]) -> _Context:  # fmt: skip
        """The rewrites' context for pass ``stage`` (the third pass also gets the protected words)."""
        third = stage >= 2
        return _Context(self.lexicon, rng, side, stage >= 1, third, protected if third else frozenset())

    def _add_line_rewrites(self, original: str, lines: list[str], rng: random.Random,
                           stage: int = 0, protected: frozenset[str] = frozenset()) -> list[str]:
        """Apply whole-line rewrites (:mod:`.line_rewrites`, phrase swaps), in a random order, until enough changed.

        Short templates whose words the sentence rewrites cannot reach would otherwise give no candidate.
        """
        ctx = self._context(rng, None, stage, protected)
        rewrites = [*LINE_REWRITES, ("phrase_swap", _swap_phrase_in_line),
                    *(EXTENDED_LINE_REWRITES if stage >= 1 else ()),
                    *(THIRD_LINE_REWRITES if stage >= 2 else ()),
                    *(FOURTH_LINE_REWRITES if stage >= 3 else ()),
                    *(FALLBACK_LINE_REWRITES if stage >= _FALLBACK else ())]  # fmt: skip
        rng.shuffle(rewrites)
        for _, rewrite in rewrites:
            if self._changed_enough(original, "\n".join(lines)):
                break
            lines = rewrite(lines, ctx) or lines
        return lines

    def _changed_enough(self, original: str, text: str) -> bool:
        """At least two words (fewer if the template has fewer) changed and the word distance reaches ``min_change``."""
        needed = min(2, len([w for w in _words(original) if not w.startswith("{")]))
        return _changed_words(original, text) >= needed and _distance(original, text) >= self.min_change

    def _rewrite_sentences(self, lines: list[str], main_rewrite: str | None, lead: bool, rng: random.Random,
                           stage: int = 0, protected: frozenset[str] = frozenset()) -> list[str]:  # fmt: skip
        """Apply the planned rewrite to the first instruction sentence and random ones to the others.

        Instruction lines are rewritten whole. In a line that mixes words and slots, only the complete
        sentences before the first slot are ("Given that, is this true? {hypothesis}"); a clause that
        introduces the slot ("Summarize this: {text}") only gets a phrase swap or "Please". In the third
        pass a planned lead-in goes to the first sentence that takes one, not only to the first sentence
        ("Here is a premise. Please tell me if ...").
        """
        out, first = list(lines), True
        for line_no, line in enumerate(lines):
            parts = _sentence_parts(line)
            if parts is None:
                continue
            indent, sentences, partial, rest = parts
            mixed = _line_kind(line) == _MIXED
            ctx = self._context(rng, None if mixed else _input_side(lines, line_no), stage, protected)
            for index, sentence in enumerate(sentences):
                name = main_rewrite if first else rng.choice([None, None, "phrase"] + [n for n, _ in _STRUCTURAL])
                if ctx.third and lead:
                    sentences[index], lead = self._rewrite_and_lead(sentence, name, ctx)
                else:
                    sentences[index] = self._rewrite_one(sentence, name, lead and first, ctx)
                first = False
            if partial:
                name = main_rewrite if first and main_rewrite in ("phrase", None) else rng.choice([None, "phrase"])
                wants = lead and (first or ctx.third) and _is_imperative(partial, ctx.lex)
                partial = self._rewrite_one(partial, name, wants, ctx)
                first = False
            out[line_no] = indent + " ".join(sentences + ([partial] if partial else [])) + rest
        return out

    @classmethod
    def _rewrite_and_lead(cls, sentence: str, name: str | None, ctx: _Context) -> tuple[str, bool]:
        """Rewrite ``sentence``, with a lead-in if one fits; also whether a lead-in is still wanted."""
        sentence = cls._rewrite_one(sentence, name, False, ctx)
        led = _lead_in(sentence, ctx)
        return (sentence, True) if led is None else (led, False)

    @staticmethod
    def _rewrite_one(sentence: str, name: str | None, lead: bool, ctx: _Context) -> str:
        if name == "phrase":
            sentence = _phrase_swap(sentence, ctx) or sentence
        elif name is not None:
            sentence = _rewrite_with_intro(dict(_STRUCTURAL)[name], sentence, ctx) or sentence
        if lead:
            sentence = _lead_in(sentence, ctx) or sentence
        return sentence

    def _acceptable(self, template: Template, text: str, chosen: Sequence[str], protected: Sequence[str],
                    fallback: bool = False) -> bool:  # fmt: skip
        """Whether ``text`` may join ``chosen``; in the fallback pass a change the verifier's
        ``too_similar`` gate lets through is enough (:func:`instruction_overlap` below ``fallback_overlap``)."""
        if candidate_problem(template, text, protected) is not None or text in chosen:
            return False
        if fallback:
            if instruction_overlap(template, text) >= self.fallback_overlap:
                return False
        elif not self._changed_enough(template.text, text):
            return False
        return all(_distance(text, other) >= self.min_spread for other in chosen)
