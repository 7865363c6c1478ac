"""The random walk + RiskMetrics EWMA band (core/forecasting/baselines.py): its recursion by hand, its
calibration on a Gaussian random walk, and why it is the band to beat on GARCH-like returns."""

import numpy as np
import pandas as pd
import pytest

from forex_assets.core.band_scores import coverage, interval_score
from forex_assets.core.forecasting.baselines import (
    GARCH_WINDOW,
    HISTORICAL_WINDOW,
    MIN_RETURNS,
    baseline_quantiles,
    ewma_volatility,
    garch_t_quantiles,
    historical_quantiles,
    random_walk_ewma_quantiles,
)

LEVELS = (0.025, 0.5, 0.975)


def test_the_recursion_against_pandas_ewm():
    """RiskMetrics' recursion is pandas' exponentially weighted mean (alpha = 1 - 0.94, not adjusted) of the
    squared returns, started from the sample variance of the first 20 returns."""
    rng = np.random.default_rng(1)
    prices = 800 * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))
    r = np.diff(np.log(prices))
    seeded = pd.Series([np.var(r[:20]), *np.square(r[20:])])
    expected = np.sqrt(seeded.ewm(alpha=0.06, adjust=False).mean().iloc[-1])
    assert MIN_RETURNS == 20
    assert ewma_volatility(prices) == pytest.approx(expected)
    # by hand, on 21 prices: the seed alone, then one update with a 1 % return
    flat = 800 * np.exp(np.concatenate([[0.0], np.cumsum(np.tile([0.005, -0.005], 10))]))
    assert ewma_volatility(flat) == pytest.approx(0.005)
    assert ewma_volatility(np.append(flat, flat[-1] * np.exp(0.01))) == pytest.approx(
        np.sqrt(0.94 * 0.005**2 + 0.06 * 0.01**2)
    )


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


# ---------------------------------------------------------------- GARCH(1,1)-t and historical simulation


def garch_t_prices(seed: int, n: int = 2500, alpha: float = 0.08, beta: float = 0.90, nu: float = 5.0):
    """A GARCH(1,1) path with standardised Student-t innovations, daily volatility 0.6 % unconditionally."""
    rng = np.random.default_rng(seed)
    omega = 0.006**2 * (1 - alpha - beta)
    variance, returns = 0.006**2, []
    for z in rng.standard_t(nu, size=n) * np.sqrt((nu - 2) / nu):
        r = np.sqrt(variance) * z
        returns.append(r)
        variance = omega + alpha * r * r + beta * variance
    return 800 * np.exp(np.cumsum(returns))


def test_the_garch_band_one_step_ahead_is_the_fitted_models_t_quantile():
    """Step 1 of the simulated band against the closed form from arch's own fit: sigma_1 from the fitted
    recursion, times the standardised t quantile (10,000 simulated paths, symmetrised: within 3 %)."""
    from arch import arch_model
    from scipy.stats import t as student_t

    prices = garch_t_prices(5)[:1200]
    returns = np.diff(np.log(prices))[-GARCH_WINDOW:] * 100
    fitted = arch_model(returns, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(disp="off")
    sigma_1 = np.sqrt(fitted.forecast(horizon=1, reindex=False).variance.values[-1, 0]) / 100
    nu = fitted.params["nu"]
    z = student_t.ppf(0.975, nu) * np.sqrt((nu - 2) / nu)
    q = garch_t_quantiles(prices, steps=5, levels=LEVELS)
    assert q.shape == (5, 3) and np.allclose(q[:, 1], prices[-1])
    assert np.log(q[0, 2] / prices[-1]) == pytest.approx(z * sigma_1, rel=0.03)
    assert np.log(prices[-1] / q[0, 0]) == pytest.approx(z * sigma_1, rel=0.03)
    assert np.all(np.diff(q[:, 2]) > 0)  # wider with every step
    assert np.array_equal(q, garch_t_quantiles(prices, steps=5, levels=LEVELS))  # seeded: the same band


def test_the_garch_band_follows_clusters_better_than_a_constant_band():
    """On GARCH(1,1)-t returns the GARCH band is calibrated (pooled 95 % coverage 0.93-0.97 over three paths)
    and its interval score is below historical simulation's (a two-year window cannot follow a cluster)."""
    covered, scores = [], {"garch_band": [], "historical_band": []}
    for seed in range(3):
        prices = garch_t_prices(seed)
        origins = np.arange(1100, 2480, 10)
        actual = np.stack([prices[o + 1 : o + 8] for o in origins])
        for name in scores:
            q = baseline_quantiles(name, prices, origins, 7, LEVELS)
            scores[name].append(interval_score(q[..., 0], q[..., 2], actual))
            if name == "garch_band":
                covered.append(coverage(q[..., 0], q[..., 2], actual))
    assert 0.93 <= np.mean(covered) <= 0.97
    assert np.mean(scores["garch_band"]) < 0.95 * np.mean(scores["historical_band"])


def test_historical_simulation_is_the_window_s_k_day_returns_by_hand():
    rng = np.random.default_rng(6)
    old = 800 * np.exp(np.cumsum(rng.normal(0, 0.05, 300)))  # wild returns, then 500 calm ones
    calm = old[-1] * np.exp(np.cumsum(rng.normal(0, 0.004, HISTORICAL_WINDOW)))
    prices = np.concatenate([old, calm])
    q = historical_quantiles(prices, steps=3, levels=LEVELS)
    r = np.diff(np.log(prices))[-HISTORICAL_WINDOW:]
    three_day = r[:-2] + r[1:-1] + r[2:]
    expected = prices[-1] * np.exp(np.quantile(three_day, [0.025, 0.5, 0.975]) - np.median(three_day))
    assert q[2] == pytest.approx(expected)
    assert q[0] == pytest.approx(prices[-1] * np.exp(np.quantile(r, [0.025, 0.5, 0.975]) - np.median(r)))
    # only the last 500 returns count: the wild ones before them change nothing
    assert historical_quantiles(np.concatenate([old[-2:], calm]), 3, LEVELS) == pytest.approx(q)


def test_baseline_quantiles_per_origin_and_refusals():
    prices = garch_t_prices(7)[:700]
    q = baseline_quantiles("ewma_band", prices, [400, 650], 4, LEVELS)
    assert q.shape == (2, 4, 3)
    assert np.allclose(q[1], random_walk_ewma_quantiles(prices[:651], 4, LEVELS))
    with pytest.raises(ValueError, match="unknown baseline 'normal'; the baselines: ewma_band, garch_band"):
        baseline_quantiles("normal", prices, [400], 4, LEVELS)
    with pytest.raises(ValueError, match="GARCH band needs at least 251 prices, got 100"):
        garch_t_quantiles(prices[:100], 4, LEVELS)
