"""Monitoring of one horizon without Dagster: drift of the prices and performance of the forecasts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.backtest.engine import run_backtest
from forex_assets.core.backtest.windows import PriceSeries, latest_origins
from forex_assets.core.band_scores import coverage
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES
from forex_assets.core.horizons import horizon_steps
from forex_assets.core.metrics import (
    diebold_mariano,
    diebold_mariano_losses,
    per_origin_wql,
    weighted_quantile_loss,
    window_metrics,
)
from forex_assets.core.models.loading import checkpoint_identity, load_pipeline
from forex_assets.core.monitoring.live_scoring import PerformanceSnapshot, degradation, live_window_arrays
from forex_assets.core.monitoring.thresholds import (
    PerformancePolicy as PerformancePolicy,  # declared there, light to import
)


def _since(prices: pd.DataFrame, business_days: int) -> pd.Timestamp:
    """An origin date early enough for the last ``business_days`` origins (holidays and weekends padded)."""
    return pd.Timestamp(prices["date"].max()) - pd.Timedelta(days=int(business_days * 1.6) + 14)


def _random_walk_since(horizon: str, prices: pd.DataFrame, policy: PerformancePolicy) -> pd.Timestamp:
    return _since(prices, policy.random_walk_test_origins + horizon_steps(horizon))


def random_walk_test(
    horizon: str, prices: pd.DataFrame, history: ForecastHistory, version: str | None, policy: PerformancePolicy
) -> dict[str, Any] | None:
    """Is the deployed version's median forecast worse than the random walk's (the last price), on its latest
    matured forecasts? One-sided Diebold-Mariano (HLN, HAC lags h - 1 capped at n // 3) on the per-origin
    path loss; None while fewer than ``random_walk_test_min_origins`` have matured."""
    if version is None:
        return None
    since = _random_walk_since(horizon, prices, policy)
    return _random_walk_test(
        horizon, prices, history.runs(horizon, since), history.steps(horizon, since), version, policy
    )


def _random_walk_test(
    horizon: str,
    prices: pd.DataFrame,
    runs: pd.DataFrame,
    steps: pd.DataFrame,
    version: str | None,
    policy: PerformancePolicy,
) -> dict[str, Any] | None:
    """:func:`random_walk_test` on the history rows already read (``runs``/``steps`` from its window on)."""
    if version is None:
        return None
    since = _random_walk_since(horizon, prices, policy)
    mine = runs[(runs["config_version"] == version) & (runs["origin_date"] >= since)]
    if mine.empty:
        return None
    steps = steps[steps["origin_date"].isin(mine["origin_date"])]
    origins, quantiles, actuals, lasts = live_window_arrays(steps, mine, prices, days=100_000)
    if quantiles is None or actuals is None or lasts is None:  # no origin matured
        return None
    last = slice(-policy.random_walk_test_origins, None)
    origins, quantiles, actuals, lasts = origins[last], quantiles[last], actuals[last], lasts[last]
    if len(origins) < policy.random_walk_test_min_origins:
        return None
    median = quantiles[..., FORECAST_QUANTILES.index(0.5)]
    random_walk = np.repeat(lasts[:, None], median.shape[1], axis=1)
    test = diebold_mariano(actuals, median, random_walk, median.shape[1])
    p_worse = test.p_value / 2 if test.statistic > 0 else 1.0 - test.p_value / 2
    model_rmse = float(np.sqrt(np.mean((median - actuals) ** 2)))
    walk_rmse = float(np.sqrt(np.mean((random_walk - actuals) ** 2)))
    return {
        "origins": len(origins),
        "skill_vs_random_walk": model_rmse / walk_rmse if walk_rmse else float("inf"),
        "p_worse_than_random_walk": float(p_worse),
        "window": [str(pd.Timestamp(origins[0]).date()), str(pd.Timestamp(origins[-1]).date())],
        **band_test(prices, origins, quantiles, actuals, policy.band_test_margin_pct),
    }


def band_test(
    prices: pd.DataFrame,
    origins: list[pd.Timestamp],
    quantiles: np.ndarray,
    actuals: np.ndarray,
    margin_pct: float = 5.0,
) -> dict[str, Any]:
    """The deployed band against the RiskMetrics EWMA band on the same matured forecasts: each WQL, the
    one-sided Diebold-Mariano p that the deployed one's per-origin WQL is more than ``margin_pct`` worse
    (HLN, HAC lags h - 1 capped at n // 3, on ``loss - (1 + margin) * ewma_loss``), and Kupiec's test of the
    95 % band's breaches at step 1 (consecutive daily origins: distinct target days, independent under a
    right band; the pooled steps of overlapping paths are not). Empty when an origin has too little history
    for the EWMA band or is not a price date."""
    from forex_assets.core.band_scores import breaches, kupiec_pof
    from forex_assets.core.forecasting.baselines import baseline_quantiles

    index = pd.Index(pd.to_datetime(prices["date"]))
    positions = index.get_indexer(pd.to_datetime(pd.Series(origins)))
    if np.any(positions < 0):
        return {}
    steps = actuals.shape[1]
    try:
        ewma = baseline_quantiles(
            "ewma_band", prices["usdclp"].to_numpy(dtype=float), positions, steps, FORECAST_QUANTILES
        )
    except ValueError:  # too little history before the first origin
        return {}
    live_loss = per_origin_wql(quantiles, actuals, FORECAST_QUANTILES)
    ewma_loss = per_origin_wql(ewma, actuals, FORECAST_QUANTILES)
    margin = 1.0 + margin_pct / 100.0
    differential = live_loss - margin * ewma_loss
    if len(differential) < 3 or np.allclose(differential, 0.0):
        p_worse = 1.0
    else:
        test = diebold_mariano_losses(np.maximum(differential, 0.0), np.maximum(-differential, 0.0), steps)
        p_worse = test.p_value / 2 if test.statistic > 0 else 1.0 - test.p_value / 2
    low, high = FORECAST_QUANTILES.index(0.025), FORECAST_QUANTILES.index(0.975)
    first_step = breaches(quantiles[:, 0, low], quantiles[:, 0, high], actuals[:, 0])
    kupiec = kupiec_pof(first_step, 0.05)
    return {
        "wql": weighted_quantile_loss(quantiles, actuals, FORECAST_QUANTILES),
        "wql_ewma_band": weighted_quantile_loss(ewma, actuals, FORECAST_QUANTILES),
        "p_worse_than_ewma_band": float(p_worse),
        "band_margin_pct": float(margin_pct),
        "coverage_95": coverage(quantiles[..., low], quantiles[..., high], actuals),
        "step1_breaches_95": int(kupiec.breaches),
        "kupiec_p_95": float(kupiec.p_value),
    }


def performance_snapshot(
    horizon: str,
    prices: pd.DataFrame,
    history: ForecastHistory,
    deployed: ChronosConfig,
    cache: ForecastCache | None,
    policy: PerformancePolicy = PerformancePolicy(),
    version: str | None = None,
) -> PerformanceSnapshot:
    """Accuracy of the matured live forecasts of the last ``window_days`` (or a backtest while too few have
    matured), the degradation against the deployed baseline, and the random-walk test of ``version``."""
    # one windowed read of the history serves both the window's scoring and the random-walk test
    since = _since(prices, horizon_steps(horizon) + policy.window_days)
    read_since = min(since, _random_walk_since(horizon, prices, policy))
    all_runs, all_steps = history.runs(horizon, read_since), history.steps(horizon, read_since)
    runs, steps = all_runs[all_runs["origin_date"] >= since], all_steps[all_steps["origin_date"] >= since]
    origins, quantiles, actuals, lasts = live_window_arrays(steps, runs, prices, policy.window_days)
    walk_test = _random_walk_test(horizon, prices, all_runs, all_steps, version, policy)
    if (
        quantiles is not None
        and actuals is not None
        and lasts is not None
        and len(origins) >= policy.min_live_forecasts
    ):
        seconds = float(runs[runs["origin_date"].isin(origins)]["inference_seconds"].mean())
        metrics = window_metrics(quantiles, actuals, lasts, np.ones(len(origins)), FORECAST_QUANTILES, seconds)
        window = (str(pd.Timestamp(origins[0]).date()), str(pd.Timestamp(origins[-1]).date()))
        return PerformanceSnapshot(
            "live",
            len(origins),
            window,
            metrics.as_dict(),
            degradation(metrics.as_dict(), deployed.baseline),
            f"{len(origins)} live forecasts matured in the last {policy.window_days} days",
            walk_test,
        )
    steps_ahead = horizon_steps(horizon)
    series = PriceSeries.from_frame(prices)
    indices = latest_origins(len(series.values), steps_ahead, policy.backtest_origins)
    result = run_backtest(
        load_pipeline(deployed.checkpoint),
        deployed,
        series,
        indices,
        steps_ahead,
        cache,
        checkpoint_identity(deployed.checkpoint),
    )
    scored = result.metrics().as_dict()
    window = (series.date_text(int(indices[0])), series.date_text(int(indices[-1])))
    note = (
        f"only {len(origins)} live forecasts matured in the last {policy.window_days} days (fewer than "
        f"{policy.min_live_forecasts}): scored a rolling-origin backtest of the deployed configuration over "
        f"the latest {policy.backtest_origins} origins instead"
    )
    return PerformanceSnapshot(
        "backtest", len(indices), window, scored, degradation(scored, deployed.baseline), note, walk_test
    )
