import dagster as dg

#: candidate -> validation (with its blocking checks) -> deploy, for one horizon. Runs carry the
#: forex/optimizer tag that dagster.yaml's run tag limits count; sensors set it to the horizon.
#: Partitioned by horizon: Dagster infers the partitions from the selected assets (horizon_partitions).
optimization_job = dg.define_asset_job(
    "optimization_job",
    selection=dg.AssetSelection.assets("candidate_config", "validation_report", "deployed_config"),
    tags={"forex/optimizer": "manual"},
    description="Search, validate and (when every approval check passes) deploy one horizon's configuration.",
)
