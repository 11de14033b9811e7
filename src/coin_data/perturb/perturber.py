"""The :class:`Perturber`: one seeded perturbation of a template per level, slots and options kept.

Example:
    >>> p = Perturber(PerturbConfig(seed=0))
    >>> out = p.perturb("Review: {review}\\nIs this review positive or negative?\\n{options_}", "sentence",
    ...                 protected_words=["positive", "negative"])
    >>> out.method, out.text.startswith("Review: {review}\\nIs this review positive or negative? ")
    ('checklist', True)
    >>> len(out.text.split("\\n")[1].split()[-1])
    10
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from coin_data.perturb.levels import (
    CHARACTER,
    FUNCTION_WORDS,
    SEMANTIC,
    SENTENCE,
    WORD,
    EditableWord,
    Perturbation,
    PerturbationError,
    PerturbConfig,
    check_level,
    editable_words,
    perturb_character,
    perturb_sentence,
    perturbation_rng,
    replace_spans,
)
from coin_data.templates import Template, TemplateError, parse_template, slot_lock_violation
from coin_data.text.lexicon import shared_lexicon
from coin_data.text.words import label_word_set as protected_word_set
from coin_data.text.words import match_case

# --- the perturber ---------------------------------------------------------------------------------


class Perturber:
    """Make seeded perturbations of instructions; loads WordNet, the embedder and paraphraser on first need.

    Args:
        config: the settings of all levels.
        embedder: an :class:`coin_data.verify.embedding.Embedder` (default: the bundled sentence-transformers model).
        paraphraser: a :class:`coin_data.paraphrase.Paraphraser` (default: built from ``config.paraphraser``).
        embedding_cache: an :class:`coin_data.verify.embedding.EmbeddingCache` to share (a build passes its own, so no
            string is embedded twice); ``embedder`` is then ignored.

    Example:
        >>> p = Perturber(PerturbConfig(seed=3))
        >>> a = p.perturb("{text}\\nClassify the topic of this article.\\n{options_}", "character")
        >>> a.text == Perturber(PerturbConfig(seed=3)).perturb(a.original, "character").text
        True
    """

    def __init__(self, config: PerturbConfig | None = None, embedder=None, paraphraser=None,
                 embedding_cache=None) -> None:
        self.config = config or PerturbConfig()
        self._embedder = embedder
        self._paraphraser = paraphraser
        self._cache = embedding_cache
        self._lexicon = None

    # -- lazily loaded resources --------------------------------------------------------------------
    @property
    def embedding_cache(self):
        if self._cache is None:
            from coin_data.verify.embedding import EmbeddingCache, SentenceTransformerEmbedder

            self._cache = EmbeddingCache(self._embedder or SentenceTransformerEmbedder(self.config.embedding_model))
        return self._cache

    @property
    def paraphraser(self):
        if self._paraphraser is None:
            from coin_data.paraphrase import get_paraphraser

            self._paraphraser = get_paraphraser(self.config.paraphraser)
        return self._paraphraser

    @property
    def lexicon(self):
        """WordNet synonyms and inflection: the process-wide :func:`~coin_data.text.lexicon.shared_lexicon`."""
        if self._lexicon is None:
            self._lexicon = shared_lexicon()
        return self._lexicon

    # -- public API ---------------------------------------------------------------------------------
    def perturb(self, text: str | Template, level: str, protected_words: Sequence[str] = (), variant: int = 0) -> Perturbation:
        """Perturb one instruction.

        Args:
            text: an instruction template (``{slots}`` allowed) or a plain instruction.
            level: ``character``, ``word``, ``sentence`` or ``semantic``.
            protected_words: label words that must stay as they are.
            variant: which variant to draw; different variants of one text are drawn independently.

        Returns:
            A :class:`Perturbation`; ``text`` is ``None`` (with a ``reason``) when the level cannot apply.
        """
        return self.perturb_all([text], level, protected_words, variants=[variant])[0]

    def perturb_all(self, texts: Sequence[str | Template], level: str, protected_words: Sequence[str] = (),
                    variants: Sequence[int] | None = None) -> list[Perturbation]:  # fmt: skip
        """Perturb many instructions at one level; item ``i`` is drawn as variant ``variants[i]`` (default ``i``).

        Semantic requests go to the paraphraser in one call, and embeddings are computed in batches.

        Args:
            texts: instruction templates or plain instructions.
            level: a perturbation level.
            protected_words: label words that must stay as they are (for every text).
            variants: variant index of each text (default: its position).

        Returns:
            One :class:`Perturbation` per text, in order.

        Raises:
            PerturbationError: unknown level, or a text that is not a valid template.
        """
        check_level(level)
        templates = [self._template(t, i) for i, t in enumerate(texts)]
        variants = list(range(len(templates))) if variants is None else list(variants)
        if len(variants) != len(templates):
            raise PerturbationError(f"got {len(variants)} variant indices for {len(templates)} instructions")
        if level == SEMANTIC:
            return self._semantic(templates, protected_words, variants)
        out = []
        for template, variant in zip(templates, variants):
            rng = perturbation_rng(self.config.seed, level, variant, template.text)
            if level == CHARACTER:
                result = perturb_character(template.text, rng, self.config, protected_words)
            elif level == SENTENCE:
                result = perturb_sentence(template.text, rng, self.config, protected_words, variant)
            else:
                result = self._word(template.text, rng, protected_words)
            out.append(_with_variant(result, variant))
        for result in out:  # defence in depth: no level may ever change a slot
            if result.ok and slot_lock_violation(parse_template(result.original), result.text):
                raise AssertionError(f"{level} perturbation changed a slot: {result.text!r}")
        return out

    # -- levels that need models ------------------------------------------------------------------------
    def _similarity(self, original: str, candidates: Sequence[str]) -> list[float]:
        masked = [parse_template(original).masked_text()] + [parse_template(c).masked_text() for c in candidates]
        scores = self.embedding_cache.cosine([masked[0]] * len(candidates), masked[1:])
        return [float(s) for s in scores]

    def _synonyms(self, word: str) -> list[str]:
        lex = self.lexicon
        pos = lex.dominant_pos(word)
        if pos is None:
            return []
        form = lex.form_of(word, pos)
        if form is None:
            return []
        base, shape = form
        found = []
        for synonym in lex.synonyms(base, pos):
            inflected = lex.inflect(synonym, pos, shape)
            if inflected and inflected.lower() != word.lower():
                found.append(match_case(inflected, word))
        return list(dict.fromkeys(found))

    def _word(self, text: str, rng: random.Random, protected_words: Sequence[str]) -> Perturbation:
        config = self.config
        words = [w for w in editable_words(text, protected_words, config.min_word_length)
                 if "'" not in w.text and w.text.lower() not in FUNCTION_WORDS]  # fmt: skip
        rng.shuffle(words)
        protected = protected_word_set(protected_words)
        accepted: list[tuple[EditableWord, str]] = []
        similarity = None
        for word in words:
            if len(accepted) == config.max_word_swaps:
                break
            options = [s for s in self._synonyms(word.text) if not protected_word_set([s]) & protected]
            if not options:
                continue
            candidates = [replace_spans(text, accepted + [(word, option)]) for option in options]
            scores = self._similarity(text, candidates)
            best = max(range(len(options)), key=lambda i: (scores[i], -i))
            if scores[best] >= config.min_similarity:
                accepted.append((word, options[best]))
                similarity = scores[best]
        if not accepted:
            reason = f"no synonym swap kept the similarity >= {config.min_similarity}" if words else "no editable content word"
            return Perturbation(WORD, text, None, "synonym", reason=reason)
        edits = tuple(f"{w.text} -> {new}" for w, new in sorted(accepted, key=lambda item: item[0].start))
        return Perturbation(WORD, text, replace_spans(text, accepted), "synonym", edits, similarity)

    def _semantic(self, templates: Sequence[Template], protected_words: Sequence[str], variants: Sequence[int]) -> list[Perturbation]:
        from coin_data.paraphrase import ParaphraseRequest
        from coin_data.verify.verifier import VerifyConfig, verify_candidates

        config = self.config
        labels = tuple(dict.fromkeys([*protected_words, *protected_word_set(protected_words)]))
        requests = [
            ParaphraseRequest(t, k=config.candidates, protected_words=labels,
                              seed=perturbation_rng(config.seed, SEMANTIC, v, t.text).randrange(2**31))
            for t, v in zip(templates, variants)
        ]  # fmt: skip
        results = self.paraphraser.paraphrase(requests)
        pairs = [(r.request.template, c) for r in results for c in r.candidates]
        verdicts = iter(verify_candidates(pairs, self.embedding_cache, VerifyConfig(threshold=config.semantic_threshold)))
        out = []
        for result, variant in zip(results, variants):
            method = f"paraphrase:{result.source}"
            original = result.request.template.text
            checked = [(c, next(verdicts)) for c in result.candidates]
            kept = [(c, v) for c, v in checked if v.kept]
            if kept:
                text, verdict = kept[0]
                out.append(Perturbation(SEMANTIC, original, text, method, ("reworded",), verdict.similarity, variant=variant))
            else:
                reason = result.failure or "; ".join(f"{v.verdict}: {v.reason}" for _, v in checked) or "no candidate"
                out.append(Perturbation(SEMANTIC, original, None, method, reason=f"no verified rewording ({reason})",
                                        variant=variant))  # fmt: skip
        return out

    @staticmethod
    def _template(text: str | Template, index: int) -> Template:
        if isinstance(text, Template):
            return text
        if not isinstance(text, str) or not text.strip():
            raise PerturbationError(f"instruction {index}: empty instruction")
        try:
            return parse_template(text, template_id=str(index))
        except TemplateError as err:
            raise PerturbationError(f"instruction {index}: {err}") from None


def _with_variant(result: Perturbation, variant: int) -> Perturbation:
    if result.variant == variant:
        return result
    return Perturbation(result.level, result.original, result.text, result.method, result.edits,
                        result.similarity, result.reason, variant)  # fmt: skip


def perturb_instruction(text: str, level: str, seed: int = 0, protected_words: Sequence[str] = (), variant: int = 0) -> str | None:
    """Perturb one instruction with default settings and return the text (``None`` if not possible).

    Args:
        text: instruction template or plain instruction.
        level: ``character``, ``word``, ``sentence`` or ``semantic``.
        seed: the seed.
        protected_words: label words to keep.
        variant: variant index.

    Returns:
        The perturbed text, or ``None``.

    Example:
        >>> perturb_instruction("{review}\\nIs this review positive?", "sentence", variant=1)
        '{review}\\nIs this review positive? and true is true'
    """
    return Perturber(PerturbConfig(seed=seed)).perturb(text, level, protected_words, variant).text
