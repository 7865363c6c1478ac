"""The random walk + RiskMetrics EWMA band (core/forecasting/baselines.py): its recursion by hand, its
calibration on a Gaussian random walk, and why it is the band to beat on GARCH-like returns."""

import numpy as np
import pytest

from forex_assets.core.band_scores import coverage, interval_score
from forex_assets.core.forecasting.baselines import MIN_RETURNS, ewma_volatility, random_walk_ewma_quantiles

LEVELS = (0.025, 0.5, 0.975)


def test_the_recursion_by_hand():
    rng = np.random.default_rng(1)
    prices = 800 * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))
    r = np.diff(np.log(prices))
    variance = np.var(r[:MIN_RETURNS])
    for x in r[MIN_RETURNS:]:
        variance = 0.94 * variance + 0.06 * x * x
    assert ewma_volatility(prices) == pytest.approx(np.sqrt(variance))


def test_quantiles_follow_sqrt_k_around_the_last_price():
    prices = 800 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.01, 300)))
    q = random_walk_ewma_quantiles(prices, steps=9, levels=LEVELS)
    sigma = ewma_volatility(prices)
    assert q.shape == (9, 3)
    assert np.allclose(q[:, 1], prices[-1])
    assert np.log(q[8, 2] / prices[-1]) == pytest.approx(3 * np.log(q[0, 2] / prices[-1]))
    assert np.log(q[0, 2] / prices[-1]) == pytest.approx(1.959964 * sigma, rel=1e-6)


def test_the_band_is_calibrated_on_a_gaussian_random_walk():
    rng = np.random.default_rng(3)
    prices = 800 * np.exp(np.cumsum(rng.normal(0, 0.006, 3000)))
    lower, upper, actual = [], [], []
    for origin in range(300, 2990, 5):
        q = random_walk_ewma_quantiles(prices[: origin + 1], steps=7, levels=LEVELS)
        lower.append(q[6, 0])
        upper.append(q[6, 2])
        actual.append(prices[origin + 7])
    assert 0.92 <= coverage(lower, upper, actual) <= 0.98


def test_it_beats_a_constant_band_on_garch_returns():
    """Volatility clusters (GARCH(1,1)): the EWMA band follows it and has the lower interval score."""
    rng = np.random.default_rng(4)
    variance, returns = 0.02 / (1 - 0.10 - 0.88), []
    for z in rng.standard_normal(3000):
        r = np.sqrt(variance) * z
        returns.append(r / 100)
        variance = 0.02 + 0.10 * r * r + 0.88 * variance
    prices = 800 * np.exp(np.cumsum(returns))
    sigma_all = np.std(returns)
    ewma, constant, actual = [], [], []
    for origin in range(300, 2995, 3):
        q = random_walk_ewma_quantiles(prices[: origin + 1], steps=1, levels=LEVELS)
        ewma.append(q[0, [0, 2]])
        constant.append(prices[origin] * np.exp(np.array([-1.96, 1.96]) * sigma_all))
        actual.append(prices[origin + 1])
    ewma, constant = np.array(ewma), np.array(constant)
    assert interval_score(ewma[:, 0], ewma[:, 1], actual) < 0.95 * interval_score(
        constant[:, 0], constant[:, 1], actual
    )


@pytest.mark.parametrize(
    ("prices", "lam", "message"),
    [
        ([800.0] * 5, 0.94, "at least 21 prices"),
        ([800.0] * 30, 1.0, "lam must be in"),
        ([800.0, -1.0] * 15, 0.94, "positive"),
    ],
)
def test_bad_input_is_named(prices, lam, message):
    with pytest.raises(ValueError, match=message):
        ewma_volatility(prices, lam)
