"""The noise-aware performance rule: the deployed version's matured forecasts against the random walk."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from forex_assets.core.forecasting.history import ForecastHistory, ForecastRecord
from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES
from forex_assets.core.monitoring.performance import PerformancePolicy, random_walk_test
from forex_assets.core.monitoring.triggers import TriggerInputs, TriggerPolicy, decide
from forex_assets_tests.conftest import random_walk_prices

RW_RULE = TriggerPolicy(performance_metric="random_walk", schedule_enabled=False)
PRICES = random_walk_prices(300, seed=5)
OFFSETS = np.array([-20.0, -10.0, 0.0, 10.0, 20.0])


def _history(tmp_path, median_shift, version="v1", origins=range(230, 290), noise=0.0, seed=0):
    """A forecast history of 7d forecasts from ``origins`` whose median is the last price plus a path
    ``median_shift`` CLP per step away from it (0 = the random walk)."""
    rng = np.random.default_rng(seed)
    history = ForecastHistory(tmp_path / f"history_{version}_{median_shift}_{noise}.sqlite")
    dates, values = PRICES["date"], PRICES["usdclp"].to_numpy()
    for o in origins:
        last = values[o]
        median = last + median_shift * np.arange(1, 8) + rng.normal(0, noise, 7)
        history.record(
            ForecastRecord(
                horizon="7d",
                origin_date=dates.iloc[o],
                last_price=float(last),
                target_dates=list(dates.iloc[o + 1 : o + 8]),
                quantiles=median[:, None] + OFFSETS,
                config_version=version,
                checkpoint="bundled:x",
                config={},
                inference_seconds=0.01,
            )
        )
    return history


def test_a_drifting_median_is_significantly_worse_than_the_random_walk(tmp_path):
    test = random_walk_test("7d", PRICES, _history(tmp_path, median_shift=3.0), "v1", PerformancePolicy())
    assert test["origins"] == 40  # the latest 40 matured forecasts of the version
    assert test["skill_vs_random_walk"] > 1.9 and test["p_worse_than_random_walk"] < 0.05
    d = decide(TriggerInputs("7d", date(2021, 3, 1), random_walk_test=test), RW_RULE)
    assert d.fired == ("performance",) and "worse (fires below 0.05)" in d.reasons["performance"]


def test_the_random_walk_itself_never_fires(tmp_path):
    test = random_walk_test("7d", PRICES, _history(tmp_path, median_shift=0.0), "v1", PerformancePolicy())
    assert test["skill_vs_random_walk"] == pytest.approx(1.0)
    assert test["p_worse_than_random_walk"] >= 0.5
    assert not decide(TriggerInputs("7d", date(2021, 3, 1), random_walk_test=test), RW_RULE).optimize


def test_only_the_deployed_version_counts_and_it_needs_enough_matured_forecasts(tmp_path):
    history = _history(tmp_path, median_shift=3.0, version="old")
    assert random_walk_test("7d", PRICES, history, "new", PerformancePolicy()) is None
    few = _history(tmp_path, median_shift=3.0, version="new", origins=range(278, 293))
    assert random_walk_test("7d", PRICES, few, "new", PerformancePolicy()) is None  # 15 matured < 20
    d = decide(TriggerInputs("7d", date(2021, 3, 1)), RW_RULE)  # no test: no decision on noise
    assert not d.optimize and "too few matured forecasts" in d.reasons["performance"]


def test_the_weekly_fallback_disables_the_random_walk_rule_too():
    test = {"origins": 40, "skill_vs_random_walk": 2.0, "p_worse_than_random_walk": 0.0}
    disabled = TriggerPolicy(performance_metric="random_walk", performance_threshold_pct=float("inf"))
    assert decide(TriggerInputs("7d", date(2021, 3, 1), random_walk_test=test), disabled).reasons["performance"] == (
        "performance trigger disabled"
    )


def test_history_reads_are_windowed(tmp_path):
    history = _history(tmp_path, median_shift=0.0)
    since = PRICES["date"].iloc[280]
    runs = history.runs("7d", since)
    assert runs["origin_date"].min() == since and len(runs) == 10
    assert history.steps("7d", since)["origin_date"].min() == since
    assert len(history.runs("7d")) == 60
    assert FORECAST_QUANTILES[2] == 0.5 and isinstance(since, pd.Timestamp)
