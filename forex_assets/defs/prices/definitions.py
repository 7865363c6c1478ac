"""The prices domain in the code location: the daily USD/CLP series."""

import dagster as dg

from forex_assets.defs.prices.assets import pair_prices

defs = dg.Definitions(assets=[pair_prices])
