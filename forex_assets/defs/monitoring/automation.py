"""Schedules and sensors that keep the forecasts calibrated without a person.

* ``daily_monitoring_schedule`` (Chilean business days 19:00 America/Santiago) refreshes ``usdclp_prices``; the
  forecasts, drift and performance reports follow through their eager automation conditions
  (``forex_automation_sensor``).
* ``optimization_sensor`` reads the latest drift and performance reports, asks the trigger manager
  (every decision is recorded) and requests ``optimization_job`` for exactly the horizons that need it.
  It reads metadata only: no model inference on a tick.
* ``weekly_optimization_schedule`` (Sunday 02:00 America/Santiago) optimizes the horizons that are due.

The guard counts an optimization once it reached a verdict (``core/monitoring/triggers.py``), so while a
horizon's optimization run is queued or running (:func:`optimization_in_flight`) neither decides for that
horizon: the sensor decides on the same reports once the run has ended (its verdict then counts; a run that
died counts nothing, and the decision may launch it again), the schedule leaves the horizon to that run.
"""

from __future__ import annotations

import json
from datetime import date

import dagster as dg

from forex_assets.core.calendar import is_business_day
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.schedule import DAILY_MONITORING_CRON, TIMEZONE, WEEKLY_OPTIMIZATION_CRON
from forex_assets.core.monitoring.triggers import BAND_TEST_KEYS, TriggerDecision
from forex_assets.core.policy import decide_optimization, trigger_inputs
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.defs.recalibration.jobs import optimization_job
from forex_assets.defs.recalibration.verdicts import decision_tags
from forex_assets.defs.resources import PolicyResource, WorkingArea
from forex_assets.defs.runs import RUN_EXECUTOR, run_assets

DRIFT, PERFORMANCE = dg.AssetKey("drift_report"), dg.AssetKey("performance_report")
CANDIDATE = dg.AssetKey("candidate_config")
#: a run in one of these may still reach a verdict
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

prices_job = dg.define_asset_job(
    "prices_job", selection=dg.AssetSelection.assets("usdclp_prices"), executor_def=RUN_EXECUTOR
)

forex_automation_sensor = dg.AutomationConditionSensorDefinition(
    "forex_automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates the eager conditions: forecasts and reports follow new prices, deploys and rollbacks.",
)


@dg.schedule(
    cron_schedule=DAILY_MONITORING_CRON,
    execution_timezone=TIMEZONE,
    job=prices_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily monitoring: prices, then forecasts, drift and performance reports of every horizon.",
)
def daily_monitoring_schedule(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.date() if context.scheduled_execution_time else date.today()
    if not is_business_day(day):
        return dg.SkipReason(f"{day.isoformat()} is a Chilean holiday: no fixing to fetch")
    return dg.RunRequest(tags={"forex/kind": "monitoring"})


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, horizon: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[horizon]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    if materialization is None:
        return None, {}
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    return records[0].storage_id, metadata


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, horizon: str) -> dict:
    """Metadata values of the latest materialization of ``key[horizon]``; {} when it never materialized."""
    return _latest(instance, key, horizon)[1]


def decision_from_reports(
    drift: dict, performance: dict, log: DecisionLog, horizon: str, settings: PolicySettings
) -> TriggerDecision:
    """The policy's trigger decision (step 4 of ``forex_assets.core.policy``) from the metadata of the latest
    drift and performance reports. The decision's day is the day of the prices the reports saw."""
    degradation = {
        k: float(performance[f"degradation_{k}_pct"])
        for k in ("rmse", "skill")
        if f"degradation_{k}_pct" in performance
    }
    walk_test = None
    if "random_walk_test_p_worse" in performance:
        walk_test = {
            "origins": int(performance["random_walk_test_origins"]),
            "skill_vs_random_walk": float(performance["random_walk_test_skill"]),
            "p_worse_than_random_walk": float(performance["random_walk_test_p_worse"]),
        }
        walk_test |= {
            key: (int if key == "step1_breaches_95" else float)(performance[f"band_test_{key}"])
            for key in BAND_TEST_KEYS
            if f"band_test_{key}" in performance
        }
    as_of = drift.get("as_of") or performance.get("as_of")
    inputs = trigger_inputs(
        horizon,
        date.fromisoformat(as_of) if as_of else date.today(),
        drift.get("severity"),
        str(drift.get("rules", "")),
        degradation,
        log,
        random_walk_test=walk_test,
    )
    return decide_optimization(inputs, settings)


