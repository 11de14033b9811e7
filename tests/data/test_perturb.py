"""Perturbations: deterministic under the seed, change the text as their level says, keep slots and labels."""

from __future__ import annotations

import json
import random
import re
import string

import pytest
from click.testing import CliRunner

from coin_data.cli import main
from coin_data.perturb import (
    CHAR_OPERATIONS,
    PERTURBATION_LEVELS,
    PerturbationError,
    PerturbConfig,
    Perturber,
    editable_words,
    perturb_file,
    typo,
)
from coin_data.sources import CLASSIFICATION, load_embedded_corpus
from coin_data.templates import parse_template, slot_lock_violation

SENTIMENT = "Review: {review}\nIs this review positive or negative? Answer with one word.\n{options_}"
LABELS = ("positive", "negative")


@pytest.fixture(scope="module")
def perturber(embedder):
    return Perturber(PerturbConfig(seed=0), embedder=embedder)


@pytest.fixture(scope="module")
def heldout():
    """(template, options) for every held-out instruction of the embedded classification tasks."""
    corpus = load_embedded_corpus()
    return [(t, spec.options) for spec in corpus.tasks.values() if spec.kind == CLASSIFICATION for t in spec.heldout_templates]


# The word and semantic levels need WordNet lookups and embeddings: on 2 shared cores they are checked on
# the tasks whose labels are multi-word or look like instruction words (nli, spam, grammar).
MODEL_LEVEL_TASKS = ("nli", "spam", "grammar")


def _words(text: str) -> list[str]:
    return re.findall(r"\{[^{}]*\}|[A-Za-z0-9']+", text)


def _levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


# --- determinism -----------------------------------------------------------------------------------


@pytest.mark.parametrize("level", PERTURBATION_LEVELS)
def test_same_seed_same_text_and_fresh_perturbers_agree(perturber, embedder, level):
    templates = list(load_embedded_corpus(["spam"]).tasks["spam"].heldout_templates)[:2]
    first = [p.text for p in perturber.perturb_all(templates, level, ["spam", "not spam"])]
    again = [p.text for p in Perturber(PerturbConfig(seed=0), embedder=embedder).perturb_all(templates, level, ["spam", "not spam"])]
    assert first == again and any(first)
    # Item order does not matter: each text is drawn from (seed, level, variant, text) only.
    reversed_run = Perturber(PerturbConfig(seed=0), embedder=embedder).perturb_all(
        templates[::-1], level, ["spam", "not spam"], variants=list(range(len(templates)))[::-1])
    assert [p.text for p in reversed_run][::-1] == first


@pytest.mark.parametrize("level", ["character", "sentence"])
def test_another_seed_or_variant_draws_another_perturbation(level):
    texts = {Perturber(PerturbConfig(seed=seed)).perturb(SENTIMENT, level, LABELS, variant=0).text for seed in range(4)}
    assert len(texts) > 1
    variants = {Perturber(PerturbConfig(seed=0)).perturb(SENTIMENT, level, LABELS, variant=v).text for v in (0, 2, 4)}
    assert len(variants) > 1


# --- what each level does --------------------------------------------------------------------------


def test_typo_operations_each_make_one_edit():
    rng = random.Random(0)
    for operation in CHAR_OPERATIONS:
        for word in ("review", "Sentiment", "aa", "ok"):
            edited = typo(word, operation, rng)
            assert edited != word and _levenshtein(word, edited) <= 2  # a swap is two substitutions
            if operation in ("delete", "insert"):
                assert abs(len(edited) - len(word)) == 1


def test_character_level_edits_a_few_instruction_words_by_one_typo_each(perturber):
    result = perturber.perturb(SENTIMENT, "character", LABELS)
    before, after = _words(SENTIMENT), _words(result.text)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and 1 <= len(changed) <= PerturbConfig().char_words
    for a, b in changed:
        assert _levenshtein(a, b) <= 2 and a.lower() not in LABELS + ("review",)
    assert result.edits == tuple(f"{a} -> {b}" for a, b in changed)


def test_word_level_swaps_synonyms_and_keeps_the_meaning_close(perturber):
    config = PerturbConfig()
    result = perturber.perturb("{text}\nDetermine the subject of this newspaper report.\n{options_}", "word")
    assert result.ok and result.method == "synonym" and result.similarity >= config.min_similarity
    assert 1 <= len(result.edits) <= config.max_word_swaps
    from nltk.corpus import wordnet as wn

    for edit in result.edits:  # old and new word share a WordNet sense
        old, new = (side.lower().replace(" ", "_") for side in edit.split(" -> "))
        assert set(wn.synsets(wn.morphy(old) or old)) & set(wn.synsets(wn.morphy(new) or new)), edit


def test_word_level_rejects_swaps_below_the_similarity_threshold(embedder):
    strict = Perturber(PerturbConfig(min_similarity=1.0), embedder=embedder)
    result = strict.perturb("{text}\nDetermine the subject of this newspaper report.\n{options_}", "word")
    assert not result.ok and "similarity" in result.reason


