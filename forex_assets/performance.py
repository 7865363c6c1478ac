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
