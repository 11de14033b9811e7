"""Paired bootstrap intervals on synthetic data whose answer is known."""

import numpy as np
import pytest

from coin_train.significance import bootstrap_interval, paired_bootstrap, resample_indices, stratified_mean


def test_constant_difference_gives_a_zero_width_interval_at_that_value():
    rng = np.random.default_rng(1)
    b = rng.random(200)
    ci = paired_bootstrap(b + 0.25, b, n_resamples=500, seed=0)
    assert ci["difference"] == pytest.approx(0.25)
    assert ci["low"] == pytest.approx(0.25) and ci["high"] == pytest.approx(0.25)
    assert ci["p_two_sided"] == 0.0


def test_interval_width_matches_the_normal_theory_of_a_mean():
    rng = np.random.default_rng(2)
    n, sd = 400, 1.0
    a = rng.normal(0.3, sd, n)
    ci = paired_bootstrap(a, np.zeros(n), n_resamples=4000, seed=3)
    expected_half_width = 1.96 * a.std(ddof=1) / np.sqrt(n)  # ~0.098
    assert (ci["high"] - ci["low"]) / 2 == pytest.approx(expected_half_width, rel=0.1)
    assert ci["low"] < a.mean() < ci["high"]
    assert ci["se"] == pytest.approx(a.std(ddof=1) / np.sqrt(n), rel=0.1)


def test_pairing_removes_the_shared_example_difficulty():
    # Examples differ a lot in difficulty (shared by both arms), the arms differ by a small, steady 0.02:
    # the paired interval excludes zero although each arm's own spread is huge.
    rng = np.random.default_rng(4)
    difficulty = rng.normal(0, 5, 300)
    b = difficulty + rng.normal(0, 0.01, 300)
    a = difficulty + 0.02 + rng.normal(0, 0.01, 300)
    ci = paired_bootstrap(a, b, n_resamples=2000, seed=0)
    assert 0.0 < ci["low"] < 0.02 < ci["high"] < 0.04
    assert ci["p_two_sided"] < 0.01


def test_coverage_of_95_percent_intervals_on_repeated_experiments():
    hits = 0
    for trial in range(100):
        rng = np.random.default_rng(100 + trial)
        a = (rng.random(150) < 0.6).astype(float)  # true accuracy 0.6
        b = (rng.random(150) < 0.5).astype(float)  # true accuracy 0.5: true difference 0.1
        ci = paired_bootstrap(a, b, n_resamples=400, seed=trial)
        hits += ci["low"] <= 0.1 <= ci["high"]
    assert 88 <= hits <= 100  # binomial(100, 0.95): below 88 has probability < 0.1%


def test_same_seed_same_interval_and_strata_keep_their_sizes():
    a, b = np.arange(10.0), np.zeros(10)
    strata = ["x"] * 7 + ["y"] * 3
    assert paired_bootstrap(a, b, strata, 300, seed=5) == paired_bootstrap(a, b, strata, 300, seed=5)
    assert paired_bootstrap(a, b, strata, 300, seed=5)["low"] != paired_bootstrap(a, b, strata, 300, seed=6)["low"]
    draws = resample_indices(strata, 50, seed=0)
    assert draws.shape == (50, 10)
    assert (draws[:, :7] < 7).all() and (draws[:, 7:] >= 7).all()  # never across tasks


def test_stratified_mean_weighs_every_task_equally():
    values = np.array([1.0, 1.0, 1.0, 0.0])  # task a: 3 examples all 1, task b: 1 example 0
    assert stratified_mean(values, ["a", "a", "a", "b"])(np.arange(4)) == 0.5
    ci = paired_bootstrap(values, np.zeros(4), ["a", "a", "a", "b"], n_resamples=100)
    assert ci["a"] == 0.5 and ci["b"] == 0.0 and ci["low"] == ci["high"] == 0.5  # no within-task spread


def test_any_statistic_and_bad_input():
    values = np.array([0.0, 10.0])
    ci = bootstrap_interval(lambda idx: float(values[idx].max()), ["t", "t"], n_resamples=1000, seed=0)
    assert ci["estimate"] == 10.0 and ci["low"] == 0.0 and ci["high"] == 10.0  # P(max = 0) = 1/4
    with pytest.raises(ValueError, match="equal lengths"):
        paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="no examples"):
        paired_bootstrap([], [])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval(lambda idx: 0.0, ["t"], confidence=1.5)
