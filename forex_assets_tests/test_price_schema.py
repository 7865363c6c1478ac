from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from forex_assets.core.calendar import next_business_days
from forex_assets.core.prices.schema import (
    CSV_LINES,
    PriceRules,
    PriceValidationError,
    today_in_chile,
    validate_prices,
)
from forex_assets.core.prices.sources import read_price_csv, synthetic_prices
from forex_assets_tests.conftest import random_walk_prices


def _fails(frame, rules=None):
    rules = rules or PriceRules()
    with pytest.raises(PriceValidationError) as caught:
        validate_prices(frame, rules, source="test-series")
    return caught.value


def test_valid_series_passes_unchanged():
    prices = random_walk_prices(300)
    pd.testing.assert_frame_equal(validate_prices(prices), prices)


def test_duplicate_dates_named_with_rows():
    prices = random_walk_prices(50)
    prices.loc[10, "date"] = prices.loc[9, "date"]
    error = _fails(prices)
    assert "rule 'unique_dates'" in str(error)
    assert "row 9" in str(error) and "row 10" in str(error)
    assert set(error.failures["unique_dates"].index) == {9, 10}


def test_dates_must_increase():
    prices = random_walk_prices(50)
    prices.loc[[20, 21], "date"] = prices.loc[[21, 20], "date"].to_numpy()
    error = _fails(prices)
    assert "rule 'strictly_increasing_dates'" in str(error)
    assert "row 21" in str(error)


def test_weekend_dates_rejected():
    prices = random_walk_prices(50)
    prices.loc[3, "date"] = pd.Timestamp("2020-01-04")  # a Saturday between row 2 and row 4
    error = _fails(prices)
    assert "rule 'no_weekends'" in str(error)
    assert "row 3 (2020-01-04 Sat" in str(error)


@pytest.mark.parametrize("bad", [0.0, -5.0, np.inf])
def test_prices_must_be_positive_and_finite(bad):
    prices = random_walk_prices(50)
    prices.loc[7, "usdclp"] = bad
    error = _fails(prices)
    assert "rule 'positive_finite_values'" in str(error)
    assert "row 7" in str(error)


def test_missing_value_rejected():
    prices = random_walk_prices(50)
    prices.loc[7, "usdclp"] = np.nan
    assert "rule 'not_nullable'" in str(_fails(prices))


def test_single_day_move_bound_is_configurable():
    prices = random_walk_prices(50)
    prices.loc[30, "usdclp"] = prices.loc[29, "usdclp"] * 1.20  # +20 % then back
    error = _fails(prices)
    assert "rule 'max_daily_move' (no single-day move above 15%)" in str(error)
    assert "row 30" in str(error) and "row 31" in str(error)
    validate_prices(prices, PriceRules(max_daily_move=0.25))  # a looser bound accepts it


def test_gap_longer_than_bound_rejected():
    prices = random_walk_prices(80).drop(index=range(40, 52)).reset_index(drop=True)  # 12 business days
    error = _fails(prices)
    assert "rule 'max_gap_business_days' (at most 10 missing business days in a row)" in str(error)
    assert "row 40" in str(error)
    validate_prices(prices, PriceRules(max_gap_business_days=12))


def test_holiday_sized_gap_is_fine():
    prices = random_walk_prices(80).drop(index=[40, 41, 42]).reset_index(drop=True)
    assert validate_prices(prices).equals(prices)  # accepted as it is, nothing dropped or changed


def test_message_names_every_failed_rule_at_once():
    prices = random_walk_prices(50)
    prices.loc[3, "date"] = pd.Timestamp("2020-01-04")
    prices.loc[20, "usdclp"] = -1
    message = str(_fails(prices))
    assert message.startswith("test-series: USD/CLP series failed validation (50 rows)")
    assert "no_weekends" in message and "positive_finite_values" in message


def test_series_100_times_too_high_is_refused_whole():
    prices = random_walk_prices(50)
    prices["usdclp"] = prices["usdclp"] * 100  # every daily move is plausible; the level is not
    error = _fails(prices)
    message = str(error)
    assert "rule 'plausible_price_range' (prices must lie between 100 and 5,000 CLP per USD)" in message
    assert "failed on 50 row(s): row 0 (2020-01-01 Wed, 80060.0)" in message
    assert "- most prices are out of range: a decimal comma read as a thousands separator" in message
    assert "max_daily_move" not in message
    assert len(error.failures["plausible_price_range"]) == 50


@pytest.mark.parametrize("factor, rules", [(100.0, {"plausible_price_range", "max_daily_move"}),
                                           (0.01, {"plausible_price_range", "max_daily_move"})])  # fmt: skip
def test_one_price_100_times_off_is_named(factor, rules):
    prices = random_walk_prices(50)
    prices.loc[20, "usdclp"] = round(prices.loc[20, "usdclp"] * factor, 2)
    error = _fails(prices)
    assert set(error.failures) == rules
    assert list(error.failures["plausible_price_range"].index) == [20]
    assert "most prices are out of range" not in str(error)


