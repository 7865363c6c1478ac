"""The code location: assembles assets, resources, jobs. It computes nothing."""

import dagster as dg

from forex_assets.defs.forecasting.assets import forecast
from forex_assets.defs.prices.assets import usdclp_prices
from forex_assets.defs.resources import ForexWorkspace, PriceSource

defs = dg.Definitions(
    assets=[usdclp_prices, forecast],
    resources={"price_source": PriceSource(), "workspace": ForexWorkspace()},
)
