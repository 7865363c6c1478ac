"""Where the USD/CLP series comes from: the synthetic default, a CSV file, or the mindicador.cl API.

Every source returns a frame with ``date`` (datetime64[ns]) and ``usdclp`` (float64), oldest first,
which :func:`forex_assets.core.prices.schema.validate_prices` then checks. A CSV's frame also carries each row's
file line (``frame.attrs[CSV_LINES]``), so that the data contract names a row by its line in the file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import requests
from urllib3.exceptions import InvalidHeader, NewConnectionError, ResponseError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from forex_assets.core.files import write_text_atomically
from forex_assets.core.prices.csv_reader import CsvFormat, csv_columns, parse_price_csv
from forex_assets.core.prices.errors import PriceSourceError
from forex_assets.core.prices.schema import CSV_LINES, DATE, VALUE, FileLines
from forex_assets.core.prices.synthetic import NORMAL_DAILY_VOL, usdclp_like_series
from forex_assets.core.retries import RETRY_STATUSES, TransientError, attempts_made, retrying_session

__all__ = [
    "CsvFormat",
    "MindicadorClient",
    "PriceSourceError",
    "PriceSourceName",
    "PriceSourceUnavailable",
    "price_frame",
    "read_price_csv",
    "scaled_synthetic_prices",
    "synthetic_prices",
    "wide_csv_columns",
]

log = logging.getLogger(__name__)

#: the price sources there are (the ``price_source`` resource's ``source``, the commands' ``--source``)
PriceSourceName = Literal["synthetic", "csv", "mindicador"]


def price_frame(dates: pd.Series | pd.DatetimeIndex, values: Sequence[float] | np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            DATE: pd.to_datetime(pd.Series(dates)).astype("datetime64[ns]").to_numpy(),
            VALUE: pd.Series(values, dtype="float64").to_numpy(),
        }
    )


def synthetic_prices(seed: int = 20260101, start: str = "2014-01-01", end: str = "2026-10-30") -> pd.DataFrame:
    return usdclp_like_series(seed=seed, start=start, end=end)


def scaled_synthetic_prices(
    level: float, daily_vol: float, seed: int = 20260101, start: str = "2014-01-01", end: str = "2026-10-30"
) -> pd.DataFrame:
    """The synthetic generator's series (:func:`usdclp_like_series`, same regimes, jumps and closing regime
    change) moved to another pair's scale: it starts at ``level`` and its log returns are multiplied by
    ``daily_vol`` / the generator's normal regime's 0.5 % a day. Prices keep six significant digits (1.08123,
    16,012.34)."""
    base = usdclp_like_series(seed=seed, start=start, end=end)
    log_price = np.log(base[VALUE].to_numpy())
    scaled = np.exp(np.log(level) + (daily_vol / NORMAL_DAILY_VOL) * (log_price - log_price[0]))
    decimals = max(2, 5 - int(np.floor(np.log10(level))))
    return price_frame(base[DATE], np.round(scaled, decimals))


def read_price_csv(
    path: Path | str,
    date_column: str = "date",
    value_column: str = "usdclp",
    csv_format: CsvFormat | None = None,
    skip_missing: bool = False,
) -> pd.DataFrame:
    """Read a CSV of dates and prices (:mod:`forex_assets.core.prices.csv_reader`): the delimiter, decimal mark,
    thousands separator, date format and encoding are ``csv_format``'s settings, each detected when "auto" (an
    ambiguous file is refused, asking for the setting; None: all "auto"). Errors name the file, the line, the
    column and the rule. Each row's file line is in ``frame.attrs[CSV_LINES]`` (for the data contract's
    messages; :func:`~forex_assets.core.prices.schema.validate_prices` drops it from the frame it returns).
    ``skip_missing``: rows without a value in ``value_column`` are no observation (a wide file of several
    currencies, :func:`wide_csv_columns`), not an error."""
    parsed = parse_price_csv(path, date_column, value_column, csv_format, skip_missing)
    frame = price_frame(parsed.dates, parsed.values)
    frame.attrs[CSV_LINES] = FileLines(parsed.lines)
    return frame


def wide_csv_columns(
    path: Path | str, date_column: str = "date", csv_format: CsvFormat | None = None
) -> dict[str, pd.DataFrame | str]:
    """Every column but the date of a wide CSV (one column per currency), each read as a price series with its
    missing cells skipped (:func:`read_price_csv`): the frame, or the reason the column cannot be one (the
    reader's error, which names the file, the column and the lines)."""
    out: dict[str, pd.DataFrame | str] = {}
    for column in csv_columns(path, date_column, csv_format):
        if column == date_column or not column:
            continue
        try:
            out[column] = read_price_csv(path, date_column, column, csv_format, skip_missing=True)
        except PriceSourceError as error:
            out[column] = str(error)
    return out


class PriceSourceUnavailable(PriceSourceError, TransientError):
    """The source did not answer usefully for now (it kept answering 5xx or 429, or could not be reached) after
    the client's own retries: worth another try later, which the step's retry policy makes."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _retry_after(response: requests.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds (a number or an HTTP date), None when absent or unreadable."""
    header = response.headers.get("Retry-After")
    try:
        return Retry().parse_retry_after(header) if header else None
    except InvalidHeader:
        return None


@dataclass
class MindicadorClient:
    """A mindicador.cl series (``GET {base_url}/api/{indicator}/{year}``: ``dolar`` for USD/CLP, ``euro`` for
    EUR/CLP) with a per-year cache.

    Years before the current one are immutable: once cached they are never fetched again. The current
    year is fetched on every call (it grows daily). Connection errors, timeouts and HTTP 408, 429, 500, 502,
    503 and 504 are retried up to ``max_retries`` times by urllib3 (:func:`forex_assets.core.retries.http_retry`):
    after the ``Retry-After`` the server asks for (up to ``max_retry_after_s``), else after 0, 2, 4, ... x
    ``backoff_s``. When they run out, :class:`PriceSourceUnavailable` (transient: the step may try again later);
    other answers (404, a document that is not the series) fail at once with :class:`PriceSourceError`.
    """

    base_url: str = "https://mindicador.cl"
    cache_dir: Path = Path(".forex_assets/mindicador")
    timeout_s: float = 10.0
    max_retries: int = 3
    backoff_s: float = 1.0
    max_retry_after_s: float = 60.0
    indicator: str = "dolar"

    def url(self, year: int) -> str:
        return f"{self.base_url.rstrip('/')}/api/{self.indicator}/{year}"

    def cache_path(self, year: int) -> Path:
        return Path(self.cache_dir) / f"{self.indicator}_{year}.json"

    def _network_error(self, error: requests.RequestException) -> str:
        reason = getattr(error.args[0], "reason", None) if error.args else None
        if isinstance(reason, NewConnectionError):
            return f"connection failed ({reason.__class__.__name__})"
        if isinstance(error, requests.Timeout) or isinstance(reason, Urllib3Timeout):
            return f"timed out after {self.timeout_s:g} s"
        if isinstance(reason, ResponseError):  # a Retry-After longer than the client waits (HttpRetry)
            return str(reason)
        return f"connection failed ({(reason or error).__class__.__name__})"

    def _get(self, year: int) -> list[dict[str, Any]]:
        url = self.url(year)
        attempts = f"{self.max_retries + 1} attempt{'s' if self.max_retries else ''}"
        try:
            with retrying_session(self.max_retries, self.backoff_s, self.max_retry_after_s) as session:
                response = session.get(url, timeout=self.timeout_s)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise PriceSourceUnavailable(
                f"mindicador: {url} failed after {attempts} (last error: {self._network_error(error)})"
            ) from None
        except requests.RequestException as error:  # an invalid URL, too many redirects: waiting cures nothing
            raise PriceSourceError(
                f"mindicador: {url} could not be requested ({error.__class__.__name__}: {error}); not retried: "
                "check mindicador_base_url"
            ) from None
        status = response.status_code
        if status in RETRY_STATUSES:
            after = _retry_after(response)
            detail = f"HTTP {status}"
            if after is not None and after > self.max_retry_after_s:
                detail += f", Retry-After {after:g} s is longer than the {self.max_retry_after_s:g} s this client waits"
            made = attempts_made(response)
            raise PriceSourceUnavailable(
                f"mindicador: {url} failed after {made} attempt{'s' if made != 1 else ''} (last error: {detail})",
                after,
            )
        if status != 200:
            retried = ", ".join(str(code) for code in sorted(RETRY_STATUSES))
            raise PriceSourceError(
                f"mindicador: {url} answered HTTP {status}; not retried (only timeouts, connection errors and "
                f"HTTP {retried} are)"
            )
        try:
            serie = response.json()["serie"]
            if not isinstance(serie, list):
                raise TypeError("'serie' is not a list")
            return [{"fecha": str(item["fecha"]), "valor": float(item["valor"])} for item in serie]
        except (ValueError, KeyError, TypeError) as error:
            raise PriceSourceError(
                f"mindicador: {url} returned an unexpected document ({error}); expected "
                '{"serie": [{"fecha": ..., "valor": ...}, ...]}; not retried'
            ) from None

    def year(self, year: int, today: date) -> tuple[list[dict[str, Any]], bool]:
        """The observations of ``year`` and whether they were fetched (False: read from cache)."""
        path = self.cache_path(year)
        if year < today.year and path.is_file():
            try:
                return json.loads(path.read_text()), False
            except json.JSONDecodeError:
                log.warning("mindicador cache %s is corrupt; fetching the year again", path)
        serie = self._get(year)
        write_text_atomically(path, json.dumps(serie))
        return serie, True

    def prices(self, start_year: int, end_year: int | None = None, today: date | None = None) -> pd.DataFrame:
        today = today or date.today()
        end_year = end_year or today.year
        if start_year > end_year:
            raise PriceSourceError(f"mindicador: start_year {start_year} is after end_year {end_year}")
        rows: list[dict[str, Any]] = []
        fetched = []
        for year in range(start_year, end_year + 1):
            serie, was_fetched = self.year(year, today)
            rows.extend(serie)
            if was_fetched:
                fetched.append(year)
        log.info("mindicador: fetched years %s, %d from cache", fetched, end_year - start_year + 1 - len(fetched))
        if not rows:
            raise PriceSourceError(f"mindicador: no observations between {start_year} and {end_year}")
        stamps = pd.to_datetime([r["fecha"] for r in rows], utc=True).tz_convert("America/Santiago")
        frame = price_frame(stamps.tz_localize(None).normalize(), [r["valor"] for r in rows])
        return frame.sort_values(DATE, kind="stable").reset_index(drop=True)
