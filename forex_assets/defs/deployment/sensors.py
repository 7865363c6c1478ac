"""Automatic rollback: watch each horizon's forecasts after a deploy and roll back when they misbehave."""

from __future__ import annotations

import json

import dagster as dg

from forex_assets.core.deployment.config_store import Version
from forex_assets.core.deployment.rollback_rules import PostDeployHealth, rollback_reason
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.monitoring.live_scoring import score_matured
from forex_assets.defs.deployment.jobs import rollback_job
from forex_assets.defs.resources import PriceSource, WorkingArea
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
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=FORECAST, asset_partitions=[horizon], after_timestamp=deploy.committed_at.timestamp()
        ),
        limit=1,
    ).records
    seconds = None
    if latest:
        metadata = latest[0].asset_materialization.metadata
        if metadata.get("config_version") and metadata["config_version"].value == deploy.id:
            seconds = float(metadata["inference_seconds"].value)
    history = working_area.forecast_history()
    runs = history.runs(horizon)
    mine = runs[runs["config_version"] == deploy.id]["origin_date"]
    matured_count, matured_rmse = 0, None
    if not mine.empty:
        steps = history.steps(horizon)
        score = score_matured(steps[steps["origin_date"].isin(mine)], price_source.load())
        matured_count, matured_rmse = score.forecasts, score.rmse_clp
    return PostDeployHealth(succeeded, seconds, matured_count, matured_rmse)


@dg.sensor(
    job=rollback_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a deploy, watches the horizon's forecasts: 3 consecutive failed forecast runs, inference "
    "time above 3x the validation baseline, or RMSE above 1.5x the baseline once 5 forecasts have matured "
    "launch rollback_job. Never twice for the same deploy.",
)
def rollback_sensor(context: dg.SensorEvaluationContext, working_area: WorkingArea, price_source: PriceSource):
    handled: set[str] = set(json.loads(context.cursor)) if context.cursor else set()
    store = working_area.config_store()
    for horizon in HORIZONS:
        deploy = store.current_version(horizon)
        if not deploy.summary.startswith(f"[{horizon}] deploy") or deploy.id in handled:
            continue  # seeds and rollbacks are not watched; a deploy is rolled back at most once
        health = post_deploy_health(context.instance, working_area, price_source, horizon, deploy)
        reason = rollback_reason(health, store.read(horizon).baseline)
        if reason is None:
            continue
        handled.add(deploy.id)
        context.log.info(f"{horizon}: rolling back {deploy.id}: {reason}")
        yield dg.RunRequest(
            run_key=f"rollback-{horizon}-{deploy.id}",
            run_config={
                "ops": {
                    "restore_config": {
                        "config": {
                            "horizon": horizon,
                            "to_version": "previous",
                            "reason": f"automatic rollback: {reason}",
                        }
                    }
                }
            },
            tags={
                "forex/horizon": horizon,
                "forex/rollback_reason": reason[:200],
                "forex/rolled_back_version": deploy.id,
            },
        )
    context.update_cursor(json.dumps(sorted(handled)))
