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
import os
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
    combine_members,
    forecast_quantiles,
    from_model_space,
    sample_paths,
    single_context_members,
    to_model_space,
)
from forex_assets.metrics import WindowMetrics, mase_scales, window_metrics

#: Memory the model's activations may take in one batched call (MB); $FOREX_BACKTEST_MEMORY_MB overrides.
DEFAULT_MEMORY_BUDGET_MB = float(os.environ.get("FOREX_BACKTEST_MEMORY_MB") or 256)
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
                [
                    (k, c, o, q.shape[0], np.ascontiguousarray(q, dtype=np.float64).tobytes(), s)
                    for k, c, o, q, s in rows
                ],
            )

    def count(self, checkpoint_id: str | None = None) -> int:
        with closing(self._connect()) as db:
            if checkpoint_id is None:
                return db.execute("SELECT COUNT(*) FROM forecasts").fetchone()[0]
            return db.execute("SELECT COUNT(*) FROM forecasts WHERE checkpoint = ?", (checkpoint_id,)).fetchone()[0]


# ----------------------------------------------------------------------------------------- engine


#: Smallest activation budget whatever the headroom: one series per call is the floor anyway.
MIN_MEMORY_BUDGET_MB = 16.0
#: Share of the process memory limit the engine plans to use; the rest is left to the allocator.
LIMIT_FILL = 0.9


def memory_limit_mb() -> float | None:
    """The process's memory limit: $FOREX_MEMORY_LIMIT_MB, else the container's cgroup limit, else None."""
    if os.environ.get("FOREX_MEMORY_LIMIT_MB"):
        return float(os.environ["FOREX_MEMORY_LIMIT_MB"])
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # cgroup v1 writes a huge number for "no limit"
            return int(text) / 2**20
    return None