def decide_from_instance(
    instance: dg.DagsterInstance, log: DecisionLog, horizon: str, settings: PolicySettings
) -> TriggerDecision:
    """``decision_from_reports`` on the latest drift and performance reports of ``horizon``."""
    drift, performance = (latest_metadata(instance, key, horizon) for key in (DRIFT, PERFORMANCE))
    return decision_from_reports(drift, performance, log, horizon, settings)


def optimization_tags(decision: TriggerDecision) -> dict[str, str]:
    """Run tags of an optimization: the optimizer pool's tag, which triggers fired and why (read by the
    optimization-triggered alert), and the decision's day and override flag (carried by its verdict)."""
    reasons = {k: decision.reasons[k][:300] for k in decision.fired}
    return {
        "forex/optimizer": decision.horizon,
        "forex/triggers": ",".join(decision.fired),
        "forex/trigger_reasons": json.dumps(reasons),
    } | decision_tags(decision)


def optimization_in_flight(instance: dg.DagsterInstance, horizon: str) -> str | None:
    """The id of a run optimizing ``horizon`` (``optimization_job``, or a materialization of its
    ``candidate_config``) that is queued or running, None when there is none. A run whose process died is
    marked failed by run monitoring or the dead-run sweep, and is then no longer one."""
    records = instance.get_run_records(dg.RunsFilter(statuses=IN_FLIGHT, tags={"dagster/partition": horizon}))
    for record in records:
        run = record.dagster_run
        if run.job_name == optimization_job.name or CANDIDATE in run_assets(instance, run):
            return run.run_id  # run_assets: an in-process run of `forex-assets run` has no asset selection
    return None


def optimization_request(decision: TriggerDecision, key: str, policy: str) -> dg.RunRequest:
    """``policy``: the label of the policy that decided (tag ``forex/policy``)."""
    tags = optimization_tags(decision) | {"forex/policy": policy}
    return dg.RunRequest(run_key=key, partition_key=decision.horizon, tags=tags)


@dg.sensor(
    job=optimization_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Asks the trigger manager, for every horizon with a new drift or performance report, whether "
    "to optimize; requests optimization_job with the reasons in the run tags.",
)
def optimization_sensor(context: dg.SensorEvaluationContext, working_area: WorkingArea, policy: PolicyResource):
    seen = json.loads(context.cursor) if context.cursor else {}
    log = working_area.decision_log()
    settings = policy.settings()
    for horizon in HORIZONS:
        (drift_id, drift), (performance_id, performance) = (
            _latest(context.instance, key, horizon) for key in (DRIFT, PERFORMANCE)
        )
        ids = [drift_id, performance_id]
        if ids == [None, None] or seen.get(horizon) == ids:
            continue  # no new report since the last decision
        running = optimization_in_flight(context.instance, horizon)
        if running is not None:  # decided on these reports once it has ended (they stay unseen)
            context.log.info(f"{horizon}: optimization run {running} has not ended; deciding once it has")
            continue
        seen[horizon] = ids
        decision = decision_from_reports(drift, performance, log, horizon, settings)
        log.record(decision)  # the record of the decision this tick acts on
        context.log.info(decision.summary())
        if decision.optimize:
            yield optimization_request(decision, f"optimize-{horizon}-{ids[0]}-{ids[1]}", policy.label())
    context.update_cursor(json.dumps(seen))


@dg.schedule(
    cron_schedule=WEEKLY_OPTIMIZATION_CRON,
    execution_timezone=TIMEZONE,
    job=optimization_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekly fallback: optimizes every horizon not optimized in the last "
    f"{PolicySettings().triggers.schedule_days} days (default policy).",
)
def weekly_optimization_schedule(
    context: dg.ScheduleEvaluationContext, working_area: WorkingArea, policy: PolicyResource
):
    log = working_area.decision_log()
    settings = policy.settings().scheduled_only()
    today = context.scheduled_execution_time.date() if context.scheduled_execution_time else date.today()
    requests, running = [], []
    for horizon in HORIZONS:
        if optimization_in_flight(context.instance, horizon) is not None:
            running.append(horizon)  # its optimization is under way
            continue
        decision = decide_optimization(trigger_inputs(horizon, today, None, "", {}, log), settings)
        log.record(decision)  # the record of the decision this tick acts on
        if decision.optimize:
            requests.append(optimization_request(decision, f"weekly-{horizon}-{today}", policy.label()))
    under_way = f"; an optimization of {', '.join(running)} is under way" if running else ""
    return requests or dg.SkipReason(
        f"no horizon is due on {today}: each was optimized in the last {settings.triggers.schedule_days} days"
        + under_way
    )
