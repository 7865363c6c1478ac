"""Rolling-origin backtests of a Chronos inference configuration, fast by design.

An *origin* is the index of the last observation a forecast may see; its targets are the next
``steps`` observations. Only origins whose targets are all observed are used.

Speed comes from three things, not from luck:

* every origin of a configuration goes to the model in batched calls, the batch size bounded by a
  memory budget (:func:`batch_size_for`), never one call per origin;
* for the sampling family (Chronos-T5), :func:`backtest_sampling_group` draws the largest
  ``num_samples`` of the grid once per (context length, temperature, top-k, top-p, preprocessing) and
  evaluates smaller sample counts on the first ``n`` of those draws;
* forecasts are cached on disk (:class:`ForecastCache`) keyed by checkpoint identity, configuration,
  horizon, origin date and a digest of the context, so a later run computes only new origins.

Runs are deterministic for a given configuration seed (cold cache; a warm cache returns what the run
that filled it computed).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forex_assets.chronos_config import SAMPLING_FAMILY, ChronosConfig
from forex_assets.forecasting import (
    FORECAST_QUANTILES,
    InsufficientHistoryError,
    check_family,
    forecast_quantiles,
    sample_paths,
    to_model_space,
    from_model_space,
)
from forex_assets.metrics import WindowMetrics, mase_scales, window_metrics

#: Memory the model's activations may take in one batched call (MB).
DEFAULT_MEMORY_BUDGET_MB = 256
#: Bytes of activations per (token x hidden unit x layer) in a forward pass: a deliberately generous
#: estimate (attention scores, feed-forward intermediates, the autograd-free copies torch keeps).
_ACTIVATION_BYTES_PER_UNIT = 48
#: The MASE scale looks at this many one-step changes before the origin.
MASE_LOOKBACK = 250


# ----------------------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Windows:
    """Origin indices of the search window and of the (later, disjoint) validation window."""

    search: np.ndarray
    validation: np.ndarray
    steps: int


def latest_origins(n_observations: int, steps: int, count: int, last_origin: int | None = None) -> np.ndarray:
    """The ``count`` consecutive origins ending at ``last_origin`` (default: the latest with all targets)."""
    last = n_observations - 1 - steps if last_origin is None else last_origin
    first = last - count + 1
    if count < 1 or first < 1:
        raise InsufficientHistoryError(
            f"{count} origins with {steps}-step targets need at least {count + steps + 1} observations "
            f"before the window's end; only {last + steps + 1} are available"
        )
    return np.arange(first, last + 1)


def split_windows(n_observations: int, steps: int, search_origins: int = 30, validation_origins: int = 30) -> Windows:
    """Validation = the most recent origins with observed targets; search = the origins before them.

    The search window ends ``steps`` business days before the first validation origin, so every
    target the search scores is observed no later than the first validation origin: the candidate is
    never chosen on any price the validation forecasts.
    """
    validation = latest_origins(n_observations, steps, validation_origins)
    search = latest_origins(n_observations, steps, search_origins, last_origin=int(validation[0]) - steps)
    return Windows(search=search, validation=validation, steps=steps)


# ----------------------------------------------------------------------------------------- cache


def model_fields(config: ChronosConfig) -> dict:
    """The configuration fields that change a forecast (not the horizon label or the baseline)."""
    fields = {
        "family": config.family,
        "context_lengths": list(config.context_lengths),
        "preprocessing": config.preprocessing,
    }
    if config.family == SAMPLING_FAMILY:
        fields |= config.sampling_kwargs() | {"seed": config.seed}
    return fields


def _context_digest(values: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()[:16]


class ForecastCache:
    """Backtest forecasts on disk (SQLite): quantiles (steps x levels) and seconds per forecast."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS forecasts (key TEXT PRIMARY KEY, checkpoint TEXT NOT NULL, "
                "origin_date TEXT NOT NULL, steps INTEGER NOT NULL, quantiles BLOB NOT NULL, "
                "seconds REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    @staticmethod
    def key(checkpoint_id: str, config: ChronosConfig, steps: int, origin_date: str, context: np.ndarray) -> str:
        document = {
            "checkpoint": checkpoint_id,
            "config": model_fields(config),
            "steps": steps,
            "levels": list(FORECAST_QUANTILES),
            "origin": origin_date,
            "context": _context_digest(context),
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, tuple[np.ndarray, float]]:
        found: dict[str, tuple[np.ndarray, float]] = {}
        with closing(self._connect()) as db:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                rows = db.execute(
                    f"SELECT key, steps, quantiles, seconds FROM forecasts WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, steps, blob, seconds in rows:
                    found[key] = (np.frombuffer(blob, dtype=np.float64).reshape(steps, -1), seconds)
        return found

    def put_many(self, rows: Sequence[tuple[str, str, str, np.ndarray, float]]) -> None:
        """rows: (key, checkpoint id, origin date, quantiles (steps, levels), seconds per forecast)."""
        with closing(self._connect()) as db, db:
            db.executemany(
                "INSERT OR REPLACE INTO forecasts VALUES (?, ?, ?, ?, ?, ?)",
                [(k, c, o, q.shape[0], np.ascontiguousarray(q, dtype=np.float64).tobytes(), s) for k, c, o, q, s in rows],
            )

    def count(self, checkpoint_id: str | None = None) -> int:
        with closing(self._connect()) as db:
            if checkpoint_id is None:
                return db.execute("SELECT COUNT(*) FROM forecasts").fetchone()[0]
            return db.execute("SELECT COUNT(*) FROM forecasts WHERE checkpoint = ?", (checkpoint_id,)).fetchone()[0]


# ----------------------------------------------------------------------------------------- engine


def batch_size_for(pipeline, config: ChronosConfig, memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB) -> int:
    """Series per model call so that the activations of one call stay within the memory budget."""
    model_config = pipeline.model.config if hasattr(pipeline.model, "config") else pipeline.model.model.config
    hidden = getattr(model_config, "d_model", 512)
    layers = getattr(model_config, "num_layers", 6) + getattr(model_config, "num_decoder_layers", 0)
    patch = 1 if config.family == SAMPLING_FAMILY else 16  # T5 tokenises every value
    tokens = config.longest_context / patch + 64
    per_series = tokens * hidden * layers * _ACTIVATION_BYTES_PER_UNIT
    if config.family == SAMPLING_FAMILY:
        per_series *= config.num_samples or 1
    return int(max(1, min(256, memory_budget_mb * 1e6 // per_series)))


@dataclass
class BacktestResult:
    config: ChronosConfig
    origin_dates: list[pd.Timestamp]
    quantiles: np.ndarray  # (n, steps, levels) CLP
    actuals: np.ndarray  # (n, steps) CLP
    last_prices: np.ndarray  # (n,)
    scales: np.ndarray  # (n,) MASE scale per origin
    seconds_per_forecast: float  # model time per forecast (as measured when computed)
    computed: int  # origins forecast by the model in this call
    cached: int  # origins read from the cache
    model_seconds: float = 0.0  # wall time spent inside the model in this call
    levels: tuple[float, ...] = field(default=FORECAST_QUANTILES)

    @property
    def median(self) -> np.ndarray:
        return self.quantiles[..., self.levels.index(0.5)]

    def metrics(self) -> WindowMetrics:
        return window_metrics(
            self.quantiles, self.actuals, self.last_prices, self.scales, self.levels, self.seconds_per_forecast
        )


@dataclass(frozen=True)
class PriceSeries:
    """Business-day prices as arrays (oldest first) for the engine."""

    dates: np.ndarray  # datetime64[ns]
    values: np.ndarray  # float64 CLP

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> PriceSeries:
        return cls(frame["date"].to_numpy(dtype="datetime64[ns]"), frame["usdclp"].to_numpy(dtype=np.float64))

    def date_text(self, index: int) -> str:
        return str(self.dates[index])[:10]


class _Plan:
    """Which origins are cached and which must be computed, for one configuration."""

    def __init__(self, series: PriceSeries, config, origins, steps, cache, checkpoint_id):
        self.origins = np.asarray(origins)
        if int(self.origins.min()) + 1 < config.longest_context:
            raise InsufficientHistoryError(
                f"context length {config.longest_context} is longer than the history before origin "
                f"{series.date_text(int(self.origins.min()))} ({int(self.origins.min()) + 1} observations)"
            )
        if int(self.origins.max()) + steps >= len(series.values):
            raise ValueError("an origin's targets are not all observed")
        self.contexts = [series.values[o - config.longest_context + 1 : o + 1] for o in self.origins]
        self.dates = [series.date_text(int(o)) for o in self.origins]
        self.keys = (
            [ForecastCache.key(checkpoint_id, config, steps, d, c) for d, c in zip(self.dates, self.contexts, strict=True)]
            if cache is not None
            else [None] * len(self.origins)
        )
        self.found = cache.get_many(self.keys) if cache is not None else {}
        self.missing = [i for i, k in enumerate(self.keys) if k not in self.found]


def _assemble(series, config, plan, steps, computed_q, computed_seconds, model_seconds) -> BacktestResult:
    quantiles = np.empty((len(plan.origins), steps, len(FORECAST_QUANTILES)))
    seconds = np.empty(len(plan.origins))
    for i, key in enumerate(plan.keys):
        if key in plan.found:
            quantiles[i], seconds[i] = plan.found[key]
    for j, i in enumerate(plan.missing):
        quantiles[i], seconds[i] = computed_q[j], computed_seconds
    histories = [series.values[: o + 1] for o in plan.origins]
    return BacktestResult(
        config=config,
        origin_dates=[pd.Timestamp(d) for d in plan.dates],
        quantiles=quantiles,
        actuals=np.stack([series.values[o + 1 : o + 1 + steps] for o in plan.origins]),
        last_prices=series.values[plan.origins],
        scales=mase_scales(histories, MASE_LOOKBACK),
        seconds_per_forecast=float(np.mean(seconds)),
        computed=len(plan.missing),
        cached=len(plan.origins) - len(plan.missing),
        model_seconds=model_seconds,
    )


def run_backtest(
    pipeline,
    config: ChronosConfig,
    series: PriceSeries,
    origins: Sequence[int],
    steps: int,
    cache: ForecastCache | None = None,
    checkpoint_id: str = "",
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
) -> BacktestResult:
    """Forecast every origin (batched; cached ones are read back) and pair them with the actuals."""
    check_family(pipeline, config)
    plan = _Plan(series, config, origins, steps, cache, checkpoint_id)
    computed = np.empty((0, steps, len(FORECAST_QUANTILES)))
    seconds_each, model_seconds = 0.0, 0.0
    if plan.missing:
        started = time.perf_counter()
        computed = forecast_quantiles(
            pipeline, config, [plan.contexts[i] for i in plan.missing], steps,
            batch_size=batch_size_for(pipeline, config, memory_budget_mb),
        )
        model_seconds = time.perf_counter() - started
        seconds_each = model_seconds / len(plan.missing)
        if cache is not None:
            cache.put_many(
                [(plan.keys[i], checkpoint_id, plan.dates[i], computed[j], seconds_each) for j, i in enumerate(plan.missing)]
            )
    return _assemble(series, config, plan, steps, computed, seconds_each, model_seconds)


def backtest_sampling_group(
    pipeline,
    configs: Sequence[ChronosConfig],
    series: PriceSeries,
    origins: Sequence[int],
    steps: int,
    cache: ForecastCache | None = None,
    checkpoint_id: str = "",
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
) -> list[BacktestResult]:
    """Backtest sampling-family configurations that differ only in ``num_samples``.

    The largest sample count is drawn once per origin; a configuration with ``n`` samples is scored on
    the first ``n`` draws, which are themselves a sample of ``n`` paths from the same distribution.
    Seconds per forecast for ``n`` samples are the measured draw time scaled by ``n / max`` (sampling
    cost is linear in the number of paths).
    """
    base = configs[0]
    for config in configs:
        if config.family != SAMPLING_FAMILY:
            raise ValueError("backtest_sampling_group is for the sampling family (chronos-t5) only")
        if config.model_copy(update={"num_samples": base.num_samples}) != base:
            raise ValueError("configurations of one sampling group may differ only in num_samples")
    check_family(pipeline, base)
    most = max(c.num_samples for c in configs)
    plans = [_Plan(series, c, origins, steps, cache, checkpoint_id) for c in configs]
    need = sorted(set().union(*(p.missing for p in plans)))
    samples_by_origin: dict[int, np.ndarray] = {}
    model_seconds = 0.0
    if need:
        widest = base.model_copy(update={"num_samples": most})
        batch = batch_size_for(pipeline, widest, memory_budget_mb)
        started = time.perf_counter()
        for start in range(0, len(need), batch):
            chunk = need[start : start + batch]
            members = []
            for length in base.context_lengths:
                model_input = to_model_space([plans[0].contexts[i][-length:] for i in chunk], base.preprocessing)
                drawn = sample_paths(pipeline, model_input, steps, most, base.temperature, base.top_k, base.top_p,
                                     seed=base.seed + start)
                members.append(from_model_space(drawn, base.preprocessing))
            for k, i in enumerate(chunk):
                samples_by_origin[i] = np.stack([m[k] for m in members])  # (members, samples, steps)
        model_seconds = time.perf_counter() - started
    seconds_at_most = model_seconds / len(need) if need else 0.0
    levels = list(FORECAST_QUANTILES)
    results = []
    for config, plan in zip(configs, plans, strict=True):
        n = config.num_samples
        computed = np.stack(
            [np.sort(np.mean(np.moveaxis(np.quantile(samples_by_origin[i][:, :n], levels, axis=1), 0, -1), axis=0), -1)
             for i in plan.missing]
        ) if plan.missing else np.empty((0, steps, len(levels)))
        seconds_each = seconds_at_most * n / most
        if cache is not None and plan.missing:
            cache.put_many(
                [(plan.keys[i], checkpoint_id, plan.dates[i], computed[j], seconds_each) for j, i in enumerate(plan.missing)]
            )
        results.append(_assemble(series, config, plan, steps, computed, seconds_each, model_seconds * n / most))
    return results
