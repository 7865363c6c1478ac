"""The daily cycle of one horizon, composed once (pure, no Dagster).

:data:`CYCLE` is the ordered description of a business day: prices -> forecast -> watch (the deploy in
force, rolled back when a rollback rule fires) -> reports (drift, performance) -> decision (the trigger
manager) -> optimization (search, validation, verdict, deploy). Each :class:`CycleStep` names what it reads,
what it produces, the core functions that do the work (``core/policy.py`` and the modules it calls) and
the Dagster definitions that carry it in production. The watch comes right after the day's forecast: the
rollback rules judge a deploy on its forecasts, the day's one included, and a restored configuration
forecasts the same day; a deploy made by the day's optimization is watched from the next day on.

Three drivers follow this one order; none has an order of its own:

* the replay (``core/replay/engine.py``) calls :func:`run_policy_day` for every replayed day and horizon,
  which runs each step's ``in_replay`` function in the order of :data:`CYCLE`;
* ``make run`` (``cli/run.py`` ``run_cycle``) runs the steps in the same order against the Dagster
  instance: it materializes each step's assets and asks the sensors' helpers (one driver per step name);
* production: the schedules, sensors, jobs and eager automation conditions named by each step carry it
  asynchronously, calling the same core functions (``forex_assets_tests/test_cycle.py`` checks that every
  named definition exists, that the horizon-partitioned assets are exactly the steps' assets, and that each
  step's carriers call its core functions).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.calendar import CHILE, BusinessCalendar
from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.deployment.deploy import deploy_from_report
from forex_assets.core.forecasting.history import ForecastHistory, ForecastRecord
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.drift import DriftReport
from forex_assets.core.monitoring.live_scoring import PerformanceSnapshot
from forex_assets.core.monitoring.triggers import TriggerDecision
from forex_assets.core.policy import (
    Recalibration,
    decide_optimization,
    drift_check,
    drift_summary,
    forecast_step,
    is_watched_deploy,
    performance_check,
    post_deploy_health,
    recalibrate,
    record_verdict,
    rollback_decision,
    trigger_inputs,
    validation_verdict,
)
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.recalibration.workflow import find_candidate, validate_candidate

# ------------------------------------------------------------------------------ the state a day reads and writes


@dataclass
class PolicyState:
    """The state one horizon's policy reads and writes (a working area: production's or a replay's)."""

    store: ConfigStore
    history: ForecastHistory
    log: DecisionLog
    cache: ForecastCache
    study_journal: Path  # the Optuna study directory: one journal file per study
    reports_root: Path
    configs_dir: Path
    # forecast outcomes per configuration version, oldest first (production reads them from run records)
    forecast_outcomes: dict[str, list[bool]] = field(default_factory=dict)
    handled_deploys: set[str] = field(default_factory=set)
    # context for writes (config store commits) dated on the policy's day; the replay dates them
    dated: Callable[[pd.Timestamp], AbstractContextManager[object]] = lambda day: nullcontext()
    # when the decision log has no optimization yet, count the configuration as optimized on this day
    optimized_on_or_before: date | None = None
    # write each validation's HTML report (plots) besides its JSON; a replay nobody reads report by report skips it
    render_reports: bool = True
    # the pair's business days: forecast target dates
    calendar: BusinessCalendar = CHILE


@dataclass
class PolicyDay:
    """What the policy did for one horizon on one day."""

    horizon: str
    day: pd.Timestamp
    forecast: ForecastRecord | None = None
    forecast_error: str | None = None
    rollback: tuple[str, str] | None = None  # (rolled-back version, reason)
    drift: DriftReport | None = None
    performance: PerformanceSnapshot | None = None
    decision: TriggerDecision | None = None
    recalibration: Recalibration | None = None
    refreshed_forecasts: list[ForecastRecord] = field(default_factory=list)  # after a rollback or deploy


def _at(day: pd.Timestamp, hour: int) -> datetime:
    return datetime.combine(pd.Timestamp(day).date(), datetime.min.time(), tzinfo=UTC).replace(hour=hour)


def _forecast(state: PolicyState, outcome: PolicyDay, prices: pd.DataFrame) -> ForecastRecord | None:
    deployed, version = state.store.read(outcome.horizon), state.store.current_version(outcome.horizon).id
    try:
        record = forecast_step(prices, deployed, version, state.history, state.calendar)
    except Exception as error:  # noqa: BLE001 - a failed forecast is data for the rollback rules
        state.forecast_outcomes.setdefault(version, []).append(False)
        outcome.forecast_error = f"{type(error).__name__}: {error}"
        return None
    state.forecast_outcomes.setdefault(version, []).append(True)
    return record


