"""The daily cycle is composed once (``forex_assets.core.cycle``, its steps in ``forex_assets.core.policy``): the
Dagster path and the replay path (``Replay.run_day``) fed the same prices and the same state must take the
same decisions, day by day.

* six days through the production sensors (assets, rollback sensor, rollback job, optimization sensor);
* a month (21 business days) through `make run`'s driver of the Dagster graph (``cli/run.py`` ``run_cycle``:
  materializations and the sensors' helpers in the order of ``CYCLE``), with optimizations approved and
  rejected, deploys and a rollback: every trigger decision with its reasons, every verdict, deploy and
  rollback, and every forecast's median compared.
"""

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from forex_assets.cli.run import materialize_selection, run_cycle, watch_deploy
from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.forecasting.config import ValidationBaseline
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.triggers import TriggerPolicy, manual_decision
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.prices.synthetic import InjectedDrift, inject_drifts, usdclp_like_series
from forex_assets.core.replay.engine import PriceProvider, Replay, ReplaySettings
from forex_assets.core.working_area import SEED_CONFIGS_DIR, WorkingAreaLayout
from forex_assets.defs.deployment.jobs import rollback_job
from forex_assets.defs.deployment.sensors import rollback_sensor
from forex_assets.defs.forecasting.assets import forecast
from forex_assets.defs.monitoring.assets import drift_report, performance_report
from forex_assets.defs.monitoring.automation import optimization_sensor
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.resources import PolicyResource, PriceSource, WorkingArea, code_location_resources
from forex_assets_tests.conftest import policy_with
from forex_assets_tests.real_cli import LENIENT_APPROVAL, TINY_SEARCH, seed_copy

HORIZON = "7d"
BASE = usdclp_like_series(regime_change=None, end="2025-12-31")
ALL_DAYS = pd.DatetimeIndex(BASE["date"])
DAYS = list(ALL_DAYS[-12:-6])  # six business days, a volatility drift two days before the first
PRICES = inject_drifts(BASE, [InjectedDrift(ALL_DAYS[-14], vol_multiplier=5.0)])
# the production defaults, except a schedule that cannot fire in six days, and the inference-time rollback
# rule without its 1 s floor (so that a forecast's milliseconds against an impossible baseline fire it)
# one forecast suffices for the inference-time rule here (the default judges the fastest of the latest 3)
MONITORING = policy_with(
    None,
    "equivalence",
    triggers={"schedule_days": 60},
    rollback={"min_inference_excess_seconds": 0.0, "slow_forecasts": 1},
)
SETTINGS = MONITORING.settings()
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _same_start(store_dir, log_path):
    """The state both paths start from: a deploy whose validation baseline claims an inference time no
    forecast can meet (the rollback rule fires on day one), and an optimization four days before."""
    _start_state(ConfigStore(store_dir, seed_dir=SEED_CONFIGS_DIR), DecisionLog(log_path), DAYS[0])


