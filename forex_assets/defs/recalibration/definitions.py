"""The recalibration domain in the code location: the search's candidate, its validation with the blocking
approval checks, and the optimization job (which ends with the deployment domain's ``deployed_config``)."""

import dagster as dg

from forex_assets.defs.recalibration.assets import candidate_config, validation_report
from forex_assets.defs.recalibration.checks import approval_checks
from forex_assets.defs.recalibration.jobs import optimization_job

defs = dg.Definitions(
    assets=[candidate_config, validation_report],
    asset_checks=approval_checks,
    jobs=[optimization_job],
)
