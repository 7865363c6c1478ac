"""One production forecast: configuration + prices -> a ForecastRecord (pure, no Dagster)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from forex_assets.chronos_config import ChronosConfig
from forex_assets.forecast_history import ForecastRecord
from forex_assets.forecasting import timed_forecast_quantiles
from forex_assets.horizons import horizon_steps
from forex_assets.models.loading import load_pipeline


def file_version(path: Path) -> str:
    """Version id of a configuration read straight from a file: its content hash."""
    return "file@sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def target_business_days(origin: pd.Timestamp, steps: int) -> list[pd.Timestamp]:
    return list(pd.bdate_range(origin + pd.offsets.BDay(1), periods=steps))


def make_forecast(prices: pd.DataFrame, config: ChronosConfig, config_version: str) -> ForecastRecord:
    """Forecast ``config.horizon`` business days ahead of the last observation."""
    steps = horizon_steps(config.horizon)
    pipeline = load_pipeline(config.checkpoint)
    history = prices["usdclp"].to_numpy()
    timed = timed_forecast_quantiles(pipeline, config, [history], steps)
    origin = pd.Timestamp(prices["date"].iloc[-1])
    return ForecastRecord(
        horizon=config.horizon,
        origin_date=origin,
        last_price=float(history[-1]),
        target_dates=target_business_days(origin, steps),
        quantiles=timed.quantiles[0],
        config_version=config_version,
        checkpoint=config.checkpoint,
        config=config.model_dump(mode="json", exclude_none=True),
        inference_seconds=timed.seconds_per_forecast,
    )
