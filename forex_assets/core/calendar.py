"""Chilean business days: the days the Banco Central de Chile publishes a dólar observado fixing.

A Chilean business day is a Monday to Friday that is neither a Chilean public holiday nor a Chilean bank
holiday (31 December: banks closed, no fixing), as the ``holidays`` package lists them
(``holidays.country_holidays("CL", categories=("public", "bank"))``, one-off decreed holidays included).

* A forecast's step k targets the k-th Chilean business day after its origin (:func:`next_business_days`):
  real data has no fixing on a Chilean holiday, so the model's k-th next observation falls there.
* The data contract counts the Chilean business days missing between two observations
  (:func:`missing_business_days`): a holiday is not a missing day.

Holidays are computed once per year and the numpy business-day calendars once per span of decades
(:func:`business_day_calendar`), so the vectorised functions stay cheap on a series of decades of days.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import cache, lru_cache
from typing import TypeAlias

import holidays
import numpy as np
import numpy.typing as npt
import pandas as pd

COUNTRY = "CL"
HOLIDAY_CATEGORIES = ("public", "bank")
WEEKMASK = "1111100"  # Monday to Friday
_DAY = np.timedelta64(1, "D")

#: one date: an ISO string, a ``date`` (``pd.Timestamp`` is one) or a numpy ``datetime64``
DateScalar: TypeAlias = str | date | np.datetime64
#: one date, or many: a sequence of dates, a datetime64 array, a pandas Series or Index of dates
Dates: TypeAlias = DateScalar | Sequence[DateScalar] | npt.NDArray[np.datetime64] | pd.Series | pd.Index


@cache
def _weekday_holidays(year: int) -> tuple[np.datetime64, ...]:
    """The Chilean holidays of ``year`` that fall on a weekday (a weekend day is no business day anyway)."""
    days = holidays.country_holidays(COUNTRY, years=year, categories=HOLIDAY_CATEGORIES)
    return tuple(np.datetime64(d, "D") for d in sorted(days) if d.year == year and d.weekday() < 5)


@lru_cache(maxsize=16)
def _calendar_for_decades(first_decade: int, last_decade: int) -> np.busdaycalendar:
    years = range(first_decade, last_decade + 10)
    days = np.array([d for y in years for d in _weekday_holidays(y)], dtype="datetime64[D]")
    return np.busdaycalendar(weekmask=WEEKMASK, holidays=days)


def business_day_calendar(first_year: int, last_year: int) -> np.busdaycalendar:
    """A numpy business-day calendar with the Chilean holidays of (at least) ``first_year``..``last_year``
    (cached per span of whole decades)."""
    first, last = min(first_year, last_year), max(first_year, last_year)
    return _calendar_for_decades(first // 10 * 10, last // 10 * 10)


def _days(values: Dates) -> npt.NDArray[np.datetime64]:
    """Dates (a scalar, a sequence, a Series or an index) as a datetime64[D] array (at least 1-d)."""
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    elif isinstance(values, (str, date, np.datetime64)):
        values = [values]
    return np.atleast_1d(pd.to_datetime(values).to_numpy().astype("datetime64[D]"))


def _years_spanned(*arrays: npt.NDArray[np.datetime64], pad_days: int = 0) -> tuple[int, int]:
    present = [a for a in arrays if a.size]
    if not present:
        return 2000, 2000
    low = min(a.min() for a in present).astype(object).year
    high = (max(a.max() for a in present) + np.timedelta64(pad_days, "D")).astype(object).year
    return low, high


def _is_scalar(value: Dates) -> bool:
    return isinstance(value, (str, date, np.datetime64)) or np.asarray(value).ndim == 0


def chilean_holidays(start: DateScalar, end: DateScalar) -> pd.DatetimeIndex:
    """The Chilean holidays (public and bank) that fall on a weekday between ``start`` and ``end`` inclusive."""
    low, high = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    days = [pd.Timestamp(d) for y in range(low.year, high.year + 1) for d in _weekday_holidays(y)]
    return pd.DatetimeIndex([d for d in days if low <= d <= high], dtype="datetime64[ns]")


def is_business_day(dates: Dates) -> bool | npt.NDArray[np.bool_]:
    """Whether each date is a Chilean business day: a bool for one date, else a bool array (dates' order)."""
    days = _days(dates)
    mask = np.is_busday(days, busdaycal=business_day_calendar(*_years_spanned(days)))
    return bool(mask[0]) if _is_scalar(dates) else mask


def next_business_days(origin: DateScalar, steps: int) -> list[pd.Timestamp]:
    """The ``steps`` Chilean business days after ``origin`` (the first is the next business day strictly
    after it, also when the origin itself is a weekend day or a holiday)."""
    if steps < 0:
        raise ValueError(f"steps {steps} must not be negative")
    day = _days(origin)
    # ~250 business days a year: one more year per 200 steps covers the path
    calendar = business_day_calendar(*_years_spanned(day, pad_days=int(steps * 1.5) + 400))
    offsets = np.arange(1, steps + 1)
    # roll backward: from a non-business origin, count from the business day before it
    targets = np.busday_offset(day[0], offsets, roll="backward", busdaycal=calendar)
    return [pd.Timestamp(t) for t in targets]


def nth_business_day_after(
    origins: Dates, steps: int | Sequence[int] | npt.NDArray[np.integer] | pd.Series
) -> npt.NDArray[np.datetime64]:
    """Vectorised :func:`next_business_days`: the ``steps[i]``-th Chilean business day after ``origins[i]``
    (datetime64[ns] array)."""
    days, offsets = _days(origins), np.atleast_1d(np.asarray(steps, dtype=np.int64))
    pad = int(offsets.max(initial=0) * 1.5) + 400
    calendar = business_day_calendar(*_years_spanned(days, pad_days=pad))
    return np.busday_offset(days, offsets, roll="backward", busdaycal=calendar).astype("datetime64[ns]")


def chilean_business_days(
    start: DateScalar, periods: int | None = None, end: DateScalar | None = None
) -> pd.DatetimeIndex:
    """Chilean business days from ``start`` (included when it is one): ``periods`` of them, or all of them
    up to ``end`` (included) - the Chilean counterpart of ``pd.bdate_range``."""
    if (periods is None) == (end is None):
        raise ValueError("give exactly one of periods and end")
    first = _days(start)[0]
    if periods is not None:
        if periods < 0:
            raise ValueError(f"periods {periods} must not be negative")
        calendar = business_day_calendar(*_years_spanned(np.array([first]), pad_days=int(periods * 1.5) + 400))
        days = np.busday_offset(first, np.arange(periods), roll="forward", busdaycal=calendar)
    else:
        last = _days(end)[0]
        candidates = np.arange(first, last + _DAY, dtype="datetime64[D]")
        calendar = business_day_calendar(*_years_spanned(np.array([first, last])))
        days = candidates[np.is_busday(candidates, busdaycal=calendar)]
    return pd.DatetimeIndex(days.astype("datetime64[ns]"))


def business_days_between(start: Dates, end: Dates) -> int | npt.NDArray[np.int64]:
    """Chilean business days after ``start`` up to and including ``end`` (0 when ``end`` <= ``start``):
    ``business_days_between(o, next_business_days(o, k)[-1]) == k``. A scalar for scalars, else an array."""
    a, b = _days(start), _days(end)
    calendar = business_day_calendar(*_years_spanned(a, b))
    counts = np.busday_count(a + _DAY, b + _DAY, busdaycal=calendar)
    counts = np.maximum(counts, 0)
    return int(counts[0]) if _is_scalar(start) and _is_scalar(end) else counts


def missing_business_days(dates: Dates) -> npt.NDArray[np.int64]:
    """Chilean business days strictly between each date and the previous one (0 for the first date and for
    consecutive business days; a weekend or a Chilean holiday in between is not missing)."""
    days = _days(dates)
    gaps = np.zeros(len(days), dtype=np.int64)
    if len(days) > 1:
        calendar = business_day_calendar(*_years_spanned(days))
        gaps[1:] = np.maximum(np.busday_count(days[:-1] + _DAY, days[1:], busdaycal=calendar), 0)
    return gaps


def business_day_offset(n: int = 1, first_year: int = 1990, last_year: int = 2059) -> pd.offsets.CustomBusinessDay:
    """``n`` Chilean business days as a pandas offset (``CustomBusinessDay``), holidays of ``first_year``..
    ``last_year`` (outside them only weekends are skipped)."""
    return pd.offsets.CustomBusinessDay(n, calendar=business_day_calendar(first_year, last_year))
