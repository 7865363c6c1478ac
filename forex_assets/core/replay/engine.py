"""Replay of history: the whole recalibration policy, business day by business day, with only the prices
known on each day (pure, no Dagster).

Each replay day, for every horizon, runs the steps of the daily cycle (``core/cycle.py`` ``CYCLE``) in
its order, with production's code (:func:`~forex_assets.core.cycle.run_policy_day`): forecast with the
deployed configuration (recorded in a forecast history), watch the latest deploy (rollback rules, restore
with ``ConfigStore.rollback``), drift and performance reports, the trigger decision (recorded in a decision
log), and when it says so: search, validation on the later disjoint window, the verdict and the deploy.
State lives in a temporary working area (config store, decision log, forecast history, backtest cache); git
commits and decisions carry the replay day, not the wall clock.

No look-ahead: the only prices any step receives are ``provider.visible(day)``, which ends on ``day``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.backtest.engine import run_backtest
from forex_assets.core.backtest.windows import PriceSeries, latest_origins
from forex_assets.core.calendar import CHILE, BusinessCalendar
from forex_assets.core.cycle import PolicyDay, PolicyState, run_policy_day
from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.forecasting.config import ChronosConfig, ValidationBaseline, config_path, load_config
from forex_assets.core.forecasting.history import ForecastHistory, ForecastRecord
from forex_assets.core.forecasting.production import make_forecast
from forex_assets.core.horizons import HORIZONS, horizon_steps
from forex_assets.core.models.loading import checkpoint_identity, load_pipeline
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.triggers import TriggerDecision
from forex_assets.core.policy import Recalibration
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.recalibration.search_space import load_search_space, search_space_path
from forex_assets.core.recalibration.validation import single_forecast_seconds
from forex_assets.core.working_area import SEED_CONFIGS_DIR, WorkingAreaLayout


class ReplayError(ValueError):
    """The replay cannot start: the message names what is wrong (range, history, configuration)."""


class PriceProvider:
    """The prices known on a day. The base class slices one validated frame; subclasses may fetch."""

    def __init__(self, prices: pd.DataFrame, description: str):
        self.prices = prices.sort_values("date").reset_index(drop=True)
        self.description = description

    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return pd.Timestamp(self.prices["date"].iloc[0]), pd.Timestamp(self.prices["date"].iloc[-1])

    def trading_days(self, start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
        dates = pd.DatetimeIndex(self.prices["date"])
        return list(dates[(dates >= start) & (dates <= end)])

    def visible(self, day: pd.Timestamp) -> pd.DataFrame:
        """Every price dated on or before ``day``, and nothing after it."""
        return self.prices[self.prices["date"] <= day].reset_index(drop=True)


@dataclass(frozen=True)
class ReplaySettings:
    start: date
    end: date
    horizons: tuple[str, ...] = HORIZONS
    configs_dir: Path = SEED_CONFIGS_DIR  # seed configurations and search spaces
    policy: PolicySettings = PolicySettings()  # triggers, drift, performance, approval and rollback rules
    # the seed configuration counts as freshly optimized on the first replay day (no schedule trigger
    # on day one just because the temporary log is empty)
    seed_counts_as_optimized: bool = True
    # measure the seed configuration's validation baseline on the origins before the first replay day, so
    # that the performance trigger (and the false-positive rate) work from the start, as after a deploy
    measure_seed_baseline: bool = True
    injected_drifts: tuple[pd.Timestamp, ...] = ()  # onsets, for detection latency (synthetic data)
    calendar: BusinessCalendar = CHILE  # the pair's business days: forecast target dates
    pair: str = "USDCLP"  # the pair replayed (named in the report)

    def __post_init__(self) -> None:  # each horizon replayed once, in the order first given
        object.__setattr__(self, "horizons", tuple(dict.fromkeys(self.horizons)))


@dataclass
class Optimization:
    horizon: str
    day: pd.Timestamp
    fired: tuple[str, ...]
    degradation_pct: dict[str, float]  # at the trigger, against the deployed baseline ({} = none yet)
    verdict: str = "error"  # approved, rejected, error
    error: str = ""
    rmse_improvement_pct: float | None = None
    mape_improvement_pct: float | None = None
    improvement_p_value: float | None = None  # the significance criterion's one-sided Diebold-Mariano p
    failed_criteria: tuple[str, ...] = ()
    deployed_version: str | None = None
    seconds: float = 0.0


JUDGED_ORIGINS = 20  # a deploy is judged on its first this many origins, against the configuration it replaced


@dataclass
class DeployJudgement:
    """One deploy against the configuration it replaced, on the same origins (for the realised win rate).

    From the deploy day on, every origin the deployed version forecast is kept (``live``) together with
    the replaced configuration's forecast of that origin (``shadow``: made with ``make_forecast`` and
    never recorded in the forecast history, or reused when the day already forecast with that
    configuration), until :data:`JUDGED_ORIGINS` origins are collected or the version stops being the
    deployed one (rolled back, or replaced by a later deploy). The report judges it on those origins
    whose paths matured by the last replay day."""

    version: str  # the deployed version
    replaced_version: str
    day: pd.Timestamp  # the deploy day (its first origin)
    replaced: ChronosConfig = field(repr=False)  # what the shadow forecasts use
    live: dict[pd.Timestamp, np.ndarray] = field(default_factory=dict)  # origin -> (steps, q)
    shadow: dict[pd.Timestamp, np.ndarray] = field(default_factory=dict)  # same origins as live
    ended: pd.Timestamp | None = None  # the day collection stopped (None: still collecting)
    end_reason: str | None = None  # "collected", "rolled back", "replaced"; None: the replay ended first

    @property
    def collecting(self) -> bool:
        return self.end_reason is None


@dataclass
class HorizonTrace:
    """What happened to one horizon during the replay, day by day."""

    horizon: str
    drift_severity: dict[pd.Timestamp, str] = field(default_factory=dict)
    decisions: list[TriggerDecision] = field(default_factory=list)
    optimizations: list[Optimization] = field(default_factory=list)
    rollbacks: list[tuple[pd.Timestamp, str, str]] = field(default_factory=list)  # day, from, reason
    forecast_failures: list[tuple[pd.Timestamp, str]] = field(default_factory=list)
    static_forecasts: dict[pd.Timestamp, np.ndarray] = field(default_factory=dict)  # origin -> (steps, q)
    forecast_ok: dict[str, list[bool]] = field(default_factory=dict)  # version -> outcomes, oldest first
    deploy_judgements: dict[str, DeployJudgement] = field(default_factory=dict)  # deployed version -> judgement

    @property
    def shadow_forecasts(self) -> dict[str, dict[pd.Timestamp, np.ndarray]]:
        """Deployed version -> origin -> the replaced configuration's forecast quantiles (steps, q)."""
        return {version: j.shadow for version, j in self.deploy_judgements.items()}


