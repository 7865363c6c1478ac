"""The monitoring domain in the code location: the drift and performance reports, the operator's metrics,
and the automation that drives the daily cycle (the prices job and its schedule, the eager automation sensor,
the optimization sensor and the weekly optimization schedule)."""

import dagster as dg

from forex_assets.defs.monitoring.assets import drift_report, performance_report
from forex_assets.defs.monitoring.automation import (
    daily_monitoring_schedule,
    forex_automation_sensor,
    optimization_sensor,
    prices_job,
    weekly_optimization_schedule,
)
from forex_assets.defs.monitoring.optimization_metrics import optimization_metrics

defs = dg.Definitions(
    assets=[drift_report, performance_report, optimization_metrics],
    jobs=[prices_job],
    schedules=[daily_monitoring_schedule, weekly_optimization_schedule],
    sensors=[optimization_sensor, forex_automation_sensor],
)
