"""The code location: assembles assets, checks, resources. It computes nothing."""

import dagster as dg

from forex_assets.defs.forecasting.assets import forecast
from forex_assets.defs.prices.assets import usdclp_prices
from forex_assets.defs.recalibration.assets import candidate_config, validation_report
from forex_assets.defs.recalibration.checks import approval_checks
from forex_assets.defs.resources import ApprovalPolicy, ForexWorkspace, PriceSource

defs = dg.Definitions(
    assets=[usdclp_prices, forecast, candidate_config, validation_report],
    asset_checks=approval_checks,
    resources={"price_source": PriceSource(), "workspace": ForexWorkspace(), "approval_policy": ApprovalPolicy()},
)
