"""When the Dagster schedules tick (cron, in :data:`TIMEZONE`): the daily monitoring once the day's fixing is
published, and the weekly fallback that optimizes the horizons not optimized for ``schedule_days``. Here, with
no Dagster, so that `forex-assets status` says when the next optimization is due without loading the code
location; ``defs/monitoring/automation.py`` builds the schedules from these."""

from __future__ import annotations

#: the schedules' time zone (Chile's, where the USD/CLP fixing is published)
TIMEZONE = "America/Santiago"
#: daily monitoring: prices, forecasts, drift and performance reports, 19:00 Monday to Friday
DAILY_MONITORING_CRON = "0 19 * * 1-5"
#: weekly fallback optimization: Sunday 02:00
WEEKLY_OPTIMIZATION_CRON = "0 2 * * 0"
