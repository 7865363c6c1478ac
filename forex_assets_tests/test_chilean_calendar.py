"""Business days are Chilean business days: target dates skip Chilean holidays, a target is scored against the
fixing of its own date (never the previous day's), and the data contract does not count holidays as gaps."""

import numpy as np
import pandas as pd
import pytest

from forex_assets.core.calendar import (
    business_day_offset,
    business_days_between,
    chilean_business_days,
    chilean_holidays,
    is_business_day,
    missing_business_days,
    next_business_days,
)
from forex_assets.core.forecasting.history import QUANTILE_COLUMNS, ForecastHistory, ForecastRecord
from forex_assets.core.forecasting.production import make_forecast, target_business_days
from forex_assets.core.monitoring.live_scoring import fixing_dates, live_window_arrays, score_matured
from forex_assets.core.prices.schema import PriceRules, PriceValidationError, validate_prices
from forex_assets.core.prices.sources import price_frame
from forex_assets.core.replay.report_stats import _paths

FIESTAS_PATRIAS_2024 = pd.to_datetime(["2024-09-18", "2024-09-19", "2024-09-20"])  # Wed, Thu, Fri
ORIGIN = pd.Timestamp("2024-09-13")  # the Friday before them
TARGETS_7D = pd.to_datetime(
    ["2024-09-16", "2024-09-17", "2024-09-23", "2024-09-24", "2024-09-25", "2024-09-26", "2024-09-27"]
)
OLD_TARGETS_7D = pd.bdate_range("2024-09-16", periods=7)  # what pd.bdate_range gave: 18-20 Sept included


def _real_like(start="2024-06-03", end="2024-10-31") -> pd.DataFrame:
    """A series with a price on each Chilean business day only (as the Banco Central publishes), a different
    price every day so that scoring on the wrong day shows."""
    dates = chilean_business_days(start, end=end)
    return price_frame(dates, 900.0 + np.arange(len(dates), dtype=float))


def _synthetic_like(start="2024-06-03", end="2024-10-31") -> pd.DataFrame:
    """A series with a price on every weekday, Chilean holidays included (as the synthetic series)."""
    dates = pd.bdate_range(start, end)
    return price_frame(dates, 900.0 + np.arange(len(dates), dtype=float))


def _steps(origin, targets, medians) -> pd.DataFrame:
    """``forecast_steps`` rows of one forecast whose quantiles are the median +- 1..2 CLP."""
    medians = np.asarray(medians, dtype=float)
    frame = pd.DataFrame({"origin_date": pd.Timestamp(origin), "step": np.arange(1, len(targets) + 1),
                          "target_date": pd.DatetimeIndex(targets)})  # fmt: skip
    for column, offset in zip(QUANTILE_COLUMNS, (-2.0, -1.0, 0.0, 1.0, 2.0), strict=True):
        frame[column] = medians + offset
    return frame


def _price_on(prices: pd.DataFrame, day) -> float:
    return float(prices.set_index("date").loc[pd.Timestamp(day), "usdclp"])


# --- the calendar ------------------------------------------------------------------------------------------


def test_the_holidays_package_knows_fiestas_patrias_2024_and_new_year():
    assert list(chilean_holidays("2024-09-01", "2024-09-30")) == list(FIESTAS_PATRIAS_2024)
    assert not is_business_day("2024-09-20")  # the extra Friday holiday of 2024 too
    assert not is_business_day(pd.Timestamp("2025-01-01")) and not is_business_day("2024-12-31")  # bank holiday
    assert is_business_day("2024-09-17") and is_business_day("2025-01-02")
    assert not is_business_day("2024-09-14")  # a Saturday
    mask = is_business_day(pd.Series(pd.to_datetime(["2024-09-17", "2024-09-18", "2024-09-23"])))
    assert mask.tolist() == [True, False, True]


def test_seven_business_days_after_the_friday_before_fiestas_patrias_skip_the_holidays():
    targets = target_business_days(ORIGIN, 7)
    assert targets == list(TARGETS_7D) == next_business_days(ORIGIN, 7)
    assert not set(targets) & set(FIESTAS_PATRIAS_2024)
    assert list(OLD_TARGETS_7D) != targets  # what pd.bdate_range gave: three of them were holidays


def test_new_year_is_skipped_and_so_is_the_31_december_bank_holiday():
    assert next_business_days("2024-12-27", 4) == list(pd.to_datetime(["2024-12-30", "2025-01-02", "2025-01-03",
                                                                        "2025-01-06"]))  # fmt: skip
    assert next_business_days("2025-12-30", 2) == list(pd.to_datetime(["2026-01-02", "2026-01-05"]))


