from dataclasses import asdict, replace

import dagster as dg
import pytest

from forex_assets.cli.run import materialize_selection
from forex_assets.core.forecasting.production import make_forecast
from forex_assets.defs.deployment.assets import deployed_config
from forex_assets.defs.deployment.jobs import rollback_job
from forex_assets.defs.forecasting.assets import forecast
from forex_assets.defs.partitions import pair_horizon_partitions, series_key
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.recalibration.checks import approval_checks
from forex_assets.defs.resources import WorkingArea
from forex_assets_tests.conftest import policy_with
from forex_assets_tests.test_validation import GOOD

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
CANDIDATE = {
    "horizon": "7d",
    "checkpoint": "bundled:usdclp-chronos2-mini",
    "family": "chronos2",
    "context_length": 90,
    "preprocessing": "log",
}


def _report_asset(metrics):
    @dg.asset(partitions_def=pair_horizon_partitions, name="validation_report")
    def stub(working_area: WorkingArea) -> dict:
        return {
            "horizon": "7d",
            "candidate": CANDIDATE,
            "metrics": asdict(metrics),
            "validation_window": ["2026-08-03", "2026-09-11"],
            "candidate_window_metrics": {"rmse_clp": 9.2},
            "deployed_version": working_area.config_store().current_version("7d").id,  # validated against it
        }

    return stub


@pytest.fixture
def setup(forex_env):
    return forex_env


def _validate_and_deploy(instance, resources, metrics):
    report = _report_asset(metrics)
    return dg.materialize(
        [report, *approval_checks, deployed_config],
        partition_key=series_key("7d"),
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config=QUIET,
    )


def _forecast(instance, resources, horizon="7d"):
    return materialize_selection(instance, resources, [forecast], horizon)


def test_approved_candidate_is_deployed_with_its_baseline(setup):
    instance, resources, working_area = setup
    before = working_area.config_store().current_version("7d")
    result = _validate_and_deploy(instance, resources, GOOD)
    assert result.success
    store = working_area.config_store()
    deployed = store.read("7d")
    assert (deployed.context_length, deployed.preprocessing) == (90, "log")
    assert deployed.baseline.rmse_clp == GOOD.rmse_new
    assert deployed.baseline.inference_seconds == GOOD.inference_time_new
    version = store.current_version("7d")
    assert version.commit != before.commit and version.summary.startswith("[7d] deploy: validation passed")
    metadata = instance.get_latest_materialization_event(dg.AssetKey("deployed_config")).asset_materialization.metadata
    assert metadata["version"].value == version.id and metadata["previous_version"].value == before.id
    assert '+  "context_length": 90' in metadata["diff"].value
    rows = {r.data["metric"]: r.data for r in metadata["before_after"].value.records}
    assert rows["rmse_clp"] == {"metric": "rmse_clp", "before": GOOD.rmse_current, "after": GOOD.rmse_new}
    assert rows["coverage_95"]["after"] == round(GOOD.ci95_coverage_new, 4)


