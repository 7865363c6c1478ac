"""Currency pairs: what the project needs to know about each exchange rate it forecasts (pure, no Dagster).

Pairs are declared in one file, ``configs/pairs.json`` (:data:`PAIRS_FILE`; another with ``--pairs-file``)::

    {"pairs": [
      {"code": "USDCLP", "min_price": 100, "max_price": 5000, "csv_value_column": "usdclp",
       "mindicador_indicator": "dolar"},
      {"code": "USDBRL", "csv_value_column": "BRL", "synthetic_level": 5.0, "synthetic_daily_vol": 0.009}
    ]}

A pair is added by adding an entry (no code change). Each field but ``code`` has a default:

* ``base``/``quote``: the code's two halves (``USDCLP``: one US dollar in Chilean pesos).
* ``calendar``: the holiday calendars whose business days the rate is published on (country codes or
  financial calendars of the ``holidays`` package, :class:`~forex_assets.core.calendar.BusinessCalendar`).
  By default: Chile's for a rate in pesos (the Banco Central de Chile publishes the dólar observado and its
  euro rate on Chilean business days); the other currency's own for a pair against the US dollar; the union
  of both currencies' for a cross (:data:`CURRENCY_CALENDARS`).
* ``min_price``/``max_price``: the data contract's plausible range. When absent it is inferred from the series
  itself: a factor of :data:`INFERRED_RANGE_FACTOR` either side of its median, which refuses a part of the
  file in another unit (cents, thousands) but accepts any level (a EUR/USD of 1.08 and a USD/IDR of 16,000).
* ``max_daily_move``: the contract's largest one-day move (a fraction; 0.15 by default, as for USD/CLP).
* ``csv_value_column``: the column of a CSV that holds the pair (default: the quote currency's code, how wide
  exports of several currencies against one base name their columns).
* ``mindicador_indicator``: the mindicador.cl series (``dolar``, ``euro``); None when mindicador has none.
* ``synthetic_level``/``synthetic_daily_vol``: the embedded default's synthetic series for the pair (its
  first price and typical daily volatility); USD/CLP's is the project's own generator unchanged.
* ``seeds_dir``: the directory of the pair's seed configurations (``chronos_{h}.json``), relative to the
  pairs file; default the project's ``configs/``, the bundled model's seeds.
"""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forex_assets.core.calendar import BusinessCalendar
from forex_assets.core.forecasting.config import describe_validation_error, read_json_object
from forex_assets.core.prices.schema import DEFAULT_MAX_DAILY_MOVE, DEFAULT_MAX_GAP_BUSINESS_DAYS, PriceRules
from forex_assets.core.working_area import PRIMARY_PAIR, SEED_CONFIGS_DIR

#: the project's pairs file
PAIRS_FILE = SEED_CONFIGS_DIR / "pairs.json"
PAIRS_FILE_ENV = "FOREX_PAIRS_FILE"  # another pairs file for the code location (and every command)
#: the pair the project serves when none is named and several are declared
DEFAULT_PAIR = PRIMARY_PAIR  # USDCLP: the pair of a single-pair instance, and of `make run`
#: the inferred plausible range: this factor either side of the series' median
INFERRED_RANGE_FACTOR = 10.0
#: a currency's holiday calendar (``holidays`` codes): its country's, the euro's TARGET2 closing days
CURRENCY_CALENDARS = {
    "ARS": "AR", "AUD": "AU", "BRL": "BR", "CAD": "CA", "CHF": "CH", "CLP": "CL", "CNY": "CN", "COP": "CO",
    "CZK": "CZ", "DKK": "DK", "EUR": "ECB", "GBP": "GB", "HKD": "HK", "HUF": "HU", "IDR": "ID", "ILS": "IL",
    "INR": "IN", "JPY": "JP", "KRW": "KR", "MXN": "MX", "MYR": "MY", "NOK": "NO", "NZD": "NZ", "PEN": "PE",
    "PHP": "PH", "PLN": "PL", "SEK": "SE", "SGD": "SG", "THB": "TH", "TRY": "TR", "TWD": "TW", "USD": "US",
    "UYU": "UY", "ZAR": "ZA",
}  # fmt: skip
_CODE = re.compile(r"^[A-Z]{3}[A-Z]{3}$")