def test_sentence_level_appends_a_random_token_or_a_tautology_to_the_instruction(perturber):
    checklist = perturber.perturb(SENTIMENT, "sentence", LABELS, variant=0)
    stresstest = perturber.perturb(SENTIMENT, "sentence", LABELS, variant=1)
    line = "Is this review positive or negative? Answer with one word."
    token = checklist.text.split("\n")[1].removeprefix(line + " ")
    assert checklist.method == "checklist" and len(token) == 10 and set(token) <= set(string.ascii_letters + string.digits)
    assert checklist.text == SENTIMENT.replace(line, f"{line} {token}")
    assert stresstest.method == "stresstest" and stresstest.text == SENTIMENT.replace(line, f"{line} and true is true")


def test_sentence_level_inserts_before_the_input_when_the_instruction_line_ends_with_it(perturber):
    text = "{premise}\nBased on that, is this also true? {hypothesis}\n{options_}"
    result = perturber.perturb(text, "sentence", variant=1)
    assert result.text == "{premise}\nBased on that, is this also true? and true is true {hypothesis}\n{options_}"


def test_semantic_level_rewords_and_is_verified_equivalent(perturber):
    result = perturber.perturb(SENTIMENT, "semantic", LABELS)
    assert result.ok and result.method == "paraphrase:rules"
    assert result.similarity >= PerturbConfig().semantic_threshold and result.text != SENTIMENT


# --- what no level touches ------------------------------------------------------------------------------


@pytest.mark.parametrize("level", PERTURBATION_LEVELS)
def test_slots_options_block_label_words_and_input_labels_are_kept(perturber, heldout, level):
    made = 0
    if level in ("word", "semantic"):
        heldout = [(t, options) for t, options in heldout if t.task in MODEL_LEVEL_TASKS]
    for template, options in heldout:
        result = perturber.perturb(template, level, options, variant=made)
        if not result.ok:
            assert result.reason
            continue
        made += 1
        assert slot_lock_violation(template, result.text) is None
        candidate = parse_template(result.text)
        assert candidate.render({s: "X" for s in template.field_slots}, options).count("OPTIONS:\n- ") == 1
        for option in options:  # label words keep their count (none edited or removed)
            pattern = rf"(?<![A-Za-z]){re.escape(option)}(?![A-Za-z])"
            assert len(re.findall(pattern, result.text, re.IGNORECASE)) == len(re.findall(pattern, template.text, re.IGNORECASE))
        if level != "semantic":  # rewording may move lines; the other levels keep input label lines as they are
            labels = [line for line in template.text.split("\n") if re.fullmatch(r"[^{}:]{1,40}: *\{\w+\}", line)]
            assert all(line in result.text.split("\n") for line in labels)
    assert made >= 0.75 * len(heldout)


def test_editable_words_skip_slots_labels_and_input_label_lines():
    words = [w.text for w in editable_words("Premise: {premise}\nIs it {{really}} true? Say yes or no.\n{options_}", ["yes", "no"])]
    assert words == ["Is", "it", "really", "true", "Say", "or"]


def test_text_without_instruction_words_is_reported_not_perturbed(perturber):
    for level in ("character", "sentence", "word"):
        result = perturber.perturb("{text}\n{options_}", level)
        assert not result.ok and result.reason


def test_unknown_level_and_bad_templates_are_errors(perturber):
    with pytest.raises(PerturbationError, match="unknown perturbation level 'typos'"):
        perturber.perturb(SENTIMENT, "typos")
    with pytest.raises(PerturbationError, match="malformed braces"):
        perturber.perturb("Is {this positive?", "character")
    with pytest.raises(ValueError, match="char_operations"):
        PerturbConfig(char_operations=("shout",))


# --- the file interface and CLI ---------------------------------------------------------------------


def test_perturb_file_writes_one_row_per_instruction_and_level(tmp_path, perturber):
    src = tmp_path / "in.jsonl"
    rows = [{"instruction": SENTIMENT, "options": list(LABELS), "note": 1}, {"instruction": "{text}\n{options_}"}]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    counts = perturb_file(src, tmp_path / "out.jsonl", ["character", "sentence"], perturber=perturber)
    assert counts == {"character": (1, 2), "sentence": (1, 2)}
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(r["level"], r["variant"], r.get("note")) for r in out] == [
        ("character", 0, 1), ("sentence", 0, 1), ("character", 1, None), ("sentence", 1, None)]
    assert out[2]["perturbed"] is None and out[2]["reason"]


def test_perturb_cli_is_seeded_and_reports_bad_rows(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"instruction": SENTIMENT, "options": list(LABELS)}) + "\n")
    outputs = []
    for _ in range(2):
        result = CliRunner().invoke(main, ["perturb", str(src), "--level", "sentence", "--seed", "7", "--out", str(tmp_path / "o.jsonl")])
        assert result.exit_code == 0, result.output
        outputs.append((tmp_path / "o.jsonl").read_text())
    assert outputs[0] == outputs[1] and "sentence 1/1" in result.output
    src.write_text('{"instruction": "Is {this positive?"}\n')
    result = CliRunner().invoke(main, ["perturb", str(src), "--level", "character"])
    assert result.exit_code == 1 and f"{src}:1: field 'instruction'" in result.output
