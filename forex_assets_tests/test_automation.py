from datetime import date, datetime, timedelta

import dagster as dg
import pytest

from forex_assets.cli.run import materialize_selection
from forex_assets.core.forecasting.config import ValidationBaseline
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.monitoring.drift import Severity
from forex_assets.core.monitoring.triggers import TriggerDecision
from forex_assets.core.pairs import load_pairs
from forex_assets.defs.monitoring.assets import drift_report, performance_report
from forex_assets.defs.monitoring.automation import optimization_sensor, weekly_optimization_schedule
from forex_assets.defs.prices.assets import pair_prices
from forex_assets_tests.conftest import policy_with

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.fixture
def env(forex_env):
    instance, resources, _ = forex_env
    dg.materialize([pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET)
    return forex_env


def _definitions(resources):
    from forex_assets.definitions import defs

    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules,
        sensors=defs.sensors,
        resources=resources,
    )


def _reports(instance, resources, horizons=HORIZONS):
    for horizon in horizons:
        assert materialize_selection(instance, resources, [drift_report, performance_report], horizon).success


def _tick(instance, resources, cursor=None):
    context = dg.build_sensor_context(
        instance=instance, resources=resources, cursor=cursor, definitions=_definitions(resources)
    )
    result = optimization_sensor.evaluate_tick(context)
    return {_shown(r.partition_key): r for r in result.run_requests}, result.cursor


def _shown(partition: str) -> str:
    """``7d`` for USD/CLP's partition ``7d|USDCLP``; ``7d|EURCLP`` as it is."""
    return partition.removesuffix("|USDCLP")


def _optimized(working_area, horizon, on, override=False):
    """An optimization decided on ``on`` that reached its verdict (what the guard counts)."""
    log = working_area.decision_log()
    log.record(TriggerDecision(horizon, on, True, ("performance",) if override else ("schedule",), (), {}, override))
    log.record_verdict(horizon, on, "rejected", performance_override=override)


def test_default_series_drift_is_found(env):
    instance, resources, _ = env
    _reports(instance, resources, ["30d"])
    event = instance.get_latest_materialization_event(dg.AssetKey("drift_report"))
    assert event.asset_materialization.metadata["severity"].value == Severity.HIGH.name
    performance = instance.get_latest_materialization_event(dg.AssetKey("performance_report")).asset_materialization
    rows = {r.data["metric"]: r.data for r in performance.metadata["now_vs_baseline"].value.records}
    assert rows["RMSE (CLP)"]["now"] == performance.metadata["rmse_clp"].value
    assert rows["RMSE (CLP)"]["baseline"] is None  # the seed configuration has no validation baseline


def test_sensor_requests_the_horizons_that_need_it_with_reasons_in_tags(env):
    instance, resources, working_area = env
    _reports(instance, resources)
    _optimized(working_area, "15d", date.today() - timedelta(days=2))  # in its cooldown
    requests, cursor = _tick(instance, resources)
    assert set(requests) == {"7d", "30d", "90d"}  # 15d: drift fired but the guard holds it back
    tags = requests["30d"].tags
    assert tags["forex/optimizer"] == "30d"
    assert set(tags["forex/triggers"].split(",")) == {"drift", "schedule"}
    assert "severity HIGH" in tags["forex/trigger_reasons"]
    decisions = working_area.decision_log().decisions("15d")
    assert not decisions[-1].optimize and "held back" in decisions[-1].reasons["drift"]
    assert _tick(instance, resources, cursor)[0] == {}  # no new reports, no new decision


def test_performance_trigger_overrides_the_cooldown_once_every_three_days(env, tmp_path):
    instance, resources, working_area = env
    adr_rule = policy_with(tmp_path, "rmse-rule", triggers={"performance_metric": "rmse"})  # the ADR's rule
    resources = resources | {"policy": adr_rule}
    store = working_area.config_store()
    tight = store.read("7d").model_copy(update={"baseline": ValidationBaseline(rmse_clp=1.0, inference_seconds=0.5)})
    store.deploy(tight, reason="a baseline no forecast can meet")
    _optimized(working_area, "7d", date.today() - timedelta(days=2))
    _reports(instance, resources, ["7d"])
    requests, cursor = _tick(instance, resources)
    assert "performance" in requests["7d"].tags["forex/triggers"].split(",")
    assert working_area.decision_log().decisions("7d")[-1].performance_override
    _optimized(working_area, "7d", date.today(), override=True)  # the optimization it launched
    _reports(instance, resources, ["7d"])
    requests, _ = _tick(instance, resources, cursor)
    assert "7d" not in requests
    assert "at most one every 3" in working_area.decision_log().decisions("7d")[-1].reasons["performance"]


def test_weekly_fallback_schedule_requests_only_the_horizons_that_are_due(env):
    instance, resources, working_area = env
    sunday = datetime(2026, 11, 29, 2, 0)
    _optimized(working_area, "7d", sunday.date() - timedelta(days=3))
    _optimized(working_area, "90d", sunday.date() - timedelta(days=20))
    context = dg.build_schedule_context(
        instance=instance,
        resources=resources,
        scheduled_execution_time=sunday,
        repository_def=_definitions(resources).get_repository_def(),
    )
    requests = weekly_optimization_schedule.evaluate_tick(context).run_requests
    usd = [r for r in requests if r.partition_key.endswith("|USDCLP")]
    assert sorted(_shown(r.partition_key) for r in usd) == ["15d", "30d", "90d"]
    # every other pair of the pairs file was never optimized: each of its horizons is due, on its own log
    others = {r.partition_key for r in requests} - {r.partition_key for r in usd}
    assert others == {f"{h}|{p}" for h in HORIZONS for p in load_pairs().codes if p != "USDCLP"}
    assert all(r.tags["forex/triggers"] == "schedule" for r in requests)
    assert {r.tags["forex/optimizer"] for r in requests if r.partition_key == "30d|EURCLP"} == {"EURCLP:30d"}
    assert [d.horizon for d in working_area.decision_log("EURCLP").decisions()] == list(HORIZONS)
    assert weekly_optimization_schedule.cron_schedule == "0 2 * * 0"
    assert weekly_optimization_schedule.execution_timezone == "America/Santiago"
