"""Monitoring of the band (issue 23): the deployed version's matured forecasts against the RiskMetrics EWMA
band (weighted quantile loss, one-sided Diebold-Mariano with a margin) and Kupiec's test of its 95 % band,
through the ``distribution`` performance rule; and its false positives on a stationary random walk."""

from datetime import date

import numpy as np
import pytest
from scipy.stats import norm

from forex_assets.core.backtest.windows import PriceSeries
from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES
from forex_assets.core.monitoring.performance import band_test
from forex_assets.core.monitoring.triggers import TriggerInputs, TriggerPolicy, decide
from forex_assets_tests.conftest import random_walk_prices

DAILY_VOL = 0.006
PRICES = random_walk_prices(400, seed=11, daily_vol=DAILY_VOL)
Z = norm.ppf(FORECAST_QUANTILES)


def _matured(width: float, origins=range(300, 390), steps: int = 7):
    """Matured 7-step forecasts from ``origins`` of PRICES: the random walk's median, a Gaussian band of
    ``width`` times the true volatility (1 = the right band)."""
    values = PRICES["usdclp"].to_numpy()
    origins = list(origins)
    k = np.sqrt(np.arange(1, steps + 1))[None, :, None]
    lasts = values[origins]
    quantiles = lasts[:, None, None] * np.exp(width * DAILY_VOL * k * Z[None, None, :])
    actuals = np.stack([values[o + 1 : o + 1 + steps] for o in origins])
    return [PRICES["date"].iloc[o] for o in origins], quantiles, actuals


def _decide(test):
    walk = {"origins": 90, "skill_vs_random_walk": 1.0, "p_worse_than_random_walk": 0.6} | test
    return decide(TriggerInputs("7d", date(2021, 6, 1), random_walk_test=walk), TriggerPolicy(schedule_enabled=False))


def test_a_band_far_too_wide_is_worse_than_the_ewma_band_and_fires():
    test = band_test(PRICES, *_matured(width=3.0))
    assert test["wql"] / test["wql_ewma_band"] > 1.5 and test["p_worse_than_ewma_band"] < 0.01
    assert test["step1_breaches_95"] == 0 and test["coverage_95"] == 1.0
    decision = _decide(test)
    assert decision.fired == ("performance",)
    assert "band WQL" in decision.reasons["performance"] and "more than 5 % worse" in decision.reasons["performance"]
    # the median rule alone (random_walk) sees nothing: the median is the random walk's
    walk_only = {"origins": 90, "skill_vs_random_walk": 1.0, "p_worse_than_random_walk": 0.6} | test
    assert not decide(
        TriggerInputs("7d", date(2021, 6, 1), random_walk_test=walk_only),
        TriggerPolicy(performance_metric="random_walk", schedule_enabled=False),
    ).optimize


def test_a_band_far_too_narrow_is_caught_by_kupiec():
    test = band_test(PRICES, *_matured(width=0.4))
    assert test["step1_breaches_95"] >= 20 and test["kupiec_p_95"] < 1e-6
    assert _decide(test).fired == ("performance",)
    assert "Kupiec p 0.0000 (fires below 0.01)" in _decide(test).reasons["performance"]


def test_the_right_band_does_not_fire():
    test = band_test(PRICES, *_matured(width=1.0))
    assert test["p_worse_than_ewma_band"] > 0.05 and test["kupiec_p_95"] > 0.05
    assert not _decide(test).optimize


def test_the_margin_tolerates_a_band_a_little_behind_ewma():
    """The margin only makes the test more lenient: the same band is never more significantly worse with it
    (the tested differential is the deployed loss minus (1 + margin) x the EWMA band's)."""
    origins, quantiles, actuals = _matured(width=1.0)
    strict = band_test(PRICES, origins, quantiles, actuals, margin_pct=0.0)
    lenient = band_test(PRICES, origins, quantiles, actuals, margin_pct=5.0)
    assert lenient["p_worse_than_ewma_band"] >= strict["p_worse_than_ewma_band"]
    assert lenient["band_margin_pct"] == 5.0


def test_no_band_test_without_history_for_the_ewma_band():
    origins, quantiles, actuals = _matured(width=1.0, origins=range(5, 60))
    assert band_test(PRICES, origins, quantiles, actuals) == {}
    assert "no band test" in _decide({}).reasons["performance"]


@pytest.mark.parametrize("horizon, steps", [("7d", 7), ("30d", 30)])
def test_false_positives_on_a_stationary_random_walk_stay_below_ten_percent(horizon, steps):
    """The seed configuration (bundled model) forecasting a Gaussian random walk, scored every 10 business
    days on its latest 40 matured forecasts as the monitoring does: the distribution rule's band tests fire on
    at most 10 % of the checks (three independent series)."""
    from forex_assets.core.backtest.engine import run_backtest
    from forex_assets.core.forecasting.config import load_seed
    from forex_assets.core.models.loading import load_pipeline
    from forex_assets.core.working_area import SEED_CONFIGS_DIR

    seed = load_seed(SEED_CONFIGS_DIR / f"chronos_{horizon}.json", horizon)
    pipeline = load_pipeline(seed.checkpoint)
    policy = TriggerPolicy()
    fired, checks = 0, 0
    for series_seed in range(3):
        prices = random_walk_prices(800, seed=100 + series_seed, daily_vol=DAILY_VOL)
        series = PriceSeries.from_frame(prices)
        origins = np.arange(400, 800 - steps)  # the 30d seed's context is 365 business days
        result = run_backtest(pipeline, seed, series, origins, steps)
        dates = [prices["date"].iloc[o] for o in origins]
        for end in range(40, len(origins) + 1, 10):
            window = slice(end - 40, end)
            test = band_test(prices, dates[window], result.quantiles[window], result.actuals[window])
            checks += 1
            fired += test["p_worse_than_ewma_band"] < policy.band_p_value or test["kupiec_p_95"] < policy.kupiec_p_value
    assert checks >= 90
    assert fired / checks <= 0.10, f"{fired} of {checks} checks fired"
