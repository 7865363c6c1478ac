"""Business days: the days a currency pair's reference rate is published (for USD/CLP, the Banco Central de
Chile's dólar observado fixing).

A business day of a :class:`BusinessCalendar` is a Monday to Friday that is a holiday in none of its
calendars, as the ``holidays`` package lists them: a country code (``"CL"``: public and bank holidays, so
Chile's 31 December, when banks are closed and there is no fixing, is one; one-off decreed holidays
included) or a financial calendar (``"ECB"``: the TARGET2 closing days of the euro). A currency pair's
calendar is its quote currency's country for a pair against the US dollar, the union of both currencies'
calendars for a cross (:mod:`forex_assets.core.pairs`); :data:`CHILE` is USD/CLP's, and the module's
functions (``next_business_days``, ``is_business_day``, ...) are Chile's, the project's default.

* A forecast's step k targets the k-th business day after its origin (:meth:`BusinessCalendar.next_business_days`):
  real data has no fixing on a holiday, so the model's k-th next observation falls there.
* The data contract counts the business days missing between two observations
  (:meth:`BusinessCalendar.missing_business_days`): a holiday is not a missing day.

Holidays are computed once per calendar and year and the numpy business-day calendars once per span of
decades (:meth:`BusinessCalendar.business_day_calendar`), so the vectorised functions stay cheap on a series of
decades of days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from typing import TypeAlias

import holidays
import numpy as np
import numpy.typing as npt
import pandas as pd

COUNTRY = "CL"
HOLIDAY_CATEGORIES = ("public", "bank")
#: the financial calendars of ``holidays`` a business calendar may name besides country codes
FINANCIAL_CALENDARS = frozenset(holidays.list_supported_financial())
WEEKMASK = "1111100"  # Monday to Friday
_DAY = np.timedelta64(1, "D")

#: one date: an ISO string, a ``date`` (``pd.Timestamp`` is one) or a numpy ``datetime64``
DateScalar: TypeAlias = str | date | np.datetime64
#: one date, or many: a sequence of dates, a datetime64 array, a pandas Series or Index of dates
Dates: TypeAlias = DateScalar | Sequence[DateScalar] | npt.NDArray[np.datetime64] | pd.Series | pd.Index


@cache
def _weekday_holidays(code: str, year: int) -> tuple[np.datetime64, ...]:
    """The holidays of calendar ``code`` in ``year`` that fall on a weekday (a weekend is no business day)."""
    if code in FINANCIAL_CALENDARS:
        days = holidays.financial_holidays(code, years=year)
    else:
        # public and bank holidays where the country defines the bank category (Chile's 31 December)
        supported = holidays.list_supported_countries(include_aliases=False).get(code)
        if supported is None:
            raise ValueError(
                f"unknown holiday calendar {code!r}: not a country code of the holidays package, nor one of its "
                "financial calendars (ECB, NYSE, ...)"
            )
        categories = tuple(c for c in HOLIDAY_CATEGORIES if c == "public" or c in _categories(code))
        days = holidays.country_holidays(code, years=year, categories=categories)
    return tuple(np.datetime64(d, "D") for d in sorted(days) if d.year == year and d.weekday() < 5)


@cache
def _categories(code: str) -> frozenset[str]:
    return frozenset(holidays.country_holidays(code).supported_categories)


@lru_cache(maxsize=64)
def _calendar_for_decades(codes: tuple[str, ...], first_decade: int, last_decade: int) -> np.busdaycalendar:
    years = range(first_decade, last_decade + 10)
    days = np.unique(
        np.array([d for c in codes for y in years for d in _weekday_holidays(c, y)], dtype="datetime64[D]")
    )
    return np.busdaycalendar(weekmask=WEEKMASK, holidays=days)


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


@dataclass(frozen=True)
class BusinessCalendar:
    """The business days of one or more holiday calendars (``codes``: country codes or financial calendars of
    the ``holidays`` package): Monday to Friday, minus a holiday of any of them. Immutable and hashable, so
    the numpy calendars it builds are cached per calendar."""

    codes: tuple[str, ...] = (COUNTRY,)

    def __post_init__(self) -> None:
        if not self.codes:
            raise ValueError("a business calendar needs at least one holiday calendar code")
        object.__setattr__(self, "codes", tuple(sorted(set(self.codes))))
        _weekday_holidays(self.codes[0], 2000)  # an unknown code fails here, naming itself
        for code in self.codes[1:]:
            _weekday_holidays(code, 2000)

    @property
    def name(self) -> str:
        return "+".join(self.codes)

    def business_day_calendar(self, first_year: int, last_year: int) -> np.busdaycalendar:
        """A numpy business-day calendar with the holidays of (at least) ``first_year``..``last_year`` (cached
        per span of whole decades)."""
        first, last = min(first_year, last_year), max(first_year, last_year)
        return _calendar_for_decades(self.codes, first // 10 * 10, last // 10 * 10)

    def holidays(self, start: DateScalar, end: DateScalar) -> pd.DatetimeIndex:
        """The holidays that fall on a weekday between ``start`` and ``end`` inclusive."""
        low, high = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
        days = {
            pd.Timestamp(d) for c in self.codes for y in range(low.year, high.year + 1) for d in _weekday_holidays(c, y)
        }
        return pd.DatetimeIndex(sorted(d for d in days if low <= d <= high), dtype="datetime64[ns]")

    def is_business_day(self, dates: Dates) -> bool | npt.NDArray[np.bool_]:
        """Whether each date is a business day: a bool for one date, else a bool array (dates' order)."""
        days = _days(dates)
        mask = np.is_busday(days, busdaycal=self.business_day_calendar(*_years_spanned(days)))
        return bool(mask[0]) if _is_scalar(dates) else mask

    def next_business_days(self, origin: DateScalar, steps: int) -> list[pd.Timestamp]:
        """The ``steps`` business days after ``origin`` (the first is the next business day strictly after it,
        also when the origin itself is a weekend day or a holiday)."""
        if steps < 0:
            raise ValueError(f"steps {steps} must not be negative")
        day = _days(origin)
        # ~250 business days a year: one more year per 200 steps covers the path
        calendar = self.business_day_calendar(*_years_spanned(day, pad_days=int(steps * 1.5) + 400))
        offsets = np.arange(1, steps + 1)
        # roll backward: from a non-business origin, count from the business day before it
        targets = np.busday_offset(day[0], offsets, roll="backward", busdaycal=calendar)
        return [pd.Timestamp(t) for t in targets]

    def nth_business_day_after(
        self, origins: Dates, steps: int | Sequence[int] | npt.NDArray[np.integer] | pd.Series
    ) -> npt.NDArray[np.datetime64]:
        """Vectorised :meth:`next_business_days`: the ``steps[i]``-th business day after ``origins[i]``
        (datetime64[ns] array)."""
        days, offsets = _days(origins), np.atleast_1d(np.asarray(steps, dtype=np.int64))
        pad = int(offsets.max(initial=0) * 1.5) + 400
        calendar = self.business_day_calendar(*_years_spanned(days, pad_days=pad))
        return np.busday_offset(days, offsets, roll="backward", busdaycal=calendar).astype("datetime64[ns]")

    def business_days(
        self, start: DateScalar, periods: int | None = None, end: DateScalar | None = None
    ) -> pd.DatetimeIndex:
        """Business days from ``start`` (included when it is one): ``periods`` of them, or all of them up to
        ``end`` (included), the calendar's counterpart of ``pd.bdate_range``."""
        if (periods is None) == (end is None):
            raise ValueError("give exactly one of periods and end")
        first = _days(start)[0]
        if periods is not None:
            if periods < 0:
                raise ValueError(f"periods {periods} must not be negative")
            calendar = self.business_day_calendar(*_years_spanned(np.array([first]), pad_days=int(periods * 1.5) + 400))
            days = np.busday_offset(first, np.arange(periods), roll="forward", busdaycal=calendar)
        else:
            last = _days(end)[0]
            candidates = np.arange(first, last + _DAY, dtype="datetime64[D]")
            calendar = self.business_day_calendar(*_years_spanned(np.array([first, last])))
            days = candidates[np.is_busday(candidates, busdaycal=calendar)]
        return pd.DatetimeIndex(days.astype("datetime64[ns]"))

    def business_days_between(self, start: Dates, end: Dates) -> int | npt.NDArray[np.int64]:
        """Business days after ``start`` up to and including ``end`` (0 when ``end`` <= ``start``):
        ``business_days_between(o, next_business_days(o, k)[-1]) == k``. A scalar for scalars, else an array."""
        a, b = _days(start), _days(end)
        calendar = self.business_day_calendar(*_years_spanned(a, b))
        counts = np.busday_count(a + _DAY, b + _DAY, busdaycal=calendar)
        counts = np.maximum(counts, 0)
        return int(counts[0]) if _is_scalar(start) and _is_scalar(end) else counts

    def missing_business_days(self, dates: Dates) -> npt.NDArray[np.int64]:
        """Business days strictly between each date and the previous one (0 for the first date and for
        consecutive business days; a weekend or a holiday in between is not missing)."""
        days = _days(dates)
        gaps = np.zeros(len(days), dtype=np.int64)
        if len(days) > 1:
            calendar = self.business_day_calendar(*_years_spanned(days))
            gaps[1:] = np.maximum(np.busday_count(days[:-1] + _DAY, days[1:], busdaycal=calendar), 0)
        return gaps

    def business_day_offset(
        self, n: int = 1, first_year: int = 1990, last_year: int = 2059
    ) -> pd.offsets.CustomBusinessDay:
        """``n`` business days as a pandas offset (``CustomBusinessDay``), holidays of ``first_year``..
        ``last_year`` (outside them only weekends are skipped)."""
        return pd.offsets.CustomBusinessDay(n, calendar=self.business_day_calendar(first_year, last_year))


#: Chile's business days: USD/CLP's calendar, the project's default
CHILE = BusinessCalendar((COUNTRY,))

# the module's functions: Chile's calendar (the project's default pair, USD/CLP)
business_day_calendar = CHILE.business_day_calendar
chilean_holidays = CHILE.holidays
is_business_day = CHILE.is_business_day
next_business_days = CHILE.next_business_days
nth_business_day_after = CHILE.nth_business_day_after
chilean_business_days = CHILE.business_days
business_days_between = CHILE.business_days_between
missing_business_days = CHILE.missing_business_days
business_day_offset = CHILE.business_day_offset
