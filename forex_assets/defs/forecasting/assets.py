import dagster as dg
import pandas as pd

from forex_assets.chronos_config import ConfigError
from forex_assets.defs.metadata import table_metadata
from forex_assets.defs.partitions import horizon_partitions
from forex_assets.defs.resources import ForexWorkspace
from forex_assets.forecasting import ForecastError
from forex_assets.forecasting_run import make_forecast
from forex_assets.models.loading import ModelLoadError
from forex_assets.plots import forecast_fan_figure, markdown_image


@dg.asset(
    partitions_def=horizon_partitions,
    group_name="forecasting",
    kinds={"pytorch"},
    description="Production forecast of one horizon (median and 0.025/0.1/0.9/0.975 quantiles, CLP) "
    "with the horizon's deployed configuration; appended to the forecast history.",
)
def forecast(
    context: dg.AssetExecutionContext, usdclp_prices: pd.DataFrame, workspace: ForexWorkspace
) -> dg.Output[pd.DataFrame]:
    horizon = context.partition_key
    try:
        config, version = workspace.deployed_config(horizon)
        record = make_forecast(usdclp_prices, config, version)
    except (ConfigError, ModelLoadError, ForecastError) as error:
        raise dg.Failure(description=f"forecast {horizon}: {error}") from None
    workspace.forecast_history().record(record)
    table = record.table()
    last = table.iloc[-1]
    context.log.info(
        f"{horizon} from {record.origin_date:%Y-%m-%d}: median {last['q0_5']:.2f} CLP, "
        f"95 % [{last['q0_025']:.2f}, {last['q0_975']:.2f}], {record.inference_seconds:.3f} s"
    )
    return dg.Output(
        table,
        metadata={
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
                markdown_image(forecast_fan_figure(usdclp_prices, table, horizon), f"forecast {horizon}")
            ),
        },
    )
