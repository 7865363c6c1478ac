import numpy as np
import pandas as pd

from forex_assets.core.forecasting.history import QUANTILE_COLUMNS, ForecastHistory, ForecastRecord


def _record(origin="2024-03-01", median=900.0, version="v1"):
    steps = 7
    base = np.array([-20.0, -8.0, 0.0, 8.0, 20.0])
    quantiles = np.tile(median + base, (steps, 1))
    return ForecastRecord(
        horizon="7d",
        origin_date=pd.Timestamp(origin),
        last_price=899.0,
        target_dates=list(pd.bdate_range(pd.Timestamp(origin) + pd.offsets.BDay(1), periods=steps)),
        quantiles=quantiles,
        config_version=version,
        checkpoint="bundled:usdclp-chronos2-mini",
        config={"context_length": 180},
        inference_seconds=0.05,
    )


def test_rerunning_an_origin_replaces_instead_of_duplicating(tmp_path):
    history = ForecastHistory(tmp_path / "h.sqlite")
    history.record(_record())
    history.record(_record(median=910.0, version="v2"))
    runs, steps = history.runs("7d"), history.steps("7d")
    assert len(runs) == 1 and runs["config_version"].tolist() == ["v2"]
    assert len(steps) == 7
    assert steps["q0_5"].tolist() == [910.0] * 7
    assert steps["target_date"].iloc[0] == pd.Timestamp("2024-03-04")  # next business day


def test_new_origins_are_appended_and_survive_reopening(tmp_path):
    path = tmp_path / "h.sqlite"
    ForecastHistory(path).record(_record("2024-03-01"))
    ForecastHistory(path).record(_record("2024-03-04"))
    reopened = ForecastHistory(path)
    assert reopened.runs()["origin_date"].tolist() == [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-04")]
    assert len(reopened.steps()) == 14
    assert list(reopened.steps().columns[-len(QUANTILE_COLUMNS) :]) == QUANTILE_COLUMNS