def _forecast_again(state: PolicyState, outcome: PolicyDay, prices: pd.DataFrame) -> None:
    """After a rollback or a deploy: the day's forecast made again with the configuration now deployed."""
    refreshed = _forecast(state, PolicyDay(outcome.horizon, outcome.day), prices)
    outcome.refreshed_forecasts += [refreshed] if refreshed else []


# ------------------------------------------------------------------------------ each step, as the replay runs it


def _forecast_in_replay(state: PolicyState, outcome: PolicyDay, prices: pd.DataFrame, settings: PolicySettings) -> None:
    outcome.forecast = _forecast(state, outcome, prices)


def _watch_in_replay(state: PolicyState, outcome: PolicyDay, prices: pd.DataFrame, settings: PolicySettings) -> None:
    horizon, version = outcome.horizon, state.store.current_version(outcome.horizon)
    if not is_watched_deploy(horizon, version) or version.id in state.handled_deploys:
        return
    outcomes_newest_first = list(reversed(state.forecast_outcomes.get(version.id, [])))
    health = post_deploy_health(state.history, prices, horizon, version.id, outcomes_newest_first)
    reason = rollback_decision(horizon, version, state.store.read(horizon), health, settings, state.handled_deploys)
    if reason is None:
        return
    state.handled_deploys.add(version.id)
    with state.dated(outcome.day):
        state.store.rollback(horizon, "previous", f"automatic rollback: {reason}")
    outcome.rollback = (version.id, reason)
    _forecast_again(state, outcome, prices)


def _reports_in_replay(state: PolicyState, outcome: PolicyDay, prices: pd.DataFrame, settings: PolicySettings) -> None:
    horizon = outcome.horizon
    deployed, version_id = state.store.read(horizon), state.store.current_version(horizon).id
    outcome.drift = drift_check(prices, settings.drift_thresholds(horizon))
    outcome.performance = performance_check(horizon, prices, state.history, deployed, state.cache, settings, version_id)


def _decision_in_replay(state: PolicyState, outcome: PolicyDay, prices: pd.DataFrame, settings: PolicySettings) -> None:
    drift, performance = outcome.drift, outcome.performance
    inputs = trigger_inputs(
        outcome.horizon,
        pd.Timestamp(outcome.day).date(),
        drift.severity if drift else None,
        drift_summary(drift) if drift else "",
        performance.degradation_pct if performance else {},
        state.log,
        state.optimized_on_or_before,
        performance.random_walk_test if performance else None,
    )
    outcome.decision = decide_optimization(inputs, settings)
    state.log.record(outcome.decision, at=_at(outcome.day, 17))


def _optimization_in_replay(
    state: PolicyState, outcome: PolicyDay, prices: pd.DataFrame, settings: PolicySettings
) -> None:
    if outcome.decision is None or not outcome.decision.optimize:
        return
    horizon = outcome.horizon
    with state.dated(outcome.day):
        outcome.recalibration = recalibrate(
            horizon,
            prices,
            state.store,
            state.configs_dir,
            state.cache,
            state.study_journal,
            state.reports_root / horizon,
            settings,
            render_html=state.render_reports,
        )
    record_verdict(state.log, outcome.decision, outcome.recalibration, at=_at(outcome.day, 18))
    if outcome.recalibration.deployed_version is not None:
        _forecast_again(state, outcome, prices)


# ------------------------------------------------------------------------------ the description


StepInReplay = Callable[[PolicyState, PolicyDay, pd.DataFrame, PolicySettings], None]


@dataclass(frozen=True)
class CycleStep:
    """One step of a horizon's business day: what it does and reads and produces, the core functions doing it,
    the Dagster definitions (by name) carrying it in production, and how the replay runs it."""

    name: str
    does: str
    reads: tuple[str, ...]
    produces: tuple[str, ...]
    calls: tuple[Callable[..., object], ...] = ()  # the core functions both the replay and the Dagster layer call
    assets: tuple[str, ...] = ()  # asset keys materialized by the step
    sensors: tuple[str, ...] = ()
    schedules: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()
    per_horizon: bool = True  # False: once a day for every horizon (the prices)
    in_replay: StepInReplay | None = None  # None: the replay gives the step's product (the prices known that day)

    @property
    def carriers(self) -> tuple[str, ...]:
        """Every Dagster definition named by the step."""
        return self.assets + self.sensors + self.schedules + self.jobs


