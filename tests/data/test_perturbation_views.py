"""`coin-data build --perturbation-views`: seeded perturbations of each template as extra positive rows."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from click.testing import CliRunner

from coin_data import schema
from coin_data.build import BuildConfig, run_build
from coin_data.cli import main
from coin_data.hub.layout import write_dataset
from coin_data.sources import load_embedded_corpus
from coin_data.hub.stats import dataset_stats
from coin_data.templates import parse_template, render_options, slot_lock_violation
from coin_data.perturb.training_views import VIEW_LEVELS, plan_perturbation_views

# One small build (one task, one paraphrase per template) serves every test of this file.
CONFIG = dict(tasks=("sentiment",), paraphrases_per_template=1, seed=0, perturbation_views=VIEW_LEVELS)
LABELS = ("positive", "negative")


@pytest.fixture(scope="module")
def built():
    return run_build(BuildConfig(**CONFIG))


@pytest.fixture(scope="module")
def rows(built):
    """Every row of both splits, with its split name under ``"split"``."""
    return [{**row, "split": split} for split, ds in built.dataset.items() for row in ds]


def _views(rows, level=None):
    return [r for r in rows if r[schema.PARAPHRASE_SOURCE].startswith("perturb:")
            and (level is None or r[schema.PARAPHRASE_SOURCE] == f"perturb:{level}")]  # fmt: skip


def _words(text: str) -> Counter:
    return Counter(w.lower() for w in re.findall(r"[A-Za-z]+", text))


# --- rows -----------------------------------------------------------------------------------


@pytest.mark.parametrize("level", VIEW_LEVELS)
def test_each_level_adds_one_row_per_instance_of_each_perturbed_template(built, rows, level):
    views = _views(rows, level)
    instances = len(load_embedded_corpus(["sentiment"]).instances["sentiment"])
    assert views and len(views) == built.stats.perturbation_rows[level]
    assert len(views) == built.stats.perturbation_templates[level] * instances
    assert built.stats.perturbation_templates[level] + built.stats.perturbation_skipped[level] == 6
    assert {r[schema.PARAPHRASE_ID] for r in views} == {f"perturb-{level}"}
    per_prompt = Counter((r[schema.INSTANCE_ID], r[schema.TEMPLATE_ID]) for r in views)
    assert set(per_prompt.values()) == {1}
    assert len({r[schema.ID] for r in rows}) == len(rows)


def test_paraphrase_rows_are_unchanged_by_the_option(built):
    plain = run_build(BuildConfig(**{**CONFIG, "perturbation_views": ()}))
    for split, ds in built.dataset.items():
        paraphrase_rows = ds.filter(lambda s: not s.startswith("perturb:"), input_columns=schema.PARAPHRASE_SOURCE)
        assert paraphrase_rows.to_list() == plain.dataset[split].to_list()
    assert plain.stats.perturbation_rows == Counter()


def test_views_keep_slots_options_block_and_label_words(rows):
    options_block = render_options(LABELS)
    for row in _views(rows):
        fields = json.loads(row[schema.FIELDS])
        original = parse_template(row[schema.ORIGINAL_TEMPLATE])
        view = parse_template(row[schema.PARAPHRASED_TEMPLATE])
        perturbed = row[schema.PARAPHRASED]
        assert perturbed != row[schema.ORIGINAL] and view.text != original.text
        assert slot_lock_violation(original, view.text) is None
        assert all(value in perturbed for value in fields.values())
        assert perturbed.endswith(options_block) and perturbed.count(options_block) == 1
        assert view.invert(perturbed, LABELS) == fields
        for label in LABELS:  # label words are never edited, added or removed
            assert _words(view.literal_text)[label] == _words(original.literal_text)[label]


def test_views_share_instance_split_and_hard_negative_with_the_paraphrase_rows(rows):
    by_prompt = {}
    for row in rows:
        by_prompt.setdefault((row[schema.INSTANCE_ID], row[schema.TEMPLATE_ID]), []).append(row)
    checked = 0
    for group in by_prompt.values():
        paraphrases = [r for r in group if not r[schema.PARAPHRASE_SOURCE].startswith("perturb:")]
        if not paraphrases:
            continue
        for view in _views(group):
            for name in ("split", schema.ORIGINAL, schema.TARGETS, schema.NEGATIVE, schema.NEGATIVE_TARGETS,
                         schema.NEGATIVE_SOURCE, schema.NEGATIVE_SIMILARITY):
                assert view[name] == paraphrases[0][name], name
            checked += 1
    assert checked > 100
    splits = {split: {r[schema.INSTANCE_ID] for r in rows if r["split"] == split} for split in ("train", "validation")}
    assert splits["train"] and splits["validation"] and not splits["train"] & splits["validation"]


def test_views_are_scored_like_paraphrases(built, rows):
    for row in _views(rows):
        assert 0.0 < row[schema.SIMILARITY] <= 1.0
    word = [r[schema.SIMILARITY] for r in _views(rows, "word")]
    assert min(word) >= 0.85 - 1e-6  # the word level keeps only swaps at or above its floor
    assert set(built.stats.perturbation_similarities) == set(VIEW_LEVELS)


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(built, tmp_path):
    first = write_dataset(built, tmp_path / "a")
    second = write_dataset(run_build(BuildConfig(**CONFIG)), tmp_path / "b")
    for path in sorted(first.rglob("*.parquet")):
        assert path.read_bytes() == (second / path.relative_to(first)).read_bytes(), path.name


def test_another_seed_draws_other_views(built, cache):
    tasks = load_embedded_corpus(["sentiment"]).tasks.values()
    again = plan_perturbation_views(tasks, ("character",), 0, cache)
    other = plan_perturbation_views(tasks, ("character",), 1, cache)
    texts = {key: views[0].paraphrase.text for key, views in again.views.items()}
    rows_seed_0 = {(r[schema.TASK], r[schema.TEMPLATE_ID]): r[schema.PARAPHRASED_TEMPLATE]
                   for r in _views([*built.dataset["train"]], "character")}  # fmt: skip
    assert texts == rows_seed_0
    assert texts != {key: views[0].paraphrase.text for key, views in other.views.items()}


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [("typo",), "character,typo", ("clean",)])
def test_unknown_level_is_an_error_naming_it_and_the_choices(levels):
    with pytest.raises(ValueError, match=r"unknown perturbation view '(typo|clean)' \(choose from character, word, sentence\)"):
        BuildConfig(tasks=("sentiment",), perturbation_views=levels)


def test_semantic_level_points_to_the_paraphrases():
    with pytest.raises(ValueError, match="paraphrases already are the semantic views"):
        BuildConfig(perturbation_views=("semantic",))


def test_cli_rejects_an_unknown_level_before_writing_anything(tmp_path):
    out = tmp_path / "coin"
    result = CliRunner().invoke(main, ["build", "--tasks", "sentiment", "--perturbation-views", "character,typo",
                                       "--out", str(out), "-q"])
    assert result.exit_code != 0
    assert "unknown perturbation view 'typo'" in result.output and "character, word, sentence" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


# --- the card, stats, mining and the trainer ---------------------------------------------------


def test_card_reports_levels_and_rows(built, tmp_path):
    folder = write_dataset(built, tmp_path / "coin")
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "## Perturbation views" in card
    assert "--perturbation-views character,word,sentence " in card
    for level in VIEW_LEVELS:
        line = next(line for line in card.splitlines() if line.startswith(f"| {level} | `perturb:{level}` |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert int(cells[2]) == built.stats.perturbation_templates[level]
        assert int(cells[4]) == built.stats.perturbation_rows[level]
    report = dataset_stats(folder)
    assert report["views"] == {f"perturb:{level}": built.stats.perturbation_rows[level] for level in sorted(VIEW_LEVELS)}


def test_card_has_no_views_section_without_the_option():
    from coin_data.hub.card import views_option, views_section

    assert views_section(None, ()) == [] and views_option(BuildConfig()) == ""


def test_mining_guard_compares_with_paraphrases_only(rows):
    from coin_data.hub.remine import _corpus_from_rows

    splits = {"train": [r for r in rows if r["split"] == "train"]}
    _, kept, _, _ = _corpus_from_rows(splits, "folder")
    assert sum(map(len, kept.values())) == len([r for r in splits["train"] if r[schema.PARAPHRASE_SOURCE] == "rules"])


def test_trainer_encodes_views_as_views_of_the_same_instance(built, tiny_tokenizer):
    from coin_train.data import GROUP_ID, encode_dataset

    train = built.dataset["train"]
    encoded = encode_dataset(train, tiny_tokenizer, max_length=512)
    assert len(encoded) == len(train)
    groups = {}
    for row, group in zip(train, encoded[GROUP_ID]):
        groups.setdefault(row[schema.INSTANCE_ID], set()).add(group)
    assert all(len(ids) == 1 for ids in groups.values())  # paraphrase and view rows of an instance: one group
    views = [i for i, s in enumerate(train[schema.PARAPHRASE_SOURCE]) if s.startswith("perturb:")]
    assert all(encoded[i]["paraphrase_input_ids"] != encoded[i]["original_input_ids"] for i in views[:50])
