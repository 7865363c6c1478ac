"""Run failure alerts: every failed run of the code location sends one alert (job, selection, errors, link), but
for a run whose only failure is its blocking approval checks refusing the candidate: that is a rejection, which
the validation alert already reported with every criterion."""

from __future__ import annotations

import dagster as dg

from forex_assets.core.alerting.messages import run_failed
from forex_assets.core.error_text import describe_error
from forex_assets.core.working_area import PRIMARY_PAIR
from forex_assets.defs.partitions import pair_and_horizon, pair_partitions, partition_label
from forex_assets.defs.resources import WorkingArea
from forex_assets.defs.resources.alerts import AlertNotifier
from forex_assets.defs.runs import run_assets


def _step_errors(context: dg.RunFailureSensorContext) -> list[str]:
    """``<step>: <the whole error>`` per failed step: a ``dagster.Failure``'s description, else the error user
    code raised, unwrapped from Dagster's "Error occurred while executing op" and with every line kept."""
    run_id = context.dagster_run.run_id
    errors = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            text = data.user_failure_data.description.strip()
        elif data.error is not None:
            text = describe_error(data.error, run_id)
        else:
            text = "failed"
        errors.append(f"{event.step_key}: {text}")
    if not errors and context.failure_event.message:
        errors.append(context.failure_event.message)
    return errors


#: The error a step raises when blocking asset checks fail (the approval checks refusing a candidate).
CHECKS_REFUSED = "DagsterAssetCheckFailedError"


def only_refused_by_checks(step_errors: list) -> bool:
    """Whether a run's step failures (their errors) are all blocking asset checks that failed: a rejected
    candidate, whose optimization ends FAILURE by design and whose ``validation_report`` alerted with every
    criterion. Also read by bench/bench_pairs_daemon.py from the event log."""
    return bool(step_errors) and all(e is not None and e.cls_name == CHECKS_REFUSED for e in step_errors)


def run_series(run: dg.DagsterRun) -> tuple[str, str | None]:
    """(pair, horizon) a run worked on: its partition (``7d|EURCLP``, or a pair alone for the prices), else
    the rollback job's tags; (USD/CLP, None) for a run of no pair or of every horizon."""
    partition = run.tags.get("dagster/partition")
    if partition and "|" in partition:
        return pair_and_horizon(partition)
    if partition is not None and partition in pair_partitions.get_partition_keys():
        return partition, None
    return run.tags.get("forex/pair", PRIMARY_PAIR), run.tags.get("forex/horizon")


def _selection(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    names = sorted(key.to_user_string() for key in run_assets(instance, run))
    if not names:
        return ""
    partition = partition_label(run.tags.get("dagster/partition"))
    return ", ".join(f"{name}[{partition}]" if partition else name for name in names)


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends one alert (email, or the sensor log when SMTP is not configured) for every failed run, "
    "but an optimization whose candidate the blocking approval checks refused (the validation alert said so).",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertNotifier, working_area: WorkingArea):
    run = context.dagster_run
    if only_refused_by_checks([event.step_failure_data.error for event in context.get_step_failure_events()]):
        context.log.info(f"run {run.run_id}: candidate refused by the blocking approval checks, no failure alert")
        return
    pair, horizon = run_series(run)
    alert = run_failed(
        run.job_name,
        run.run_id,
        horizon,
        _step_errors(context),
        _selection(context.instance, run),
        f"{alerts.ui_base_url.rstrip('/')}/runs/{run.run_id}",
    )
    alerts.send(alert, context.log, lambda: working_area.alert_log(pair), pair=pair)
