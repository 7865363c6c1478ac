"""The recalibration policy for one horizon on one business day: the single implementation.

A business day of one horizon goes through these steps, in this order (``docs/architecture.md``):

1. **forecast** with the deployed configuration and record it in the forecast history;
2. **health**: if the deployed version is a deploy not yet judged, score what happened since
   (:func:`post_deploy_health`) and roll it back when a rollback rule fires (:func:`rollback_decision`);
   after a rollback the horizon is forecast again with the restored configuration;
3. **reports**: drift of the prices (:func:`drift_check`) and accuracy of the matured forecasts
   against the deployed configuration's baseline (:func:`performance_check`);
4. **trigger**: the trigger manager's decision, recorded with its reasons (:func:`decide_optimization`);
5. **optimization** when the decision says so: search on the search window, validation on the
   later disjoint window, deploy only when every approval criterion passed (:func:`recalibrate`);
   its verdict is recorded (:func:`record_verdict`: what the guard counts from then on); after a deploy
   the horizon is forecast again with the new configuration.

Every rule and threshold comes from :class:`PolicySettings`. Who calls what:

* the replay (``core/replay/engine.py``) runs :func:`run_policy_day` for every replayed day;
* the Dagster layer runs the same steps asynchronously: the ``forecast``, ``drift_report`` and
  ``performance_report`` assets call steps 1 and 3, the rollback sensor steps 2, the optimization sensor
  and the weekly schedule step 4 (they only read state and request runs), and ``optimization_job``
  (``candidate_config`` -> ``validation_report`` with its blocking checks -> ``deployed_config``) the
  pieces of step 5 that :func:`recalibrate` composes here;
* ``make run`` materializes those assets and asks the same sensor helpers.

Pure: no Dagster import (checked by the import-linter contract in ``pyproject.toml``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.deployment.deploy import deploy_from_report
from forex_assets.core.deployment.history import Version
from forex_assets.core.deployment.rollback_rules import PostDeployHealth, rollback_reason
from forex_assets.core.forecasting.config import ChronosConfig, ConfigError, config_path, load_config
from forex_assets.core.forecasting.history import ForecastHistory, ForecastRecord
from forex_assets.core.forecasting.production import make_forecast
from forex_assets.core.models.loading import ModelLoadError
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.drift import (
    DriftReport,
    DriftThresholds,
    InsufficientDataError,
    Severity,
    detect_drift,
)
from forex_assets.core.monitoring.live_scoring import PerformanceSnapshot, score_matured
from forex_assets.core.monitoring.performance import performance_snapshot
from forex_assets.core.monitoring.triggers import (
    TriggerDecision,
    TriggerInputs,
    decide,
    failure_concludes,
)
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.recalibration.search import SearchError
from forex_assets.core.recalibration.search_space import load_search_space, search_space_path
from forex_assets.core.recalibration.validation import ValidationReport
from forex_assets.core.recalibration.workflow import (
    WindowOverlapError,
    candidate_document,
    find_candidate,
    validate_candidate,
)

# ------------------------------------------------------------------------------ 1. forecast


def forecast_step(
    prices: pd.DataFrame, deployed: ChronosConfig, version: str, history: ForecastHistory
) -> ForecastRecord:
    """Forecast with the deployed configuration and record it (a later forecast of the same origin, e.g.
    after a rollback, replaces it). Raises what :func:`make_forecast` raises."""
    record = make_forecast(prices, deployed, version)
    history.record(record)
    return record


# ------------------------------------------------------------------------------ 2. health and rollback


def is_watched_deploy(horizon: str, version: Version) -> bool:
    """Only deploys are watched: seeds, baselines and rollbacks are not rolled back automatically."""
    return version.summary.startswith(f"[{horizon}] deploy")


def post_deploy_health(
    history: ForecastHistory,
    prices: pd.DataFrame,
    horizon: str,
    version: str,
    outcomes_newest_first: Sequence[bool],
) -> PostDeployHealth:
    """What happened to the horizon's forecasts since ``version`` was deployed.

    ``outcomes_newest_first``: forecast runs with that version, True when they succeeded. Inference times
    are those the history recorded with the version's forecasts. Only the version's own forecasts are read
    (a query on the version, then the steps from its first origin).
    """
    mine = history.runs(horizon, version=version)
    matured, rmse, seconds = 0, None, []
    if not mine.empty:
        steps = history.steps(horizon, since=mine["origin_date"].min())
        score = score_matured(steps[steps["origin_date"].isin(mine["origin_date"])], prices)
        matured, rmse = score.forecasts, score.rmse_clp
        newest_first = mine.sort_values("origin_date", ascending=False)["inference_seconds"]
        seconds = [float(s) for s in newest_first]
    return PostDeployHealth(list(outcomes_newest_first), seconds, matured, rmse)


def rollback_decision(
    horizon: str,
    version: Version,
    deployed: ChronosConfig,
    health: PostDeployHealth,
    settings: PolicySettings,
    handled: set[str] | frozenset[str] = frozenset(),
) -> str | None:
    """The reason to roll ``version`` back, or None. A deploy is judged until it is rolled back once."""
    if not is_watched_deploy(horizon, version) or version.id in handled:
        return None
    return rollback_reason(health, deployed.baseline, settings.rollback)


# ------------------------------------------------------------------------------ 3. reports


def drift_check(prices: pd.DataFrame, thresholds: DriftThresholds) -> DriftReport | None:
    """Drift of the log returns, or None while the series is shorter than the two windows."""
    try:
        return detect_drift(prices["usdclp"].to_numpy(), thresholds)
    except InsufficientDataError:
        return None


def drift_summary(report: DriftReport) -> str:
    """The rules that decided the severity, on one line (what the trigger's reason quotes)."""
    return "; ".join(report.reasons)


def performance_check(
    horizon: str,
    prices: pd.DataFrame,
    history: ForecastHistory,
    deployed: ChronosConfig,
    cache: ForecastCache | None,
    settings: PolicySettings,
    version: str | None = None,
) -> PerformanceSnapshot:
    """Accuracy of the matured forecasts against the baseline, and of ``version`` against the random walk."""
    return performance_snapshot(horizon, prices, history, deployed, cache, settings.performance, version)


# ------------------------------------------------------------------------------ 4. trigger


def trigger_inputs(
    horizon: str,
    today: date,
    drift_severity: Severity | str | None,
    drift_rules: str,
    degradation_pct: Mapping[str, float],
    log: DecisionLog,
    optimized_on_or_before: date | None = None,
    random_walk_test: Mapping | None = None,
) -> TriggerInputs:
    """What the trigger manager decides on. ``optimized_on_or_before`` stands for the last optimization
    when the log has none (the replay counts its seed configuration as optimized on its first day)."""
    if isinstance(drift_severity, str):
        drift_severity = Severity[drift_severity]
    return TriggerInputs(
        horizon=horizon,
        today=today,
        drift_severity=drift_severity,
        drift_summary=drift_rules,
        degradation_pct=dict(degradation_pct),
        random_walk_test=dict(random_walk_test) if random_walk_test else None,
        last_optimization=log.last_optimization(horizon) or optimized_on_or_before,
        last_performance_override=log.last_performance_override(horizon),
    )


def decide_optimization(inputs: TriggerInputs, settings: PolicySettings) -> TriggerDecision:
    return decide(inputs, settings.triggers)


# ------------------------------------------------------------------------------ 5. optimization


@dataclass
class Recalibration:
    """One optimization: search, validation, and the deploy when the validation approved it."""

    horizon: str
    verdict: str = "error"  # approved, rejected, error
    error: str = ""
    concluded: bool = True  # an error that waiting does not cure concludes it too (failure_concludes)
    report: ValidationReport | None = None
    previous_version: str | None = None
    deployed_version: Version | None = None
    seconds: float = 0.0


RECALIBRATION_ERRORS = (ConfigError, SearchError, ModelLoadError, WindowOverlapError, ValueError)


def recalibrate(
    horizon: str,
    prices: pd.DataFrame,
    store: ConfigStore,
    configs_dir: Path,
    cache: ForecastCache,
    study_journal: Path,
    reports_dir: Path,
    settings: PolicySettings,
    progress: Callable[[str], None] = lambda message: None,
    render_html: bool = True,
) -> Recalibration:
    """Search the horizon's space, validate the candidate against the deployed configuration on the later
    disjoint window, and deploy it when every approval criterion passed. Errors are reported, not raised.
    ``study_journal``: the Optuna study directory (one journal per study); ``render_html``: write the
    validation report's HTML (plots) besides its JSON."""
    outcome, started = Recalibration(horizon), time.perf_counter()
    deployed, version = store.read(horizon), store.current_version(horizon).id
    outcome.previous_version = version
    try:
        space = load_search_space(search_space_path(configs_dir, horizon), expected_horizon=horizon)
        seed = load_config(config_path(configs_dir, horizon), expected_horizon=horizon)
        found = find_candidate(space, prices, cache, study_journal, progress, settings.levers, prior=seed)
        reports_dir.mkdir(parents=True, exist_ok=True)
        run = validate_candidate(
            candidate_document(found, space),
            deployed,
            version,
            prices,
            cache,
            reports_dir,
            settings.approval,
            render_html=render_html,
        )
        outcome.report = run.report
        outcome.verdict = "approved" if run.report.approved else "rejected"
        if run.report.approved:
            _, outcome.deployed_version, _ = deploy_from_report(store, run.report.to_dict())
    except RECALIBRATION_ERRORS as error:
        outcome.verdict, outcome.error = "error", f"{type(error).__name__}: {error}"
        outcome.concluded = failure_concludes(error)
    outcome.seconds = time.perf_counter() - started
    return outcome


def record_verdict(
    log: DecisionLog, decision: TriggerDecision, outcome: Recalibration, at: datetime | None = None
) -> None:
    """The optimization ``decision`` launched reached ``outcome``: record its verdict (an error is "failed"),
    which the guard counts from now on; nothing when it gave up on an error that waiting may cure."""
    if outcome.verdict == "error" and not outcome.concluded:
        return
    verdict = "failed" if outcome.verdict == "error" else outcome.verdict
    log.record_verdict(
        decision.horizon,
        decision.decided_on,
        verdict,
        performance_override=decision.performance_override,
        detail=outcome.error,
        at=at,
    )


# ------------------------------------------------------------------------------ one business day


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
    dated: Callable[[pd.Timestamp], AbstractContextManager] = lambda day: nullcontext()
    # when the decision log has no optimization yet, count the configuration as optimized on this day
    optimized_on_or_before: date | None = None
    # write each validation's HTML report (plots) besides its JSON; a replay nobody reads report by report skips it
    render_reports: bool = True


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
        record = forecast_step(prices, deployed, version, state.history)
    except Exception as error:  # noqa: BLE001 - a failed forecast is data for the rollback rules
        state.forecast_outcomes.setdefault(version, []).append(False)
        outcome.forecast_error = f"{type(error).__name__}: {error}"
        return None
    state.forecast_outcomes.setdefault(version, []).append(True)
    return record


def run_policy_day(
    state: PolicyState, horizon: str, day: pd.Timestamp, prices: pd.DataFrame, settings: PolicySettings
) -> PolicyDay:
    """Steps 1-5 of the module docstring for ``horizon`` on ``day``; ``prices`` end on ``day``."""
    outcome = PolicyDay(horizon, day)
    outcome.forecast = _forecast(state, outcome, prices)

    version = state.store.current_version(horizon)
    if is_watched_deploy(horizon, version) and version.id not in state.handled_deploys:
        health = post_deploy_health(
            state.history,
            prices,
            horizon,
            version.id,
            list(reversed(state.forecast_outcomes.get(version.id, []))),
        )
        reason = rollback_decision(horizon, version, state.store.read(horizon), health, settings, state.handled_deploys)
        if reason is not None:
            state.handled_deploys.add(version.id)
            with state.dated(day):
                state.store.rollback(horizon, "previous", f"automatic rollback: {reason}")
            outcome.rollback = (version.id, reason)
            refreshed = _forecast(state, PolicyDay(horizon, day), prices)
            outcome.refreshed_forecasts += [refreshed] if refreshed else []

    deployed, version_id = state.store.read(horizon), state.store.current_version(horizon).id
    outcome.drift = drift_check(prices, settings.drift_thresholds(horizon))
    outcome.performance = performance_check(horizon, prices, state.history, deployed, state.cache, settings, version_id)
    inputs = trigger_inputs(
        horizon,
        pd.Timestamp(day).date(),
        outcome.drift.severity if outcome.drift else None,
        drift_summary(outcome.drift) if outcome.drift else "",
        outcome.performance.degradation_pct,
        state.log,
        state.optimized_on_or_before,
        outcome.performance.random_walk_test,
    )
    outcome.decision = decide_optimization(inputs, settings)
    state.log.record(outcome.decision, at=_at(day, 17))

    if outcome.decision.optimize:
        with state.dated(day):
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
        record_verdict(state.log, outcome.decision, outcome.recalibration, at=_at(day, 18))
        if outcome.recalibration.deployed_version is not None:
            refreshed = _forecast(state, PolicyDay(horizon, day), prices)
            outcome.refreshed_forecasts += [refreshed] if refreshed else []
    return outcome
