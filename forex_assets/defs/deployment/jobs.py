"""rollback_job: restore an earlier configuration version of one horizon and refresh its forecast."""

import dagster as dg
from pydantic import Field

from forex_assets.core.alerting.messages import rollback_executed
from forex_assets.core.deployment.config_store import ConfigStoreError
from forex_assets.core.deployment.history import rollback_target
from forex_assets.core.prices.schema import PriceValidationError
from forex_assets.core.prices.sources import PriceSourceError
from forex_assets.defs.alerting.resources import AlertNotifier
from forex_assets.defs.deployment.repairs import alert_repairs
from forex_assets.defs.forecasting.assets import produce_forecast
from forex_assets.defs.resources import PriceSource, WorkingArea


class RollbackConfig(dg.Config):
    horizon: str = Field(description="7d, 15d, 30d or 90d")
    to_version: str = Field(default="previous", description="'previous' or a version id from the store's history")
    reason: str = Field(default="manual rollback", description="recorded in the commit message")


@dg.op(description="Restore the configuration version as a new commit in the config store.")
def restore_config(
    context: dg.OpExecutionContext, config: RollbackConfig, working_area: WorkingArea, alerts: AlertNotifier
) -> str:
    store = working_area.config_store()
    alert_repairs(store, alerts, context.log, working_area)
    try:
        before = store.current_version(config.horizon)
        version = store.rollback(config.horizon, config.to_version, config.reason)
    except ConfigStoreError as error:
        raise dg.Failure(description=f"rollback {config.horizon}: {error}; nothing was changed") from None
    restored = rollback_target(version.summary) or config.to_version
    context.log.info(f"{config.horizon}: rolled back from {before.id} to {restored} as {version.id}")
    alert = rollback_executed(config.horizon, config.reason, before.id, restored, version.id)
    alerts.send(alert, context.log, working_area.alert_log())
    context.log_event(
        dg.AssetMaterialization(
            asset_key="deployed_config",
            partition=config.horizon,
            description=version.summary,
            metadata={
                "version": version.id,
                "previous_version": before.id,
                "restored_version": restored,
                "reason": config.reason,
                "rollback": True,
            },
        )
    )
    return config.horizon


@dg.op(description="Forecast the horizon again with the restored configuration (prices from the price source).")
def refresh_forecast(
    context: dg.OpExecutionContext, horizon: str, price_source: PriceSource, working_area: WorkingArea
) -> None:
    try:
        prices = price_source.load()
    except (PriceValidationError, PriceSourceError) as error:
        raise dg.Failure(description=f"forecast refresh {horizon}: {error}") from None
    _, metadata = produce_forecast(prices, working_area, horizon, context.log)
    context.log_event(dg.AssetMaterialization(asset_key="forecast", partition=horizon, metadata=metadata))


@dg.job(
    description="Roll one horizon's configuration back (default: to the previous version) and refresh "
    "its forecast. Run config: ops.restore_config.config.{horizon, to_version, reason}.",
    tags={"forex/kind": "rollback"},
)
def rollback_job():
    refresh_forecast(restore_config())
