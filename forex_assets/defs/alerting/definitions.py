"""The alerting domain in the code location: one alert for every failed run."""

import dagster as dg

from forex_assets.defs.alerting.sensors import run_failure_alert_sensor

defs = dg.Definitions(sensors=[run_failure_alert_sensor])