@dataclass
class ReplayResult:
    settings: ReplaySettings
    source: str
    days: list[pd.Timestamp]  # replayed days (all of them unless partial)
    planned_days: int
    traces: dict[str, HorizonTrace]
    workdir: Path
    seconds: float
    partial_reason: str | None = None  # set when the replay stopped early

    @property
    def partial(self) -> bool:
        return self.partial_reason is not None


@contextmanager
def _commit_time(day: pd.Timestamp) -> Iterator[None]:
    """Git commits of the config store dated on the replay day (so versions read as replay history)."""
    stamp = f"{pd.Timestamp(day).date()}T18:00:00+00:00"
    saved = {k: os.environ.get(k) for k in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE")}
    os.environ["GIT_AUTHOR_DATE"] = os.environ["GIT_COMMITTER_DATE"] = stamp
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def required_history(settings: ReplaySettings) -> int:
    """Business days of prices needed before the first replay day: the longest context plus the search
    and validation windows of every horizon's search space (and a year for the drift baseline)."""
    needed = 0
    for horizon in settings.horizons:
        steps = horizon_steps(horizon)
        config = load_config(config_path(settings.configs_dir, horizon), expected_horizon=horizon)
        space = load_search_space(search_space_path(settings.configs_dir, horizon), expected_horizon=horizon)
        longest = max([config.longest_context, *space.context_length, *(max(e) for e in space.context_ensembles)])
        spanned = (space.search_origins + space.validation_origins) * space.origin_spacing + 2 * steps
        needed = max(needed, longest + spanned)
    return needed


def check_range(provider: PriceProvider, settings: ReplaySettings) -> list[pd.Timestamp]:
    """The replay days, or a ReplayError naming what is wrong with the range or the history."""
    first, last = provider.span()
    start, end = pd.Timestamp(settings.start), pd.Timestamp(settings.end)
    if start > end:
        raise ReplayError(f"replay range {start.date()}..{end.date()} is empty: the start is after the end")
    if end < first or start > last:
        raise ReplayError(
            f"replay range {start.date()}..{end.date()} is outside the prices of {provider.description} "
            f"({first.date()}..{last.date()})"
        )
    if start < first or end > last:
        raise ReplayError(
            f"replay range {start.date()}..{end.date()} is not inside the prices of {provider.description} "
            f"({first.date()}..{last.date()}); choose dates within it"
        )
    days = provider.trading_days(start, end)
    if not days:
        raise ReplayError(f"no business day with a price in {start.date()}..{end.date()}")
    needed = required_history(settings)
    before = len(provider.visible(days[0])) - 1
    if before < needed:
        raise ReplayError(
            f"too little history before {days[0].date()}: {before} business days of prices, the configurations "
            f"need {needed} (longest context + search and validation windows); start later or give more history"
        )
    return days


class Replay:
    """One replay in ``workdir`` (a temporary working area)."""

    def __init__(self, provider: PriceProvider, settings: ReplaySettings, workdir: Path):
        self.provider, self.settings, self.workdir = provider, settings, Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        area = WorkingAreaLayout.in_directory(self.workdir, settings.configs_dir)  # every part inside workdir
        self.store = ConfigStore(area.config_store, seed_dir=area.configs)
        self.log = DecisionLog(area.decision_log)
        self.history = ForecastHistory(area.forecast_history)
        self.cache = ForecastCache(area.backtest_cache)
        self.journal = area.optuna_studies  # one Optuna journal per study
        self.seeds = {h: self.store.read(h) for h in settings.horizons}
        self.seed_versions = {h: self.store.current_version(h).id for h in settings.horizons}
        self.traces = {h: HorizonTrace(h) for h in settings.horizons}
        counted = pd.Timestamp(settings.start).date() if settings.seed_counts_as_optimized else None
        self.states = {
            h: PolicyState(
                store=self.store,
                history=self.history,
                log=self.log,
                cache=self.cache,
                study_journal=self.journal,
                reports_root=area.reports,
                configs_dir=settings.configs_dir,
                dated=_commit_time,
                optimized_on_or_before=counted,
                render_reports=False,  # validation JSONs only: no HTML (plots) per optimization nobody opens
                calendar=settings.calendar,
            )
            for h in settings.horizons
        }
        for h in settings.horizons:  # the report reads which deployed versions forecast successfully
            self.traces[h].forecast_ok = self.states[h].forecast_outcomes

    def measure_seed_baselines(self, first_day: pd.Timestamp) -> None:
        """Backtest each seed configuration on the latest validation-window origins known on the first
        replay day and record the result as its baseline (a "[h] baseline" commit, not a deploy)."""
        prices = self.provider.visible(first_day)
        series = PriceSeries.from_frame(prices)
        for horizon in self.settings.horizons:
            seed = self.seeds[horizon]
            if seed.baseline is not None:
                continue
            steps = horizon_steps(horizon)
            space = load_search_space(search_space_path(self.settings.configs_dir, horizon), expected_horizon=horizon)
            origins = latest_origins(len(series.values), steps, space.validation_origins, spacing=space.origin_spacing)
            pipeline = load_pipeline(seed.checkpoint)
            result = run_backtest(
                pipeline, seed, series, origins, steps, self.cache, checkpoint_identity(seed.checkpoint)
            )
            m = result.metrics()
            [seconds] = single_forecast_seconds(load_pipeline, [seed], series.values, steps)
            baseline = ValidationBaseline(
                rmse_clp=m.rmse_clp,
                inference_seconds=seconds,
                mape_pct=m.mape_pct,
                coverage_95=m.coverage_95,
                skill_vs_random_walk=m.skill_vs_random_walk,
                validated_on=series.date_text(int(origins[-1])),
            )
            measured = seed.model_copy(update={"baseline": baseline})
            with _commit_time(first_day):
                self.store.deploy(
                    measured,
                    f"replay: baseline of the seed configuration, {len(origins)} origins up to {baseline.validated_on}",
                    action="baseline",
                )
            self.seeds[horizon] = measured
            self.seed_versions[horizon] = self.store.current_version(horizon).id

    # ----------------------------------------------------------------------------- one day

    def run_day(self, day: pd.Timestamp) -> None:
        prices = self.provider.visible(day)
        if pd.Timestamp(prices["date"].iloc[-1]) != day:
            raise ReplayError(f"the price source has no price for {day.date()} although it listed the day")
        for horizon in self.settings.horizons:
            self._horizon_day(horizon, day, prices)

    def _horizon_day(self, horizon: str, day: pd.Timestamp, prices: pd.DataFrame) -> None:
        trace, state = self.traces[horizon], self.states[horizon]
        seed = self.seeds[horizon]
        served = self.store.read(horizon)  # before the policy's day: what the day's first forecast uses
        outcome = run_policy_day(state, horizon, day, prices, self.settings.policy)
        if outcome.forecast_error is not None:
            trace.forecast_failures.append((day, outcome.forecast_error))
        if outcome.drift is not None:
            trace.drift_severity[day] = outcome.drift.severity.name
        if outcome.rollback is not None:
            trace.rollbacks.append((day, *outcome.rollback))
        decision = outcome.decision
        if decision is None:  # the cycle's decision step decides every day
            raise ReplayError(f"{horizon}: the policy made no decision on {day.date()}")
        trace.decisions.append(decision)
        if outcome.recalibration is not None:
            trace.optimizations.append(self._optimization(outcome, decision, outcome.recalibration))
        # the static reference: what the seed configuration would have forecast on the day
        if outcome.forecast is not None and served.without_baseline() == seed.without_baseline():
            trace.static_forecasts[day] = outcome.forecast.quantiles
        else:
            try:
                trace.static_forecasts[day] = make_forecast(prices, seed, "static", self.settings.calendar).quantiles
            except Exception:  # noqa: BLE001 - the static reference simply has no forecast that day
                pass
        self._judge_deploys(trace, day, prices, outcome)

    # ----------------------------------------------------------------------------- deploys, judged

    def _judge_deploys(self, trace: HorizonTrace, day: pd.Timestamp, prices: pd.DataFrame, outcome: PolicyDay) -> None:
        """Open a :class:`DeployJudgement` for the day's deploy, add the day's origin to every judgement still
        collecting (the deployed version's forecast and the replaced configuration's in shadow), and close
        those whose version stopped being deployed or that have :data:`JUDGED_ORIGINS` origins. Shadow
        forecasts are made only while a judgement collects: at most JUDGED_ORIGINS per deploy."""
        horizon, recalibration = trace.horizon, outcome.recalibration
        if recalibration is not None and recalibration.deployed_version is not None:
            version, replaced = recalibration.deployed_version.id, recalibration.previous_version
            if replaced is not None and version != replaced and version not in trace.deploy_judgements:
                try:
                    config = self.store.read(horizon, replaced)
                except Exception:  # noqa: BLE001 - the deploy is reported as not followed; the replay goes on
                    config = None
                if config is not None:
                    trace.deploy_judgements[version] = DeployJudgement(version, replaced, day, config)
        collecting = [j for j in trace.deploy_judgements.values() if j.collecting]
        if not collecting:
            return
        records = [r for r in (outcome.forecast, *outcome.refreshed_forecasts) if r is not None]
        current = self.store.current_version(horizon).id
        for judgement in collecting:
            mine = [r for r in records if r.config_version == judgement.version]
            if mine and day not in judgement.live:
                shadow = self._shadow_forecast(trace, judgement, day, prices, records)
                if shadow is not None:  # an origin counts only with both forecasts
                    judgement.live[day] = mine[-1].quantiles
                    judgement.shadow[day] = shadow
            if outcome.rollback is not None and outcome.rollback[0] == judgement.version:
                judgement.ended, judgement.end_reason = day, "rolled back"
            elif judgement.version != current:
                judgement.ended, judgement.end_reason = day, "replaced"
            elif len(judgement.live) >= JUDGED_ORIGINS:
                judgement.ended, judgement.end_reason = day, "collected"

    def _shadow_forecast(
        self,
        trace: HorizonTrace,
        judgement: DeployJudgement,
        day: pd.Timestamp,
        prices: pd.DataFrame,
        records: list[ForecastRecord],
    ) -> np.ndarray | None:
        """The replaced configuration's forecast of ``day``: one the day already made with it (the forecast
        before the deploy, or after a rollback to it), the static reference when it is the seed, or a fresh
        ``make_forecast`` that is not recorded in the forecast history; None when it fails."""
        replaced = judgement.replaced.without_baseline()
        wanted = replaced.model_dump(mode="json", exclude_none=True)
        for record in records:
            if record.config_version != judgement.version and _without_baseline(record.config) == wanted:
                return record.quantiles
        if replaced == self.seeds[trace.horizon].without_baseline() and day in trace.static_forecasts:
            return trace.static_forecasts[day]
        try:
            return make_forecast(prices, judgement.replaced, "shadow", self.settings.calendar).quantiles
        except Exception:  # noqa: BLE001 - no shadow forecast: the origin is not used for the judgement
            return None

    @staticmethod
    def _optimization(outcome: PolicyDay, decision: TriggerDecision, recalibration: Recalibration) -> Optimization:
        record = Optimization(
            outcome.horizon,
            outcome.day,
            decision.fired,
            dict(outcome.performance.degradation_pct if outcome.performance else {}),
            verdict=recalibration.verdict,
            error=recalibration.error,
            seconds=recalibration.seconds,
        )
        report = recalibration.report
        if report is not None:
            record.rmse_improvement_pct = report.metrics.rmse_improvement
            record.mape_improvement_pct = report.metrics.mape_improvement
            record.improvement_p_value = report.metrics.improvement_p_value
            record.failed_criteria = tuple(report.failed_criteria)
        if recalibration.deployed_version is not None:
            record.deployed_version = recalibration.deployed_version.id
        return record


def _without_baseline(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key != "baseline"}


def run_replay(
    provider: PriceProvider,
    settings: ReplaySettings,
    workdir: Path,
    progress: Callable[[int, int, pd.Timestamp], None] | None = None,
) -> ReplayResult:
    """Replay every business day of ``settings``' range. A range or history problem raises ReplayError
    before anything runs; a price source that fails mid-replay ends it early with a partial result."""
    days = check_range(provider, settings)
    replay = Replay(provider, settings, workdir)
    if settings.measure_seed_baseline:
        replay.measure_seed_baselines(days[0])
    done: list[pd.Timestamp] = []
    partial = None
    started = time.perf_counter()
    for i, day in enumerate(days):
        try:
            replay.run_day(day)
        except Exception as error:  # noqa: BLE001 - whatever stopped the day, the report says so
            partial = f"stopped on {day.date()} ({i} of {len(days)} days replayed): {type(error).__name__}: {error}"
            break
        done.append(day)
        if progress is not None:
            progress(i + 1, len(days), day)
    result = ReplayResult(
        settings,
        provider.description,
        done,
        len(days),
        replay.traces,
        Path(workdir),
        time.perf_counter() - started,
        partial,
    )
    return result
