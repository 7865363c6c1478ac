"""Matured live forecasts as arrays (``live_window_arrays``): which origins count, and every value in its place,
whatever the order of the rows read from the history."""

import numpy as np
import pandas as pd

from forex_assets.core.calendar import chilean_business_days
from forex_assets.core.forecasting.production import target_business_days
from forex_assets.core.monitoring.live_scoring import live_window_arrays
from forex_assets.core.prices.sources import price_frame
from forex_assets.core.storage.tables import QUANTILE_COLUMNS

STEPS = 7


def _forecasts(prices: pd.DataFrame, origins) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``forecast_steps`` and ``forecast_runs`` rows: origin i's step k median is 1000 * i + k, its quantile
    column j adds j / 10; its last price is 10 * i."""
    frames, runs = [], []
    for i, origin in enumerate(origins):
        targets = target_business_days(origin, STEPS)
        frame = pd.DataFrame({"origin_date": origin, "step": np.arange(1, STEPS + 1), "target_date": targets})
        for j, column in enumerate(QUANTILE_COLUMNS):
            frame[column] = 1000.0 * i + frame["step"] + j / 10
        frames.append(frame)
        runs.append({"origin_date": origin, "last_price": 10.0 * i})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(runs)


def test_only_whole_matured_paths_in_the_window_count_each_value_in_its_place():
    dates = chilean_business_days("2024-01-02", end="2024-06-28")
    prices = price_frame(dates, 800.0 + np.arange(len(dates), dtype=float))
    origins = list(dates[60:-1])  # the last few cannot have matured by the end of the prices
    steps, runs = _forecasts(prices, origins)
    gap_origin = origins[-20]  # a target of this path has no price: not matured
    gap_day = target_business_days(gap_origin, STEPS)[3]
    priced = prices[prices["date"] != gap_day]
    shuffled = steps.sample(frac=1.0, random_state=7)  # rows in any order, as a database may return them

    found, quantiles, actuals, lasts = live_window_arrays(shuffled, runs.sample(frac=1.0, random_state=3), priced, 14)

    last_day = priced["date"].max()
    expected = []
    for origin in origins:
        targets = pd.DatetimeIndex(target_business_days(origin, STEPS))
        if targets.max() > last_day or targets.max() < last_day - pd.Timedelta(days=14):
            continue
        if not targets.isin(priced["date"]).all():
            continue
        expected.append(origin)
    assert gap_origin not in found and len(expected) >= 5
    assert found == expected  # in date order
    by_date = priced.set_index("date")["usdclp"]
    for row, origin in enumerate(found):
        i = origins.index(origin)
        np.testing.assert_array_equal(quantiles[row, :, 0], 1000.0 * i + np.arange(1, STEPS + 1))
        np.testing.assert_allclose(quantiles[row, 2, :], 1000.0 * i + 3 + np.arange(len(QUANTILE_COLUMNS)) / 10)
        np.testing.assert_array_equal(actuals[row], by_date.loc[target_business_days(origin, STEPS)].to_numpy())
        assert lasts[row] == 10.0 * i
    assert quantiles.shape == (len(found), STEPS, len(QUANTILE_COLUMNS)) and actuals.shape == (len(found), STEPS)


def test_a_path_recorded_shorter_than_the_others_trims_all_to_its_steps():
    dates = chilean_business_days("2024-01-02", end="2024-06-28")
    prices = price_frame(dates, 800.0 + np.arange(len(dates), dtype=float))
    steps, runs = _forecasts(prices, list(dates[-40:-20]))
    first = steps["origin_date"].min()
    shorter = steps[(steps["origin_date"] != first) | (steps["step"] <= 5)]  # the oldest path has 5 steps

    found, quantiles, actuals, _ = live_window_arrays(shorter, runs, prices, 100_000)

    assert found[0] == first and quantiles.shape[1] == actuals.shape[1] == 5
    np.testing.assert_array_equal(quantiles[1, :, 0], 1000.0 * 1 + np.arange(1, 6))


def test_nothing_matured_gives_empty_results():
    dates = chilean_business_days("2024-01-02", end="2024-03-29")
    prices = price_frame(dates, 800.0 + np.arange(len(dates), dtype=float))
    steps, runs = _forecasts(prices, list(dates[-3:]))
    assert live_window_arrays(steps, runs, prices, 14) == ([], None, None, None)
    assert live_window_arrays(steps.iloc[:0], runs, prices, 14) == ([], None, None, None)
