"""The data contract of a currency pair's price series (pandera); the defaults are USD/CLP's.

A series is a frame with ``date`` (datetime64[ns], business days) and ``usdclp`` (the price column, whatever
the pair: for USD/CLP, CLP per USD). The pair sets the plausible range, the largest daily move and the
business calendar of :class:`PriceRules` (:meth:`forex_assets.core.pairs.Pair.price_rules`).
Each rule is a named pandera check; a violation raises :class:`PriceValidationError` whose message
names every rule that failed and the offending rows: by their line in the file for a series read from a CSV
(``frame.attrs[CSV_LINES]``, which the CSV reader fills), else by their row number.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from forex_assets.core.calendar import CHILE, BusinessCalendar

DATE = "date"
VALUE = "usdclp"

#: Default bound on one business day's move, as a fraction (0.15 = 15 %). Real USD/CLP daily moves stay below
#: 6 %, even on its worst days; 15 % leaves room for a worse day than any so far, and still refuses one price
#: misread 100 times too high or too low (a move of +9,900 % or -99 %).
DEFAULT_MAX_DAILY_MOVE = 0.15
#: Default plausible range of the price, CLP per USD. USD/CLP has traded between about 300 and about 1,100 since
#: 1990; 100..5,000 leaves a wide margin on both sides for what has not happened yet, and refuses a whole series
#: read 100 or 1,000 times too high (678,01 read as 67,801 when a decimal comma is taken for a thousands
#: separator) or too low (a value in USD per CLP, or in thousands of CLP). Change it only for another currency.
DEFAULT_MIN_PRICE = 100.0
DEFAULT_MAX_PRICE = 5000.0
#: Default longest run of missing Chilean business days between two observations (weekends and Chilean
#: holidays, which have no fixing, are not missing days; 10 leaves room for a source's outage of two weeks).
DEFAULT_MAX_GAP_BUSINESS_DAYS = 10
#: "Today" for the rule no_future_dates is the date in the pair's timezone.
TIMEZONE = "America/Santiago"
#: Rule no_future_dates: a price may be dated at most this many Chilean business days after today. The Banco
#: Central de Chile publishes a business day's dólar observado on the evening of the business day before, so a
#: source read that evening (the daily monitoring schedule runs at 19:00) may already list the next business
#: day; a date later than that is a mistyped date (2027 for 2026) or a clock set wrong, never a price.
MAX_BUSINESS_DAYS_AHEAD = 1
MAX_ROWS_IN_MESSAGE = 5
#: ``frame.attrs`` key of a CSV's file line per row, a :class:`FileLines`
#: (:func:`forex_assets.core.prices.sources.read_price_csv`)
CSV_LINES = "csv_lines"


class PriceValidationError(ValueError):
    """The price series broke the data contract. ``failures`` maps rule name -> offending rows."""

    def __init__(self, message: str, failures: dict[str, pd.DataFrame]):
        super().__init__(message)
        self.failures = failures


@dataclass(frozen=True)
class FileLines:
    """The file line of each row of a frame read from a CSV (row i: ``lines[i]``). Immutable: pandas' copies
    of a frame's attrs share it instead of copying thousands of numbers on every operation."""

    lines: tuple[int, ...]

    def __deepcopy__(self, memo: dict[int, Any]) -> FileLines:
        return self


def today_in_chile() -> date:
    """Today's date in :data:`TIMEZONE` (America/Santiago)."""
    return datetime.now(ZoneInfo(TIMEZONE)).date()


