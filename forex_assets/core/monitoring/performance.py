"""Monitoring of one horizon without Dagster: drift of the prices and performance of the forecasts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.backtest.engine import run_backtest
from forex_assets.core.backtest.windows import PriceSeries, latest_origins
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES
from forex_assets.core.horizons import horizon_steps
from forex_assets.core.metrics import window_metrics
from forex_assets.core.models.loading import checkpoint_identity, load_pipeline
from forex_assets.core.monitoring.live_scoring import PerformanceSnapshot, degradation, live_window_arrays


@dataclass(frozen=True)
class PerformancePolicy:
    window_days: int = 14  # forecasts that matured in the last 14 calendar days (ADR)
    min_live_forecasts: int = 5  # below this, score a backtest of the deployed configuration instead
    backtest_origins: int = 10


def performance_snapshot(
    horizon: str,
    prices: pd.DataFrame,
    history: ForecastHistory,
    deployed: ChronosConfig,
    cache: ForecastCache | None,
    policy: PerformancePolicy = PerformancePolicy(),
) -> PerformanceSnapshot:
    runs, steps = history.runs(horizon), history.steps(horizon)
    origins, quantiles, actuals, lasts = live_window_arrays(steps, runs, prices, policy.window_days)
    if len(origins) >= policy.min_live_forecasts:
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
    metrics = result.metrics().as_dict()
    window = (series.date_text(int(indices[0])), series.date_text(int(indices[-1])))
    note = (
        f"only {len(origins)} live forecasts matured in the last {policy.window_days} days (fewer than "
        f"{policy.min_live_forecasts}): scored a rolling-origin backtest of the deployed configuration over "
        f"the latest {policy.backtest_origins} origins instead"
    )
    return PerformanceSnapshot("backtest", len(indices), window, metrics, degradation(metrics, deployed.baseline), note)
