"""The policy is written once (``forex_assets.core.policy``): the Dagster path (assets, rollback sensor,
rollback job, optimization sensor) and the replay path (``Replay.run_day``) fed the same prices and the
same state must take the same decisions, day by day."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pytest

from forex_assets.cli.run import materialize_selection, watch_deploy
from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.forecasting.config import ValidationBaseline
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.triggers import TriggerPolicy, manual_decision
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.prices.synthetic import InjectedDrift, inject_drifts, usdclp_like_series
from forex_assets.core.replay.engine import PriceProvider, Replay, ReplaySettings
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets.defs.deployment.jobs import rollback_job
from forex_assets.defs.deployment.sensors import rollback_sensor
from forex_assets.defs.forecasting.assets import forecast
from forex_assets.defs.monitoring.assets import drift_report, performance_report
from forex_assets.defs.monitoring.automation import optimization_sensor
from forex_assets.defs.prices.assets import usdclp_prices
from forex_assets.defs.resources import MonitoringPolicy, PriceSource, WorkingArea, code_location_resources

HORIZON = "7d"
BASE = usdclp_like_series(regime_change=None, end="2025-12-31")
ALL_DAYS = pd.DatetimeIndex(BASE["date"])
DAYS = list(ALL_DAYS[-12:-6])  # six business days, a volatility drift two days before the first
PRICES = inject_drifts(BASE, [InjectedDrift(ALL_DAYS[-14], vol_multiplier=5.0)])
# the production defaults, except a schedule that cannot fire in six days, and the inference-time rollback
# rule without its 1 s floor (so that a forecast's milliseconds against an impossible baseline fire it)
# one forecast suffices for the inference-time rule here (the default judges the fastest of the latest 3)
MONITORING = MonitoringPolicy(schedule_days=60, rollback_min_inference_excess_seconds=0.0, rollback_slow_forecasts=1)
SETTINGS = MONITORING.policy_settings()
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _same_start(store_dir, log_path):
    """The state both paths start from: a deploy whose validation baseline claims an inference time no
    forecast can meet (the rollback rule fires on day one), and an optimization four days before."""
    store = ConfigStore(store_dir, seed_dir=SEED_CONFIGS_DIR)
    seed = store.read(HORIZON)
    baseline = ValidationBaseline(rmse_clp=5.0, inference_seconds=1e-9, validated_on="2025-11-01")
    store.deploy(seed.model_copy(update={"context_length": 90, "baseline": baseline}), "validation passed (test)")
    before = (DAYS[0] - pd.offsets.BDay(4)).date()
    log = DecisionLog(log_path)
    log.record(manual_decision(HORIZON, before, "equivalence"), at=datetime.now(UTC))
    log.record_verdict(HORIZON, before, "rejected")  # it reached a verdict: the guard counts it


def _comparable(decision):
    return (decision.decided_on, decision.optimize, decision.fired, decision.blocked, decision.reasons)


def replay_path(workdir):
    _same_start(workdir / "config_store", workdir / "trigger_decisions.sqlite")
    settings = ReplaySettings(
        start=DAYS[0].date(),
        end=DAYS[-1].date(),
        horizons=(HORIZON,),
        policy=SETTINGS,
        seed_counts_as_optimized=False,
        measure_seed_baseline=False,
    )
    replay = Replay(PriceProvider(PRICES, "test"), settings, workdir)
    for day in DAYS:
        replay.run_day(day)
    trace = replay.traces[HORIZON]
    return [_comparable(d) for d in trace.decisions], [(day, reason) for day, _, reason in trace.rollbacks]


def dagster_path(tmp_path, instance):
    working_area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    _same_start(tmp_path / "area" / "config_store", tmp_path / "area" / "trigger_decisions.sqlite")
    rollback_cursor = optimization_cursor = None
    rollbacks = []
    for day in DAYS:  # each business day: the prices known that day, as the daily schedule would load them
        csv = tmp_path / f"prices_{day.date()}.csv"
        PRICES[PRICES["date"] <= day].to_csv(csv, index=False)
        resources = code_location_resources(
            working_area, PriceSource(source="csv", csv_path=str(csv)), monitoring_policy=MONITORING
        )
        assert dg.materialize([usdclp_prices], instance=instance, resources=resources, run_config=QUIET).success
        assert materialize_selection(instance, resources, [forecast], HORIZON).success
        context = dg.build_sensor_context(instance=instance, resources=resources, cursor=rollback_cursor)
        result = rollback_sensor.evaluate_tick(context)
        rollback_cursor = result.cursor
        for request in result.run_requests:
            run = rollback_job.execute_in_process(
                run_config=request.run_config, instance=instance, resources=resources, tags=request.tags
            )
            assert run.success
            rollbacks.append((day, request.tags["forex/rollback_reason"]))
        assert materialize_selection(instance, resources, [drift_report, performance_report], HORIZON).success
        context = dg.build_sensor_context(instance=instance, resources=resources, cursor=optimization_cursor)
        optimization_cursor = optimization_sensor.evaluate_tick(context).cursor
    decisions = working_area.decision_log().decisions(HORIZON)[1:]  # after the manual one both start from
    return [_comparable(d) for d in decisions], rollbacks


@pytest.fixture(scope="module")
def both_paths(tmp_path_factory):
    replayed = replay_path(tmp_path_factory.mktemp("replay"))
    with dg.instance_for_test() as instance:
        dagstered = dagster_path(tmp_path_factory.mktemp("dagster"), instance)
    return replayed, dagstered


def test_dagster_and_replay_take_the_same_trigger_decisions(both_paths):
    (replay_decisions, _), (dagster_decisions, _) = both_paths
    assert len(replay_decisions) == len(DAYS)
    assert [d[0] for d in replay_decisions] == [day.date() for day in DAYS]
    assert dagster_decisions == replay_decisions
    # the days are not trivial: the drift is seen and held back by the guard on at least one of them
    assert any("drift" in blocked for _, _, _, blocked, _ in replay_decisions)


def test_dagster_and_replay_roll_back_the_same_deploy_on_the_same_day_for_the_same_rule(both_paths):
    (_, replay_rollbacks), (_, dagster_rollbacks) = both_paths
    assert [day for day, _ in replay_rollbacks] == [day for day, _ in dagster_rollbacks] == [DAYS[0]]
    for _, reason in replay_rollbacks + dagster_rollbacks:
        assert reason.startswith("inference time ") and "above 3x the baseline 0.0000 s and more than 0 s" in reason


def test_the_policy_settings_of_the_code_location_are_the_production_defaults():
    settings = MonitoringPolicy().policy_settings()
    assert settings.triggers == TriggerPolicy()
    assert settings == PolicySettings()


def test_make_run_applies_the_rollback_rule_of_the_sensor(forex_env):
    instance, resources, working_area = forex_env
    resources = resources | {"monitoring_policy": MONITORING}
    _same_start(tmp_store := working_area.root / "config_store", working_area.root / "trigger_decisions.sqlite")
    bad = working_area.config_store().current_version(HORIZON)
    assert dg.materialize([usdclp_prices], instance=instance, resources=resources, run_config=QUIET).success
    assert materialize_selection(instance, resources, [forecast], HORIZON).success

    reason = watch_deploy(instance, resources, HORIZON)

    assert reason is not None and reason.startswith("inference time ")
    store = ConfigStore(tmp_store)
    now = store.current_version(HORIZON)
    assert now.summary.startswith(f"[{HORIZON}] rollback") and bad.id[:7] in now.summary
    assert store.read(HORIZON).context_length == 180  # the seed again
    assert watch_deploy(instance, resources, HORIZON) is None  # a rollback is not watched
