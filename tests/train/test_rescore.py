"""Rank scoring with a bfloat16 screen and float32 rescoring of the close calls (ScoringConfig.rescore_margin)."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from click.testing import CliRunner

from coin_train.cli import main
from coin_train.evaluate import (
    ScoringConfig,
    bfloat16_screen,
    predict_suite,
    rank_classify,
    rank_scores,
    score_margins,
    screened_scores,
)
from coin_train.prompt_format import PromptFormat
from coin_train.suites import SuiteConfig, build_suite

OPENINGS = ["Decide if the following review is positive or negative.\n", "Is this review positive or negative? "]
REVIEWS = ["The meal was awful.", "A lovely, great film!", "Dull and boring and poor, the book was not good.",
           "Great.", "Not bad at all, I would go again.", "The plot made no sense and the acting was worse."]
TEXTS = [opening + review for opening in OPENINGS for review in REVIEWS]
GROUPS = [number for number in range(len(OPENINGS)) for _ in REVIEWS]
OPTIONS = ["positive", "negative", "not sure at all"]


@pytest.fixture(scope="module")
def tiny(make_tiny_model, tiny_tokenizer):
    return make_tiny_model(seed=1).eval(), tiny_tokenizer


@pytest.fixture(scope="module")
def encoded(tiny):
    _, tok = tiny
    fmt = PromptFormat()
    return fmt.encode_prompts(tok, TEXTS), fmt.encode_targets(tok, OPTIONS), tok.pad_token_id


def test_score_margins_are_the_lead_of_the_best_option_over_the_second():
    scores = torch.tensor([[-4.0, -1.5, -2.0], [-3.0, -3.0, -9.0], [-0.5, -7.0, -6.0]])
    assert score_margins(scores).tolist() == [0.5, 0.0, 5.5]
    assert score_margins(torch.tensor([[-1.0], [-2.0]])).tolist() == [math.inf, math.inf]  # nothing to decide


def test_an_infinite_margin_rescores_every_prompt_and_gives_the_float32_scores_exactly(tiny, encoded):
    model, tok = tiny
    prompts, options, pad = encoded
    config = ScoringConfig(batch_size=4, rescore_margin=math.inf)
    screen = bfloat16_screen(model)
    scores = screened_scores(model, screen, prompts, options, pad, config, GROUPS)
    assert torch.equal(scores, rank_scores(model, prompts, options, pad, ScoringConfig(batch_size=4), GROUPS))
    assert (screen.screened, screen.rescored) == (len(TEXTS), len(TEXTS))
    float32 = rank_classify(model, tok, PromptFormat(), TEXTS, OPTIONS, ScoringConfig(batch_size=4), GROUPS)
    assert rank_classify(model, tok, PromptFormat(), TEXTS, OPTIONS, config, GROUPS) == float32
    assert next(model.parameters()).dtype == torch.float32  # the model under test is left as it was


def test_a_finite_margin_rescores_exactly_the_close_calls_of_the_bfloat16_screen(tiny, encoded):
    model, _ = tiny
    prompts, options, pad = encoded
    half = copy.deepcopy(model).to(torch.bfloat16)
    bf16 = rank_scores(half, prompts, options, pad, ScoringConfig(batch_size=4), GROUPS)
    float32 = rank_scores(model, prompts, options, pad, ScoringConfig(batch_size=4), GROUPS)
    assert not torch.equal(bf16, float32)  # bfloat16 rounding shows in the scores
    margin = float(score_margins(bf16).median())
    close = score_margins(bf16) < margin
    assert 0 < int(close.sum()) < len(TEXTS)
    screen = bfloat16_screen(model)
    scores = screened_scores(model, screen, prompts, options, pad, ScoringConfig(batch_size=4, rescore_margin=margin),
                             GROUPS)  # fmt: skip
    assert torch.equal(scores[~close], bf16[~close])  # clear calls keep the screen's scores
    torch.testing.assert_close(scores[close], float32[close], rtol=0, atol=1e-4)  # float32, other batches
    assert (screen.screened, screen.rescored) == (len(TEXTS), int(close.sum()))


def test_without_a_margin_scoring_is_float32_and_a_zero_margin_is_bfloat16_alone(tiny):
    model, tok = tiny
    fmt = PromptFormat()
    half = copy.deepcopy(model).to(torch.bfloat16)
    scores_f32 = rank_classify(model, tok, fmt, TEXTS, OPTIONS, ScoringConfig(batch_size=4), GROUPS)
    expected = rank_classify(half, tok, fmt, TEXTS, OPTIONS, ScoringConfig(batch_size=4), GROUPS)
    screen = bfloat16_screen(model)
    zero = rank_classify(model, tok, fmt, TEXTS, OPTIONS, ScoringConfig(batch_size=4, rescore_margin=0.0), GROUPS,
                         screen=screen)  # fmt: skip
    assert zero == expected and (screen.screened, screen.rescored) == (len(TEXTS), 0)
    assert ScoringConfig().rescore_margin is None
    assert rank_classify(model, tok, fmt, TEXTS, OPTIONS, ScoringConfig(batch_size=4), GROUPS) == scores_f32


def test_predict_suite_counts_the_rescored_prompts_over_all_tasks(tiny):
    model, tok = tiny
    suite = build_suite(SuiteConfig(tasks="sentiment,spam", levels="clean", max_examples=3, max_instructions=2))
    n_prompts = sum(len(t.instructions) * len(t.examples) for t in suite.tasks)
    screen = bfloat16_screen(model)
    rescored = predict_suite(model, tok, PromptFormat(), suite, ScoringConfig(rescore_margin=math.inf), screen=screen)
    assert rescored == predict_suite(model, tok, PromptFormat(), suite, ScoringConfig())
    assert (screen.screened, screen.rescored) == (n_prompts, n_prompts)


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"rescore_margin": -0.5}, "rescore_margin must be >= 0"), ({"rescore_margin": math.nan}, "rescore_margin must be >= 0"),
     ({"rescore_margin": 1.0, "mode": "generate"}, "rank mode only")],
)  # fmt: skip
def test_bad_rescore_settings_are_clear_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        ScoringConfig(**settings)


def test_a_screen_needs_a_float32_model_and_a_margin(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match=r"must be float32 \(it is torch.bfloat16\)"):
        bfloat16_screen(copy.deepcopy(model).to(torch.bfloat16))
    with pytest.raises(ValueError, match="rescore_margin is not set"):
        rank_classify(model, tok, PromptFormat(), TEXTS, OPTIONS, ScoringConfig(), screen=bfloat16_screen(model))


def test_eval_cli_reports_the_prompts_rescored_and_refuses_a_margin_without_float32(tiny_model_dir, tmp_path):
    base = ["eval", "--model", str(tiny_model_dir), "--tasks", "spam", "--levels", "clean", "--max-examples", "3",
            "--max-instructions", "2"]  # fmt: skip
    plain = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "plain")])
    result = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "inf"), "--rescore-margin", "inf"])
    assert plain.exit_code == 0 and result.exit_code == 0, plain.output + result.output
    report = json.loads((tmp_path / "inf" / "report.json").read_text())
    before = json.loads((tmp_path / "plain" / "report.json").read_text())
    assert report["settings"]["rescore_margin"] == "inf" and before["settings"]["rescore_margin"] is None
    assert report["models"][0]["rescored_in_float32"] == 6 and before["models"][0]["rescored_in_float32"] is None
    assert report["models"][0]["predictions"] == before["models"][0]["predictions"]
    assert "6 of 6 prompts rescored in float32" in result.output
    assert "bfloat16 screen, prompts with a margin under inf nats rescored in float32 (" in (tmp_path / "inf" / "report.md").read_text()
    assert "bfloat16" not in (tmp_path / "plain" / "report.md").read_text()
    for extra, message in ((["--rescore-margin", "1", "--dtype", "bfloat16"], "use --dtype float32"),
                           (["--rescore-margin", "-1"], "rescore_margin must be >= 0")):  # fmt: skip
        refused = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "no"), *extra])
        assert refused.exit_code != 0 and message in refused.output and "Traceback" not in refused.output
