"""The asset graph in one list, for the code location and for in-process runs (make run, tests)."""

from forex_assets.defs.deployment.assets import deployed_config
from forex_assets.defs.forecasting.assets import forecast
from forex_assets.defs.monitoring.assets import drift_report, performance_report
from forex_assets.defs.monitoring.optimization_metrics import optimization_metrics
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.recalibration.assets import candidate_config, validation_report
from forex_assets.defs.recalibration.checks import approval_checks

ASSETS = [
    pair_prices,
    forecast,
    drift_report,
    performance_report,
    candidate_config,
    validation_report,
    deployed_config,
    optimization_metrics,
]
ASSETS_AND_CHECKS = [*ASSETS, *approval_checks]
