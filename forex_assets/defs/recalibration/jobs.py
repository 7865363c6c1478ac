import dagster as dg

from forex_assets.defs.partitions import horizon_partitions

#: candidate -> validation (with its blocking checks) -> deploy, for one horizon. Runs carry the
#: forex/optimizer tag that dagster.yaml's run tag limits count; sensors set it to the horizon.
optimization_job = dg.define_asset_job(
    "optimization_job",
    selection=dg.AssetSelection.assets("candidate_config", "validation_report", "deployed_config"),
    partitions_def=horizon_partitions,
    tags={"forex/optimizer": "manual"},
    description="Search, validate and (when every approval check passes) deploy one horizon's configuration.",
)
