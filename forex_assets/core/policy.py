"""The recalibration policy's steps for one horizon: the core functions every path calls.

The order of the steps, and what each reads and produces, is described once, in ``core/cycle.py``
(:data:`~forex_assets.core.cycle.CYCLE`), which also composes them into one business day for the replay
(:func:`~forex_assets.core.cycle.run_policy_day`). This module holds the steps themselves:

* **forecast**: :func:`forecast_step` (the deployed configuration's forecast, recorded in the history);
* **watch**: :func:`is_watched_deploy`, :func:`post_deploy_health` and :func:`rollback_decision` (a deploy
  not yet judged, scored on its forecasts since, rolled back when a rollback rule fires);
* **reports**: :func:`drift_check` (with :func:`drift_summary`) and :func:`performance_check`;
* **decision**: :func:`trigger_inputs` and :func:`decide_optimization` (the trigger manager);
* **optimization**: :func:`recalibrate` composes the search (``find_candidate``), the validation on the later
  disjoint window (``validate_candidate``), its verdict (:func:`validation_verdict`) and the deploy
  (``deploy_from_report``); :func:`record_verdict` records the verdict the guard counts from then on (the
  replay's record; ``validation_report`` records the same verdict and detail, ``defs/recalibration/verdicts.py``).

Every rule and threshold comes from :class:`PolicySettings`. Who calls what:

* the replay, through :func:`~forex_assets.core.cycle.run_policy_day`, every step for every replayed day;
* the Dagster layer, the same functions from the definitions each step of ``CYCLE`` names: the ``forecast``
  asset (and ``rollback_job``'s refresh) :func:`forecast_step`; ``rollback_sensor`` the watch; the
  ``drift_report`` and ``performance_report`` assets the reports; ``optimization_sensor`` and the weekly
  schedule the decision (they only read state and request runs); ``optimization_job``'s ``candidate_config``,
  ``validation_report`` (with :func:`validation_verdict`, as :func:`recalibrate`) and ``deployed_config`` the
  optimization;
* ``make run`` (``cli/run.py`` ``run_cycle``), which materializes those assets and asks the sensors' helpers
  in the order of ``CYCLE``.

Pure: no Dagster import (checked by the import-linter contract in ``pyproject.toml``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.calendar import CHILE, BusinessCalendar
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
    detect_drift,
)
from forex_assets.core.monitoring.live_scoring import PerformanceSnapshot, score_matured
from forex_assets.core.monitoring.performance import performance_snapshot
from forex_assets.core.monitoring.severity import Severity
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
    report_value,
    validate_candidate,
)

# ------------------------------------------------------------------------------ 1. forecast


def forecast_step(
    prices: pd.DataFrame,
    deployed: ChronosConfig,
    version: str,
    history: ForecastHistory,
    calendar: BusinessCalendar = CHILE,
) -> ForecastRecord:
    """Forecast with the deployed configuration and record it (a later forecast of the same origin, e.g.
    after a rollback, replaces it); target dates on the pair's ``calendar``. Raises what :func:`make_forecast`
    raises."""
    record = make_forecast(prices, deployed, version, calendar)
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
    matured, rmse, walk, seconds = 0, None, None, []
    if not mine.empty:
        steps = history.steps(horizon, since=mine["origin_date"].min())
        score = score_matured(steps[steps["origin_date"].isin(mine["origin_date"])], prices)
        matured, rmse = score.forecasts, score.rmse_clp
        if matured:  # the random walk on the same targets: each origin's last price
            last = score.errors["origin_date"].map(mine.set_index("origin_date")["last_price"])
            walk = float(np.sqrt(np.mean(np.square(last - score.errors["actual"]))))
        newest_first = mine.sort_values("origin_date", ascending=False)["inference_seconds"]
        seconds = [float(s) for s in newest_first]
    return PostDeployHealth(list(outcomes_newest_first), seconds, matured, rmse, walk)


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
    random_walk_test: Mapping[str, Any] | None = None,
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


@dataclass(frozen=True)
class Verdict:
    """An optimization's verdict once its candidate was validated: what decides the deploy and what the decision
    log records (the guard counts it from then on). Both paths take it from :func:`validation_verdict`."""

    verdict: str  # "approved" or "rejected"
    failed_criteria: tuple[str, ...] = ()

    @property
    def approved(self) -> bool:
        return self.verdict == "approved"

    @property
    def text(self) -> str:
        """The verdict as recorded and logged: "approved", or "rejected: " and the failed approval criteria."""
        return self.verdict if self.approved else f"{self.verdict}: {', '.join(self.failed_criteria)}"


def validation_verdict(report: ValidationReport) -> Verdict:
    """Approved when every approval criterion passed, rejected naming those that failed otherwise."""
    return Verdict("approved" if report.approved else "rejected", tuple(report.failed_criteria))


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

    @property
    def detail(self) -> str:
        """What the decision log records with the verdict: the error, or :attr:`Verdict.text`."""
        if self.verdict == "error" or self.report is None:
            return self.error
        return validation_verdict(self.report).text


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
        outcome.report, verdict = run.report, validation_verdict(run.report)
        outcome.verdict = verdict.verdict
        if verdict.approved:
            _, outcome.deployed_version, _ = deploy_from_report(store, report_value(run))
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
        detail=outcome.detail,
        at=at,
    )