def test_an_origin_on_a_holiday_or_a_weekend_counts_from_the_next_business_day():
    # the synthetic series has prices on Chilean holidays: a forecast can start on one
    assert next_business_days("2024-09-18", 2) == list(pd.to_datetime(["2024-09-23", "2024-09-24"]))
    assert next_business_days("2024-09-14", 1) == [pd.Timestamp("2024-09-16")]


@pytest.mark.parametrize("origin", ["2024-09-13", "2024-12-24", "2025-04-16", "2023-12-29", "2026-10-30"])
@pytest.mark.parametrize("steps", [1, 7, 30, 90])
def test_the_calendar_functions_agree(origin, steps):
    targets = next_business_days(origin, steps)
    assert len(targets) == steps and all(is_business_day(t) for t in targets)
    assert business_days_between(origin, targets[-1]) == steps
    assert list(chilean_business_days(targets[0], periods=steps)) == targets
    assert list(chilean_business_days(targets[0], end=targets[-1])) == targets
    assert pd.Timestamp(origin) + business_day_offset(steps) == targets[-1] or not is_business_day(origin)
    span = pd.bdate_range(pd.Timestamp(origin) + pd.Timedelta(days=1), targets[-1])
    assert len(span) - steps == len(chilean_holidays(span[0], span[-1]))  # only holidays told apart


def test_business_days_between_counts_after_the_start_up_to_the_end():
    assert business_days_between(ORIGIN, "2024-09-23") == 3
    assert business_days_between("2024-09-23", ORIGIN) == 0
    counts = business_days_between(pd.to_datetime([ORIGIN, ORIGIN]), pd.to_datetime(["2024-09-17", "2024-09-20"]))
    assert counts.tolist() == [2, 2]


# --- a forecast's target dates ------------------------------------------------------------------------------


def test_a_production_forecast_targets_chilean_business_days():
    from forex_assets.core.forecasting.config import parse_config

    prices = _real_like("2023-06-01", ORIGIN)
    config = parse_config({"horizon": "7d", "context_length": 180, "checkpoint": "bundled:usdclp-chronos2-mini",
                           "family": "chronos2"})  # fmt: skip
    record = make_forecast(prices, config, "v1")
    assert record.origin_date == ORIGIN and record.target_dates == list(TARGETS_7D)


# --- scoring against the fixing of the target date ----------------------------------------------------------


def test_a_step_after_a_holiday_is_scored_against_its_own_dates_fixing_not_the_previous_days():
    prices = _real_like()
    actual = [_price_on(prices, t) for t in TARGETS_7D]
    steps = _steps(ORIGIN, target_business_days(ORIGIN, 7), actual)  # an exact forecast of every fixing
    score = score_matured(steps, prices)
    assert score.forecasts == 1 and score.rmse_clp == pytest.approx(0.0)
    assert score.errors["target_date"].tolist() == list(TARGETS_7D)
    assert score.errors["actual"].iloc[2] == _price_on(prices, "2024-09-23") != _price_on(prices, "2024-09-17")


def test_a_price_on_a_chilean_holiday_synthetic_data_is_the_one_scored_on_that_date():
    prices = _synthetic_like()  # a price on 18, 19 and 20 September
    steps = _steps(ORIGIN, OLD_TARGETS_7D, [_price_on(prices, t) for t in OLD_TARGETS_7D])  # targets 18-20 Sept
    assert fixing_dates(steps, prices["date"]).tolist() == list(OLD_TARGETS_7D)
    score = score_matured(steps, prices)
    assert score.forecasts == 1 and score.rmse_clp == pytest.approx(0.0)
    assert score.errors["actual"].iloc[2] == _price_on(prices, "2024-09-18") != _price_on(prices, "2024-09-17")


def test_a_path_recorded_with_holiday_targets_is_scored_on_the_chilean_business_days():
    """A forecast recorded before target dates followed the Chilean calendar targets 18-20 Sept, which have no
    fixing: its step k forecast the k-th next fixing, so it is scored on the k-th Chilean business day."""
    prices = _real_like()
    steps = _steps(ORIGIN, OLD_TARGETS_7D, [_price_on(prices, t) for t in TARGETS_7D])
    assert fixing_dates(steps, prices["date"]).tolist() == list(TARGETS_7D)
    score = score_matured(steps, prices)
    assert score.forecasts == 1 and score.rmse_clp == pytest.approx(0.0)
    not_yet = score_matured(steps, prices[prices["date"] <= "2024-09-26"])  # the 7th fixing not published yet
    assert not_yet.forecasts == 0 and not_yet.rmse_clp is None


def test_a_target_date_without_a_price_is_not_matured():
    prices = _real_like()
    steps = _steps(ORIGIN, TARGETS_7D, [_price_on(prices, t) for t in TARGETS_7D])
    ended = score_matured(steps, prices[prices["date"] <= "2024-09-26"])  # the series ends before the 7th
    gap = score_matured(steps, prices[prices["date"] != pd.Timestamp("2024-09-24")])  # no price on the 4th
    assert ended.forecasts == gap.forecasts == 0
    runs = pd.DataFrame({"origin_date": [ORIGIN], "last_price": [_price_on(prices, ORIGIN)]})
    origins, *_ = live_window_arrays(steps, runs, prices[prices["date"] != pd.Timestamp("2024-09-24")], 100_000)
    assert origins == []


