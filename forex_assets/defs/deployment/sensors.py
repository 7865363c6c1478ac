"""Automatic rollback: watch each horizon's forecasts after a deploy and roll back when they misbehave.

One tick opens the config store once (the writer's open repairs what a crash, a hand edit or a stray file
left) and hands it on; the health check reads the prices the instance stored (the latest value of
pair_prices), never the price source, unless pair_prices was never materialized or its value cannot be
read (then the price source, and a warning that says so), at most once per tick.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import cache

import dagster as dg
import pandas as pd

from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.deployment.history import Version
from forex_assets.core.deployment.rollback_rules import PostDeployHealth, rollback_rules_text
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.policy import is_watched_deploy, rollback_decision
from forex_assets.core.policy import post_deploy_health as policy_health
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.working_area import PRIMARY_PAIR
from forex_assets.defs.deployment.repairs import alert_repairs
from forex_assets.defs.partitions import pair_partitions, series_key, series_label, series_tag
from forex_assets.defs.prices.stored import stored_prices
from forex_assets.defs.resources import PolicyResource, PriceSource, WorkingArea
from forex_assets.defs.resources.alerts import AlertNotifier
from forex_assets.defs.runs import run_assets

FORECAST = dg.AssetKey("forecast")
Prices = Callable[[], pd.DataFrame]


def _targets_forecast(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    return FORECAST in run_assets(instance, run)


def health_prices(
    instance: dg.DagsterInstance,
    price_source: PriceSource,
    repository_def: dg.RepositoryDefinition | None = None,
    log: logging.Logger | None = None,
    what: str = "post-deploy health",
    pair: str = PRIMARY_PAIR,
) -> pd.DataFrame:
    """The prices the post-deploy health is judged on (and the rollback's refreshed forecast is made from,
    ``what`` naming it in the warning): the latest stored value of pair_prices (what the forecasts were made
    from); the price source when it was never materialized or cannot be read, with a warning that names why."""
    log = log or logging.getLogger(__name__)
    try:
        prices = stored_prices(instance, repository_def, pair)
    except Exception as error:  # whatever the I/O manager raises (a file removed, a pickle from another pandas)
        why = f"its stored value could not be read ({type(error).__name__}: {error})"
    else:
        if prices is not None:
            return prices
        why = "it was never materialized in this instance"
    log.warning(f"{what}: pair_prices[{pair}] not read, {why}; prices from {price_source.describe()}")
    return price_source.load(pair)


def post_deploy_health(
    instance: dg.DagsterInstance,
    working_area: WorkingArea,
    prices: Prices,
    horizon: str,
    deploy: Version,
    pair: str = PRIMARY_PAIR,
) -> PostDeployHealth:
    """What happened to the pair's horizon's forecasts since ``deploy``: the outcomes of its forecast runs (from
    the instance's run records) and its matured forecasts scored on ``prices()``."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            tags={"dagster/partition": str(series_key(horizon, pair))},
            statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
            created_after=deploy.committed_at,
        ),
        limit=50,
    )
    forecast_runs = [r for r in records if _targets_forecast(instance, r.dagster_run)]
    succeeded = [r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in forecast_runs]  # newest first
    return policy_health(working_area.forecast_history(pair), prices(), horizon, deploy.id, succeeded)


def rollback_request(
    instance: dg.DagsterInstance,
    working_area: WorkingArea,
    price_source: PriceSource,
    settings: PolicySettings,
    horizon: str,
    handled: set[str] | frozenset[str] = frozenset(),
    *,
    store: ConfigStore | None = None,
    prices: Prices | None = None,
    pair: str = PRIMARY_PAIR,
) -> dg.RunRequest | None:
    """Step 2 of the policy for one pair's horizon: a rollback_job request when the deployed version is a
    deploy not yet handled and a rollback rule fires; None otherwise (the sensor and `make run` ask this).
    ``store``: the pair's config store already opened (else the working area's); ``prices``: what the health
    is judged on (else :func:`health_prices`, read only when a deploy is watched)."""
    store = store or working_area.config_store(pair)
    deploy = store.current_version(horizon)
    if not is_watched_deploy(horizon, deploy) or deploy.id in handled:
        return None  # seeds and rollbacks are not watched; a deploy is rolled back at most once
    prices = prices or (lambda: health_prices(instance, price_source, pair=pair))
    health = post_deploy_health(instance, working_area, prices, horizon, deploy, pair)
    reason = rollback_decision(horizon, deploy, store.read(horizon), health, settings, handled)
    if reason is None:
        return None
    restore = {
        "pair": pair,
        "horizon": horizon,
        "to_version": "previous",
        "reason": f"automatic rollback: {reason}",
        "expected_version": deploy.id,  # a run that starts after someone else rolled it back changes nothing
    }
    return dg.RunRequest(
        run_key=f"rollback-{series_tag(pair, horizon)}-{deploy.id}",
        run_config={"ops": {"restore_config": {"config": restore}}},
        tags={
            "forex/pair": pair,
            "forex/horizon": horizon,
            "forex/rollback_reason": reason[:200],
            "forex/rolled_back_version": deploy.id,
        },
    )


@dg.sensor(
    job_name="rollback_job",  # by name: Definitions binds its resources (no with_updated_jobs copy)
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"After a deploy, watches the horizon's forecasts: {rollback_rules_text(PolicySettings().rollback)} "
    "(default policy) launch rollback_job. Never twice for the same deploy. Alerts what writers of the config "
    "store repaired.",
)
def rollback_sensor(
    context: dg.SensorEvaluationContext,
    working_area: WorkingArea,
    price_source: PriceSource,
    policy: PolicyResource,
    alerts: AlertNotifier,
):
    # every minute: the tick's one writer's open repairs what a crash, a hand edit or a stray file left; then
    # every logged repair not alerted yet is alerted, whoever made it (a forecast run, which has no alert
    # channel, among them)
    handled: set[str] = set(json.loads(context.cursor)) if context.cursor else set()
    settings = policy.settings()
    for pair in pair_partitions.get_partition_keys():
        store = working_area.config_store(pair)
        alert_repairs(store, alerts, context.log, working_area, pair)

        def prices(pair: str = pair) -> pd.DataFrame:
            return health_prices(context.instance, price_source, context.repository_def, context.log, pair=pair)

        once = cache(prices)  # read only when a deploy of the pair is watched, at most once per tick
        for horizon in HORIZONS:
            request = rollback_request(
                context.instance, working_area, price_source, settings, horizon, handled,
                store=store, prices=once, pair=pair,
            )  # fmt: skip
            if request is not None:
                handled.add(request.tags["forex/rolled_back_version"])
                reason = request.tags["forex/rollback_reason"]
                context.log.info(f"{series_label(pair, horizon)}: rolling back: {reason}")
                yield request
    context.update_cursor(json.dumps(sorted(handled)))
