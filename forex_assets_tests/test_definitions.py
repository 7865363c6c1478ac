import dagster as dg

from forex_assets.core.horizons import HORIZONS, horizon_steps
from forex_assets.core.pairs import load_pairs
from forex_assets.definitions import defs


def test_code_location_loads():
    dg.Definitions.validate_loadable(defs)  # raises on an invalid code location
    jobs = {job.name for job in defs.jobs}
    assert {"optimization_job", "rollback_job", "replay_job", "prices_job"} <= jobs
    assert {s.name for s in defs.sensors} >= {"rollback_sensor", "optimization_sensor", "run_failure_alert_sensor"}


def test_forecast_is_partitioned_by_pair_and_horizon_and_the_prices_by_pair():
    graph = defs.resolve_asset_graph()
    forecast = graph.get(dg.AssetKey("forecast"))
    pairs = load_pairs().codes
    assert forecast.partitions_def.get_partition_keys() == [
        f"{h}|{p}" for h in ["7d", "15d", "30d", "90d"] for p in pairs
    ]
    assert graph.get(dg.AssetKey("pair_prices")).partitions_def.get_partition_keys() == list(pairs)
    assert dg.AssetKey("pair_prices") in forecast.parent_keys
    # one pair's horizon reads that pair's prices, and one pair's prices feed its four horizons
    mapping = graph.get_partition_mapping(dg.AssetKey("forecast"), dg.AssetKey("pair_prices"))  # Dagster's inferred
    upstream = graph.get(dg.AssetKey("pair_prices")).partitions_def
    parents = mapping.get_upstream_mapped_partitions_result_for_partitions(
        forecast.partitions_def.subset_with_partition_keys(["30d|EURCLP"]), forecast.partitions_def, upstream
    ).partitions_subset.get_partition_keys()
    assert list(parents) == ["EURCLP"]


def test_horizon_is_business_day_steps():
    assert [horizon_steps(h) for h in HORIZONS] == [7, 15, 30, 90]


def test_optimization_job_covers_the_chain_with_its_checks_and_carries_the_optimizer_tag():
    job = defs.resolve_job_def("optimization_job")
    assert job.tags["forex/optimizer"] == "manual"
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert keys == {"candidate_config", "validation_report", "deployed_config"}
    checks = {key.name for key in job.asset_layer.asset_graph.asset_check_keys}
    assert {"accuracy_improves", "bias_bounded"} <= checks
