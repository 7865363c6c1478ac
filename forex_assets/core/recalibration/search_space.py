"""The per-horizon search space (``configs/search_space_{horizon}.json``) and its candidates.

Dimensions (docs/decisions.md, Search):

* every family: ``checkpoints`` (the checkpoint is itself a dimension), ``context_length``,
  ``preprocessing`` (none / log) and ``context_ensembles`` (sets of context lengths whose quantiles
  are averaged);
* the sampling family (Chronos-T5) only: ``num_samples`` and ``temperature``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from forex_assets.core.forecasting.config import (
    SAMPLING_FAMILY,
    ChronosConfig,
    ConfigError,
    Family,
    describe_validation_error,
    read_json_object,
    read_once,
)


class SearchSpaceError(ConfigError):
    """An invalid search-space file; the message names the file and the key."""


class CheckpointChoice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    checkpoint: str = Field(min_length=1)
    family: Family


class SearchSpace(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon: Literal["7d", "15d", "30d", "90d"]
    checkpoints: tuple[CheckpointChoice, ...] = Field(min_length=1)
    context_length: tuple[int, ...] = Field(min_length=1)
    preprocessing: tuple[Literal["none", "log"], ...] = Field(default=("none",), min_length=1)
    context_ensembles: tuple[tuple[int, ...], ...] = ()
    num_samples: tuple[int, ...] = ()
    temperature: tuple[float, ...] = ()
    trial_budget: int = Field(default=40, ge=1, le=10_000, description="trials one search may run")
    search_origins: int = Field(default=30, ge=3, description="rolling origins in the search window")
    validation_origins: int = Field(default=30, ge=3, description="rolling origins in the validation window")
    origin_spacing: int = Field(
        default=1,
        ge=1,
        description="business days between consecutive origins of both windows: at long horizons consecutive "
        "origins share almost every target, so spacing them spreads a window over more history and more "
        "independent paths (power) for the same number of model calls",
    )
    seed: int = 0
    fit_shrinkage: bool = Field(
        default=True, description="fit the best candidate's shrinkage towards the last price on the search window"
    )
    fit_interval_scale: bool = Field(
        default=True, description="fit the best candidate's interval scale for 95 % coverage on the search window"
    )
    fit_band_blend: bool = Field(
        default=True,
        description="fit the best candidate's band_blend (its band averaged with the EWMA band) for the lowest "
        "weighted quantile loss on the search window",
    )
    objective: Literal["wql", "rmse"] = Field(
        default="wql",
        description="what the search minimises on the search window: the weighted quantile loss of the whole "
        "forecast distribution (wql) or the median's RMSE (rmse)",
    )
    sampling_screen_keep: float = Field(
        default=1 / 3,
        gt=0,
        le=1,
        description="share of sampling groups (checkpoint, contexts, preprocessing, temperature) that go on "
        "from the smallest num_samples to the larger ones; 1 evaluates the whole grid",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpace:
        for length in (*self.context_length, *(x for e in self.context_ensembles for x in e)):
            if not 16 <= length <= 8192:
                raise ValueError(f"context length {length} is outside 16..8192")
        for ensemble in self.context_ensembles:
            if len(set(ensemble)) < 2:
                raise ValueError(f"context ensemble {list(ensemble)} needs at least two distinct lengths")
        has_sampling = any(c.family == SAMPLING_FAMILY for c in self.checkpoints)
        if has_sampling and not (self.num_samples and self.temperature):
            raise ValueError("a chronos-t5 checkpoint needs num_samples and temperature lists")
        if not has_sampling and (self.num_samples or self.temperature):
            raise ValueError(
                "num_samples / temperature apply only to the sampling family, and no checkpoint is chronos-t5"
            )
        for n in self.num_samples:
            if n < 1:
                raise ValueError(f"num_samples {n} must be at least 1")
        for t in self.temperature:
            if t <= 0:
                raise ValueError(f"temperature {t} must be positive")
        return self

    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:10]

    @property
    def longest_context(self) -> int:
        return max((*self.context_length, *(x for e in self.context_ensembles for x in e)))


@dataclass(frozen=True)
class Candidate:
    label: str
    config: ChronosConfig


def _context_label(lengths: tuple[int, ...]) -> str:
    return "+".join(str(x) for x in lengths)


def candidate_label(config: ChronosConfig) -> str:
    parts = [config.checkpoint, f"ctx={_context_label(config.context_lengths)}", f"prep={config.preprocessing}"]
    if config.family == SAMPLING_FAMILY:
        parts += [f"ns={config.num_samples}", f"T={config.temperature:g}"]
    if config.shrinkage or config.interval_scale != 1.0:
        parts += [f"shrink={config.shrinkage:g}", f"iscale={config.interval_scale:g}"]
    if config.blend_weight:
        parts += [f"blend={config.blend_weight:g}:{config.blend_baseline}"]
    return "|".join(parts)


def context_options(space: SearchSpace) -> list[tuple[int, ...]]:
    """Single context lengths first, then the ensembles (as listed)."""
    options: list[tuple[int, ...]] = [(length,) for length in space.context_length]
    options += [tuple(e) for e in space.context_ensembles]
    return list(dict.fromkeys(options))


def make_config(
    space: SearchSpace,
    choice: CheckpointChoice,
    contexts: tuple[int, ...],
    preprocessing: str,
    num_samples: int | None = None,
    temperature: float | None = None,
) -> ChronosConfig:
    fields: dict[str, Any] = {
        "horizon": space.horizon,
        "checkpoint": choice.checkpoint,
        "family": choice.family,
        "context_length": contexts[0],
        "ensemble_context_lengths": contexts[1:],
        "preprocessing": preprocessing,
        "seed": space.seed,
    }
    if choice.family == SAMPLING_FAMILY:
        fields |= {"num_samples": num_samples, "temperature": temperature}
    return ChronosConfig(**fields)


def enumerate_candidates(space: SearchSpace) -> list[Candidate]:
    """Every configuration of the grid, sampling parameters only for the sampling family."""
    candidates = []
    for choice in space.checkpoints:
        for contexts in context_options(space):
            for preprocessing in space.preprocessing:
                if choice.family == SAMPLING_FAMILY:
                    for n in space.num_samples:
                        for t in space.temperature:
                            config = make_config(space, choice, contexts, preprocessing, n, t)
                            candidates.append(Candidate(candidate_label(config), config))
                else:
                    config = make_config(space, choice, contexts, preprocessing)
                    candidates.append(Candidate(candidate_label(config), config))
    return candidates


@read_once
def _read_search_space(path: Path) -> SearchSpace:
    document = read_json_object(path, SearchSpaceError, "search-space")
    try:
        return SearchSpace.model_validate(document)
    except ValidationError as error:
        raise SearchSpaceError(describe_validation_error(error, str(path), "search space", "key")) from None


def load_search_space(path: Path | str, expected_horizon: str | None = None) -> SearchSpace:
    """Read and validate ``search_space_{horizon}.json`` (once per process while the file is unchanged: every
    optimization reads it); errors name the file and the key."""
    path = Path(path)
    space = _read_search_space(path)
    if expected_horizon is not None and space.horizon != expected_horizon:
        raise SearchSpaceError(
            f"{path}: key 'horizon': is {space.horizon!r} but the file is for horizon {expected_horizon!r}"
        )
    return space


def search_space_path(configs_dir: Path, horizon: str) -> Path:
    return Path(configs_dir) / f"search_space_{horizon}.json"
