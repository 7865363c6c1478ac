"""rollback_job: restore an earlier configuration version of one horizon and refresh its forecast."""

import dagster as dg
from pydantic import Field

from forex_assets.core.alerting.messages import rollback_executed
from forex_assets.core.deployment.config_store import ConfigStoreError, config_file_name
from forex_assets.core.deployment.history import rollback_target
from forex_assets.core.prices.schema import PriceValidationError
from forex_assets.core.prices.sources import PriceSourceError
from forex_assets.core.storage import StateDatabaseError
from forex_assets.core.working_area import PRIMARY_PAIR
from forex_assets.defs.deployment.refusal import refusal
from forex_assets.defs.deployment.repairs import alert_repairs
from forex_assets.defs.deployment.sensors import health_prices
from forex_assets.defs.forecasting.assets import produce_forecast
from forex_assets.defs.partitions import pair_partitions, series_key, series_label
from forex_assets.defs.resources import PriceSource, WorkingArea
from forex_assets.defs.resources.alerts import AlertNotifier


class RollbackConfig(dg.Config):
    pair: str = Field(default=PRIMARY_PAIR, description="the currency pair (configs/pairs.json), default USDCLP")
    horizon: str = Field(description="7d, 15d, 30d or 90d")
    to_version: str = Field(default="previous", description="'previous' or a version id from the store's history")
    reason: str = Field(default="manual rollback", description="recorded in the commit message")
    expected_version: str | None = Field(
        default=None,
        description="the version being rolled back from (the rollback sensor's: the deploy it judged); when "
        "the deployed version is another one by the time the run starts, the rollback is refused and nothing "
        "is changed. Unset: roll back from whatever is deployed.",
    )


def _refused(horizon: str, error: ConfigStoreError, series: str | None = None) -> str:
    """The store's refusal as the step's failure: ``rollback 7d refused: <why>; nothing was changed`` for its
    own rollback refusals (the deployed version moved), else :func:`refusal`'s form."""
    text = str(error).removeprefix(f"{horizon}: ")
    if text.startswith("rollback refused: "):
        text = text.removeprefix("rollback refused: ")
        then = "" if "nothing was changed" in text else "; nothing was changed"
        return f"rollback {series or horizon} refused: {text}{then}"
    return refusal("rollback", series or horizon, error, "nothing was changed")


@dg.op(
    description="Read the prices the refreshed forecast will use (the stored value of pair_prices; the "
    "price source only when there is none that can be read) and reach the state database, then restore the "
    "configuration version as a new commit in the config store: an unknown horizon, prices that cannot be read "
    "or a state database out of reach refuse the rollback before anything is changed; so does a deployed version "
    "other than expected_version, when given.",
    out={"series": dg.Out(tuple), "prices": dg.Out()},
)
def restore_config(
    context: dg.OpExecutionContext,
    config: RollbackConfig,
    working_area: WorkingArea,
    alerts: AlertNotifier,
    price_source: PriceSource,
):
    pair, horizon = config.pair.replace("/", "").upper(), config.horizon
    series = series_label(pair, horizon)
    try:
        config_file_name(horizon)  # an unknown horizon is refused before any price is read
        if pair not in pair_partitions.get_partition_keys():
            raise ConfigStoreError(
                f"unknown pair {config.pair!r}; the pairs served are {', '.join(pair_partitions.get_partition_keys())}"
            )
    except ConfigStoreError as error:
        raise dg.Failure(description=refusal("rollback", series, error, "nothing was changed")) from None
    try:
        # what the rollback sensor judged on: a price source out of reach does not cancel an automatic rollback
        prices = health_prices(
            context.instance, price_source, log=context.log, what="rollback's forecast refresh", pair=pair
        )
        # a state database server is reached before anything changes (the SQLite file is made when first needed)
        alert_log = working_area.alert_log(pair) if working_area.state_database else None
    except (PriceValidationError, PriceSourceError, StateDatabaseError) as error:
        raise dg.Failure(description=f"rollback {series} refused, nothing was changed: {error}") from None
    store = working_area.config_store(pair)
    alert_repairs(store, alerts, context.log, working_area, pair)
    try:
        before = store.current_version(horizon)
        version = store.rollback(horizon, config.to_version, config.reason, config.expected_version)
    except ConfigStoreError as error:
        raise dg.Failure(description=_refused(horizon, error, series)) from None
    restored = rollback_target(version.summary) or config.to_version
    context.log.info(f"{series}: rolled back from {before.id} to {restored} as {version.id}")
    alert = rollback_executed(horizon, config.reason, before.id, restored, version.id)
    # opened inside send's never-raise guard
    alerts.send(alert, context.log, alert_log or (lambda: working_area.alert_log(pair)), pair=pair)
    context.log_event(
        dg.AssetMaterialization(
            asset_key="deployed_config",
            partition=str(series_key(horizon, pair)),
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
    return (pair, horizon), prices


@dg.op(description="Forecast the horizon again with the restored configuration (the prices read before it).")
def refresh_forecast(context: dg.OpExecutionContext, series: tuple, prices, working_area: WorkingArea) -> None:
    pair, horizon = series
    _, metadata = produce_forecast(prices, working_area, horizon, context.log, pair)
    partition = str(series_key(horizon, pair))
    context.log_event(dg.AssetMaterialization(asset_key="forecast", partition=partition, metadata=metadata))


@dg.job(
    description="Roll one horizon's configuration back (default: to the previous version) and refresh "
    "its forecast. Run config: ops.restore_config.config.{pair, horizon, to_version, reason, expected_version}.",
    tags={"forex/kind": "rollback"},
)
def rollback_job():
    series, prices = restore_config()
    refresh_forecast(series, prices)