def test_failed_checks_block_the_deploy_in_the_run_and_a_manual_deploy_is_refused(setup):
    instance, resources, working_area = setup
    before = working_area.config_store().current_version("7d")
    bad = replace(GOOD, bias_new=7.5)
    result = _validate_and_deploy(instance, resources, bad)
    assert not result.success
    assert instance.get_latest_materialization_event(dg.AssetKey("deployed_config")) is None
    # an operator re-materializes deployed_config alone (as from the UI): same rule
    manual = dg.materialize(
        [_report_asset(bad), deployed_config],
        selection=[deployed_config],
        partition_key=series_key("7d"),
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config=QUIET,
    )
    assert not manual.success
    failure = next(e for e in manual.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "refused" in message and "bias_bounded" in message and before.id in message
    assert working_area.config_store().current_version("7d").commit == before.commit


def test_forecasts_follow_the_store_and_rollback_job_restores_and_refreshes(setup):
    instance, resources, working_area = setup
    dg.materialize([pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET)
    seeded = working_area.config_store().current_version("7d")
    assert _validate_and_deploy(instance, resources, GOOD).success
    deployed = working_area.config_store().current_version("7d")
    assert _forecast(instance, resources).success
    assert working_area.forecast_history().runs("7d")["config_version"].tolist() == [deployed.id]

    result = rollback_job.execute_in_process(
        run_config={"ops": {"restore_config": {"config": {"horizon": "7d", "reason": "inference time 4x"}}}},
        instance=instance,
        resources=resources,
    )
    assert result.success
    store = working_area.config_store()
    restored = store.current_version("7d")
    assert restored.summary.startswith(f"[7d] rollback: inference time 4x (from {deployed.id} to {seeded.id})")
    assert store.read("7d") == store.read("7d", seeded.id)
    runs = working_area.forecast_history().runs("7d")
    assert runs["config_version"].tolist() == [restored.id]  # same origin, refreshed with the restored version
    event = instance.get_latest_materialization_event(dg.AssetKey("forecast"))
    assert event.asset_materialization.partition == "7d|USDCLP"
    assert event.asset_materialization.metadata["config_version"].value == restored.id


@pytest.mark.parametrize(
    "config, message",
    [
        ({"horizon": "7d", "to_version": "20990101T000000Z-deadbeef"}, "unknown configuration version"),
        ({"horizon": "8d"}, "unknown horizon '8d'"),
        ({"horizon": "7d"}, "no previous version"),
    ],
)
def test_rollback_job_refuses_bad_requests_and_changes_nothing(setup, config, message):
    instance, resources, working_area = setup
    head = working_area.config_store().repo.head.commit.hexsha
    result = rollback_job.execute_in_process(
        run_config={"ops": {"restore_config": {"config": config}}},
        instance=instance,
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert message in failure.step_failure_data.user_failure_data.description
    assert "nothing was changed" in failure.step_failure_data.user_failure_data.description
    assert working_area.config_store().repo.head.commit.hexsha == head


def _failure(result) -> str:
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.user_failure_data.description


def test_a_deploy_is_refused_when_the_deployed_version_moved_since_the_validation(setup):
    instance, resources, working_area = setup
    seeded = working_area.config_store().current_version("7d")
    validated = dg.materialize(  # validated against the seed; every check passes
        [_report_asset(GOOD), *approval_checks],
        partition_key=series_key("7d"),
        instance=instance,
        resources=resources,
        run_config=QUIET,
    )
    assert validated.success
    moved = _deploy_directly(working_area, context_length=270)  # meanwhile another configuration went live
    deploy = dg.materialize(  # deployed_config alone, as from the UI, on the report validated against the seed
        [_report_asset(GOOD), deployed_config],
        selection=[deployed_config],
        partition_key=series_key("7d"),
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config=QUIET,
    )
    assert not deploy.success  # a failed run: run_failure_alert_sensor alerts it
    assert _failure(deploy) == (
        f"deployed_config 7d: deploy refused: the candidate was validated against version {seeded.id}, but the "
        f"deployed version is now {moved.id} ([7d] deploy: test deploy); deploying would undo that change "
        f"unvalidated: validate the candidate again against the deployed version; nothing was changed, 7d stays on "
        f"{moved.id}"
    )
    store = working_area.config_store()
    assert store.current_version("7d") == moved and store.read("7d").context_length == 270


def test_rollback_job_to_the_deployed_configuration_is_refused_clearly(setup):
    instance, resources, working_area = setup
    seeded = working_area.config_store().current_version("7d")
    result = rollback_job.execute_in_process(
        run_config={"ops": {"restore_config": {"config": {"horizon": "7d", "to_version": seeded.id}}}},
        instance=instance,
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    assert _failure(result) == (
        f"rollback 7d: 7d is already on that configuration (version {seeded.id}): it is the deployed version; "
        "nothing to roll back; nothing was changed"
    )
    store = working_area.config_store()
    assert store.repo.head.commit.hexsha == seeded.commit and not (store.root / "backups").exists()


def _deploy_directly(working_area, **fields):
    from forex_assets.core.forecasting.config import ValidationBaseline, parse_config

    seconds = fields.pop("baseline_s", 0.05)
    config = parse_config(CANDIDATE | fields).model_copy(
        update={"baseline": ValidationBaseline(rmse_clp=20.0, inference_seconds=seconds)}
    )
    return working_area.config_store().deploy(config, reason="test deploy")


def _sensor_requests(instance, resources, cursor=None):
    from forex_assets.defs.deployment.sensors import rollback_sensor

    context = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
    result = rollback_sensor.evaluate_tick(context)
    return result.run_requests, result.cursor


def test_three_failed_forecast_runs_lead_to_exactly_one_rollback_request(setup):
    instance, resources, working_area = setup
    dg.materialize([pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET)
    broken = _deploy_directly(working_area, family="chronos-bolt")  # loads, but fails at forecast time
    for _ in range(2):
        assert not _forecast(instance, resources).success
    assert _sensor_requests(instance, resources)[0] == []  # two failures: not yet
    assert not _forecast(instance, resources).success
    requests, cursor = _sensor_requests(instance, resources)
    assert len(requests) == 1
    request = requests[0]
    assert request.job_name in (None, "rollback_job")
    assert request.tags["forex/horizon"] == "7d" and request.tags["forex/rolled_back_version"] == broken.id
    assert request.tags["forex/rollback_reason"] == "3 consecutive failed forecast runs since the deploy"
    assert request.run_config["ops"]["restore_config"]["config"]["to_version"] == "previous"
    assert _sensor_requests(instance, resources, cursor)[0] == []  # never twice for the same deploy


def test_a_healthy_deploy_is_left_alone(setup):
    instance, resources, working_area = setup
    dg.materialize([pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET)
    _deploy_directly(working_area, baseline_s=0.5)
    for _ in range(3):
        assert _forecast(instance, resources).success
    assert _sensor_requests(instance, resources)[0] == []


def test_slow_inference_after_a_deploy_triggers_a_rollback(setup, tmp_path):
    instance, resources, working_area = setup
    dg.materialize([pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET)
    _deploy_directly(working_area, baseline_s=0.000001)  # any real forecast is far above 3x this baseline
    no_floor = resources | {"policy": policy_with(tmp_path, "no-floor", rollback={"min_inference_excess_seconds": 0.0})}
    # the version's forecasts of the two days before (one forecast per origin: re-running a day replaces it)
    prices = resources["price_source"].load()
    config, version = working_area.deployed_config("7d")
    for days_before in (2, 1):
        working_area.forecast_history().record(make_forecast(prices.iloc[:-days_before], config, version))
        assert _sensor_requests(instance, no_floor)[0] == []  # slow on fewer than 3 forecasts: could be load
    assert _forecast(instance, resources).success
    requests, _ = _sensor_requests(instance, resources)
    assert requests == []  # ... and not 1 s above it: milliseconds are load, not a fault
    requests, _ = _sensor_requests(instance, no_floor)
    assert len(requests) == 1 and requests[0].tags["forex/rollback_reason"].startswith("inference time")
    assert "the fastest of the latest 3 forecasts" in requests[0].tags["forex/rollback_reason"]


def test_a_late_automatic_rollback_changes_nothing_when_the_judged_deploy_is_no_longer_live(setup):
    """The rollback sensor's request names the deploy it judged (expected_version). When someone rolled it
    back or deployed again before the run started, the run refuses under the store lock and the live version
    stays: a late rollback never puts back what it was asked to remove, nor removes what came after."""
    instance, resources, working_area = setup
    judged = _deploy_directly(working_area, context_length=90)
    newer = _deploy_directly(working_area, context_length=270)  # meanwhile a newer configuration went live
    restore = {
        "horizon": "7d",
        "to_version": "previous",
        "reason": "automatic rollback: test",
        "expected_version": judged.id,
    }
    result = rollback_job.execute_in_process(
        run_config={"ops": {"restore_config": {"config": restore}}},
        instance=instance,
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    assert _failure(result) == (
        f"rollback 7d refused: the deployed version is now {newer.id}, not {judged.id} (the version judged); "
        "nothing was changed"
    )
    store = working_area.config_store()
    assert store.current_version("7d") == newer and store.read("7d").context_length == 270
    # the same request while the judged deploy is live rolls it back
    live = _deploy_directly(working_area, context_length=120)
    ok = rollback_job.execute_in_process(
        run_config={"ops": {"restore_config": {"config": restore | {"expected_version": live.id}}}},
        instance=instance,
        resources=resources,
    )
    assert ok.success and working_area.config_store().read("7d").context_length == 270
