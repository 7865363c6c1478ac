"""Scoring of live forecasts whose targets have been observed (pure pandas)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class MaturedScore:
    forecasts: int  # origins whose every target is observed
    rmse_clp: float | None
    errors: pd.DataFrame  # origin_date, step, target_date, forecast, actual, error


def score_matured(steps: pd.DataFrame, prices: pd.DataFrame) -> MaturedScore:
    """Join forecast steps (``forecast_steps`` rows) with observed prices on the target date.

    An origin counts once all its targets are observed (target dates up to the last price date; a
    target on a day without a price, a holiday, is skipped).
    """
    if steps.empty:
        return MaturedScore(0, None, pd.DataFrame())
    last_observed = prices["date"].max()
    complete = steps.groupby("origin_date")["target_date"].transform("max") <= last_observed
    matured = steps[complete].merge(
        prices.rename(columns={"date": "target_date", "usdclp": "actual"}), on="target_date", how="inner"
    )
    if matured.empty:
        return MaturedScore(0, None, pd.DataFrame())
    matured = matured.assign(forecast=matured["q0_5"], error=matured["q0_5"] - matured["actual"])
    rmse = float(np.sqrt(np.mean(np.square(matured["error"]))))
    columns = ["origin_date", "step", "target_date", "forecast", "actual", "error"]
    return MaturedScore(int(matured["origin_date"].nunique()), rmse, matured[columns])


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
    """Forecasts whose every target is observed and whose last target falls in the last ``days``
    calendar days of the prices: (origins, quantiles (n, h, q), actuals (n, h), last prices (n,))."""
    from forex_assets.core.forecasting.history import QUANTILE_COLUMNS

    if steps.empty:
        return [], None, None, None
    last_day = prices["date"].max()
    by_date = prices.set_index("date")["usdclp"]
    origins, quantiles, actuals, lasts = [], [], [], []
    for origin, group in steps.groupby("origin_date"):
        final = group["target_date"].max()
        if final > last_day or final < last_day - pd.Timedelta(days=days):
            continue
        group = group[group["target_date"].isin(by_date.index)]
        if group.empty:
            continue
        origins.append(origin)
        quantiles.append(group[QUANTILE_COLUMNS].to_numpy())
        actuals.append(by_date.loc[group["target_date"]].to_numpy())
        lasts.append(float(runs.loc[runs["origin_date"] == origin, "last_price"].iloc[0]))
    if not origins:
        return [], None, None, None
    width = min(len(a) for a in actuals)  # holidays can drop a target: score the common steps
    return (
        origins,
        np.stack([q[:width] for q in quantiles]),
        np.stack([a[:width] for a in actuals]),
        np.asarray(lasts),
    )
