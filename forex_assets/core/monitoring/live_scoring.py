"""Scoring of live forecasts whose targets have been observed (pure pandas).

Each step is scored against the fixing of its target date (the k-th Chilean business day after the origin,
:func:`forex_assets.core.forecasting.production.target_business_days`), never another day's: a forecast is
matured once every one of its target dates has a price. A target date without one (the series ends before
it, or has a gap there) leaves the forecast unscored; a series with prices on Chilean holidays (the
synthetic one) is looked up the same way. See :func:`fixing_dates` for paths recorded before the target
dates followed the Chilean calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forex_assets.core.calendar import Dates, is_business_day, nth_business_day_after
from forex_assets.core.forecasting.config import ValidationBaseline


@dataclass(frozen=True)
class MaturedScore:
    forecasts: int  # origins whose every target is observed
    rmse_clp: float | None
    errors: pd.DataFrame  # origin_date, step, target_date, forecast, actual, error


def fixing_dates(steps: pd.DataFrame, observed_dates: Dates) -> pd.Series:
    """The date whose fixing scores each ``forecast_steps`` row (aligned with ``steps``): its target date.

    Except for a path recorded before target dates followed the Chilean calendar (``pd.bdate_range``), one
    with a target on a weekday that is a Chilean holiday and has no price: no fixing will ever come for it,
    and the model's step k forecast the k-th next fixing, so every step of that path is scored on the k-th
    Chilean business day after its origin instead. A target with a price is scored on it as it is (synthetic
    data has prices on Chilean holidays, and a path with all its targets priced keeps them).
    """
    targets = pd.to_datetime(steps["target_date"])
    if steps.empty:
        return targets
    priced = targets.isin(pd.DatetimeIndex(observed_dates)).to_numpy()
    holiday = ~priced & ~np.asarray(is_business_day(targets), dtype=bool)
    if not holiday.any():
        return targets
    legacy = steps["origin_date"].isin(steps.loc[holiday, "origin_date"].unique()).to_numpy()
    relabelled = nth_business_day_after(steps.loc[legacy, "origin_date"], steps.loc[legacy, "step"])
    targets = targets.copy()
    targets[legacy] = relabelled
    return targets


def score_matured(steps: pd.DataFrame, prices: pd.DataFrame) -> MaturedScore:
    """Join forecast steps (``forecast_steps`` rows) with the fixing of each target date.

    An origin counts once every one of its target dates has a price (:func:`fixing_dates`); until then (the
    series has not reached the last target, or has a gap on a target date) none of its steps is scored.
    """
    if steps.empty:
        return MaturedScore(0, None, pd.DataFrame())
    by_date = prices.set_index("date")["usdclp"]
    steps = steps.reset_index(drop=True)
    scored = steps.assign(target_date=fixing_dates(steps, by_date.index))
    actual = scored["target_date"].map(by_date)
    complete = actual.notna().groupby(scored["origin_date"]).transform("all")
    matured = scored[complete].assign(actual=actual[complete])
    if matured.empty:
        return MaturedScore(0, None, pd.DataFrame())
    matured = matured.assign(forecast=matured["q0_5"], error=matured["q0_5"] - matured["actual"])
    rmse = float(np.sqrt(np.mean(np.square(matured["error"]))))
    columns = ["origin_date", "step", "target_date", "forecast", "actual", "error"]
    return MaturedScore(int(matured["origin_date"].nunique()), rmse, matured[columns].reset_index(drop=True))


@dataclass(frozen=True)
class PerformanceSnapshot:
    """Accuracy of a horizon's forecasts and its degradation against the deployed baseline."""

    source: str  # "live" (matured forecasts) or "backtest" (too few matured yet)
    forecasts: int
    window: tuple[str, str]  # first and last origin scored
    metrics: dict[str, Any]  # WindowMetrics fields
    degradation_pct: dict[str, float]  # {"rmse": .., "skill": ..} against the baseline; empty without one
    note: str
    random_walk_test: dict[str, Any] | None = None  # the deployed version against the random walk (random_walk_test())

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "forecasts": self.forecasts,
            "window": list(self.window),
            "metrics": self.metrics,
            "degradation_pct": self.degradation_pct,
            "note": self.note,
            "random_walk_test": self.random_walk_test,
        }


def degradation(metrics: dict[str, Any], baseline: ValidationBaseline | None) -> dict[str, float]:
    """Percent change of RMSE (and of skill, when the baseline has one) against the validation baseline."""
    if baseline is None:
        return {}
    out = {"rmse": (metrics["rmse_clp"] - baseline.rmse_clp) / baseline.rmse_clp * 100.0}
    if baseline.skill_vs_random_walk:
        skill = metrics["skill_vs_random_walk"]
        out["skill"] = (skill - baseline.skill_vs_random_walk) / baseline.skill_vs_random_walk * 100.0
    return out


def live_window_arrays(
    steps: pd.DataFrame, runs: pd.DataFrame, prices: pd.DataFrame, days: int = 14
) -> tuple[list[pd.Timestamp], np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Forecasts whose every target date has a price (:func:`fixing_dates`) and whose last target falls in
    the last ``days`` calendar days of the prices: (origins, quantiles (n, h, q), actuals (n, h), last
    prices (n,)), step k of every origin in column k - 1, origins in date order.

    Vectorised over the rows (one pass of pandas operations, no loop per origin): the monitoring runs it
    every day for every horizon on up to ~130 origins x 90 steps."""
    from forex_assets.core.forecasting.history import QUANTILE_COLUMNS

    if steps.empty:
        return [], None, None, None
    last_day = prices["date"].max()
    by_date = prices.set_index("date")["usdclp"]
    steps = steps.reset_index(drop=True)
    targets = pd.to_datetime(fixing_dates(steps, by_date.index)).reset_index(drop=True)
    origin = steps["origin_date"]
    final = targets.groupby(origin).transform("max")
    priced = targets.isin(by_date.index)
    keep = (final <= last_day) & (final >= last_day - pd.Timedelta(days=days)) & priced.groupby(origin).transform("all")
    if not keep.any():
        return [], None, None, None
    kept = steps.loc[keep].assign(target_date=targets[keep])
    order = ["origin_date", "step"] if "step" in kept else ["origin_date"]
    kept = kept.sort_values(order, kind="stable")
    # position of each row within its path (its step order): step k in column k - 1, whatever the numbering
    position = kept.groupby("origin_date").cumcount().to_numpy()
    lengths = kept.groupby("origin_date", sort=True).size()
    width = int(lengths.min())  # every path is whole: steps 1..h (a shorter one: its first steps)
    kept = kept[position < width]
    origins = list(lengths.index)
    quantiles = kept[QUANTILE_COLUMNS].to_numpy().reshape(len(origins), width, len(QUANTILE_COLUMNS))
    actuals = by_date.reindex(kept["target_date"]).to_numpy().reshape(len(origins), width)
    last_price = runs.drop_duplicates("origin_date").set_index("origin_date")["last_price"]
    lasts = last_price.reindex(pd.DatetimeIndex(origins)).to_numpy(dtype=float)
    return origins, quantiles, actuals, lasts