class PairError(ValueError):
    """A pairs file or a pair name that cannot be used; the message names the file, the pair and the field."""


class Pair(BaseModel):
    """One currency pair (the module's docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(description="six letters, base then quote: USDCLP")
    base: str = ""
    quote: str = ""
    calendar: tuple[str, ...] = ()
    min_price: float | None = Field(default=None, gt=0)
    max_price: float | None = Field(default=None, gt=0)
    max_daily_move: float = Field(default=DEFAULT_MAX_DAILY_MOVE, gt=0, le=1)
    csv_value_column: str = ""
    mindicador_indicator: str | None = None
    synthetic_level: float | None = Field(default=None, gt=0)
    synthetic_daily_vol: float | None = Field(default=None, gt=0, lt=0.2)
    seeds_dir: Path = SEED_CONFIGS_DIR

    @field_validator("code")
    @classmethod
    def _six_letters(cls, code: str) -> str:
        if not _CODE.match(code):
            raise ValueError(f"{code!r} is not a pair code: six capital letters, base then quote (USDCLP)")
        return code

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("code"), str) or not _CODE.match(data["code"]):
            return data
        code = data["code"]
        data = {"base": code[:3], "quote": code[3:], **data}
        data.setdefault("csv_value_column", data["quote"])
        if not data.get("calendar"):
            data["calendar"] = default_calendar(data["base"], data["quote"])
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Pair:
        if self.base + self.quote != self.code:
            raise ValueError(f"base {self.base!r} and quote {self.quote!r} do not make the code {self.code!r}")
        if (self.min_price is None) != (self.max_price is None):
            raise ValueError("give both min_price and max_price, or neither (the range is then inferred)")
        if self.min_price is not None and self.max_price is not None and self.min_price >= self.max_price:
            raise ValueError(f"min_price {self.min_price} must be below max_price {self.max_price}")
        if (self.synthetic_level is None) != (self.synthetic_daily_vol is None):
            raise ValueError("give both synthetic_level and synthetic_daily_vol, or neither")
        BusinessCalendar(self.calendar)  # an unknown calendar code fails here, naming itself
        return self

    @property
    def label(self) -> str:
        """``USD/CLP``."""
        return f"{self.base}/{self.quote}"

    @property
    def business_calendar(self) -> BusinessCalendar:
        return BusinessCalendar(self.calendar)

    def price_range(self, values: np.ndarray | pd.Series | None = None) -> tuple[float, float]:
        """The data contract's plausible range: the declared one, else inferred from ``values`` (the series
        being checked) as :data:`INFERRED_RANGE_FACTOR` either side of its median."""
        if self.min_price is not None and self.max_price is not None:
            return self.min_price, self.max_price
        finite = np.asarray(values if values is not None else [], dtype=float)
        finite = finite[np.isfinite(finite) & (finite > 0)]
        if not finite.size:
            raise PairError(f"{self.code}: no plausible price range declared and no positive price to infer one from")
        median = float(np.median(finite))
        return median / INFERRED_RANGE_FACTOR, median * INFERRED_RANGE_FACTOR

    def price_rules(
        self, values: np.ndarray | pd.Series | None = None, max_gap_business_days: int = DEFAULT_MAX_GAP_BUSINESS_DAYS
    ) -> PriceRules:
        """The data contract's rules for this pair (its range declared or inferred from ``values``, its largest
        daily move, its business calendar, its name in messages)."""
        low, high = self.price_range(values)
        return PriceRules(
            max_daily_move=self.max_daily_move,
            max_gap_business_days=max_gap_business_days,
            min_price=low,
            max_price=high,
            calendar=self.business_calendar,
            label=self.label,
            unit=f"{self.quote} per {self.base}",
        )

    def synthetic_seed(self, seed: int) -> int:
        """The synthetic series' seed for this pair: ``seed`` itself for USD/CLP (the embedded default's series
        unchanged), else mixed with the code, so every pair has its own path."""
        return seed if self.code == DEFAULT_PAIR else (seed ^ zlib.crc32(self.code.encode())) % 2**32


def default_calendar(base: str, quote: str) -> tuple[str, ...]:
    """Chile's for a rate in pesos; the other currency's for a pair against the US dollar; both for a cross. A
    currency without a known calendar is refused (declare the pair's ``calendar``)."""
    if quote == "CLP":
        return ("CL",)
    currencies = [c for c in (base, quote) if c != "USD"] or ["USD"]
    unknown = [c for c in currencies if c not in CURRENCY_CALENDARS]
    if unknown:
        raise ValueError(
            f"no holiday calendar known for {', '.join(unknown)}: declare the pair's 'calendar' "
            "(country codes or financial calendars of the holidays package)"
        )
    return tuple(sorted({CURRENCY_CALENDARS[c] for c in currencies}))


class Pairs(BaseModel):
    """The pairs of a pairs file, in the file's order (:func:`load_pairs`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pairs: tuple[Pair, ...]

    @model_validator(mode="after")
    def _unique(self) -> Pairs:
        if not self.pairs:
            raise ValueError("no pair declared: 'pairs' is empty")
        codes = [p.code for p in self.pairs]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"pair(s) declared twice: {', '.join(twice)}")
        return self

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.pairs)

    def get(self, code: str | None = None) -> Pair:
        """The pair ``code`` (case-insensitive, ``USD/CLP`` or ``usdclp``); None: the only pair, or USD/CLP when
        several are declared."""
        if code is None:
            code = self.pairs[0].code if len(self.pairs) == 1 else DEFAULT_PAIR
        wanted = code.replace("/", "").upper()
        for pair in self.pairs:
            if pair.code == wanted:
                return pair
        raise PairError(f"unknown pair {code!r}; the pairs declared are {', '.join(self.codes)}")


def parse_pairs(document: dict[str, Any], source: str = "<pairs>", base_dir: Path | None = None) -> Pairs:
    """Validate a pairs document; a relative ``seeds_dir`` is taken from ``base_dir`` (the file's directory)."""
    try:
        pairs = Pairs.model_validate(document)
    except ValidationError as error:
        text = describe_validation_error(error, source, "pairs file")
        entries = document.get("pairs")
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, dict) and isinstance(entry.get("code"), str):  # name the pair, not only its index
                text = re.sub(rf"'pairs\.{index}(?=[.'])", f"'pairs.{index} ({entry['code']})", text)
        raise PairError(text) from None
    if base_dir is None:
        return pairs
    moved = [p.model_copy(update={"seeds_dir": base_dir / p.seeds_dir}) for p in pairs.pairs]
    return Pairs(pairs=tuple(moved))


def pairs_file_in_force(path: Path | str | None = None) -> Path:
    """``path``, else ``$FOREX_PAIRS_FILE``, else :data:`PAIRS_FILE` (configs/pairs.json): the file whose pairs
    the code location serves (one partition each) and the price source reads."""
    chosen = path or os.environ.get(PAIRS_FILE_ENV, "").strip()
    return Path(chosen) if chosen else PAIRS_FILE


def load_pairs(path: Path | str | None = None) -> Pairs:
    """The pairs of ``path`` (default :func:`pairs_file_in_force`); errors name the file, the pair's index and
    the field."""
    path = pairs_file_in_force(path)
    return parse_pairs(read_json_object(path, PairError, "pairs"), str(path), path.parent)


def load_pair(code: str | None = None, path: Path | str | None = None) -> Pair:
    """One pair of the pairs file (:meth:`Pairs.get`)."""
    return load_pairs(path).get(code)