def _start_state(store: ConfigStore, log: DecisionLog, first_day: pd.Timestamp) -> None:
    seed = store.read(HORIZON)
    baseline = ValidationBaseline(rmse_clp=5.0, inference_seconds=1e-9, validated_on="2025-11-01")
    store.deploy(seed.model_copy(update={"context_length": 90, "baseline": baseline}), "validation passed (test)")
    before = (first_day - pd.offsets.BDay(4)).date()
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
            working_area, PriceSource(source="csv", csv_path=str(csv)), policy=MONITORING
        )
        assert dg.materialize(
            [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET
        ).success
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
    settings = PolicyResource().settings()
    assert settings.triggers == TriggerPolicy()
    assert settings == PolicySettings()


def test_make_run_applies_the_rollback_rule_of_the_sensor(forex_env):
    instance, resources, working_area = forex_env
    resources = resources | {"policy": MONITORING}
    _same_start(tmp_store := working_area.root / "config_store", working_area.root / "trigger_decisions.sqlite")
    bad = working_area.config_store().current_version(HORIZON)
    assert dg.materialize(
        [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET
    ).success
    assert materialize_selection(instance, resources, [forecast], HORIZON).success

    reason = watch_deploy(instance, resources, HORIZON)

    assert reason is not None and reason.startswith("inference time ")
    store = ConfigStore(tmp_store)
    now = store.current_version(HORIZON)
    assert now.summary.startswith(f"[{HORIZON}] rollback") and bad.id[:7] in now.summary
    assert store.read(HORIZON).context_length == 180  # the seed again
    assert watch_deploy(instance, resources, HORIZON) is None  # a rollback is not watched


# ---------------------------------------------------------------------------------------------- a month

MONTH = list(ALL_DAYS[-30:-9])  # 21 business days
MONTH_PRICES = inject_drifts(BASE, [InjectedDrift(MONTH[8], vol_multiplier=5.0)])  # a drift on the 9th
#: a weekly schedule and a 5-day guard, so that the month optimizes several times; the start's deploy rolled
#: back on day one by the inference-time rule (ratio 10^4 and no floor: any forecast is 10^4 x slower than the
#: start's 1e-9 s baseline, no forecast 10^4 x slower than a measured one, so the machine's load decides
#: nothing); approval on the validation window's RMSE or MAPE improvement alone (every other criterion
#: lenient), so that some candidates are approved and deployed, others rejected
MONTH_POLICY = {
    "triggers": {"schedule_days": 7, "min_days_between_optimizations": 5},
    "rollback": {"min_inference_excess_seconds": 0.0, "slow_forecasts": 1, "inference_time_ratio": 10_000.0},
    "approval": LENIENT_APPROVAL | {"min_rmse_improvement_pct": 0.0, "min_mape_improvement_pct": 0.0},
}


def _rule(reason: str) -> str:
    """A rollback reason without its figures (an inference time is measured, not replayed): the rule's name."""
    return re.split(r"\d", reason, maxsplit=1)[0].strip()


def _store_history(store: ConfigStore) -> list[tuple]:
    """Oldest first: what each commit did, with the configuration it left (baselines: their RMSE only, the
    inference times being measured)."""
    rows = []
    for version in reversed(store.history(HORIZON)):
        config = store.read(HORIZON, version.id)
        rmse = round(config.baseline.rmse_clp, 9) if config.baseline else None
        rows.append((version.record.action, config.without_baseline(), rmse))
    return rows


def _forecast_medians(history) -> list[tuple]:
    """Per origin: the configuration that made its (latest) forecast and the median at the horizon, CLP."""
    runs, steps = history.runs(HORIZON), history.steps(HORIZON)
    last = steps.sort_values("step").groupby("origin_date").tail(1).set_index("origin_date")["q0_5"]
    rows = []
    for origin, config in zip(runs["origin_date"], runs["config_json"], strict=True):
        config = {k: v for k, v in json.loads(config).items() if k != "baseline"}
        rows.append((origin, config, float(last[origin])))
    return rows


def _month_facts(log: DecisionLog, store: ConfigStore, history, optimizations, rollbacks) -> dict:
    return {
        "decisions": [_comparable(d) for d in log.decisions(HORIZON)[1:]],  # after the manual one
        "verdicts": [(v.decided_on, v.verdict, v.performance_override, v.detail) for v in log.verdicts(HORIZON)],
        "optimizations": optimizations,  # (day, verdict, RMSE improvement %, deployed)
        "rollbacks": rollbacks,  # (day, rule)
        "store": _store_history(store),
        "forecasts": _forecast_medians(history),
    }


def month_through_the_replay(workdir: Path, configs: Path, settings: PolicySettings) -> dict:
    area = WorkingAreaLayout.in_directory(workdir, configs)
    _start_state(ConfigStore(area.config_store, seed_dir=configs), DecisionLog(area.decision_log), MONTH[0])
    replay_settings = ReplaySettings(
        start=MONTH[0].date(),
        end=MONTH[-1].date(),
        horizons=(HORIZON,),
        configs_dir=configs,
        policy=settings,
        seed_counts_as_optimized=False,
        measure_seed_baseline=False,
    )
    replay = Replay(PriceProvider(MONTH_PRICES, "test"), replay_settings, workdir)
    for day in MONTH:
        replay.run_day(day)
    trace = replay.traces[HORIZON]
    optimizations = [
        (o.day, o.verdict, round(o.rmse_improvement_pct, 3), o.deployed_version is not None)
        for o in trace.optimizations
    ]
    rollbacks = [(day, _rule(reason)) for day, _, reason in trace.rollbacks]
    return _month_facts(replay.log, replay.store, replay.history, optimizations, rollbacks)


def month_through_make_run(directory: Path, configs: Path, policy: PolicyResource, instance) -> dict:
    working_area = WorkingArea(path=str(directory / "area"), configs_dir=str(configs))
    _start_state(working_area.config_store(), working_area.decision_log(), MONTH[0])
    optimizations, rollbacks = [], []
    for day in MONTH:  # each business day: the prices known that day, as the daily schedule would load them
        csv = directory / f"prices_{day.date()}.csv"
        MONTH_PRICES[MONTH_PRICES["date"] <= day].to_csv(csv, index=False)
        [row] = run_cycle(
            instance, PriceSource(source="csv", csv_path=str(csv)), working_area, (HORIZON,), policy=policy
        )
        assert row["status"] == "ok", row
        if row["rollback"]:
            rollbacks.append((day, _rule(row["rollback"])))
        if "recalibration" in row:
            done = row["recalibration"]
            optimizations.append((day, done["verdict"], done["rmse_improvement_pct"], done["deployed"]))
    store = working_area.config_store()
    return _month_facts(working_area.decision_log(), store, working_area.forecast_history(), optimizations, rollbacks)


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    configs = seed_copy(tmp_path_factory.mktemp("month_configs"), TINY_SEARCH)
    policy = policy_with(tmp_path_factory.mktemp("month_policy"), "month", **MONTH_POLICY)
    started = time.perf_counter()
    replayed = month_through_the_replay(tmp_path_factory.mktemp("month_replay"), configs, policy.settings())
    replay_seconds, started = time.perf_counter() - started, time.perf_counter()
    with dg.instance_for_test() as instance:
        dagstered = month_through_make_run(tmp_path_factory.mktemp("month_dagster"), configs, policy, instance)
    print(f"a month: replay {replay_seconds:.0f} s, make run's driver {time.perf_counter() - started:.0f} s")
    return replayed, dagstered


def test_a_month_takes_the_same_trigger_decisions_with_the_same_reasons(month):
    replayed, dagstered = month
    decisions = replayed["decisions"]
    assert [d[0] for d in decisions] == [day.date() for day in MONTH]
    assert dagstered["decisions"] == decisions
    # not a quiet month: the schedule and the drift both launch optimizations, and the guard holds the drift back
    optimized = [fired for _, optimize, fired, _, _ in decisions if optimize]
    assert any("schedule" in fired for fired in optimized) and any("drift" in fired for fired in optimized)
    assert any("drift" in blocked for _, optimize, _, blocked, _ in decisions if not optimize)


def test_a_month_reaches_the_same_verdicts_and_deploys(month):
    replayed, dagstered = month
    assert dagstered["optimizations"] == replayed["optimizations"]
    assert dagstered["verdicts"] == replayed["verdicts"]
    assert dagstered["store"] == replayed["store"]
    verdicts = [verdict for _, verdict, _, _ in replayed["optimizations"]]
    assert {"approved", "rejected"} <= set(verdicts)
    assert [deployed for _, verdict, _, deployed in replayed["optimizations"]] == [v == "approved" for v in verdicts]
    actions = [action for action, _, _ in replayed["store"]]
    assert actions.count("deploy") == 1 + verdicts.count("approved") and actions.count("rollback") == 1


def test_a_month_rolls_back_the_same_deploy_on_the_same_day_for_the_same_rule(month):
    replayed, dagstered = month
    assert dagstered["rollbacks"] == replayed["rollbacks"] == [(MONTH[0], "inference time")]


def test_a_month_forecasts_the_same_medians_with_the_same_configurations(month):
    replayed, dagstered = month
    assert [row[0] for row in replayed["forecasts"]] == MONTH
    assert [row[:2] for row in dagstered["forecasts"]] == [row[:2] for row in replayed["forecasts"]]
    medians = [row[2] for row in replayed["forecasts"]]
    assert [row[2] for row in dagstered["forecasts"]] == pytest.approx(medians, rel=1e-9)
