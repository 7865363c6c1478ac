"""The production instance (deploy/dagster.yaml) against a real PostgreSQL: the full graph of one partition is
stored there, and the same works again with a new instance on the same database (a restart)."""

import dagster as dg
import pytest
import yaml

from forex_assets.cli.run import ALL_ASSETS, QUIET, materialize_selection
from forex_assets.core.recalibration.validation import CRITERIA_NAMES
from forex_assets.core.working_area import PROJECT_ROOT, SEED_CONFIGS_DIR
from forex_assets.defs.deployment.assets import deployed_config
from forex_assets.defs.forecasting.assets import forecast
from forex_assets.defs.monitoring.assets import drift_report, performance_report
from forex_assets.defs.monitoring.optimization_metrics import optimization_metrics
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.recalibration.assets import candidate_config, validation_report
from forex_assets.defs.resources import WorkingArea, code_location_resources
from forex_assets_tests.conftest import lenient_approval
from forex_assets_tests.postgres_cluster import PostgresCluster

ASSET_NAMES = {
    "pair_prices",
    "forecast",
    "drift_report",
    "performance_report",
    "candidate_config",
    "validation_report",
    "deployed_config",
    "optimization_metrics",
}


@pytest.fixture(scope="module")
def postgres():
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


def production_home(tmp_path):
    """deploy/dagster.yaml as it is, but for the compute-log directory (a container path there)."""
    config = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())
    config["compute_logs"]["config"]["base_dir"] = str(tmp_path / "logs")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def _assert_production_settings(instance: dg.DagsterInstance) -> None:
    """Queued runs, one optimizer run at a time (and per horizon), the optimizer pool at 1, every run in a
    1 GB container."""
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    concurrency = instance.get_concurrency_config()
    queue = concurrency.run_queue_config
    assert queue.max_concurrent_runs == 4
    assert {"key": "forex/optimizer", "limit": 1} in queue.tag_concurrency_limits
    assert {"key": "forex/optimizer", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in (
        queue.tag_concurrency_limits
    )
    assert concurrency.pool_config.default_pool_limit == 1
    launcher = instance.run_launcher
    assert type(launcher).__name__ == "DockerRunLauncher"
    assert launcher.container_kwargs["mem_limit"] == "1g" and launcher.container_kwargs["memswap_limit"] == "1g"
    assert launcher.networks == ["forex_assets"]
    assert "DAGSTER_POSTGRES_PASSWORD" in launcher.env_vars  # by name: the value stays in the environment


def _full_graph(instance, resources) -> list[dg.ExecuteInProcessResult]:
    prices = dg.materialize(
        [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET
    )
    horizon = materialize_selection(
        instance,
        resources,
        [forecast, drift_report, performance_report, candidate_config, validation_report, deployed_config],
        "7d",
    )
    metrics = dg.materialize(
        ALL_ASSETS,
        selection=[optimization_metrics],
        partition_key="USDCLP",
        instance=instance,
        resources=resources,
        run_config=QUIET,
    )
    return [prices, horizon, metrics]


def test_full_graph_of_one_partition_is_stored_in_postgres_and_again_after_a_restart(postgres, tmp_path, monkeypatch):
    for name, value in postgres.environment().items():
        monkeypatch.setenv(name, value)
    home = production_home(tmp_path)
    resources = code_location_resources(
        WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR)),
        policy=lenient_approval(),  # the deploy happens, so the whole graph materializes
    )
    all_runs: set[str] = set()
    for attempt in (1, 2):  # the second instance stands for a restart of every service
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
            if attempt == 1:
                _assert_production_settings(instance)
            results = _full_graph(instance, resources)
            assert [r.success for r in results] == [True, True, True]
            all_runs |= {r.run_id for r in results}

        stored_runs = {run_id for (run_id,) in postgres.query("SELECT run_id FROM runs")}
        assert stored_runs == all_runs and len(stored_runs) == 3 * attempt
        materialized = dict(
            postgres.query(
                "SELECT asset_key, count(*) FROM event_logs "
                "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' GROUP BY asset_key"
            )
        )
        assert {key.strip('[]"') for key in materialized} == ASSET_NAMES
        assert set(materialized.values()) == {attempt}  # each asset once per pass
        checks = postgres.query(
            "SELECT check_name, execution_status, partition FROM asset_check_executions ORDER BY id"
        )
        assert len(checks) == len(CRITERIA_NAMES) * attempt
        assert {name for name, _, _ in checks} == set(CRITERIA_NAMES)
        assert {(status, partition) for _, status, partition in checks} == {("SUCCEEDED", "7d|USDCLP")}
    assert not list(home.rglob("*.db"))  # no SQLite storage beside the instance: all of it is in PostgreSQL
