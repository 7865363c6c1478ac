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

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.backtest.memory import DEFAULT_MEMORY_BUDGET_MB, batch_size_for
from forex_assets.core.backtest.windows import Origins, PriceSeries
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.quantiles import (
    FORECAST_QUANTILES,
    InsufficientHistoryError,
    adjust_quantiles,
    blend_baseline_band,
    check_family,
    combine_members,
    forecast_quantiles,
    single_context_members,
)
from forex_assets.core.metrics import WindowMetrics, mase_scales, window_metrics

if TYPE_CHECKING:
    from chronos import BaseChronosPipeline  # untyped (Any)

#: The MASE scale looks at this many one-step changes before the origin.
MASE_LOOKBACK = 250


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
    # (n, steps, levels) CLP: the band_blend baseline's quantiles at each origin, when the configuration blends
    # one (what the band_blend lever is refitted on without computing the baseline again)
    baseline_band: np.ndarray | None = None

    @property
    def median(self) -> np.ndarray:
        return self.quantiles[..., self.levels.index(0.5)]

    def metrics(self) -> WindowMetrics:
        return window_metrics(
            self.quantiles, self.actuals, self.last_prices, self.scales, self.levels, self.seconds_per_forecast
        )


class MemberPlan:
    """Which origins of one single-context member are cached and which must be computed."""

    def __init__(
        self,
        series: PriceSeries,
        member: ChronosConfig,
        origins: Origins,
        steps: int,
        cache: ForecastCache | None,
        checkpoint_id: str,
    ) -> None:
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

    def fill(self, computed: np.ndarray, seconds_each: float, cache: ForecastCache | None, checkpoint_id: str) -> None:
        for j, i in enumerate(self.missing):
            self.quantiles[i], self.seconds[i] = computed[j], seconds_each
        if cache is not None and self.missing:
            cache.put_many(
                [
                    (self.keys[i], checkpoint_id, self.dates[i], computed[j], seconds_each)
                    for j, i in enumerate(self.missing)
                ]
            )


def assemble_result(
    series: PriceSeries, config: ChronosConfig, plans: list[MemberPlan], steps: int, model_seconds: float
) -> BacktestResult:
    origins = plans[0].origins
    histories = [series.values[: o + 1] for o in origins]
    computed = sum(len(p.missing) for p in plans)
    total = sum(len(p.origins) for p in plans)
    baseline = blend_baseline_band(config, histories, steps, FORECAST_QUANTILES)
    return BacktestResult(
        config=config,
        origin_dates=[pd.Timestamp(d) for d in plans[0].dates],
        quantiles=adjust_quantiles(
            combine_members([p.quantiles for p in plans]),
            series.values[origins],
            config.shrinkage,
            config.interval_scale,
            FORECAST_QUANTILES,
            config.blend_weight,
            baseline,
        ),
        baseline_band=baseline,
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
    pipeline: BaseChronosPipeline,
    config: ChronosConfig,
    series: PriceSeries,
    origins: Origins,
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
    plans = [MemberPlan(series, m, origins, steps, cache, checkpoint_id) for m in single_context_members(config)]
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
    return assemble_result(series, config, plans, steps, model_seconds)
