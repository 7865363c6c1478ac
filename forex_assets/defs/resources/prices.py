"""The price_source resource: synthetic, CSV or mindicador.cl prices, validated by the data contract."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from forex_assets.core.prices.schema import (
    DEFAULT_MAX_DAILY_MOVE,
    DEFAULT_MAX_GAP_BUSINESS_DAYS,
    DEFAULT_MAX_PRICE,
    DEFAULT_MIN_PRICE,
    PriceRules,
    validate_prices,
)
from forex_assets.core.prices.sources import CsvFormat, MindicadorClient, read_price_csv, synthetic_prices
from forex_assets.core.working_area import WorkingAreaLayout


class PriceSource(dg.ConfigurableResource):
    """Where usdclp_prices comes from: 'synthetic' (default), 'csv' or 'mindicador'."""

    source: Literal["synthetic", "csv", "mindicador"] = "synthetic"
    synthetic_seed: int = 20260101
    synthetic_start: str = "2014-01-01"
    synthetic_end: str = Field(default="2026-10-30", description="last business day of the synthetic series")
    csv_path: str | None = None
    csv_date_column: str = "date"
    csv_value_column: str = "usdclp"
    csv_delimiter: str = Field(default="auto", description="',', ';', 'tab', '|' or 'auto' (detected)")
    csv_decimal: str = Field(default="auto", description="'.', ',' or 'auto': an ambiguous file is refused")
    csv_thousands: str = Field(default="auto", description="'none', '.', ',', ' ', \"'\" or 'auto'")
    csv_date_format: str = Field(default="auto", description="a strftime format, e.g. '%d-%m-%Y', or 'auto'")
    csv_encoding: str = Field(default="auto", description="a Python codec, e.g. 'latin-1', or 'auto'")
    mindicador_base_url: str = "https://mindicador.cl"
    mindicador_start_year: int = 2014
    mindicador_end_year: int | None = None
    mindicador_cache_dir: str | None = Field(default=None, description="default <working area>/mindicador")
    timeout_s: float = 10.0
    max_retries: int = 3
    backoff_s: float = 1.0
    max_daily_move: float = Field(default=DEFAULT_MAX_DAILY_MOVE, gt=0, description="fraction, 0.15 = 15 %")
    max_gap_business_days: int = Field(default=DEFAULT_MAX_GAP_BUSINESS_DAYS, ge=0)
    min_price: float = Field(default=DEFAULT_MIN_PRICE, gt=0, description="CLP per USD; lower prices fail the contract")
    max_price: float = Field(
        default=DEFAULT_MAX_PRICE, gt=0, description="CLP per USD; higher prices fail the contract"
    )

    def csv_format(self) -> CsvFormat:
        return CsvFormat(
            self.csv_delimiter, self.csv_decimal, self.csv_thousands, self.csv_date_format, self.csv_encoding
        )

    def describe(self) -> str:
        if self.source == "csv":
            return f"csv:{self.csv_path}"
        if self.source == "mindicador":
            return f"mindicador:{self.mindicador_base_url}"
        return f"synthetic:seed={self.synthetic_seed},{self.synthetic_start}..{self.synthetic_end}"

    def fetch(self) -> pd.DataFrame:
        if self.source == "csv":
            if not self.csv_path:
                raise dg.Failure("price source 'csv' needs csv_path")
            return read_price_csv(self.csv_path, self.csv_date_column, self.csv_value_column, self.csv_format())
        if self.source == "mindicador":
            cache = (
                Path(self.mindicador_cache_dir)
                if self.mindicador_cache_dir
                else WorkingAreaLayout.from_environment().mindicador_cache
            )
            client = MindicadorClient(self.mindicador_base_url, cache, self.timeout_s, self.max_retries, self.backoff_s)
            return client.prices(self.mindicador_start_year, self.mindicador_end_year, today=date.today())
        return synthetic_prices(self.synthetic_seed, self.synthetic_start, self.synthetic_end)

    def load(self) -> pd.DataFrame:
        """Fetch and validate; raises PriceValidationError / PriceSourceError on bad data."""
        rules = PriceRules(self.max_daily_move, self.max_gap_business_days, self.min_price, self.max_price)
        return validate_prices(self.fetch(), rules, source=self.describe())