@dataclass(frozen=True)
class PriceRules:
    """The contract's bounds. ``today``: the day the series is checked on, for no_future_dates (None: the
    clock's date in America/Santiago, read when the series is validated; tests set it). ``calendar``: the
    pair's business days (gaps and the latest allowed date count them); ``label`` and ``unit`` name the pair
    and its price in messages."""

    max_daily_move: float = DEFAULT_MAX_DAILY_MOVE
    max_gap_business_days: int = DEFAULT_MAX_GAP_BUSINESS_DAYS
    min_price: float = DEFAULT_MIN_PRICE
    max_price: float = DEFAULT_MAX_PRICE
    today: date | None = None
    calendar: BusinessCalendar = CHILE
    label: str = "USD/CLP"
    unit: str = "CLP per USD"

    def __post_init__(self) -> None:
        if not 0 < self.min_price < self.max_price:
            raise ValueError(
                f"price range {self.min_price}..{self.max_price}: min_price must be positive and below max_price"
            )
        if not self.max_daily_move > 0:
            raise ValueError(f"max_daily_move {self.max_daily_move} must be positive (a fraction, 0.15 = 15 %)")

    def checked_on(self) -> date:
        return self.today or today_in_chile()

    def last_allowed_date(self) -> pd.Timestamp:
        """The latest date a price may have: :data:`MAX_BUSINESS_DAYS_AHEAD` business days after today."""
        return self.calendar.next_business_days(self.checked_on(), MAX_BUSINESS_DAYS_AHEAD)[-1]


def missing_business_days(dates: pd.Series, calendar: BusinessCalendar = CHILE) -> pd.Series:
    """Business days of ``calendar`` skipped between each date and the previous one (0 for consecutive business
    days; weekends and holidays in between are not counted: :mod:`forex_assets.core.calendar`)."""
    return pd.Series(calendar.missing_business_days(dates), index=dates.index)


def _calendar_word(rules: PriceRules) -> str:
    return "Chilean" if rules.calendar == CHILE else rules.calendar.name


def rule_descriptions(rules: PriceRules = PriceRules()) -> dict[str, str]:
    """What each named rule demands, for error messages."""
    return {
        "unique_dates": "dates must be unique",
        "strictly_increasing_dates": "each date must be later than the previous row's",
        "no_weekends": "dates must be business days (Monday to Friday)",
        "no_future_dates": f"no date after {rules.last_allowed_date():%Y-%m-%d}: today is "
        f"{rules.checked_on():%Y-%m-%d} in {TIMEZONE}, and a price is dated the next "
        f"{_calendar_word(rules)} business day at most",
        "max_gap_business_days": f"at most {rules.max_gap_business_days} missing business days in a row",
        "positive_finite_values": "prices must be positive finite numbers",
        "plausible_price_range": f"prices must lie between {rules.min_price:,g} and {rules.max_price:,g} {rules.unit}",
        "max_daily_move": f"no single-day move above {rules.max_daily_move:.0%}",
        "not_nullable": "no missing values",
    }


def price_schema(rules: PriceRules = PriceRules()) -> pa.DataFrameSchema:
    daily_move = rules.max_daily_move
    max_gap = rules.max_gap_business_days
    low, high = rules.min_price, rules.max_price
    last_date = rules.last_allowed_date()
    calendar = rules.calendar
    return pa.DataFrameSchema(
        {
            DATE: pa.Column(
                "datetime64[ns]",
                nullable=False,
                checks=[
                    pa.Check(lambda s: ~s.duplicated(keep=False), name="unique_dates"),
                    pa.Check(
                        lambda s: s.diff().isna() | (s.diff() > pd.Timedelta(0)), name="strictly_increasing_dates"
                    ),
                    pa.Check(lambda s: s.dt.day_of_week < 5, name="no_weekends"),
                    pa.Check(lambda s: s <= last_date, name="no_future_dates"),
                    pa.Check(lambda s: missing_business_days(s, calendar) <= max_gap, name="max_gap_business_days"),
                ],
            ),
            VALUE: pa.Column(
                float,
                nullable=False,
                checks=[
                    pa.Check(lambda s: np.isfinite(s) & (s > 0), name="positive_finite_values"),
                    pa.Check(lambda s: (s >= low) & (s <= high), name="plausible_price_range"),
                    pa.Check(lambda s: s.pct_change().abs().fillna(0.0) <= daily_move, name="max_daily_move"),
                ],
            ),
        },
        strict=True,
        ordered=False,
        coerce=False,
        name="pair_prices",
    )


