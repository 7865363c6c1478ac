"""The code location: assembles assets, checks, jobs, schedules, sensors, resources. It computes nothing."""

import dagster as dg

from forex_assets.defs.alerting.sensors import run_failure_alert_sensor
from forex_assets.defs.dead_runs import dead_run_sensor
from forex_assets.defs.deployment.jobs import rollback_job
from forex_assets.defs.deployment.sensors import rollback_sensor
from forex_assets.defs.graph import ASSETS
from forex_assets.defs.monitoring.automation import (
    daily_monitoring_schedule,
    forex_automation_sensor,
    optimization_sensor,
    prices_job,
    weekly_optimization_schedule,
)
from forex_assets.defs.recalibration.checks import approval_checks
from forex_assets.defs.recalibration.jobs import optimization_job
from forex_assets.defs.replay.jobs import replay_job
from forex_assets.defs.resources import (
    code_location_resources,
)
from forex_assets.defs.runs import RUN_EXECUTOR

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=approval_checks,
    jobs=[rollback_job, optimization_job, prices_job, replay_job],
    schedules=[daily_monitoring_schedule, weekly_optimization_schedule],
    sensors=[rollback_sensor, optimization_sensor, forex_automation_sensor, run_failure_alert_sensor, dead_run_sensor],
    resources=code_location_resources(),
    # every run, the automation sensor's implicit asset job included, in the run worker's process
    executor=RUN_EXECUTOR,
)
