import dagster as dg

from forex_assets.definitions import defs
from forex_assets.horizons import HORIZONS, horizon_steps


def test_code_location_loads():
    dg.Definitions.validate_loadable(defs)


def test_forecast_is_partitioned_by_the_four_horizons():
    graph = defs.resolve_asset_graph()
    forecast = graph.get(dg.AssetKey("forecast"))
    assert forecast.partitions_def.get_partition_keys() == ["7d", "15d", "30d", "90d"]
    assert graph.get(dg.AssetKey("usdclp_prices")).partitions_def is None
    assert dg.AssetKey("usdclp_prices") in forecast.parent_keys


def test_horizon_is_business_day_steps():
    assert [horizon_steps(h) for h in HORIZONS] == [7, 15, 30, 90]
