import numpy as np
import pandas as pd
import pytest

from forex_assets.core.prices.schema import PriceRules, PriceValidationError, validate_prices
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
    validate_prices(prices)


def test_message_names_every_failed_rule_at_once():
    prices = random_walk_prices(50)
    prices.loc[3, "date"] = pd.Timestamp("2020-01-04")
    prices.loc[20, "usdclp"] = -1
    message = str(_fails(prices))
    assert message.startswith("test-series: USD/CLP series failed validation (50 rows)")
    assert "no_weekends" in message and "positive_finite_values" in message
