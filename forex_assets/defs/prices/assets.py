import dagster as dg
import pandas as pd

from forex_assets.core.plots import markdown_image, price_history_figure
from forex_assets.core.prices.schema import PriceValidationError
from forex_assets.core.prices.sources import PriceSourceError
from forex_assets.core.retries import TransientError
from forex_assets.core.working_area import pair_unit
from forex_assets.defs.partitions import pair_partitions
from forex_assets.defs.prices.retries import PRICES_RETRY_POLICY
from forex_assets.defs.resources import PriceSource
from forex_assets.defs.step_retries import retry_transient_only


@dg.asset(
    partitions_def=pair_partitions,
    group_name="prices",
    kinds={"pandas"},
    description="Daily series of one currency pair (quote per base: CLP per USD; the pair's business days), "
    "checked by the pandera data contract with the pair's range, daily move and calendar.",
    retry_policy=PRICES_RETRY_POLICY,  # transient source failures only (retry_transient_only)
)
@retry_transient_only
def pair_prices(context: dg.AssetExecutionContext, price_source: PriceSource) -> dg.Output[pd.DataFrame]:
    pair = price_source.pair_settings(context.partition_key)
    try:
        prices = price_source.load(pair.code)
    except TransientError:
        raise  # the source kept failing for now (PriceSourceUnavailable): the step's retry policy tries again
    except (PriceValidationError, PriceSourceError) as error:  # a broken data contract, a bad file: never retried
        raise dg.Failure(description=str(error), allow_retries=False) from None
    returns = prices["usdclp"].pct_change().dropna()
    figure = markdown_image(price_history_figure(prices, label=pair.label, unit=pair_unit(pair.code)), pair.label)
    context.log.info(f"{len(prices)} observations from {price_source.describe()}")
    return dg.Output(
        prices,
        metadata={
            "source": price_source.describe(),
            "observations": len(prices),
            "first_date": prices["date"].iloc[0].strftime("%Y-%m-%d"),
            "last_date": prices["date"].iloc[-1].strftime("%Y-%m-%d"),
            "pair": pair.label,
            "last_price": float(prices["usdclp"].iloc[-1]),
            "daily_return_std_pct": round(float(returns.std() * 100), 4),
            "recent_prices": dg.MetadataValue.md(figure),
        },
    )
