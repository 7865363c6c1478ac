import dagster as dg
import pandas as pd

from forex_assets.core.deployment.config_store import ConfigStoreError
from forex_assets.core.forecasting.config import ConfigError
from forex_assets.core.forecasting.quantiles import ForecastError
from forex_assets.core.models.loading import ModelLoadError
from forex_assets.core.plots import forecast_fan_figure, markdown_image
from forex_assets.core.policy import forecast_step
from forex_assets.core.working_area import PRIMARY_PAIR, pair_label, pair_unit
from forex_assets.defs.metadata import table_metadata
from forex_assets.defs.partitions import context_series, pair_calendar, pair_horizon_partitions, series_label
from forex_assets.defs.resources import WorkingArea


def produce_forecast(
    prices: pd.DataFrame, working_area: WorkingArea, horizon: str, log, pair: str = PRIMARY_PAIR
) -> tuple[pd.DataFrame, dict]:
    """Forecast the pair's horizon with its deployed configuration, record it in the pair's history; the table
    and its metadata.

    Shared by the ``forecast`` asset and the rollback job's forecast refresh.
    """
    series = series_label(pair, horizon)
    try:
        config, version = working_area.deployed_config(horizon, pair)
        history = working_area.forecast_history(pair)
        record = forecast_step(prices, config, version, history, pair_calendar(pair))  # the cycle's step
    except (ConfigError, ConfigStoreError, ModelLoadError, ForecastError) as error:
        raise dg.Failure(description=f"forecast {series}: {error}") from None
    table = record.table()
    last = table.iloc[-1]
    log.info(
        f"{series} from {record.origin_date:%Y-%m-%d} with {version}: median {last['q0_5']:.2f} {pair[3:]}, "
        f"95 % [{last['q0_025']:.2f}, {last['q0_975']:.2f}], {record.inference_seconds:.3f} s"
    )
    metadata = {
        "pair": pair,
        "origin_date": record.origin_date.strftime("%Y-%m-%d"),
        "last_price_clp": record.last_price,
        "median_at_horizon_clp": round(float(last["q0_5"]), 2),
        "interval_95_low_clp": round(float(last["q0_025"]), 2),
        "interval_95_high_clp": round(float(last["q0_975"]), 2),
        "inference_seconds": round(record.inference_seconds, 4),
        "config_version": record.config_version,
        "checkpoint": config.checkpoint,
        "context_length": config.context_length,
        "forecast": table_metadata(table),
        "fan_chart": dg.MetadataValue.md(
            markdown_image(
                forecast_fan_figure(prices, table, horizon, label=pair_label(pair), unit=pair_unit(pair)),
                f"forecast {series}",
            )
        ),
    }
    return table, metadata


@dg.asset(
    partitions_def=pair_horizon_partitions,
    group_name="forecasting",
    kinds={"pytorch"},
    deps=[dg.AssetDep("deployed_config")],
    # eager, except that a horizon never deployed through deployed_config (still on its seed
    # configuration) must not block the refresh after new prices
    automation_condition=dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing()),
    description="Production forecast of one pair's horizon (median and 0.025/0.1/0.9/0.975 quantiles, in the "
    "quote currency) with its deployed configuration from the pair's config store; appended to the forecast "
    "history. "
    "Re-materialized automatically after new prices, a deploy or a rollback.",
)
def forecast(
    context: dg.AssetExecutionContext, pair_prices: pd.DataFrame, working_area: WorkingArea
) -> dg.Output[pd.DataFrame]:
    pair, horizon = context_series(context)
    table, metadata = produce_forecast(pair_prices, working_area, horizon, context.log, pair)
    return dg.Output(table, metadata=metadata)
