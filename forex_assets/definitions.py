"""The code location: each domain's ``Definitions`` (``defs/<domain>/definitions.py``) merged, plus what
belongs to no domain: the dead-run sweep, the resources (once, for every domain) and the executor. It
assembles; it computes nothing."""

import dagster as dg

from forex_assets.defs.alerting import definitions as alerting
from forex_assets.defs.dead_runs import dead_run_sensor
from forex_assets.defs.deployment import definitions as deployment
from forex_assets.defs.forecasting import definitions as forecasting
from forex_assets.defs.monitoring import definitions as monitoring
from forex_assets.defs.prices import definitions as prices
from forex_assets.defs.recalibration import definitions as recalibration
from forex_assets.defs.replay import definitions as replay
from forex_assets.defs.resources import code_location_resources
from forex_assets.defs.runs import RUN_EXECUTOR

#: every domain, in the order of the daily cycle
DOMAINS = (prices, forecasting, monitoring, recalibration, deployment, alerting, replay)

defs = dg.Definitions.merge(
    *(domain.defs for domain in DOMAINS),
    dg.Definitions(
        sensors=[dead_run_sensor],
        resources=code_location_resources(),
        # every run, the automation sensor's implicit asset job included, in the run worker's process
        executor=RUN_EXECUTOR,
    ),
)
