"""The per-horizon Chronos inference configuration (``configs/chronos_{horizon}.json``) and its schema.

Sampling parameters (num_samples, temperature, top_k, top_p) exist only for the sampling family
(Chronos-T5); the quantile families (Chronos-Bolt, Chronos-2) are tuned through context length,
preprocessing and context-length ensembles. Every family has two levers applied to the model's
quantiles afterwards (``forecasting.quantiles.adjust_quantiles``): ``shrinkage`` of the median path
towards the last observed price (FX's random walk is hard to beat) and ``interval_scale``, fitted on
the search window for 95 % coverage (``recalibration.levers``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from forex_assets.core.horizons import HORIZONS

Family = Literal["chronos2", "chronos-bolt", "chronos-t5"]
SAMPLING_FAMILY = "chronos-t5"
SAMPLING_FIELDS = ("num_samples", "temperature", "top_k", "top_p")


class ConfigError(ValueError):
    """A configuration file or document is invalid; the message names the file and the field."""


class ValidationBaseline(BaseModel):
    """What the deployed configuration scored when it was validated; triggers compare against it."""

    model_config = ConfigDict(extra="forbid")

    rmse_clp: float = Field(gt=0)
    inference_seconds: float = Field(gt=0, description="seconds per forecast")
    mape_pct: float | None = Field(default=None, ge=0)
    coverage_95: float | None = Field(default=None, ge=0, le=1)
    skill_vs_random_walk: float | None = Field(default=None, gt=0, description="RMSE / random-walk RMSE")
    validated_on: str | None = Field(default=None, description="ISO date of the last validation origin")


class ChronosConfig(BaseModel):
    """One horizon's inference configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon: Literal["7d", "15d", "30d", "90d"]
    checkpoint: str = Field(min_length=1, description="'bundled:<name>', a local directory or a Hub id")
    family: Family
    context_length: int = Field(ge=16, le=8192, description="business days of history fed to the model")
    preprocessing: Literal["none", "log"] = "none"
    ensemble_context_lengths: tuple[int, ...] = Field(
        default=(), description="extra context lengths whose quantiles are averaged with the main one"
    )
    num_samples: int | None = Field(default=None, ge=1, le=1000)
    temperature: float | None = Field(default=None, gt=0, le=5)
    top_k: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int = Field(default=0, description="torch seed for the sampling family")
    shrinkage: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="pulls the median path towards the last observed price: 0 = the model as is, 1 = the random "
        "walk's median; the quantiles keep their offsets from the median",
    )
    interval_scale: float = Field(
        default=1.0, gt=0, le=10, description="multiplies every quantile's offset from the median (1 = as is)"
    )
    band_blend: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="weight of a volatility baseline's band (band_blend_with) averaged level by level with the "
        "model's quantiles, after shrinkage and before interval_scale: 0 or unset = the model's band, 1 = the "
        "baseline's",
    )
    band_blend_with: Literal["ewma_band", "garch_band"] | None = Field(
        default=None, description="the baseline band_blend mixes in: RiskMetrics EWMA (default) or GARCH(1,1)-t"
    )
    baseline: ValidationBaseline | None = None

    @model_validator(mode="after")
    def _family_parameters(self) -> ChronosConfig:
        given = [name for name in SAMPLING_FIELDS if getattr(self, name) is not None]
        if self.family == SAMPLING_FAMILY:
            missing = [name for name in ("num_samples", "temperature") if getattr(self, name) is None]
            if missing:
                raise ValueError(f"family chronos-t5 samples paths and needs {', '.join(missing)}")
        elif given:
            raise ValueError(f"{', '.join(given)} only apply to the sampling family chronos-t5, not to {self.family}")
        for length in self.ensemble_context_lengths:
            if not 16 <= length <= 8192:
                raise ValueError(f"ensemble context length {length} is outside 16..8192")
        return self

    @property
    def blend_weight(self) -> float:
        """The band_blend lever's weight (0 when unset)."""
        return self.band_blend or 0.0

    @property
    def blend_baseline(self) -> str:
        """The baseline band_blend mixes in (ewma_band when unset)."""
        return self.band_blend_with or "ewma_band"

    @property
    def context_lengths(self) -> tuple[int, ...]:
        """Main context length first, then the ensemble members (duplicates removed)."""
        return tuple(dict.fromkeys((self.context_length, *self.ensemble_context_lengths)))

    @property
    def longest_context(self) -> int:
        return max(self.context_lengths)

    @property
    def sampling_num_samples(self) -> int:
        """``num_samples`` of the sampling family, where the validator requires it (a ValueError elsewhere)."""
        if self.num_samples is None:
            raise ValueError(f"{self.horizon}: family {self.family} samples no paths: it has no num_samples")
        return self.num_samples

    @property
    def sampling_temperature(self) -> float:
        """``temperature`` of the sampling family, where the validator requires it (a ValueError elsewhere)."""
        if self.temperature is None:
            raise ValueError(f"{self.horizon}: family {self.family} samples no paths: it has no temperature")
        return self.temperature

    def sampling_kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SAMPLING_FIELDS if getattr(self, name) is not None}

    def without_baseline(self) -> ChronosConfig:
        return self.model_copy(update={"baseline": None})

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2, sort_keys=True) + "\n"


