"""Reading never writes, a hand edit never goes live, repairs keep what they discard and are alerted (issue 14,
item 4). Real stores (git), the real CLI and the real rollback sensor."""

import json
import shutil
import subprocess

import dagster as dg
import pytest
from click.testing import CliRunner

from forex_assets.cli.main import cli
from forex_assets.core.deployment.config_store import ConfigStore, ConfigStoreError
from forex_assets.core.deployment.repair import Damage, repair_alert
from forex_assets.core.forecasting.config import parse_config
from forex_assets.core.monitoring.optimization_history import store_events
from forex_assets.core.working_area import PROJECT_ROOT, SEED_CONFIGS_DIR
from forex_assets.defs.resources import WorkingArea

HAND_EDIT = parse_config(
    {"horizon": "7d", "checkpoint": "bundled:usdclp-chronos2-mini", "family": "chronos2", "context_length": 90}
).to_json()
HAND_EDIT_DAMAGE = (
    "chronos_7d.json: a valid configuration file differs from the committed one (a hand edit, or a deploy killed "
    "before its commit); it is not live; a writer's open (the next run) will: put back the committed version, "
    "keeping the edited file in backups/"
)
INVALID_DAMAGE = (
    "chronos_30d.json: a configuration file differs from the committed one and is not a valid configuration; "
    "a writer's open (the next run) will: put back the committed version, keeping the invalid file in backups/"
)


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A Dagster instance home as `make run` leaves it, with its working area and config store."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("FOREX_ASSETS_HOME", raising=False)
    monkeypatch.delenv("FOREX_CONFIG_STORE_DIR", raising=False)
    WorkingArea(path=str(home / "forex_assets"), configs_dir=str(SEED_CONFIGS_DIR)).config_store()
    return home


def test_status_and_history_only_read_and_show_the_damage(home):
    root = home / "forex_assets" / "config_store"
    seed = ConfigStore(root, read_only=True).current_version("7d")
    (root / "chronos_7d.json").write_text(HAND_EDIT)  # a valid hand edit
    (root / "chronos_30d.json").write_text("garbage")  # an invalid one
    area = home / "forex_assets"
    before = _tree(area)

    status = _invoke("status")
    assert status.exit_code == 0, status.output
    [row] = [line for line in status.stdout.splitlines() if line.startswith("7d ")]
    assert seed.id in row  # the committed configuration is the live one
    assert f"config store {root}: 2 problem(s) found, left as they are (this command only reads)" in status.stdout
    assert f"  - {HAND_EDIT_DAMAGE}" in status.stdout.splitlines()
    assert f"  - {INVALID_DAMAGE}" in status.stdout.splitlines()

    history = _invoke("history", "--horizon", "7d")
    assert history.exit_code == 0, history.output
    assert [line.split()[3] for line in history.stdout.splitlines() if " UTC  " in line] == ["seed"]
    assert f"  - {HAND_EDIT_DAMAGE}" in history.stdout.splitlines()

    # nothing was written in the working area: not the store (no commit, no repair, no lock file), and no empty
    # decision or alert log was created (the Dagster instance's own storage is Dagster's)
    assert _tree(area) == before
    store = ConfigStore(root, read_only=True)
    assert store.current_version("7d") == seed and store.history("7d") == [seed]
    assert store.read("7d").context_length == 180  # a reader reads the committed configuration
    assert [(f.damage, f.path) for f in store.damage] == [
        (Damage.UNCOMMITTED, "chronos_7d.json"),
        (Damage.INVALID, "chronos_30d.json"),
    ]


def test_a_half_made_store_is_one_line_from_status_and_history(home):
    root = home / "forex_assets" / "config_store"
    shutil.rmtree(root)
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)  # what the earlier code left
    for command in (["status"], ["history", "--horizon", "7d"]):
        result = _invoke(*command)
        assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.output
        assert result.stderr.splitlines() == [
            f"forex-assets {command[0]}: config store {root}: its git repository has no commit (an interrupted first "
            "set-up); nothing was changed (a writer's open, e.g. the next run, rebuilds the store from the seed "
            "configurations and keeps what is there aside)"
        ]


def test_a_writers_open_puts_a_hand_edit_back_and_keeps_the_edit(tmp_path):
    root = tmp_path / "store"
    seed = ConfigStore(root, seed_dir=SEED_CONFIGS_DIR).current_version("7d")
    committed = (root / "chronos_7d.json").read_text()
    (root / "chronos_7d.json").write_text(HAND_EDIT)
    store = ConfigStore(root)
    [repair] = store.repaired
    assert repair.horizon == "7d" and repair.kept.startswith("backups/chronos_7d.json.discarded-")
    assert repair.text == (
        f"restored chronos_7d.json from the committed version {seed.commit[:8]}: it differed from the committed "
        "configuration (a hand edit, or a deploy killed before its commit) and a configuration goes live only "
        f"through a validated deploy or a rollback; the discarded file is in {repair.kept}"
    )
    assert (root / "chronos_7d.json").read_text() == committed and store.read("7d").context_length == 180
    assert (root / repair.kept).read_text() == HAND_EDIT  # nothing lost
    # not committed: no "repair" version that history would label as a seed, the deployed version unchanged; the
    # repair is in the store's repair log, which history reads
    assert store.history("7d") == [seed] and [e.kind for e in store_events(store, "7d")] == ["seed", "repair"]
    assert not store.repo.is_dirty(untracked_files=True)

    alert = repair_alert(root, store.repaired)
    assert (alert.event, alert.horizon, alert.subject) == (
        "config_store_repaired",
        "7d",
        "[forex][7d] config store repaired (1 repair)",
    )
    assert repair.kept in alert.text and repair.kept in alert.html and "nothing unvalidated went live" in alert.text
    assert repair_alert(root, []) is None


