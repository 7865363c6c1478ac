"""rollback_job: restore an earlier configuration version of one horizon and refresh its forecast."""

import dagster as dg
from pydantic import Field

from forex_assets.core.alerting.messages import rollback_executed
from forex_assets.core.deployment.config_store import ConfigStoreError, config_file_name
from forex_assets.core.deployment.history import rollback_target
from forex_assets.core.prices.schema import PriceValidationError
from forex_assets.core.prices.sources import PriceSourceError
from forex_assets.core.storage import StateDatabaseError
from forex_assets.defs.deployment.refusal import refusal
from forex_assets.defs.deployment.repairs import alert_repairs
from forex_assets.defs.deployment.sensors import health_prices
from forex_assets.defs.forecasting.assets import produce_forecast
from forex_assets.defs.resources import PriceSource, WorkingArea
from forex_assets.defs.resources.alerts import AlertNotifier


class RollbackConfig(dg.Config):
    horizon: str = Field(description="7d, 15d, 30d or 90d")
    to_version: str = Field(default="previous", description="'previous' or a version id from the store's history")
    reason: str = Field(default="manual rollback", description="recorded in the commit message")
    expected_version: str | None = Field(
        default=None,
        description="the version being rolled back from (the rollback sensor's: the deploy it judged); when "
        "the deployed version is another one by the time the run starts, the rollback is refused and nothing "
        "is changed. Unset: roll back from whatever is deployed.",
    )


def _refused(horizon: str, error: ConfigStoreError) -> str:
    """The store's refusal as the step's failure: ``rollback 7d refused: <why>; nothing was changed`` for its
    own rollback refusals (the deployed version moved), else :func:`refusal`'s form."""
    text = str(error).removeprefix(f"{horizon}: ")
    if text.startswith("rollback refused: "):
        text = text.removeprefix("rollback refused: ")
        then = "" if "nothing was changed" in text else "; nothing was changed"
        return f"rollback {horizon} refused: {text}{then}"
    return refusal("rollback", horizon, error, "nothing was changed")


@dg.op(
    description="Read the prices the refreshed forecast will use (the stored value of usdclp_prices; the "
    "price source only when there is none that can be read) and reach the state database, then restore the "
    "configuration version as a new commit in the config store: an unknown horizon, prices that cannot be read "
    "or a state database out of reach refuse the rollback before anything is changed; so does a deployed version "
    "other than expected_version, when given.",
    out={"horizon": dg.Out(str), "prices": dg.Out()},
)
def restore_config(
    context: dg.OpExecutionContext,
    config: RollbackConfig,
    working_area: WorkingArea,
    alerts: AlertNotifier,
    price_source: PriceSource,
):
    try:
        config_file_name(config.horizon)  # an unknown horizon is refused before any price is read
    except ConfigStoreError as error:
        raise dg.Failure(description=refusal("rollback", config.horizon, error, "nothing was changed")) from None
    try:
        # what the rollback sensor judged on: a price source out of reach does not cancel an automatic rollback
        prices = health_prices(context.instance, price_source, log=context.log, what="rollback's forecast refresh")
        # a state database server is reached before anything changes (the SQLite file is made when first needed)
        alert_log = working_area.alert_log() if working_area.state_database else None
    except (PriceValidationError, PriceSourceError, StateDatabaseError) as error:
        raise dg.Failure(description=f"rollback {config.horizon} refused, nothing was changed: {error}") from None
    store = working_area.config_store()
    alert_repairs(store, alerts, context.log, working_area)
    try:
        before = store.current_version(config.horizon)
        version = store.rollback(config.horizon, config.to_version, config.reason, config.expected_version)
    except ConfigStoreError as error:
        raise dg.Failure(description=_refused(config.horizon, error)) from None
    restored = rollback_target(version.summary) or config.to_version
    context.log.info(f"{config.horizon}: rolled back from {before.id} to {restored} as {version.id}")
    alert = rollback_executed(config.horizon, config.reason, before.id, restored, version.id)
    alerts.send(alert, context.log, alert_log or working_area)  # opened inside send's never-raise guard
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
    return config.horizon, prices


@dg.op(description="Forecast the horizon again with the restored configuration (the prices read before it).")
def refresh_forecast(context: dg.OpExecutionContext, horizon: str, prices, working_area: WorkingArea) -> None:
    _, metadata = produce_forecast(prices, working_area, horizon, context.log)
    context.log_event(dg.AssetMaterialization(asset_key="forecast", partition=horizon, metadata=metadata))


@dg.job(
    description="Roll one horizon's configuration back (default: to the previous version) and refresh "
    "its forecast. Run config: ops.restore_config.config.{horizon, to_version, reason, expected_version}.",
    tags={"forex/kind": "rollback"},
)
def rollback_job():
    horizon, prices = restore_config()
    refresh_forecast(horizon, prices)
