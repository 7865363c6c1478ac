import shutil

import dagster as dg
import yaml
from dagster._core.run_coordinator import QueuedRunCoordinator

from forex_assets.core.working_area import PROJECT_ROOT


def test_embedded_instance_limits_optimizer_concurrency(tmp_path):
    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "forex/optimizer", "limit": 1} in limits
        assert {"key": "forex/optimizer", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    document = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert document["telemetry"]["enabled"] is False


def test_optimizer_assets_run_in_the_optimizer_pool():
    from forex_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    for name in ("candidate_config", "validation_report"):
        assert graph.get(dg.AssetKey(name)).pools == {"optimizer"}
