"""The shared word layer answers exactly as the per-stage copies it replaced (issue 14).

The stop-word lists and WordNet lookups feed seeded outputs (the rules paraphraser's candidates, the
perturbation levels, the verifier's fitted combiner), so moving them must not change one answer:

- each word set is pinned by its size and the SHA-256 of its sorted words, both recorded before the move;
- ``wordnet_answers.json`` holds what the rules paraphraser's ``_Lexicon`` and the lexical diff's own WordNet
  lookups answered for 189 words and 109 pairs before both moved to :class:`coin_data.text.lexicon.Lexicon`
  (the diff's relation tests now in :mod:`coin_data.verify.lexdiff.relations`) (the words are the crafted ones below
  plus a seeded sample of the embedded corpus's template words).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from coin_data.text import words as text_words

ANSWERS = Path(__file__).with_name("wordnet_answers.json")

# (size, sha256 of "\n".join(sorted(words))), recorded before the lists were derived from one base list
# in coin_data.text.words (VERIFY_STOP_WORDS was verify/lexdiff.py's own _STOP).
PINNED_SETS = {
    "STOP_WORDS": (199, "cecccabe38a89c475d9e252f17cc6e3cf38ab138c3a4c15f0a79d49ee22261d5"),
    "FUNCTION_WORDS": (94, "bf3b0710eada8fa8713e56a7396bf5d6513359267937e078d1ae74b5b12f674b"),
    "VERIFY_STOP_WORDS": (113, "cd107fe2b431ce0de7caa09258141093d03826e78fae9caebd6bb5dd3e8ad9b8"),
}


@pytest.mark.parametrize("name", sorted(PINNED_SETS))
def test_word_set_is_unchanged(name):
    words = getattr(text_words, name)
    digest = hashlib.sha256("\n".join(sorted(words)).encode()).hexdigest()
    assert (len(words), digest) == PINNED_SETS[name]


def test_each_consumer_uses_its_set_from_text_words():
    from coin_data.paraphrase.rules import lexical
    from coin_data.perturb import levels
    from coin_data.verify.lexdiff import words as lexdiff_words

    assert lexical._STOP_WORDS is text_words.STOP_WORDS
    assert levels.FUNCTION_WORDS is text_words.FUNCTION_WORDS
    assert lexdiff_words._STOP is text_words.VERIFY_STOP_WORDS
    # the derived lists differ from the base list by the named groups only
    assert text_words.FUNCTION_WORDS - text_words.STOP_WORDS == {"onto", "shall"}
    assert text_words.STOP_WORDS - text_words.VERIFY_STOP_WORDS == text_words._ADDRESS_AND_MODALS | text_words._FILLERS


def _plain(value):
    """Tuples as lists and dict keys as strings, as the JSON file stores them."""
    return json.loads(json.dumps(value, sort_keys=True))


@pytest.fixture(scope="module")
def recorded():
    return json.loads(ANSWERS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def layers():
    from coin_data.text.lexicon import Lexicon, shared_lexicon
    from coin_data.verify.lexdiff.relations import WordRelations

    fresh = Lexicon(shared_lexicon().wordnet)  # empty caches: every answer is computed here
    return fresh, WordRelations(fresh)


def _rules_answers(lex, word: str) -> dict:
    entry = {"pos_weights": lex.pos_weights(word), "dominant_pos": lex.dominant_pos(word),
             "base": {p: lex.base(word, p) for p in "nvar"}, "is_base_verb": lex.is_base_verb(word),
             "is_nounish": lex.is_nounish(word), "simple_past": lex.simple_past(word),
             "form_of": {p: lex.form_of(word, p) for p in "nvar"}}  # fmt: skip
    pos = entry["dominant_pos"]
    if pos:
        base = lex.base(word, pos)
        entry["synonyms"] = lex.synonyms(base, pos) if base else None
        entry["inflect"] = {f: lex.inflect(word, pos, f) for f in ("base", "plural", "3sg", "past", "ing")}
    return _plain(entry)


def _verify_answers(rel, word: str) -> dict:
    return _plain({
        "forms": rel.lexicon.forms(word), "synsets": [s.name() for s in rel.lexicon.senses(word)],
        "antonyms": sorted(rel.lexicon.lemma_antonyms(word)), "nounish": rel.nounish(word),
        "verbish": rel.verbish(word) if word.isalpha() else None, "gloss": sorted(rel.gloss(word)),
        "base": rel.base(word), "is_content": rel.is_content(word),
    })  # fmt: skip


def _pair_answers(rel, x: str, y: str) -> dict:
    return _plain({
        "related": rel.related(x, y), "antonyms": rel.antonyms(x, y), "synonyms": rel.synonyms(x, y),
        "gloss_related": rel.gloss_related(x, y), "compound_related": rel.compound_related(x, f"{y}_mail"),
        "split_related": rel.split_related(x, x[:3], y),
    })  # fmt: skip


def test_rules_lexicon_answers_as_recorded(layers, recorded):
    lex, _ = layers
    wrong = {w: _rules_answers(lex, w) for w, want in recorded["rules"].items() if _rules_answers(lex, w) != want}
    assert not wrong
    assert len(recorded["rules"]) == 189


def test_lexdiff_word_lookups_answer_as_recorded(layers, recorded):
    _, diff = layers
    wrong = {w: _verify_answers(diff, w) for w, want in recorded["verify"].items() if _verify_answers(diff, w) != want}
    assert not wrong


def test_lexdiff_word_relations_answer_as_recorded(layers, recorded):
    _, diff = layers
    answers = {key: _pair_answers(diff, *key.split("/")) for key in recorded["pairs"]}
    assert {k: v for k, v in answers.items() if v != recorded["pairs"][k]} == {}
    assert len(answers) == 109
