import dagster as dg

from forex_assets.defs.runs import RUN_EXECUTOR

#: candidate -> validation (with its blocking checks, one step) -> deploy, for one horizon. Runs carry the
#: forex/optimizer tag that dagster.yaml's run tag limits count; sensors set it to the horizon.
#: Partitioned by horizon: Dagster infers the partitions from the selected assets (horizon_partitions).
#: In process (defs/runs.py): one process per run container, not one per step.
optimization_job = dg.define_asset_job(
    "optimization_job",
    selection=dg.AssetSelection.assets("candidate_config", "validation_report", "deployed_config"),
    tags={"forex/optimizer": "manual"},
    description="Search, validate and (when every approval check passes) deploy one horizon's configuration.",
    executor_def=RUN_EXECUTOR,
)
