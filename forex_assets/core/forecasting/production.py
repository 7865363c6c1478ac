"""One production forecast: configuration + prices -> a ForecastRecord (pure, no Dagster)."""

from __future__ import annotations

import pandas as pd

from forex_assets.core.calendar import CHILE, BusinessCalendar
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.history import ForecastRecord
from forex_assets.core.forecasting.quantiles import timed_forecast_quantiles
from forex_assets.core.horizons import horizon_steps
from forex_assets.core.models.loading import load_pipeline


def target_business_days(origin: pd.Timestamp, steps: int, calendar: BusinessCalendar = CHILE) -> list[pd.Timestamp]:
    """The target dates of a forecast from ``origin``: step k targets the k-th business day of the pair's
    ``calendar`` after it (for USD/CLP: weekends, Chilean public holidays and the 31 December bank holiday
    skipped: there is no dólar observado fixing on those days, so the model's k-th next observation falls on
    the k-th business day)."""
    return calendar.next_business_days(origin, steps)


_warmed: set[str] = set()


def make_forecast(
    prices: pd.DataFrame, config: ChronosConfig, config_version: str, calendar: BusinessCalendar = CHILE
) -> ForecastRecord:
    """Forecast ``config.horizon`` business days (of the pair's ``calendar``) ahead of the last observation.

    The first forecast of a configuration in a process runs once untimed: torch's lazy initialisation
    would otherwise inflate the recorded inference time, which the automatic rollback compares with
    the validation baseline (measured the same way, after a warm-up).
    """
    steps = horizon_steps(config.horizon)
    pipeline = load_pipeline(config.checkpoint)
    history = prices["usdclp"].to_numpy()
    key = config.without_baseline().to_json()
    if key not in _warmed:
        timed_forecast_quantiles(pipeline, config, [history], steps)
        _warmed.add(key)
    timed = timed_forecast_quantiles(pipeline, config, [history], steps)
    origin = pd.Timestamp(prices["date"].iloc[-1])
    return ForecastRecord(
        horizon=config.horizon,
        origin_date=origin,
        last_price=float(history[-1]),
        target_dates=target_business_days(origin, steps, calendar),
        quantiles=timed.quantiles[0],
        config_version=config_version,
        checkpoint=config.checkpoint,
        config=config.model_dump(mode="json", exclude_none=True),
        inference_seconds=timed.seconds_per_forecast,
    )