CYCLE: tuple[CycleStep, ...] = (
    CycleStep(
        "prices",
        does="the USD/CLP series known on the day, checked by the data contract",
        reads=("price source",),
        produces=("pair_prices",),
        assets=("pair_prices",),
        schedules=("daily_monitoring_schedule",),
        jobs=("prices_job",),
        per_horizon=False,
    ),
    CycleStep(
        "forecast",
        does="forecast with the deployed configuration and record it in the forecast history",
        reads=("pair_prices", "deployed configuration"),
        produces=("forecast history",),
        calls=(forecast_step,),
        assets=("forecast",),
        in_replay=_forecast_in_replay,
    ),
    CycleStep(
        "watch",
        does="judge a deploy not yet judged on its forecasts since; roll it back when a rollback rule fires and "
        "forecast again with the restored configuration",
        reads=("config store", "forecast history", "forecast run outcomes", "pair_prices"),
        produces=("rollback commit", "forecast history"),
        calls=(is_watched_deploy, post_deploy_health, rollback_decision),
        sensors=("rollback_sensor",),
        jobs=("rollback_job",),
        in_replay=_watch_in_replay,
    ),
    CycleStep(
        "reports",
        does="drift of the prices; accuracy of the matured forecasts against the deployed baseline, the random walk "
        "(the median) and the EWMA band (the band)",
        reads=("pair_prices", "forecast history", "deployed configuration", "backtest cache"),
        produces=("drift_report", "performance_report"),
        calls=(drift_check, performance_check),
        assets=("drift_report", "performance_report"),
        in_replay=_reports_in_replay,
    ),
    CycleStep(
        "decision",
        does="the trigger manager's decision (performance, drift, schedule, guard), recorded with its reasons",
        reads=("drift_report", "performance_report", "decision log"),
        produces=("decision log",),
        calls=(trigger_inputs, decide_optimization),
        sensors=("optimization_sensor",),
        schedules=("weekly_optimization_schedule",),
        in_replay=_decision_in_replay,
    ),
    CycleStep(
        "optimization",
        does="when the decision says so: search on the search window, validate against the deployed "
        "configuration on the later disjoint window, record the verdict, deploy when every approval criterion "
        "passed and forecast again with the new configuration",
        reads=("decision", "pair_prices", "search space", "seed configuration", "deployed configuration"),
        produces=("candidate", "validation report", "verdict in the decision log", "deploy commit", "forecast"),
        calls=(find_candidate, validate_candidate, validation_verdict, deploy_from_report),
        assets=("candidate_config", "validation_report", "deployed_config"),
        jobs=("optimization_job",),
        in_replay=_optimization_in_replay,
    ),
)

STEP_NAMES: tuple[str, ...] = tuple(step.name for step in CYCLE)


def cycle_step(name: str) -> CycleStep:
    """The step called ``name``; a KeyError naming the steps there are."""
    for step in CYCLE:
        if step.name == name:
            return step
    raise KeyError(f"no cycle step {name!r}; the steps are {', '.join(STEP_NAMES)}")


def steps_through(name: str) -> tuple[CycleStep, ...]:
    """The steps of :data:`CYCLE` up to and including ``name`` (``make run --no-recalibration``: "forecast")."""
    return CYCLE[: STEP_NAMES.index(cycle_step(name).name) + 1]


def cycle_table() -> str:
    """The description as a Markdown table (step, core functions, Dagster definitions), for the docs."""
    lines = ["| step | does | core functions | in Dagster |", "|---|---|---|---|"]
    for i, step in enumerate(CYCLE, 1):
        calls = ", ".join(f"`{f.__name__}`" for f in step.calls) or "-"
        carriers = ", ".join(f"`{name}`" for name in step.carriers)
        lines.append(f"| {i}. {step.name} | {step.does} | {calls} | {carriers} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ one business day, in the replay


def run_policy_day(
    state: PolicyState, horizon: str, day: pd.Timestamp, prices: pd.DataFrame, settings: PolicySettings
) -> PolicyDay:
    """The steps of :data:`CYCLE` for ``horizon`` on ``day``, in its order; ``prices`` end on ``day`` (the
    prices step's product, which the replay gives)."""
    outcome = PolicyDay(horizon, day)
    for step in CYCLE:
        if step.in_replay is not None:
            step.in_replay(state, outcome, prices, settings)
    return outcome