def test_live_window_arrays_score_each_step_on_its_target_dates_fixing():
    prices = _real_like()
    origins = [ORIGIN, pd.Timestamp("2024-09-17")]
    frames, runs = [], []
    for origin in origins:
        targets = target_business_days(origin, 7)
        frames.append(_steps(origin, targets, [_price_on(prices, t) + 1.0 for t in targets]))
        runs.append({"origin_date": origin, "last_price": _price_on(prices, origin)})
    legacy = _steps("2024-09-12", pd.bdate_range("2024-09-13", periods=7), np.zeros(7))  # targets 18-19 Sept
    steps = pd.concat([*frames, legacy])
    runs.append({"origin_date": pd.Timestamp("2024-09-12"), "last_price": _price_on(prices, "2024-09-12")})
    found, quantiles, actuals, lasts = live_window_arrays(steps, pd.DataFrame(runs), prices, days=100_000)
    assert found == [pd.Timestamp("2024-09-12"), *origins]
    assert actuals.shape == (3, 7)
    assert actuals[1].tolist() == [_price_on(prices, t) for t in TARGETS_7D]
    assert actuals[0].tolist() == [_price_on(prices, t) for t in next_business_days("2024-09-12", 7)]
    np.testing.assert_allclose(quantiles[1:, :, 2] - actuals[1:], 1.0)


def test_the_replay_report_scores_each_target_on_its_own_dates_fixing(tmp_path):
    prices = _real_like()
    history = ForecastHistory(tmp_path / "forecast_history.sqlite")
    origins = list(chilean_business_days("2024-09-10", end="2024-09-24"))
    for origin in origins:
        targets = target_business_days(origin, 7)
        median = np.array([_price_on(prices, t) for t in targets]) + 2.0
        history.record(ForecastRecord("7d", origin, _price_on(prices, origin), targets,
                                      median[:, None] + np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), "v1",
                                      "bundled:usdclp-chronos2-mini", {}, 0.05))  # fmt: skip
    static = {origin: np.zeros((7, 5)) for origin in origins}
    seen = prices[prices["date"] <= "2024-09-30"]
    live, _, lasts, actuals, _ = _paths(history, "7d", origins, seen, static)
    matured = [o for o in origins if target_business_days(o, 7)[-1] <= pd.Timestamp("2024-09-30")]
    assert len(live) == len(matured) == 5
    assert actuals[matured.index(ORIGIN)].tolist() == [_price_on(prices, t) for t in TARGETS_7D]
    np.testing.assert_allclose(live[..., 2] - actuals, 2.0)  # each step against the fixing of its own date
    with_gap = seen[seen["date"] != pd.Timestamp("2024-09-25")]  # a business day without a price
    live, *_ = _paths(history, "7d", origins, with_gap, static)
    crossing = [o for o in matured if pd.Timestamp("2024-09-25") in target_business_days(o, 7)]
    assert crossing and len(live) == len(matured) - len(crossing) > 0


# --- the data contract's gap rule -----------------------------------------------------------------------------


def test_holidays_are_not_missing_business_days():
    dates = pd.Series(pd.to_datetime(["2024-09-13", "2024-09-23", "2024-09-24", "2024-12-27", "2024-12-30",
                                      "2025-01-02", "2025-01-06"]))  # fmt: skip
    assert missing_business_days(dates).tolist() == [0, 2, 0, 64, 0, 0, 1]  # 16-17 Sept, then 3 Jan 2025
    validate_prices(_real_like("2023-01-02", "2025-06-30"))  # every Chilean holiday skipped: no gap at all


def test_a_ten_business_day_gap_across_holidays_is_not_flagged_as_more():
    prices = _real_like()
    # 10 Chilean business days missing, 10-13 and 16-17 then 23-26 Sept: 13 weekdays with 18-20 Sept
    missing = chilean_business_days("2024-09-10", periods=10)
    assert missing[-1] == pd.Timestamp("2024-09-26") and len(pd.bdate_range(missing[0], missing[-1])) == 13
    gapped = prices[~prices["date"].isin(missing)].reset_index(drop=True)
    assert validate_prices(gapped).equals(gapped)  # the default allows 10
    longer = prices[~prices["date"].isin(chilean_business_days("2024-09-10", periods=11))].reset_index(drop=True)
    with pytest.raises(PriceValidationError, match="max_gap_business_days"):
        validate_prices(longer)
    validate_prices(longer, PriceRules(max_gap_business_days=11))
