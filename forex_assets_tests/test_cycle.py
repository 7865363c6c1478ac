"""The daily cycle is described once (``forex_assets.core.cycle.CYCLE``): the Dagster definitions carry exactly
its steps and call its core functions, the replay's day and `make run` follow its order."""

import importlib
import inspect
import pkgutil
import re

import dagster as dg
import pandas as pd
import pytest

import forex_assets.defs
from forex_assets.cli import run as make_run
from forex_assets.core import cycle
from forex_assets.core.cycle import CYCLE, STEP_NAMES, CycleStep, cycle_step, cycle_table, steps_through
from forex_assets.definitions import defs
from forex_assets.defs.partitions import pair_horizon_partitions, pair_partitions
from forex_assets.defs.resources import PriceSource, WorkingArea

GRAPH = defs.resolve_asset_graph()
SENSORS = {sensor.name: sensor for sensor in defs.sensors or []}
SCHEDULES = {schedule.name: schedule for schedule in defs.schedules or []}


def _defs_modules():
    for info in pkgutil.walk_packages(forex_assets.defs.__path__, "forex_assets.defs."):
        yield importlib.import_module(info.name)


def _home_module(name: str):
    """The module under forex_assets/defs/ that defines the Dagster definition ``name`` (a decorated function or
    an assignment of that name), not one that only imports it."""
    pattern = re.compile(rf"^(def {name}\(|{name} = )", re.MULTILINE)
    homes = [m for m in _defs_modules() if name in vars(m) and pattern.search(inspect.getsource(m))]
    assert len(homes) == 1, f"{name} is defined in {[m.__name__ for m in homes]}"
    return homes[0]


def test_the_steps_are_named_once_in_the_order_of_the_day():
    assert STEP_NAMES == ("prices", "forecast", "watch", "reports", "decision", "optimization")
    assert [s.name for s in CYCLE if not s.per_horizon] == ["prices"]  # once a day for every horizon
    # every step of a horizon's day is run by the replay; the prices are what the replay gives
    assert all(s.in_replay is not None for s in CYCLE if s.per_horizon)
    assert cycle_step("prices").in_replay is None
    assert [s.name for s in steps_through("forecast")] == ["prices", "forecast"]
    with pytest.raises(KeyError, match="no cycle step 'deploy'; the steps are prices, forecast"):
        cycle_step("deploy")


def test_every_definition_a_step_names_exists_in_the_code_location():
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    for step in CYCLE:
        for asset in step.assets:
            assert GRAPH.has(dg.AssetKey(asset)), f"step {step.name}: no asset {asset}"
        assert set(step.sensors) <= set(SENSORS), f"step {step.name}: sensors {step.sensors}"
        assert set(step.schedules) <= set(SCHEDULES), f"step {step.name}: schedules {step.schedules}"
        assert set(step.jobs) <= jobs, f"step {step.name}: jobs {step.jobs}"


def test_the_horizon_assets_are_exactly_the_steps_assets_each_carried_by_one_step():
    per_pair_horizon = {
        key.to_user_string()
        for key in GRAPH.get_all_asset_keys()
        if GRAPH.get(key).partitions_def == pair_horizon_partitions
    }
    per_horizon = [asset for step in CYCLE if step.per_horizon for asset in step.assets]
    assert sorted(per_horizon) == sorted(set(per_horizon)) == sorted(per_pair_horizon)
    assert cycle_step("prices").assets == ("pair_prices",)
    assert GRAPH.get(dg.AssetKey("pair_prices")).partitions_def == pair_partitions


def test_the_jobs_select_the_steps_assets_and_the_sensors_request_the_cycles_jobs():
    optimization = cycle_step("optimization")
    job = defs.resolve_job_def("optimization_job")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == set(optimization.assets)
    prices = defs.resolve_job_def("prices_job")
    assert {k.to_user_string() for k in prices.asset_layer.executable_asset_keys} == set(cycle_step("prices").assets)
    cycle_jobs = {job for step in CYCLE for job in step.jobs}
    for name in {n for step in CYCLE for n in step.sensors + step.schedules}:
        target = SENSORS[name].job_name if name in SENSORS else SCHEDULES[name].job_name
        assert target in cycle_jobs, f"{name} requests {target}, which no step of the cycle names"


@pytest.mark.parametrize("step", [s for s in CYCLE if s.calls], ids=lambda s: s.name)
def test_the_dagster_definitions_of_a_step_call_its_core_functions(step: CycleStep):
    """The same function objects, not copies: each core function of the step is used by a module under
    forex_assets/defs/ that defines one of the step's assets, sensors or jobs."""
    homes = [_home_module(name) for name in step.assets + step.sensors + step.jobs]
    for function in step.calls:
        users = [m.__name__ for m in homes if any(value is function for value in vars(m).values())]
        assert users, f"step {step.name}: no module of {[m.__name__ for m in homes]} calls {function.__name__}"


def test_the_replays_day_runs_the_steps_in_the_order_of_the_description(monkeypatch):
    ran = []

    def step(name):
        return CycleStep(name, "", (), (), in_replay=lambda state, outcome, prices, settings: ran.append(name))

    monkeypatch.setattr(cycle, "CYCLE", (step("b"), CycleStep("prices", "", (), ()), step("a")))
    outcome = cycle.run_policy_day(None, "7d", pd.Timestamp("2025-01-02"), pd.DataFrame(), None)
    assert ran == ["b", "a"] and outcome.horizon == "7d"


def test_make_run_has_one_driver_per_step():
    assert list(make_run.CYCLE_DRIVERS) == list(STEP_NAMES)


@pytest.mark.parametrize("recalibrate", [False, True])
def test_make_run_drives_the_steps_in_the_order_of_the_description(monkeypatch, tmp_path, recalibrate):
    ran = []

    def driver(name):
        return lambda instance, resources, row: ran.append((name, row.get("horizon")))

    drivers = {name: driver(name) for name in STEP_NAMES}
    monkeypatch.setattr(make_run, "CYCLE_DRIVERS", drivers)
    with dg.instance_for_test() as instance:
        rows = make_run.run_cycle(
            instance, PriceSource(), WorkingArea(path=str(tmp_path / "area")), ("7d", "30d"), recalibrate
        )
    steps = STEP_NAMES[1:] if recalibrate else ("forecast",)
    assert ran == [("prices", None)] + [(step, h) for h in ("7d", "30d") for step in steps]
    assert [row["horizon"] for row in rows] == ["7d", "30d"]


def test_the_description_renders_as_the_docs_table():
    table = cycle_table().splitlines()
    assert len(table) == 2 + len(CYCLE)
    assert table[2].startswith("| 1. prices |") and "`pair_prices`" in table[2]
    assert "`forecast_step`" in table[3] and "`rollback_sensor`" in table[4] and "`validation_verdict`" in table[7]
