"""Schedules and sensors that keep the forecasts calibrated without a person.

* ``daily_monitoring_schedule`` (Chilean business days 19:00 America/Santiago) refreshes ``pair_prices``; the
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

from forex_assets.core.horizons import HORIZONS
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.schedule import DAILY_MONITORING_CRON, TIMEZONE, WEEKLY_OPTIMIZATION_CRON
from forex_assets.core.monitoring.triggers import BAND_TEST_KEYS, TriggerDecision
from forex_assets.core.policy import decide_optimization, trigger_inputs
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.working_area import PRIMARY_PAIR
from forex_assets.defs.partitions import (
    pair_and_horizon,
    pair_calendar,
    pair_horizon_partitions,
    pair_partitions,
    series_key,
    series_label,
    series_tag,
)
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
    "prices_job", selection=dg.AssetSelection.assets("pair_prices"), executor_def=RUN_EXECUTOR
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
    description="Daily monitoring: one run per pair whose business day it is (its prices, then the forecasts, "
    "drift and performance reports of its horizons).",
)
def daily_monitoring_schedule(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.date() if context.scheduled_execution_time else date.today()
    pairs = pair_partitions.get_partition_keys()
    open_today = [pair for pair in pairs if pair_calendar(pair).is_business_day(day)]
    if not open_today:
        return dg.SkipReason(f"{day.isoformat()} is a holiday of every pair ({', '.join(pairs)}): no fixing to fetch")
    return [
        dg.RunRequest(run_key=f"prices-{pair}-{day.isoformat()}", partition_key=pair, tags={"forex/kind": "monitoring"})
        for pair in open_today
    ]


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[str(partition)]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    if materialization is None:
        return None, {}
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    return records[0].storage_id, metadata


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> dict:
    """Metadata values of the latest materialization of ``key[partition]`` (one pair's horizon, ``7d|USDCLP``);
    {} when it never materialized."""
    return _latest(instance, key, partition)[1]


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
    """``decision_from_reports`` on the latest drift and performance reports of ``horizon`` of the pair whose
    decision log ``log`` is."""
    partition = series_key(horizon, log.pair)
    drift, performance = (latest_metadata(instance, key, partition) for key in (DRIFT, PERFORMANCE))
    return decision_from_reports(drift, performance, log, horizon, settings)


def optimization_tags(decision: TriggerDecision, pair: str = PRIMARY_PAIR) -> dict[str, str]:
    """Run tags of an optimization: the optimizer pool's tag (one value per pair's horizon: dagster.yaml's
    limits), which triggers fired and why (read by the optimization-triggered alert), and the decision's day
    and override flag (carried by its verdict)."""
    reasons = {k: decision.reasons[k][:300] for k in decision.fired}
    return {
        "forex/optimizer": series_tag(pair, decision.horizon),
        "forex/triggers": ",".join(decision.fired),
        "forex/trigger_reasons": json.dumps(reasons),
    } | decision_tags(decision)


def optimizations_in_flight(instance: dg.DagsterInstance) -> dict[str, str]:
    """Partition (``7d|USDCLP``) -> the id of a run optimizing it (``optimization_job``, or a materialization
    of its ``candidate_config``) that is queued or running: one query for every pair and horizon (a tick asks
    once, whatever the number of pairs). A run whose process died is marked failed by run monitoring or the
    dead-run sweep, and is then no longer one."""
    running: dict[str, str] = {}
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_FLIGHT)):
        run = record.dagster_run
        partition = run.tags.get("dagster/partition")
        if partition is None or partition in running:
            continue
        if run.job_name == optimization_job.name or CANDIDATE in run_assets(instance, run):
            running[partition] = run.run_id  # run_assets: an in-process run of `forex-assets run` has no selection
    return running


def optimization_in_flight(instance: dg.DagsterInstance, horizon: str, pair: str = PRIMARY_PAIR) -> str | None:
    """The id of a run optimizing the pair's ``horizon`` that is queued or running, None when there is none."""
    return optimizations_in_flight(instance).get(str(series_key(horizon, pair)))


def optimization_request(decision: TriggerDecision, key: str, policy: str, pair: str = PRIMARY_PAIR) -> dg.RunRequest:
    """``policy``: the label of the policy that decided (tag ``forex/policy``)."""
    tags = optimization_tags(decision, pair) | {"forex/policy": policy}
    return dg.RunRequest(run_key=key, partition_key=str(series_key(decision.horizon, pair)), tags=tags)