def describe_validation_error(error: ValidationError, source: str, what: str, item_word: str = "field") -> str:
    """``<source>: invalid <what>: <item_word> 'a.b': message; ...`` for a pydantic error."""
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(document)"
        problems.append(f"{item_word} '{location}': {item['msg']}")
    return f"{source}: invalid {what}: " + "; ".join(problems)


def parse_config(document: dict[str, Any], source: str = "<config>") -> ChronosConfig:
    """Validate a configuration document; ``source`` names it in errors."""
    try:
        return ChronosConfig.model_validate(document)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, source, "Chronos configuration")) from None


def as_config(value: ChronosConfig | Mapping[str, Any], source: str = "<config>") -> ChronosConfig:
    """``value`` itself when it is a ChronosConfig (the model travels from the search to the store as it is);
    a document, as an earlier version stored candidates and reports, validated (``source`` names it)."""
    if isinstance(value, ChronosConfig):
        return value
    return parse_config(dict(value), source)


Loaded = TypeVar("Loaded")


def read_once(load: Callable[[Path], Loaded]) -> Callable[[Path], Loaded]:
    """``load(path)``, read and validated once per process while the file stays as it is: the cache is keyed
    on the path and the file's modification time, size and inode, so an edited (or replaced) file is read
    again. Errors are not cached. The loaded values must be immutable (frozen models)."""

    @lru_cache(maxsize=64)
    def cached(path: Path, stamp: tuple[int, int, int]) -> Loaded:
        return load(path)

    def loader(path: Path) -> Loaded:
        try:
            stat = os.stat(path)
        except OSError:
            return load(path)  # the loader says what is wrong with the path
        return cached(path, (stat.st_mtime_ns, stat.st_size, stat.st_ino))

    loader.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    loader.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return loader


def read_json_object(path: Path, error: type[ValueError], what: str) -> dict[str, Any]:
    """A JSON object from ``path``; a missing file or bad JSON raises ``error`` naming the file and position."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except json.JSONDecodeError as bad:
        raise error(f"{path}: not valid JSON (line {bad.lineno}, column {bad.colno}: {bad.msg})") from None
    except UnicodeDecodeError as bad:
        raise error(f"{path}: not UTF-8 text (byte {bad.start}: {bad.reason})") from None
    except OSError as bad:
        raise error(f"{path}: cannot read the {what} file ({bad.strerror or bad})") from None
    if not isinstance(document, dict):
        raise error(f"{path}: expected a JSON object, found {type(document).__name__}")
    return document


@read_once
def _read_config(path: Path) -> ChronosConfig:
    return parse_config(read_json_object(path, ConfigError, "configuration"), str(path))


def load_config(path: Path, expected_horizon: str | None = None) -> ChronosConfig:
    """Read and validate ``chronos_{horizon}.json`` (once per process while the file is unchanged: the seed
    configurations are read by every optimization); errors name the file and the field."""
    path = Path(path)
    config = _read_config(path)
    if expected_horizon is not None and config.horizon != expected_horizon:
        raise ConfigError(
            f"{path}: field 'horizon': is {config.horizon!r} but the file is for horizon {expected_horizon!r}"
        )
    return config


def load_seed(path: Path, horizon: str) -> ChronosConfig:
    """A seed configuration (``configs/chronos_{horizon}.json``), read when a configuration store is created
    from it; a bad one is refused with the file, the JSON position or the field, and what to do."""
    try:
        return load_config(path, expected_horizon=horizon)
    except ConfigError as error:
        raise ConfigError(
            f"{error} (a seed configuration: the configuration store is created from it; fix the file and run again)"
        ) from None


def config_path(configs_dir: Path, horizon: str) -> Path:
    if horizon not in HORIZONS:
        raise ConfigError(f"unknown horizon {horizon!r}; horizons are {', '.join(HORIZONS)}")
    return Path(configs_dir) / f"chronos_{horizon}.json"
