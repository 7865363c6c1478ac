import dagster as dg
import pandas as pd

from forex_assets.core.plots import markdown_image, price_history_figure
from forex_assets.core.prices.schema import PriceValidationError
from forex_assets.core.prices.sources import PriceSourceError
from forex_assets.core.retries import TransientError
from forex_assets.defs.prices.retries import PRICES_RETRY_POLICY
from forex_assets.defs.resources import PriceSource
from forex_assets.defs.step_retries import retry_transient_only


@dg.asset(
    group_name="prices",
    kinds={"pandas"},
    description="Daily USD/CLP series (CLP per USD, business days), checked by the pandera data contract.",
    retry_policy=PRICES_RETRY_POLICY,  # transient source failures only (retry_transient_only)
)
@retry_transient_only
def usdclp_prices(context: dg.AssetExecutionContext, price_source: PriceSource) -> dg.Output[pd.DataFrame]:
    try:
        prices = price_source.load()
    except TransientError:
        raise  # the source kept failing for now (PriceSourceUnavailable): the step's retry policy tries again
    except (PriceValidationError, PriceSourceError) as error:  # a broken data contract, a bad file: never retried
        raise dg.Failure(description=str(error), allow_retries=False) from None
    returns = prices["usdclp"].pct_change().dropna()
    context.log.info(f"{len(prices)} observations from {price_source.describe()}")
    return dg.Output(
        prices,
        metadata={
            "source": price_source.describe(),
            "observations": len(prices),
            "first_date": prices["date"].iloc[0].strftime("%Y-%m-%d"),
            "last_date": prices["date"].iloc[-1].strftime("%Y-%m-%d"),
            "last_price_clp": float(prices["usdclp"].iloc[-1]),
            "daily_return_std_pct": round(float(returns.std() * 100), 4),
            "recent_prices": dg.MetadataValue.md(markdown_image(price_history_figure(prices), "USD/CLP")),
        },
    )
