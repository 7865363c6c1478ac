"""The deployment domain in the code location: the deployed configuration, the rollback job and the sensor
that watches each deploy and rolls it back."""

import dagster as dg

from forex_assets.defs.deployment.assets import deployed_config
from forex_assets.defs.deployment.jobs import rollback_job
from forex_assets.defs.deployment.sensors import rollback_sensor

defs = dg.Definitions(assets=[deployed_config], jobs=[rollback_job], sensors=[rollback_sensor])
