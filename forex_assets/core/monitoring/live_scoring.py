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

import numpy as np
import pandas as pd

from forex_assets.core.calendar import is_business_day, nth_business_day_after


@dataclass(frozen=True)
class MaturedScore:
    forecasts: int  # origins whose every target is observed
    rmse_clp: float | None
    errors: pd.DataFrame  # origin_date, step, target_date, forecast, actual, error


def fixing_dates(steps: pd.DataFrame, observed_dates) -> pd.Series:
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
    metrics: dict  # WindowMetrics fields
    degradation_pct: dict[str, float]  # {"rmse": .., "skill": ..} against the baseline; empty without one
    note: str
    random_walk_test: dict | None = None  # the deployed version against the random walk (random_walk_test())

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "forecasts": self.forecasts,
            "window": list(self.window),
            "metrics": self.metrics,
            "degradation_pct": self.degradation_pct,
            "note": self.note,
            "random_walk_test": self.random_walk_test,
        }


def degradation(metrics: dict, baseline) -> dict[str, float]:
    """Percent change of RMSE (and of skill, when the baseline has one) against the validation baseline."""
    if baseline is None:
        return {}
    out = {"rmse": (metrics["rmse_clp"] - baseline.rmse_clp) / baseline.rmse_clp * 100.0}
    if baseline.skill_vs_random_walk:
        skill = metrics["skill_vs_random_walk"]
        out["skill"] = (skill - baseline.skill_vs_random_walk) / baseline.skill_vs_random_walk * 100.0
    return out


def live_window_arrays(steps: pd.DataFrame, runs: pd.DataFrame, prices: pd.DataFrame, days: int = 14):
    """Forecasts whose every target date has a price (:func:`fixing_dates`) and whose last target falls in
    the last ``days`` calendar days of the prices: (origins, quantiles (n, h, q), actuals (n, h), last
    prices (n,)), step k of every origin in column k - 1."""
    from forex_assets.core.forecasting.history import QUANTILE_COLUMNS

    if steps.empty:
        return [], None, None, None
    last_day = prices["date"].max()
    by_date = prices.set_index("date")["usdclp"]
    steps = steps.reset_index(drop=True)
    steps = steps.assign(target_date=fixing_dates(steps, by_date.index))
    origins, quantiles, actuals, lasts = [], [], [], []
    for origin, group in steps.groupby("origin_date"):
        group = group.sort_values("step") if "step" in group else group
        final = group["target_date"].max()
        if final > last_day or final < last_day - pd.Timedelta(days=days):
            continue
        if not group["target_date"].isin(by_date.index).all():
            continue  # a gap in the series on a target date: not matured
        origins.append(origin)
        quantiles.append(group[QUANTILE_COLUMNS].to_numpy())
        actuals.append(by_date.loc[group["target_date"]].to_numpy())
        lasts.append(float(runs.loc[runs["origin_date"] == origin, "last_price"].iloc[0]))
    if not origins:
        return [], None, None, None
    width = min(len(a) for a in actuals)  # every path is whole: steps 1..h (a shorter one: its first steps)
    return (
        origins,
        np.stack([q[:width] for q in quantiles]),
        np.stack([a[:width] for a in actuals]),
        np.asarray(lasts),
    )
