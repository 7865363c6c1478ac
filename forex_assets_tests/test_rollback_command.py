"""`forex-assets rollback --horizon H [--to VERSION]` through the real command, on a temporary $DAGSTER_HOME
prepared by `forex-assets run --no-recalibration` and two deploys through the config store's own API: the
rollback is a commit of the store, an alert row, a run of rollback_job on the instance and a refreshed
forecast, and `forex-assets status` shows the new version; refusals are one line with exit status 2."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from forex_assets.core.alerting.delivery import AlertLog
from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.forecasting.history import ForecastHistory

COMMAND = Path(sys.executable).parent / "forex-assets"
REASON = "manual rollback (forex-assets rollback)"


def forex_assets(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("FOREX_ASSETS_HOME", "FOREX_CONFIG_STORE_DIR")}
    env["DAGSTER_HOME"] = str(home)
    return subprocess.run([str(COMMAND), *args], env=env, capture_output=True, text=True, timeout=300)


def one_line_refusal(done: subprocess.CompletedProcess) -> str:
    """The refusal: exit status 2, nothing on stdout, one line on stderr (no traceback)."""
    assert done.returncode == 2 and done.stdout == "", done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    return line


def _store(home: Path) -> ConfigStore:
    return ConfigStore(home / "forex_assets" / "config_store")


@pytest.fixture(scope="module")
def prepared_home(tmp_path_factory):
    """An instance after one forecast cycle of 7d, then two deploys of 7d: (home, seed, first, second)."""
    home = tmp_path_factory.mktemp("prepared") / "home"
    done = forex_assets(home, "run", "--no-recalibration", "--horizons", "7d", "7d")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("7d ")]
    assert len(rows) == 1, done.stdout  # --horizons 7d 7d forecasts 7d once
    store = _store(home)
    seed = store.current_version("7d")
    first = store.deploy(store.read("7d").model_copy(update={"context_length": 90}), reason="test deploy 1")
    second = store.deploy(store.read("7d").model_copy(update={"context_length": 270}), reason="test deploy 2")
    return home, seed, first, second


@pytest.fixture
def home(prepared_home, tmp_path):
    """A copy of the prepared instance for one test, and its versions."""
    prepared, *versions = prepared_home
    copy = tmp_path / "home"
    shutil.copytree(prepared, copy, symlinks=True)
    return copy, *versions


def test_rollback_restores_the_previous_version_alerts_and_status_shows_it(home, monkeypatch):
    home, seed, first, second = home
    done = forex_assets(home, "rollback", "--horizon", "7d")
    assert done.returncode == 0, done.stdout + done.stderr
    store = _store(home)
    new = store.current_version("7d")
    lines = done.stdout.splitlines()
    assert lines[0] == f"7d rolled back: {second.id} -> {first.id} (recorded as version {new.id})"
    assert lines[1] == f"  reason    {REASON}"
    assert lines[2].startswith("  forecast  origin 2026-10-30: median ") and lines[2].endswith(f"with {new.id}")
    # the config store: a rollback commit that restores the first deploy's configuration
    assert store.read("7d").context_length == 90
    log = subprocess.run(
        ["git", "-C", str(store.root), "log", "--format=%s", "--", "chronos_7d.json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert log[0] == f"[7d] rollback: {REASON} (from {second.id} to {first.id})"
    assert log[1:3] == ["[7d] deploy: test deploy 2", "[7d] deploy: test deploy 1"]
    # the alert, in the alert log that status reads
    alerts = AlertLog(home / "forex_assets" / "alerts.sqlite").entries("7d")
    assert [(a.event, a.subject) for a in alerts] == [("rollback", f"[forex][7d] ROLLBACK v{second.id} -> v{first.id}")]
    # the refreshed forecast was made with the new version
    runs = ForecastHistory(home / "forex_assets" / "forecast_history.sqlite").runs("7d")
    assert runs["config_version"].iloc[-1] == new.id
    # a run of rollback_job on the instance (what the UI lists)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        [record] = instance.get_run_records(filters=dg.RunsFilter(job_name="rollback_job"))
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert record.dagster_run.tags["forex/launched_by"] == "forex-assets rollback"
    assert record.dagster_run.run_id in lines[3]
    # and status shows the new version, and the rollback as the last alert
    status = forex_assets(home, "status")
    assert status.returncode == 0, status.stderr
    [row] = [line for line in status.stdout.splitlines() if line.startswith("7d ")]
    assert new.id in row and f"ROLLBACK v{second.id}" in row


def test_rollback_to_a_named_version(home):
    home, seed, first, second = home
    done = forex_assets(home, "rollback", "--horizon", "7d", "--to", seed.id, "--reason", "back to the seed")
    assert done.returncode == 0, done.stdout + done.stderr
    store = _store(home)
    new = store.current_version("7d")
    assert done.stdout.splitlines()[0] == f"7d rolled back: {second.id} -> {seed.id} (recorded as version {new.id})"
    assert new.summary == f"[7d] rollback: back to the seed (from {second.id} to {seed.id})"
    assert store.read("7d") == store.read("7d", seed.id)


def test_refusals_are_one_line_and_change_nothing(home):
    home, seed, first, second = home
    head = _store(home).repo.head.commit.hexsha
    line = one_line_refusal(forex_assets(home, "rollback", "--horizon", "7d", "--to", second.id))
    assert line.startswith("forex-assets rollback: rollback 7d: ") and "nothing was changed" in line
    assert f"already on that configuration (version {second.id})" in line
    line = one_line_refusal(forex_assets(home, "rollback", "--horizon", "7d", "--to", "20990101T000000Z-deadbeef"))
    assert line.startswith("forex-assets rollback: rollback 7d: unknown configuration version")
    assert line.endswith(f"the versions of 7d, newest first: {second.id}, {first.id}, {seed.id}")
    assert _store(home).repo.head.commit.hexsha == head  # nothing committed
    assert not (home / "forex_assets" / "alerts.sqlite").exists()  # nothing alerted
    line = one_line_refusal(forex_assets(home, "rollback", "--horizon", "8d"))
    assert line == "forex-assets rollback: unknown horizon '8d'; horizons are 7d, 15d, 30d, 90d"


def test_rollback_without_an_instance_or_a_previous_version_is_refused(home, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line_refusal(forex_assets(empty, "rollback", "--horizon", "7d"))
    assert line.startswith(f"forex-assets rollback: {empty} is not a Dagster instance") and "make run" in line
    home, *_ = home  # 30d was never deployed: its seed is its only version
    line = one_line_refusal(forex_assets(home, "rollback", "--horizon", "30d"))
    assert (
        line == "forex-assets rollback: rollback 30d: 30d has no previous version to roll back to; nothing was changed"
    )


def test_the_refresh_uses_the_stored_prices_whatever_the_price_options(home, tmp_path):
    """The refreshed forecast is made from the prices the instance stored (what the forecasts and the
    rollback sensor used): a price source out of reach, here a CSV that does not exist, does not stop a
    rollback while they can be read."""
    home, seed, first, second = home
    done = forex_assets(home, "rollback", "--horizon", "7d", "--source", "csv", "--csv-path", str(tmp_path / "no.csv"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].startswith(f"7d rolled back: {second.id} -> {first.id}")
    assert "origin 2026-10-30" in done.stdout  # the stored prices' last business day (the synthetic series)


def test_prices_the_forecast_refresh_cannot_use_refuse_the_rollback_before_anything_changes(home, tmp_path):
    """Without stored prices that can be read, the price options are read first: a CSV that does not exist
    or is malformed refuses the rollback in one line naming the file, with nothing committed and nothing
    alerted."""
    home, seed, first, second = home
    (home / "storage" / "pair_prices" / "USDCLP").unlink()  # the stored value gone: the price source is the fallback
    head = _store(home).repo.head.commit.hexsha
    missing = tmp_path / "missing.csv"
    malformed = tmp_path / "malformed.csv"
    malformed.write_text("date,usdclp\n2024-01-02,878.01\n2024-01-03,abc\n")
    for csv, what in ((missing, "does not exist"), (malformed, "line 3: 'abc'")):
        line = one_line_refusal(
            forex_assets(home, "rollback", "--horizon", "7d", "--source", "csv", "--csv-path", str(csv))
        )
        assert line.startswith("forex-assets rollback: rollback 7d refused, nothing was changed: "), line
        assert str(csv) in line and what in line, line
    assert _store(home).repo.head.commit.hexsha == head
    assert _store(home).current_version("7d").id == second.id
    assert not (home / "forex_assets" / "alerts.sqlite").exists()
