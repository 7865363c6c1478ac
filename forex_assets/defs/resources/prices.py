"""The price_source resource: synthetic, CSV or mindicador.cl prices, validated by the data contract."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from forex_assets.core.pairs import Pair, load_pair
from forex_assets.core.prices.errors import PriceSourceError
from forex_assets.core.prices.schema import DEFAULT_MAX_GAP_BUSINESS_DAYS, VALUE, validate_prices
from forex_assets.core.prices.sources import (
    CsvFormat,
    MindicadorClient,
    read_price_csv,
    scaled_synthetic_prices,
    synthetic_prices,
)
from forex_assets.core.working_area import WorkingAreaLayout


class PriceSource(dg.ConfigurableResource):
    """Where a pair's prices come from: 'synthetic' (default), 'csv' or 'mindicador'. ``pair``: a pair of the
    pairs file (``configs/pairs.json``, or ``pairs_file``): its CSV column, mindicador series, synthetic level
    and volatility, and its data contract (range, daily move, calendar) unless set here."""

    source: Literal["synthetic", "csv", "mindicador"] = "synthetic"
    pair: str = Field(default="USDCLP", description="a pair of the pairs file, e.g. USDCLP, EURCLP, USDBRL")
    pairs_file: str | None = Field(default=None, description="default configs/pairs.json")
    synthetic_seed: int = 20260101
    synthetic_start: str = "2014-01-01"
    synthetic_end: str = Field(default="2026-10-30", description="last business day of the synthetic series")
    csv_path: str | None = None
    csv_date_column: str = "date"
    csv_value_column: str | None = Field(default=None, description="default: the pair's csv_value_column")
    csv_skip_missing: bool = Field(
        default=False, description="rows without a value in the column are no observation (a wide file)"
    )
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
    max_daily_move: float | None = Field(default=None, gt=0, description="fraction, 0.15 = 15 %; default the pair's")
    max_gap_business_days: int = Field(default=DEFAULT_MAX_GAP_BUSINESS_DAYS, ge=0)
    min_price: float | None = Field(
        default=None, gt=0, description="quote per base (CLP per USD); lower prices fail; default the pair's"
    )
    max_price: float | None = Field(
        default=None, gt=0, description="quote per base (CLP per USD); higher prices fail; default the pair's"
    )

    def pair_settings(self, code: str | None = None) -> Pair:
        """The declaration of the pair ``code`` (default this resource's ``pair``) in the pairs file, with this
        resource's contract bounds where set."""
        pair = load_pair(code or self.pair, self.pairs_file)
        update = {
            k: getattr(self, k) for k in ("max_daily_move", "min_price", "max_price") if getattr(self, k) is not None
        }
        if ("min_price" in update) != ("max_price" in update):  # the other bound: the pair's
            if pair.min_price is None:
                raise PriceSourceError(f"set both min_price and max_price: {pair.label} declares no price range")
            update = {"min_price": pair.min_price, "max_price": pair.max_price} | update
        return Pair.model_validate(pair.model_dump() | update) if update else pair

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

    def fetch(self, pair: Pair | None = None) -> pd.DataFrame:
        pair = pair or self.pair_settings()
        if self.source == "csv":
            if not self.csv_path:
                raise dg.Failure("price source 'csv' needs csv_path")
            column = self.csv_value_column or pair.csv_value_column
            return read_price_csv(
                self.csv_path, self.csv_date_column, column, self.csv_format(), skip_missing=self.csv_skip_missing
            )
        if self.source == "mindicador":
            if pair.mindicador_indicator is None:
                raise PriceSourceError(
                    f"mindicador has no series for {pair.label}: set the pair's mindicador_indicator in the pairs "
                    "file, or use another source"
                )
            cache = (
                Path(self.mindicador_cache_dir)
                if self.mindicador_cache_dir
                else WorkingAreaLayout.from_environment().mindicador_cache
            )
            client = MindicadorClient(
                self.mindicador_base_url,
                cache,
                self.timeout_s,
                self.max_retries,
                self.backoff_s,
                indicator=pair.mindicador_indicator,
            )
            return client.prices(self.mindicador_start_year, self.mindicador_end_year, today=date.today())
        if pair.synthetic_level is not None and pair.synthetic_daily_vol is not None:
            seed = pair.synthetic_seed(self.synthetic_seed)
            return scaled_synthetic_prices(
                pair.synthetic_level, pair.synthetic_daily_vol, seed, self.synthetic_start, self.synthetic_end
            )
        return synthetic_prices(pair.synthetic_seed(self.synthetic_seed), self.synthetic_start, self.synthetic_end)

    def load(self, code: str | None = None) -> pd.DataFrame:
        """Fetch the prices of the pair ``code`` (default this resource's ``pair``: the price asset's partition
        names its pair) and validate them against the pair's data contract; raises PriceValidationError /
        PriceSourceError on bad data (PairError for an unknown pair or a bad pairs file)."""
        pair = self.pair_settings(code)
        frame = self.fetch(pair)
        rules = pair.price_rules(frame[VALUE].to_numpy(), self.max_gap_business_days)
        return validate_prices(frame, rules, source=self.describe())