def test_staged_and_never_committed_files_never_go_live_and_are_kept(tmp_path):
    seeds = tmp_path / "configs"
    seeds.mkdir()
    shutil.copy2(SEED_CONFIGS_DIR / "chronos_7d.json", seeds)
    root = tmp_path / "store"
    seed = ConfigStore(root, seed_dir=seeds).current_version("7d")
    committed = (root / "chronos_7d.json").read_text()
    # a valid 15d file dropped in by hand (the store was seeded without 15d)
    dropped = json.loads((SEED_CONFIGS_DIR / "chronos_15d.json").read_text())
    (root / "chronos_15d.json").write_text(json.dumps(dropped))
    # a hand edit staged with `git add`, then the file put back: only the index differs from HEAD
    (root / "chronos_7d.json").write_text(HAND_EDIT)
    subprocess.run(["git", "add", "chronos_7d.json"], cwd=root, check=True)
    (root / "chronos_7d.json").write_text(committed)

    reader = ConfigStore(root, read_only=True)
    assert [(f.damage, f.path) for f in reader.damage] == [(Damage.UNTRACKED, "chronos_15d.json"), (Damage.STAGED, "")]
    store = ConfigStore(root)
    moved, reset = store.repaired
    assert moved.text == f"moved chronos_15d.json, never committed (not live, never validated), to {moved.kept}"
    assert json.loads((root / moved.kept).read_text()) == dropped and not (root / "chronos_15d.json").exists()
    with pytest.raises(ConfigStoreError, match="no configuration deployed for 15d"):
        store.read("15d")
    assert reset.text == (
        f"reset the index to the commit: chronos_7d.json staged but never committed; the staged contents are kept "
        f"in {reset.kept}"
    )
    assert reset.kept.startswith("backups/chronos_7d.json.staged.discarded-")
    assert (root / reset.kept).read_text() == HAND_EDIT
    assert store.history("7d") == [seed] and store.read("7d").context_length == 180
    assert not store.repo.is_dirty(untracked_files=True)
    assert ConfigStore(root).repairs == []


def test_a_deploy_over_a_hand_edit_made_after_the_open_keeps_the_edit_aside(tmp_path):
    store = ConfigStore(tmp_path / "store", seed_dir=SEED_CONFIGS_DIR)
    committed = store.path("7d").read_text()
    store.path("7d").write_text(HAND_EDIT)  # after the open: no repair has seen it
    config = parse_config(json.loads(HAND_EDIT) | {"context_length": 270})
    store.deploy(config, reason="validated elsewhere")
    [backup] = (store.root / "backups").glob("chronos_7d_*.json")
    [kept] = (store.root / "backups").glob("chronos_7d.json.discarded-*")
    assert backup.read_text() == committed  # the backup is the configuration the deploy replaced ...
    assert kept.read_text() == HAND_EDIT  # ... and the edit is kept on its own
    assert store.read("7d").context_length == 270 and not store.repo.is_dirty(untracked_files=True)

    # deploying what is committed already, over a hand edit: the edit is put back (and kept), no commit
    head = store.repo.head.commit.hexsha
    store.path("7d").write_text(HAND_EDIT)
    store.deploy(config, reason="again")
    assert store.repo.head.commit.hexsha == head and store.read("7d").context_length == 270
    assert len(list((store.root / "backups").glob("chronos_7d.json.discarded-*"))) == 2


def test_the_rollback_sensor_repairs_and_alerts(forex_env):
    instance, resources, working_area = forex_env
    store = working_area.config_store()
    seed = store.current_version("7d")
    store.path("7d").write_text(HAND_EDIT)
    context = dg.build_sensor_context(instance=instance, resources=resources)
    from forex_assets.defs.deployment.sensors import rollback_sensor

    assert rollback_sensor.evaluate_tick(context).run_requests == []
    [alert] = working_area.alert_log().entries()
    assert (alert.event, alert.horizon, alert.subject, alert.status) == (
        "config_store_repaired",
        "7d",
        "[forex][7d] config store repaired (1 repair)",
        "logged",  # no SMTP in the tests: the run log is the channel
    )
    store = ConfigStore(store.root, read_only=True)
    assert store.damage == [] and store.history("7d") == [seed] and store.read("7d").context_length == 180
    [kept] = (store.root / "backups").glob("chronos_7d.json.discarded-*")
    assert kept.read_text() == HAND_EDIT
    rollback_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources))
    assert len(working_area.alert_log().entries()) == 1  # nothing more to repair, nothing more said
