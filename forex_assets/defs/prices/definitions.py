"""The prices domain in the code location: the daily USD/CLP series."""

import dagster as dg

from forex_assets.defs.prices.assets import usdclp_prices

defs = dg.Definitions(assets=[usdclp_prices])
