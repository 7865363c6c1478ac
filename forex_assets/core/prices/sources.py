"""Where the USD/CLP series comes from: the synthetic default, a CSV file, or the mindicador.cl API.

Every source returns a frame with ``date`` (datetime64[ns]) and ``usdclp`` (float64), oldest first,
which :func:`forex_assets.core.prices.schema.validate_prices` then checks.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import requests

from forex_assets.core.files import write_text_atomically
from forex_assets.core.prices.csv_reader import CsvFormat, parse_price_csv
from forex_assets.core.prices.errors import PriceSourceError
from forex_assets.core.prices.schema import DATE, VALUE
from forex_assets.core.prices.synthetic import usdclp_like_series

__all__ = [
    "CsvFormat",
    "MindicadorClient",
    "PriceSourceError",
    "price_frame",
    "read_price_csv",
    "synthetic_prices",
]

log = logging.getLogger(__name__)


def price_frame(dates, values) -> pd.DataFrame:
    return pd.DataFrame(
        {
            DATE: pd.to_datetime(pd.Series(dates)).astype("datetime64[ns]").to_numpy(),
            VALUE: pd.Series(values, dtype="float64").to_numpy(),
        }
    )


def synthetic_prices(seed: int = 20260101, start: str = "2014-01-01", end: str = "2026-10-30") -> pd.DataFrame:
    return usdclp_like_series(seed=seed, start=start, end=end)


def read_price_csv(
    path: Path | str, date_column: str = "date", value_column: str = "usdclp", csv_format: CsvFormat | None = None
) -> pd.DataFrame:
    """Read a CSV of dates and prices (:mod:`forex_assets.core.prices.csv_reader`): the delimiter, decimal mark,
    thousands separator, date format and encoding are ``csv_format``'s settings, each detected when "auto" (an
    ambiguous file is refused, asking for the setting; None: all "auto"). Errors name the file, the line, the
    column and the rule."""
    dates, values = parse_price_csv(path, date_column, value_column, csv_format)
    return price_frame(dates, values)


@dataclass
class MindicadorClient:
    """The mindicador.cl dollar series (``GET {base_url}/api/dolar/{year}``) with a per-year cache.

    Years before the current one are immutable: once cached they are never fetched again. The current
    year is fetched on every call (it grows daily). Timeouts, connection errors, 429 and 5xx answers
    are retried with exponential backoff; other 4xx answers fail at once.
    """

    base_url: str = "https://mindicador.cl"
    cache_dir: Path = Path(".forex_assets/mindicador")
    timeout_s: float = 10.0
    max_retries: int = 3
    backoff_s: float = 1.0

    def url(self, year: int) -> str:
        return f"{self.base_url.rstrip('/')}/api/dolar/{year}"

    def cache_path(self, year: int) -> Path:
        return Path(self.cache_dir) / f"dolar_{year}.json"

    def _get(self, year: int) -> list[dict]:
        url = self.url(year)
        last_error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = requests.get(url, timeout=self.timeout_s)
            except requests.Timeout:
                last_error = f"timed out after {self.timeout_s} s"
                continue
            except requests.ConnectionError as error:
                last_error = f"connection failed ({error.__class__.__name__})"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last_error = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise PriceSourceError(f"mindicador: {url} answered HTTP {response.status_code}; not retried")
            try:
                serie = response.json()["serie"]
                if not isinstance(serie, list):
                    raise TypeError("'serie' is not a list")
                return [{"fecha": str(item["fecha"]), "valor": float(item["valor"])} for item in serie]
            except (ValueError, KeyError, TypeError) as error:
                raise PriceSourceError(
                    f"mindicador: {url} returned an unexpected document ({error}); expected "
                    '{"serie": [{"fecha": ..., "valor": ...}, ...]}'
                ) from None
        raise PriceSourceError(
            f"mindicador: {url} failed after {self.max_retries + 1} attempts (last error: {last_error})"
        )

    def year(self, year: int, today: date) -> tuple[list[dict], bool]:
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
        rows: list[dict] = []
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