def test_price_range_is_configurable_and_checked():
    prices = random_walk_prices(50, level=80.0)  # a currency quoted near 80
    assert "row 0 (2020-01-01 Wed, 80.06)" in str(_fails(prices))
    pd.testing.assert_frame_equal(validate_prices(prices, PriceRules(min_price=10.0, max_price=200.0)), prices)
    with pytest.raises(ValueError, match="min_price must be positive and below max_price"):
        PriceRules(min_price=5000.0, max_price=100.0)
    with pytest.raises(ValueError, match="max_daily_move 0 must be positive"):
        PriceRules(max_daily_move=0)


def test_real_sized_moves_pass_the_default_bound():
    """USD/CLP's real daily moves stay under 6 %: a 6 % day and back passes with the 15 % default."""
    prices = random_walk_prices(50)
    prices.loc[25, "usdclp"] = round(prices.loc[24, "usdclp"] * 1.06, 2)
    assert validate_prices(prices).equals(prices)


# ---------------------------------------------------------------- no_future_dates (issue 21)


def _ending_on(last: str, n: int = 30) -> pd.DataFrame:
    prices = random_walk_prices(n)
    return prices.assign(date=pd.bdate_range(end=last, periods=n).astype("datetime64[ns]"))


@pytest.mark.parametrize(
    "today, last_allowed",
    [
        (date(2026, 12, 4), "2026-12-07"),  # a Friday: Monday's fixing is published on Friday evening
        (date(2026, 12, 5), "2026-12-07"),  # a Saturday
        (date(2026, 12, 7), "2026-12-09"),  # a Monday before a holiday (8 December): Wednesday
    ],
)
def test_prices_dated_after_the_next_business_day_are_refused(today, last_allowed):
    rules = PriceRules(today=today)
    accepted = _ending_on(last_allowed)
    pd.testing.assert_frame_equal(validate_prices(accepted, rules), accepted)
    late = _ending_on((pd.Timestamp(last_allowed) + pd.offsets.BDay(1)).strftime("%Y-%m-%d"))
    error = _fails(late, rules)
    assert set(error.failures) == {"no_future_dates"}
    assert list(error.failures["no_future_dates"].index) == [29]
    message = str(error)
    assert (
        f"- rule 'no_future_dates' (no date after {last_allowed}: today is {today:%Y-%m-%d} in America/Santiago, "
        "and a price is dated the next Chilean business day at most) on column 'date' failed on 1 row(s): row 29 ("
    ) in message
    assert "- 1 price(s) dated in the future, the latest row 29 (" in message


def test_today_is_the_clock_in_santiago_by_default():
    today = today_in_chile()
    assert today == datetime.now(ZoneInfo("America/Santiago")).date()
    assert PriceRules().last_allowed_date() == next_business_days(today, 1)[0]
    ahead = _ending_on((PriceRules().last_allowed_date() + pd.offsets.BDay(3)).strftime("%Y-%m-%d"))
    assert len(_fails(ahead).failures["no_future_dates"]) == 3
    validate_prices(synthetic_prices())  # the synthetic default ends 2026-10-30


def test_csv_rows_are_named_by_their_file_line(tmp_path):
    """Row i of a CSV is on line i + 2 when nothing is skipped; blank lines move it further: the contract says
    the line the reader read it from."""
    path = tmp_path / "usdclp.csv"
    path.write_text("date,usdclp\n2024-01-02,880.0\n\n2024-01-03,881.0\n,\n\n2024-01-03,882.5\n2024-01-05,883.0\n")
    frame = read_price_csv(path)
    assert frame.attrs[CSV_LINES].lines == (2, 4, 7, 8)
    error = _fails(frame)
    assert "failed on 2 row(s): line 4 (2024-01-03 Wed, 881.0), line 7 (2024-01-03 Wed, 882.5)" in str(error)
    assert "row " not in str(error).replace("row(s)", "")
    assert list(error.failures["unique_dates"].index) == [1, 2]  # the frame's rows, as before
    some = frame.iloc[[0, 1, 3]].reset_index(drop=True).assign(usdclp=[880.0, 881.0, 9e9])
    assert "row 2 (2024-01-05 Fri, 9000000000.0)" in str(_fails(some))  # no longer the file's rows: row numbers


def test_a_validated_csv_series_does_not_carry_its_lines(tmp_path):
    path = tmp_path / "usdclp.csv"
    path.write_text("date,usdclp\n2024-01-02,880.0\n2024-01-03,881.0\n")
    frame = read_price_csv(path)
    validated = validate_prices(frame)
    assert validated.attrs == {} and frame.attrs[CSV_LINES].lines == (2, 3)
    pd.testing.assert_frame_equal(validated, frame)
