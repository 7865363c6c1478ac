"""Sampling-family (Chronos-T5) backtests that draw the largest ``num_samples`` of a grid once and
evaluate smaller sample counts on the first ``n`` draws."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from forex_assets.core.backtest.cache import ForecastCache, model_fields
from forex_assets.core.backtest.engine import BacktestResult, MemberPlan, assemble_result
from forex_assets.core.backtest.memory import DEFAULT_MEMORY_BUDGET_MB, batch_size_for
from forex_assets.core.backtest.windows import Origins, PriceSeries
from forex_assets.core.forecasting.config import SAMPLING_FAMILY, ChronosConfig
from forex_assets.core.forecasting.quantiles import (
    FORECAST_QUANTILES,
    check_family,
    from_model_space,
    sample_paths,
    single_context_members,
    to_model_space,
)

if TYPE_CHECKING:
    from chronos import BaseChronosPipeline  # untyped (Any)


class SampleBank:
    """Sampled paths of the sampling family, kept per (member configuration without num_samples, origin).

    ``draws(...)`` returns the first ``n`` paths of each origin, drawing only the shortfall: a grid
    that asks for 50, 100 and 200 samples of the same (context length, temperature, ...) draws 200
    paths once, and a search that first screens with 50 samples and later extends survivors to 200
    draws 50 + 150. The first ``n`` paths are ``n`` independent draws from the model's predictive
    distribution whatever the later requests. Lives for one process; the quantiles derived from it
    go to the ForecastCache.
    """

    def __init__(self, memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB) -> None:
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
        self,
        pipeline: BaseChronosPipeline,
        member: ChronosConfig,
        origins: Sequence[int],
        contexts: Sequence[np.ndarray],
        steps: int,
        n: int,
        draw_to: int | None = None,
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
                    member.sampling_temperature,
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
    pipeline: BaseChronosPipeline,
    config: ChronosConfig,
    series: PriceSeries,
    origins: Origins,
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
    plans = [MemberPlan(series, m, origins, steps, cache, checkpoint_id) for m in single_context_members(config)]
    before = bank.model_seconds
    for plan in plans:
        if not plan.missing:
            continue
        missing_origins = [int(plan.origins[i]) for i in plan.missing]
        contexts = [plan.contexts[i] for i in plan.missing]
        n = config.sampling_num_samples
        paths = bank.draws(pipeline, plan.member, missing_origins, contexts, steps, n, draw_to)
        computed = np.stack([np.sort(np.quantile(p, levels, axis=0).T, axis=-1) for p in paths])
        plan.fill(computed, bank.seconds_per_path(plan.member, steps) * n, cache, checkpoint_id)
    return assemble_result(series, config, plans, steps, bank.model_seconds - before)


def backtest_sampling_group(
    pipeline: BaseChronosPipeline,
    configs: Sequence[ChronosConfig],
    series: PriceSeries,
    origins: Origins,
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
    ordered = sorted(configs, key=lambda c: -c.sampling_num_samples)  # the largest first: one draw serves all
    results = {
        id(c): backtest_sampling(pipeline, c, series, origins, steps, bank, cache, checkpoint_id) for c in ordered
    }
    return [results[id(c)] for c in configs]
