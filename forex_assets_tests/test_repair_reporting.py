"""Every repair of the config store is reported, whoever's open made it (issue 21, item 10): logged in the store
once, alerted once (whichever opener with an alert channel comes first), listed in `forex-assets run`'s summary
and by `forex-assets history --kind repair`. The real CLI in a subprocess, the real rollback sensor and alert log."""

import json
import re

import dagster as dg

from forex_assets.core.alerting.delivery import AlertLog
from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.deployment.repair_log import RepairLog
from forex_assets.core.forecasting.config import parse_config
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets.defs.deployment.sensors import rollback_sensor
from forex_assets.defs.resources import WorkingArea, code_location_resources
from forex_assets_tests.cli_home import area, cli, instance_home, seeded_store, store_root

HAND_EDIT = parse_config(
    {"horizon": "7d", "checkpoint": "bundled:usdclp-chronos2-mini", "family": "chronos2", "context_length": 90}
).to_json()


def _restored(commit: str, kept: str) -> str:
    return (
        f"restored chronos_7d.json from the committed version {commit[:8]}: it differed from the committed "
        "configuration (a hand edit, or a deploy killed before its commit) and a configuration goes live only "
        f"through a validated deploy or a rollback; the discarded file is in {kept}"
    )


def _repair_alerts(alert_log: AlertLog) -> list[tuple]:
    return [(a.event, a.horizon, a.subject, a.status) for a in alert_log.entries()]


def _sensor_tick(working_area: WorkingArea) -> None:
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=code_location_resources(working_area))
        assert rollback_sensor.evaluate_tick(context).run_requests == []


def test_a_hand_edit_discarded_by_run_is_in_its_summary_alerted_once_and_in_history(tmp_path):
    home = instance_home(tmp_path)
    seed = seeded_store(home).current_version("7d")
    root = store_root(home)
    (root / "chronos_7d.json").write_text(HAND_EDIT)

    run = cli(home, "run", "--no-recalibration", "--horizons", "7d")
    assert run.returncode == 0, run.stdout + run.stderr
    [kept] = (root / "backups").glob("chronos_7d.json.discarded-*")
    assert kept.read_text() == HAND_EDIT
    summary = run.stdout.split("\ncycle finished")[0].splitlines()
    assert summary[-2:] == [
        f"config store {root} repaired (the committed configurations are the live ones; alerted; "
        "`forex-assets history --kind repair` lists them):",
        f"  7d: {_restored(seed.commit, f'backups/{kept.name}')}",
    ]

    alert_log = AlertLog(area(home) / "alerts.sqlite")
    repaired = ("config_store_repaired", "7d", "[forex][7d] config store repaired (1 repair)", "logged")
    assert _repair_alerts(alert_log) == [repaired]  # no SMTP here: the run log and the alert log

    history = cli(home, "history", "--horizon", "7d", "--kind", "repair")
    assert history.returncode == 0, history.stderr
    [line] = history.stdout.splitlines()[2:]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC  repair      .*", line)
    assert line.endswith(f"config store {root}: {_restored(seed.commit, f'backups/{kept.name}')}")

    # another opener with an alert channel (the rollback sensor, every minute) finds nothing more to say
    _sensor_tick(WorkingArea(path=str(area(home)), configs_dir=str(SEED_CONFIGS_DIR)))
    assert _repair_alerts(alert_log) == [repaired]


def test_a_repair_made_by_a_forecasts_open_is_alerted_once_by_the_next_opener_that_alerts(tmp_path):
    working_area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    store = working_area.config_store()
    store.path("7d").write_text(HAND_EDIT)
    (store.root / "chronos_30d.json.bak").write_text("a copy")
    forecast_run = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))  # a run's own
    config, version = forecast_run.deployed_config("7d")  # the forecast's open: it repairs, it cannot alert
    assert config.context_length == 180 and version == store.current_version("7d").id
    assert working_area.alert_log().entries() == []

    _sensor_tick(working_area)
    _sensor_tick(working_area)
    assert _repair_alerts(working_area.alert_log()) == [  # one per horizon, each once
        ("config_store_repaired", "30d", "[forex][30d] config store repaired (1 repair)", "logged"),
        ("config_store_repaired", "7d", "[forex][7d] config store repaired (1 repair)", "logged"),
    ]
    logged = RepairLog(store.root).entries()
    assert [(r.horizon, r.kept.split(".discarded-")[0]) for r in logged] == [
        ("30d", "backups/chronos_30d.json.bak"),
        ("7d", "backups/chronos_7d.json"),
    ]
    assert RepairLog(store.root).pending() == []


def test_a_hand_edit_a_deploy_finds_after_the_open_is_logged_as_a_repair(tmp_path):
    store = ConfigStore(tmp_path / "store", seed_dir=SEED_CONFIGS_DIR)
    head = store.repo.head.commit.hexsha[:8]
    store.path("7d").write_text(HAND_EDIT)  # after the open: the open's repair did not see it
    store.deploy(parse_config(json.loads(HAND_EDIT) | {"context_length": 270}), reason="validated elsewhere")
    [record] = RepairLog(store.root).pending()
    assert record.horizon == "7d" and (store.root / record.kept).read_text() == HAND_EDIT
    assert record.text == (
        f"restored chronos_7d.json from the committed version {head}: it was changed after the store was opened "
        "(by hand), and a configuration goes live only through a validated deploy or a rollback; the discarded "
        f"file is in {record.kept}"
    )


def test_the_repair_log_survives_a_torn_line(tmp_path):
    store = ConfigStore(tmp_path / "store", seed_dir=SEED_CONFIGS_DIR)
    log = RepairLog(store.root)
    store.path("7d").write_text(HAND_EDIT)
    ConfigStore(store.root)
    with open(log.path, "a") as handle:
        handle.write('{"id": "torn", "at": "2026-')  # a kill mid-append
    store.path("7d").write_text(HAND_EDIT)
    ConfigStore(store.root)
    assert [r.horizon for r in log.entries()] == ["7d", "7d"] and len(log.pending()) == 2
    sent = []
    assert log.alert_pending(sent.append) == sent[0] and len(sent[0]) == 2
    assert log.pending() == [] and log.alert_pending(sent.append) == [] and len(sent) == 1
