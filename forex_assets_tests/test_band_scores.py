"""The band's scores and breach backtests (core/band_scores.py) against hand-worked values, independent
formulas (the interval score as pinball losses, Kupiec's ratio from scipy's binomial) and their size and
power on simulated series."""

import numpy as np
import pytest
from scipy.stats import binom, chi2

from forex_assets.core.band_scores import (
    breaches,
    christoffersen_independence,
    coverage,
    interval_score,
    kupiec_pof,
    mean_width_pct,
)


def test_interval_score_by_hand():
    # widths 20; misses of 5 below and 10 above cost 2 / 0.05 = 40 per CLP
    assert interval_score([90, 90, 90], [110, 110, 110], [100, 85, 120]) == pytest.approx((20 + 220 + 420) / 3)
    assert coverage([90, 90, 90], [110, 110, 110], [100, 85, 110]) == pytest.approx(2 / 3)  # bound included
    assert mean_width_pct([90], [110], [100]) == pytest.approx(20.0)
    assert breaches([90, 90], [110, 110], [89, 111]).tolist() == [True, True]


def test_interval_score_is_two_over_alpha_times_the_pinball_losses_of_its_bounds():
    rng = np.random.default_rng(7)
    y = rng.normal(800, 20, 500)
    centre = y + rng.normal(0, 15, 500)
    lower, upper = centre - 30, centre + 35
    alpha = 0.2

    def pinball(q, tau):
        return np.mean(np.maximum(tau * (y - q), (tau - 1) * (y - q)))

    expected = (2 / alpha) * (pinball(lower, alpha / 2) + pinball(upper, 1 - alpha / 2))
    assert interval_score(lower, upper, y, alpha=alpha) == pytest.approx(expected)


def test_a_band_that_covers_by_being_wide_scores_worse_than_a_sharp_calibrated_one():
    rng = np.random.default_rng(3)
    y = rng.normal(0, 1, 20_000)
    sharp = interval_score(np.full_like(y, -1.96), np.full_like(y, 1.96), y)
    wide = interval_score(np.full_like(y, -4.0), np.full_like(y, 4.0), y)
    narrow = interval_score(np.full_like(y, -1.0), np.full_like(y, 1.0), y)
    assert sharp < wide and sharp < narrow


@pytest.mark.parametrize(
    ("lower", "upper", "actual", "alpha", "message"),
    [
        ([1, 2], [3], [2, 2], 0.05, "differ in size"),
        ([], [], [], 0.05, "empty"),
        ([3], [1], [2], 0.05, "upper bound is below"),
        ([1], [3], [2], 1.5, "alpha must be in"),
    ],
)
def test_bad_input_is_named(lower, upper, actual, alpha, message):
    with pytest.raises(ValueError, match=message):
        interval_score(lower, upper, actual, alpha=alpha)


@pytest.mark.parametrize(("n", "x"), [(250, 0), (250, 12), (250, 30), (1000, 51), (40, 40)])
def test_kupiec_is_the_binomial_likelihood_ratio(n, x):
    flags = np.zeros(n, dtype=bool)
    flags[:x] = True
    result = kupiec_pof(flags, 0.05)
    expected = 2 * (binom.logpmf(x, n, x / n) - binom.logpmf(x, n, 0.05))
    assert (result.breaches, result.observations) == (x, n)
    assert result.statistic == pytest.approx(expected, abs=1e-9)
    assert result.p_value == pytest.approx(chi2.sf(expected, 1), abs=1e-12)


def test_kupiec_rejects_too_many_and_too_few_breaches_and_keeps_its_size():
    rng = np.random.default_rng(21)
    rejections = [kupiec_pof(rng.random(1000) < 0.05).p_value < 0.05 for _ in range(400)]
    assert 0.02 <= np.mean(rejections) <= 0.09  # nominal 5 %
    assert kupiec_pof(rng.random(500) < 0.10).p_value < 0.001  # a 95 % band breached 10 % of the time
    assert kupiec_pof(rng.random(1000) < 0.01).p_value < 0.001  # a band far too wide


def test_christoffersen_counts_transitions():
    result = christoffersen_independence([0, 1, 1, 0, 0])
    assert result.transitions == (1, 1, 1, 1)
    assert christoffersen_independence([0, 0, 0, 0]).p_value == 1.0  # no breach: nothing to test


def test_christoffersen_keeps_its_size_on_independent_breaches_and_finds_clusters():
    rng = np.random.default_rng(5)
    rejections = [christoffersen_independence(rng.random(1000) < 0.05).p_value < 0.05 for _ in range(400)]
    assert 0.01 <= np.mean(rejections) <= 0.10
    # a Markov chain of breaches: after a breach, one in two; otherwise 3 in 100
    flags, state = [], False
    for u in rng.random(1000):
        state = bool(u < (0.5 if state else 0.03))
        flags.append(state)
    assert christoffersen_independence(flags).p_value < 0.001


def test_a_constant_band_on_garch_returns_breaches_in_clusters():
    """The stylised fact the band must follow: with GARCH(1,1) volatility, a band of constant width (the
    unconditional 95 %) is breached in clusters; one scaled by the true conditional volatility is not."""
    rng = np.random.default_rng(11)
    omega, a, b, n = 0.02, 0.10, 0.88, 3000
    variance = omega / (1 - a - b)
    returns, sigmas = [], []
    for z in rng.standard_normal(n):
        sigma = np.sqrt(variance)
        r = sigma * z
        returns.append(r)
        sigmas.append(sigma)
        variance = omega + a * r * r + b * variance
    returns, sigmas = np.array(returns), np.array(sigmas)
    constant = 1.96 * np.std(returns)
    assert christoffersen_independence(np.abs(returns) > constant).p_value < 0.01
    assert christoffersen_independence(np.abs(returns) > 1.96 * sigmas).p_value > 0.01