def _file_lines(frame: pd.DataFrame) -> tuple[int, ...] | None:
    """The file line of each row (row i: ``lines[i]``) when ``frame`` is a CSV's rows as read, else None."""
    attached = frame.attrs.get(CSV_LINES)
    lines = attached.lines if isinstance(attached, FileLines) else None
    if lines is None or len(lines) != len(frame) or not frame.index.equals(pd.RangeIndex(len(frame))):
        return None  # not read from a CSV, or reordered / sliced since: the row numbers are all there is
    return lines


def _rows_text(frame: pd.DataFrame, rows: list[int], lines: tuple[int, ...] | None) -> str:
    shown = []
    for row in rows[:MAX_ROWS_IN_MESSAGE]:
        place = f"line {lines[row]}" if lines is not None and row in frame.index else f"row {row}"
        if row in frame.index:
            date = frame.at[row, DATE] if DATE in frame else None
            value = frame.at[row, VALUE] if VALUE in frame else None
            date_text = pd.Timestamp(date).strftime("%Y-%m-%d %a") if pd.notna(date) else "no date"
            shown.append(f"{place} ({date_text}, {value})")
        else:
            shown.append(place)
    more = len(rows) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def validate_prices(frame: pd.DataFrame, rules: PriceRules = PriceRules(), source: str = "prices") -> pd.DataFrame:
    """Return ``frame`` if it honours every rule (without the CSV's line numbers, ``attrs[CSV_LINES]``); else
    raise :class:`PriceValidationError`. A row is named by its file line when ``frame`` came from a CSV."""
    rules = replace(rules, today=rules.checked_on())  # one "today" for the check and its description
    file_lines = _file_lines(frame)
    if CSV_LINES in frame.attrs:  # checked and returned without them (the caller's frame keeps its attrs)
        frame = frame.copy(deep=False)
        frame.attrs = {key: value for key, value in frame.attrs.items() if key != CSV_LINES}
    try:
        return price_schema(rules).validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        failures: dict[str, pd.DataFrame] = {}
        lines = []
        descriptions = rule_descriptions(rules)
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
            rule = str(check)
            described = f"rule '{rule}' ({descriptions[rule]})" if rule in descriptions else f"rule '{rule}'"
            rows = sorted({int(i) for i in group["index"].dropna().tolist()}) if "index" in group else []
            failures[rule] = frame.loc[[r for r in rows if r in frame.index]]
            if rows:
                shown = _rows_text(frame, rows, file_lines)
                lines.append(f"- {described} on column '{column}' failed on {len(rows)} row(s): {shown}")
            else:
                detail = ", ".join(str(c) for c in group["failure_case"].tolist()[:MAX_ROWS_IN_MESSAGE])
                lines.append(f"- {described} on column '{column}' failed: {detail}")
        future = failures.get("no_future_dates")
        if future is not None and len(future):
            latest = _rows_text(frame, [future.index[-1]], file_lines)
            lines.append(
                f"- {len(future)} price(s) dated in the future, the latest {latest}; a mistyped year or month (2027 "
                "for 2026?), or this computer's clock is behind; correct the dates in the source"
            )
        out_of_range = failures.get("plausible_price_range")
        if out_of_range is not None and len(out_of_range) > len(frame) / 2:
            lines.append(
                "- most prices are out of range: a decimal comma read as a thousands separator (678,01 -> 67801), or "
                "another unit? Check the file's number format (the CSV source's csv_decimal / csv_thousands)"
            )
        message = f"{source}: {rules.label} series failed validation ({len(frame)} rows):\n" + "\n".join(lines)
        raise PriceValidationError(message, failures) from None
