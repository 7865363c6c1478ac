"""Automatic rollback: watch each horizon's forecasts after a deploy and roll back when they misbehave."""

from __future__ import annotations

import json

import dagster as dg

from forex_assets.core.deployment.history import Version
from forex_assets.core.deployment.rollback_rules import PostDeployHealth
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.policy import PolicySettings, is_watched_deploy, rollback_decision
from forex_assets.core.policy import post_deploy_health as policy_health
from forex_assets.defs.deployment.repairs import alert_repairs
from forex_assets.defs.resources import MonitoringPolicy, PriceSource, WorkingArea
from forex_assets.defs.resources.alerts import AlertNotifier
from forex_assets.defs.runs import run_assets

FORECAST = dg.AssetKey("forecast")


def _targets_forecast(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    return FORECAST in run_assets(instance, run)


def post_deploy_health(
    instance: dg.DagsterInstance, working_area: WorkingArea, price_source: PriceSource, horizon: str, deploy: Version
) -> PostDeployHealth:
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            tags={"dagster/partition": horizon},
            statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
            created_after=deploy.committed_at,
        ),
        limit=50,
    )
    forecast_runs = [r for r in records if _targets_forecast(instance, r.dagster_run)]
    succeeded = [r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in forecast_runs]  # newest first
    return policy_health(
        working_area.forecast_history(),
        price_source.load(),
        horizon,
        deploy.id,
        succeeded,
    )


def rollback_request(
    instance: dg.DagsterInstance,
    working_area: WorkingArea,
    price_source: PriceSource,
    settings: PolicySettings,
    horizon: str,
    handled: set[str] | frozenset[str] = frozenset(),
) -> dg.RunRequest | None:
    """Step 2 of the policy for one horizon: a rollback_job request when the deployed version is a deploy
    not yet handled and a rollback rule fires; None otherwise (the sensor and `make run` ask this)."""
    store = working_area.config_store()
    deploy = store.current_version(horizon)
    if not is_watched_deploy(horizon, deploy) or deploy.id in handled:
        return None  # seeds and rollbacks are not watched; a deploy is rolled back at most once
    health = post_deploy_health(instance, working_area, price_source, horizon, deploy)
    reason = rollback_decision(horizon, deploy, store.read(horizon), health, settings, handled)
    if reason is None:
        return None
    restore = {"horizon": horizon, "to_version": "previous", "reason": f"automatic rollback: {reason}"}
    return dg.RunRequest(
        run_key=f"rollback-{horizon}-{deploy.id}",
        run_config={"ops": {"restore_config": {"config": restore}}},
        tags={"forex/horizon": horizon, "forex/rollback_reason": reason[:200], "forex/rolled_back_version": deploy.id},
    )


@dg.sensor(
    job_name="rollback_job",  # by name: Definitions binds its resources (no with_updated_jobs copy)
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a deploy, watches the horizon's forecasts: 3 consecutive failed forecast runs, inference "
    "time above 3x the validation baseline, or RMSE above 1.5x the baseline once 5 forecasts have matured "
    "launch rollback_job. Never twice for the same deploy. Alerts what writers of the config store repaired.",
)
def rollback_sensor(
    context: dg.SensorEvaluationContext,
    working_area: WorkingArea,
    price_source: PriceSource,
    monitoring_policy: MonitoringPolicy,
    alerts: AlertNotifier,
):
    # every minute: repairs what a crash, a hand edit or a stray file left, and alerts every logged repair not
    # alerted yet, whoever made it (a forecast run, which has no alert channel, among them)
    alert_repairs(working_area.config_store(), alerts, context.log, working_area)
    handled: set[str] = set(json.loads(context.cursor)) if context.cursor else set()
    settings = monitoring_policy.policy_settings()
    for horizon in HORIZONS:
        request = rollback_request(context.instance, working_area, price_source, settings, horizon, handled)
        if request is not None:
            handled.add(request.tags["forex/rolled_back_version"])
            context.log.info(f"{horizon}: rolling back: {request.tags['forex/rollback_reason']}")
            yield request
    context.update_cursor(json.dumps(sorted(handled)))