def resident_mb() -> float:
    """This process's resident memory now (MB)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def activation_budget_mb(requested_mb: float, limit_mb: float | None, resident: float) -> float:
    """The activation budget of one call: the requested one, cut to half the headroom left under the
    memory limit (a 1 GB run container holding a 48M-parameter model has little to spare)."""
    if limit_mb is None:
        return requested_mb
    headroom = limit_mb * LIMIT_FILL - resident
    return max(MIN_MEMORY_BUDGET_MB, min(requested_mb, headroom / 2))


def batch_size_for(pipeline, config: ChronosConfig, memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB) -> int:
    """Series per model call so that the activations of one call stay within the memory budget.

    Quantile families: tokens (patches of 16) x hidden size x layers x a generous 48 bytes. Sampling
    family: generation keeps, for every sampled path, the decoder's cache over the context and the
    forecast steps, about 16 bytes per token x hidden unit x decoder layer (measured: 137 MB for 200
    paths over 365 days with the tiny T5, against 161 MB estimated).
    """
    model_config = pipeline.model.config if hasattr(pipeline.model, "config") else pipeline.model.model.config
    hidden = getattr(model_config, "d_model", 512)
    if config.family == SAMPLING_FAMILY:
        decoder_layers = getattr(model_config, "num_decoder_layers", None) or getattr(model_config, "num_layers", 6)
        per_series = (config.num_samples or 1) * (config.longest_context + 64) * hidden * decoder_layers * 16
    else:
        layers = getattr(model_config, "num_layers", 6)
        tokens = config.longest_context / 16 + 64
        per_series = tokens * hidden * layers * _ACTIVATION_BYTES_PER_UNIT
    budget = activation_budget_mb(memory_budget_mb, memory_limit_mb(), resident_mb())
    return int(max(1, min(256, budget * 1e6 // per_series)))


@dataclass
class BacktestResult:
    config: ChronosConfig
    origin_dates: list[pd.Timestamp]
    quantiles: np.ndarray  # (n, steps, levels) CLP
    actuals: np.ndarray  # (n, steps) CLP
    last_prices: np.ndarray  # (n,)
    scales: np.ndarray  # (n,) MASE scale per origin
    seconds_per_forecast: float  # model time per forecast (as measured when computed)
    computed: int  # single-context member forecasts the model made in this call
    cached: int  # single-context member forecasts read from the cache
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
    """Which origins of one single-context member are cached and which must be computed."""

    def __init__(self, series: PriceSeries, member: ChronosConfig, origins, steps, cache, checkpoint_id):
        self.member = member
        self.origins = np.asarray(origins)
        first = int(self.origins.min())
        if first + 1 < member.context_length:
            raise InsufficientHistoryError(
                f"context length {member.context_length} is longer than the history before origin "
                f"{series.date_text(first)} ({first + 1} observations)"
            )
        if int(self.origins.max()) + steps >= len(series.values):
            raise ValueError("an origin's targets are not all observed")
        self.contexts = [series.values[o - member.context_length + 1 : o + 1] for o in self.origins]
        self.dates = [series.date_text(int(o)) for o in self.origins]
        if cache is not None:
            self.keys = [
                ForecastCache.key(checkpoint_id, member, steps, d, c)
                for d, c in zip(self.dates, self.contexts, strict=True)
            ]
            self.found = cache.get_many(self.keys)
        else:
            self.keys, self.found = [f"origin-{i}" for i in range(len(self.origins))], {}
        self.missing = [i for i, k in enumerate(self.keys) if k not in self.found]
        self.quantiles = np.empty((len(self.origins), steps, len(FORECAST_QUANTILES)))
        self.seconds = np.empty(len(self.origins))
        for i, key in enumerate(self.keys):
            if key in self.found:
                self.quantiles[i], self.seconds[i] = self.found[key]

    def fill(self, computed: np.ndarray, seconds_each: float, cache, checkpoint_id) -> None:
        for j, i in enumerate(self.missing):
            self.quantiles[i], self.seconds[i] = computed[j], seconds_each
        if cache is not None and self.missing:
            cache.put_many(
                [
                    (self.keys[i], checkpoint_id, self.dates[i], computed[j], seconds_each)
                    for j, i in enumerate(self.missing)
                ]
            )


def _result(series: PriceSeries, config: ChronosConfig, plans: list[_Plan], steps: int, model_seconds: float):
    origins = plans[0].origins
    histories = [series.values[: o + 1] for o in origins]
    computed = sum(len(p.missing) for p in plans)
    total = sum(len(p.origins) for p in plans)
    return BacktestResult(
        config=config,
        origin_dates=[pd.Timestamp(d) for d in plans[0].dates],
        quantiles=combine_members([p.quantiles for p in plans]),
        actuals=np.stack([series.values[o + 1 : o + 1 + steps] for o in origins]),
        last_prices=series.values[origins],
        scales=mase_scales(histories, MASE_LOOKBACK),
        # a forecast of the configuration costs one forecast of each member
        seconds_per_forecast=float(sum(np.mean(p.seconds) for p in plans)),
        computed=computed,
        cached=total - computed,
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
    """Forecast every origin (batched; cached ones are read back) and pair them with the actuals.

    The cache works per single-context member, so an ensemble whose context lengths were already
    backtested on their own costs no model call.
    """
    check_family(pipeline, config)
    plans = [_Plan(series, m, origins, steps, cache, checkpoint_id) for m in single_context_members(config)]
    model_seconds = 0.0
    for plan in plans:
        if not plan.missing:
            continue
        started = time.perf_counter()
        computed = forecast_quantiles(
            pipeline,
            plan.member,
            [plan.contexts[i] for i in plan.missing],
            steps,
            batch_size=batch_size_for(pipeline, plan.member, memory_budget_mb),
        )
        elapsed = time.perf_counter() - started
        model_seconds += elapsed
        plan.fill(computed, elapsed / len(plan.missing), cache, checkpoint_id)
    return _result(series, config, plans, steps, model_seconds)


class SampleBank:
    """Sampled paths of the sampling family, kept per (member configuration without num_samples, origin).

    ``draws(...)`` returns the first ``n`` paths of each origin, drawing only the shortfall: a grid
    that asks for 50, 100 and 200 samples of the same (context length, temperature, ...) draws 200
    paths once, and a search that first screens with 50 samples and later extends survivors to 200
    draws 50 + 150. The first ``n`` paths are ``n`` independent draws from the model's predictive
    distribution whatever the later requests. Lives for one process; the quantiles derived from it
    go to the ForecastCache.
    """

    def __init__(self, memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB):
        self.memory_budget_mb = memory_budget_mb
        self._paths: dict[tuple[str, int], np.ndarray] = {}  # (group key, origin) -> (drawn, steps)
        self._seconds_per_path: dict[str, float] = {}  # group key -> seconds per sampled path
        self.model_seconds = 0.0

    @staticmethod
    def group_key(member: ChronosConfig, steps: int) -> str:
        fields = model_fields(member) | {"num_samples": None, "steps": steps}
        return json.dumps(fields, sort_keys=True)

    def seconds_per_path(self, member: ChronosConfig, steps: int) -> float:
        return self._seconds_per_path.get(self.group_key(member, steps), 0.0)

    def draws(
        self, pipeline, member: ChronosConfig, origins, contexts, steps: int, n: int, draw_to: int | None = None
    ) -> list[np.ndarray]:
        """The first ``n`` paths per origin; a shortfall is drawn up to ``draw_to`` (>= n) paths at once,
        so that a later, larger request costs no second round of model calls."""
        key = self.group_key(member, steps)
        have = {o: self._paths.get((key, o), np.empty((0, steps))) for o in origins}
        target = max(n, draw_to or n)
        short = sorted({len(v) for v in have.values() if len(v) < n})
        by_origin = dict(zip(origins, contexts, strict=True))
        for count in short:
            todo = [o for o in origins if len(have[o]) == count]
            extra = target - count
            widest = member.model_copy(update={"num_samples": extra})
            batch = batch_size_for(pipeline, widest, self.memory_budget_mb)
            started = time.perf_counter()
            for start in range(0, len(todo), batch):
                chunk = todo[start : start + batch]
                model_input = to_model_space([by_origin[o] for o in chunk], member.preprocessing)
                paths = sample_paths(
                    pipeline,
                    model_input,
                    steps,
                    extra,
                    member.temperature,
                    member.top_k,
                    member.top_p,
                    seed=member.seed + 7919 * count + start,
                )
                for o, drawn in zip(chunk, from_model_space(paths, member.preprocessing), strict=True):
                    have[o] = np.concatenate([have[o], drawn])
                    self._paths[(key, o)] = have[o]
            elapsed = time.perf_counter() - started
            self.model_seconds += elapsed
            self._seconds_per_path[key] = elapsed / (len(todo) * extra)
        return [have[o][:n] for o in origins]


def backtest_sampling(
    pipeline,
    config: ChronosConfig,
    series: PriceSeries,
    origins: Sequence[int],
    steps: int,
    bank: SampleBank,
    cache: ForecastCache | None = None,
    checkpoint_id: str = "",
    draw_to: int | None = None,
) -> BacktestResult:
    """Backtest one sampling-family configuration from the bank's draws (quantiles of the first n paths).

    Seconds per forecast are the measured seconds per sampled path times ``num_samples`` (sampling
    cost is linear in the number of paths); for forecasts read from the cache, as measured then.
    """
    if config.family != SAMPLING_FAMILY:
        raise ValueError("backtest_sampling is for the sampling family (chronos-t5) only")
    check_family(pipeline, config)
    levels = list(FORECAST_QUANTILES)
    plans = [_Plan(series, m, origins, steps, cache, checkpoint_id) for m in single_context_members(config)]
    before = bank.model_seconds
    for plan in plans:
        if not plan.missing:
            continue
        missing_origins = [int(plan.origins[i]) for i in plan.missing]
        contexts = [plan.contexts[i] for i in plan.missing]
        paths = bank.draws(pipeline, plan.member, missing_origins, contexts, steps, config.num_samples, draw_to)
        computed = np.stack([np.sort(np.quantile(p, levels, axis=0).T, axis=-1) for p in paths])
        plan.fill(computed, bank.seconds_per_path(plan.member, steps) * config.num_samples, cache, checkpoint_id)
    return _result(series, config, plans, steps, bank.model_seconds - before)


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
    """Backtest sampling-family configurations that differ only in ``num_samples``: the largest count
    is drawn once per origin and context length and the others use the first ``n`` of those paths."""
    base = configs[0]
    for config in configs:
        if config.family != SAMPLING_FAMILY:
            raise ValueError("backtest_sampling_group is for the sampling family (chronos-t5) only")
        if config.model_copy(update={"num_samples": base.num_samples}) != base:
            raise ValueError("configurations of one sampling group may differ only in num_samples")
    bank = SampleBank(memory_budget_mb)
    ordered = sorted(configs, key=lambda c: -c.num_samples)  # the largest first: one draw serves all
    results = {
        id(c): backtest_sampling(pipeline, c, series, origins, steps, bank, cache, checkpoint_id) for c in ordered
    }
    return [results[id(c)] for c in configs]