@dg.sensor(
    job=optimization_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Asks the trigger manager, for every pair's horizon with a new drift or performance report, "
    "whether to optimize; requests optimization_job for that pair and horizon with the reasons in the run tags.",
)
def optimization_sensor(context: dg.SensorEvaluationContext, working_area: WorkingArea, policy: PolicyResource):
    # A tick reads what changed, not every pair: the latest report of every partition in one query per report
    # asset, the runs in flight in one more; a partition's metadata is read (and its decision made) only when
    # one of its reports is new since the cursor. 25 pairs x 4 horizons: bench/bench_pairs_tick.py.
    seen = json.loads(context.cursor) if context.cursor else {}
    drift_ids, performance_ids = (
        context.instance.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION)
        for key in (DRIFT, PERFORMANCE)
    )
    changed = [
        p
        for p in pair_horizon_partitions.get_partition_keys()
        if (drift_ids.get(p) or performance_ids.get(p)) and seen.get(p) != [drift_ids.get(p), performance_ids.get(p)]
    ]
    if not changed:
        yield dg.SkipReason("no new drift or performance report since the last decision")
        return
    running = optimizations_in_flight(context.instance)
    deciding = [p for p in changed if p not in running]
    for partition in changed:
        if partition in running:  # decided on these reports once it has ended (they stay unseen)
            series = series_label(*pair_and_horizon(partition))
            context.log.info(f"{series}: optimization run {running[partition]} has not ended; deciding once it has")
    # the metadata of every report to decide on, in one query per report asset (by storage id)
    drifts = _metadata_by_id(context.instance, DRIFT, [drift_ids[p] for p in deciding if p in drift_ids])
    performances = _metadata_by_id(
        context.instance, PERFORMANCE, [performance_ids[p] for p in deciding if p in performance_ids]
    )
    settings = policy.settings()
    decided: dict[str, list[TriggerDecision]] = {}
    logs: dict[str, DecisionLog] = {}
    requests = []
    for partition in deciding:
        pair, horizon = pair_and_horizon(partition)
        ids = [drift_ids.get(partition), performance_ids.get(partition)]
        drift = drifts.get(ids[0], {}) if ids[0] is not None else {}
        performance = performances.get(ids[1], {}) if ids[1] is not None else {}
        seen[partition] = ids
        if pair not in logs:  # each pair's log opened once per tick
            logs[pair] = working_area.decision_log(pair)
        log = logs[pair]
        decision = decision_from_reports(drift, performance, log, horizon, settings)
        decided.setdefault(pair, []).append(decision)
        summary = decision.summary()
        context.log.info(summary if pair == PRIMARY_PAIR else f"{series_label(pair, horizon)}: {summary}")
        if decision.optimize:
            key = f"optimize-{series_tag(pair, horizon)}-{ids[0]}-{ids[1]}"
            requests.append(optimization_request(decision, key, policy.label(), pair))
    for pair, decisions in decided.items():  # the record of the decisions this tick acts on: one write per pair
        logs[pair].record_many(decisions)
    yield from requests
    context.update_cursor(json.dumps(seen))


def _metadata_by_id(instance: dg.DagsterInstance, key: dg.AssetKey, storage_ids: list[int]) -> dict[int, dict]:
    """storage id -> the metadata values of that materialization of ``key`` (one query)."""
    if not storage_ids:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, storage_ids=storage_ids), limit=len(storage_ids)
    ).records
    return {
        r.storage_id: {k: v.value for k, v in r.asset_materialization.metadata.items()}
        for r in records
        if r.asset_materialization is not None
    }


@dg.schedule(
    cron_schedule=WEEKLY_OPTIMIZATION_CRON,
    execution_timezone=TIMEZONE,
    job=optimization_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekly fallback: optimizes every pair's horizon not optimized in the last "
    f"{PolicySettings().triggers.schedule_days} days (default policy).",
)
def weekly_optimization_schedule(
    context: dg.ScheduleEvaluationContext, working_area: WorkingArea, policy: PolicyResource
):
    settings = policy.settings().scheduled_only()
    today = context.scheduled_execution_time.date() if context.scheduled_execution_time else date.today()
    in_flight = optimizations_in_flight(context.instance)
    requests, running = [], []
    for pair in pair_partitions.get_partition_keys():
        log = working_area.decision_log(pair)
        for horizon in HORIZONS:
            if str(series_key(horizon, pair)) in in_flight:
                running.append(series_label(pair, horizon))  # its optimization is under way
                continue
            decision = decide_optimization(trigger_inputs(horizon, today, None, "", {}, log), settings)
            log.record(decision)  # the record of the decision this tick acts on
            if decision.optimize:
                key = f"weekly-{series_tag(pair, horizon)}-{today}"
                requests.append(optimization_request(decision, key, policy.label(), pair))
    under_way = f"; an optimization of {', '.join(running)} is under way" if running else ""
    return requests or dg.SkipReason(
        f"no horizon is due on {today}: each was optimized in the last {settings.triggers.schedule_days} days"
        + under_way
    )
