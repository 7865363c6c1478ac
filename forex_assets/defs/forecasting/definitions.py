"""The forecasting domain in the code location: the production forecast of each horizon."""

import dagster as dg

from forex_assets.defs.forecasting.assets import forecast

defs = dg.Definitions(assets=[forecast])
