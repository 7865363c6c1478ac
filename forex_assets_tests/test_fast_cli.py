"""The read-only commands import only what they need (bench/bench_cli.py times them; nothing here is timed):

* `status`, `history` and `forecasts`, each in a fresh process on a real instance, answer without loading the
  code location (forex_assets.definitions, defs/), Dagster, torch, chronos or matplotlib; `status` and
  `history` without the modeling stack either (numpy, pandas, scipy, river);
* what `status` reads from Dagster's event log without Dagster (``cli/instance_reports.py``) is what Dagster
  reads: the latest materialization of each report and partition, every metadata kind, an asset wiped and
  materialized again, and the event log's place for each form of ``dagster.yaml``;
* the days between scheduled optimizations `status` shows are the policy in force's.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from forex_assets.cli import operator as operator_cli
from forex_assets.cli.dagster_reports import latest_reports_through_dagster
from forex_assets.cli.instance_reports import (
    DRIFT_REPORT,
    PERFORMANCE_REPORT,
    latest_reports,
    read_index_shard,
    sqlite_event_log_dir,
)
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.monitoring.triggers import TriggerPolicy
from forex_assets.core.policy_file import POLICY_FILE_ENV, load_policy_in_force
from forex_assets_tests.cli_home import CLEARED, FOREX_ASSETS, instance_home

#: never loaded by a read-only command
CODE_LOCATION = ("forex_assets.definitions", "forex_assets.defs", "dagster", "torch", "chronos", "matplotlib")
#: not loaded by `status` and `history` either (`forecasts` reads the forecast history with pandas)
MODELING_STACK = ("numpy", "pandas", "scipy", "river")
#: runs the command as the console script does, then writes the names of the modules it loaded to argv[1]
LOADED_MODULES = """
import json, sys
from forex_assets.cli.main import cli
try:
    cli(sys.argv[2:], prog_name="forex-assets")
except SystemExit as stop:
    code = stop.code
with open(sys.argv[1], "w") as file:
    json.dump(sorted(sys.modules), file)
sys.exit(code)
"""


def _loaded(names: list[str], packages: tuple[str, ...]) -> list[str]:
    return [name for name in names if any(name == p or name.startswith(f"{p}.") for p in packages)]


def _environment(home: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in (*CLEARED, POLICY_FILE_ENV)} | {"DAGSTER_HOME": str(home)}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """An instance after one real cycle, `forex-assets run --horizons 7d` (~30 s): forecasts, drift and
    performance reports, a trigger decision, a search and its validation."""
    home = instance_home(tmp_path_factory.mktemp("fast_cli"))
    done = subprocess.run(
        [str(FOREX_ASSETS), "run", "--horizons", "7d"], env=_environment(home), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return home


def _run_in_fresh_process(home: Path, tmp_path: Path, *args: str) -> tuple[str, list[str]]:
    """(stdout, modules loaded) of ``forex-assets ARGS`` in a fresh interpreter on ``home``."""
    record = tmp_path / f"modules_{args[0]}.json"
    done = subprocess.run(
        [sys.executable, "-c", LOADED_MODULES, str(record), *args],
        env=_environment(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(record.read_text())


def test_status_loads_neither_the_code_location_nor_the_modeling_stack(home, tmp_path):
    text, modules = _run_in_fresh_process(home, tmp_path, "status")
    assert _loaded(modules, CODE_LOCATION) == [] and _loaded(modules, MODELING_STACK) == []
    [row] = [line for line in text.splitlines() if line.startswith("7d ")]
    reports = latest_reports_through_dagster(home, {"7d": "7d|USDCLP"}, (DRIFT_REPORT, PERFORMANCE_REPORT))
    severity = reports["7d"][0]["severity"]
    assert f"{severity} (" in row and "unavailable" not in text  # the drift report was read, without Dagster
    assert "forex_assets.cli.instance_reports" in modules and "forex_assets.cli.dagster_reports" not in modules


def test_status_with_a_policy_file_in_force_stays_light(home, tmp_path):
    """Production sets $FOREX_POLICY_FILE: reading it must not pull the modeling stack in (the thresholds'
    dataclasses live in core/*/thresholds.py, away from numpy, scipy and torch)."""
    policy = tmp_path / "slow_schedule.json"
    policy.write_text(json.dumps({"name": "slow", "triggers": {"schedule_days": 28}}))
    record = tmp_path / "modules_status_policy.json"
    done = subprocess.run(
        [sys.executable, "-c", LOADED_MODULES, str(record), "status"],
        env=_environment(home) | {POLICY_FILE_ENV: str(policy)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    modules = json.loads(record.read_text())
    assert _loaded(modules, CODE_LOCATION) == [] and _loaded(modules, MODELING_STACK) == []
    assert "forex_assets.core.policy_file" in modules


def test_history_loads_neither_the_code_location_nor_the_modeling_stack(home, tmp_path):
    text, modules = _run_in_fresh_process(home, tmp_path, "history", "--horizon", "7d")
    assert _loaded(modules, CODE_LOCATION) == [] and _loaded(modules, MODELING_STACK) == []
    assert text.startswith("7d history") and " seed " in text and " decision " in text


def test_forecasts_do_not_load_the_code_location(home, tmp_path):
    text, modules = _run_in_fresh_process(home, tmp_path, "forecasts", "--horizon", "7d")
    assert _loaded(modules, CODE_LOCATION) == []
    assert text.startswith("horizon,origin_date,step,target_date,") and len(text.splitlines()) > 1


def _same(ours: object, dagsters: object) -> bool:
    if isinstance(dagsters, float) and math.isnan(dagsters):
        return isinstance(ours, float) and math.isnan(ours)
    return ours == dagsters


def test_the_reports_read_without_dagster_are_those_dagster_reads(home):
    ours = latest_reports(home, HORIZONS)
    partitions = {h: f"{h}|USDCLP" for h in HORIZONS}
    dagsters = latest_reports_through_dagster(home, partitions, (DRIFT_REPORT, PERFORMANCE_REPORT))
    assert ours["7d"][0] and ours["7d"][1] and ours["30d"] == ({}, {})  # only 7d ran
    for horizon in HORIZONS:
        for mine, theirs in zip(ours[horizon], dagsters[horizon], strict=True):
            assert mine.keys() == theirs.keys()
            for label, value in theirs.items():
                if isinstance(value, dg.TableMetadataValue):  # status shows no table: kept as stored
                    assert len(mine[label]["records"]) == len(value.records)
                else:
                    assert _same(mine[label], value), (horizon, label, mine[label], value)


EVERY_KIND = {
    "text": "HIGH",
    "int": 3,
    "float": 1.25,
    "nan": float("nan"),
    "infinite": float("inf"),
    "bool": False,
    "none": None,
    "markdown": dg.MetadataValue.md("- a rule"),
    "json": {"a": [1, 2.5, None]},
    "path": dg.MetadataValue.path("/tmp/report.html"),
    "url": dg.MetadataValue.url("https://example.org/report"),
    "timestamp": dg.MetadataValue.timestamp(1767225600.5),
}


def test_every_metadata_kind_the_latest_event_and_a_wipe_read_as_dagster_reads_them(tmp_path):
    home = instance_home(tmp_path)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:

        def materialize(asset: str, partition: str, **metadata) -> None:
            event = dg.AssetMaterialization(asset, partition=f"{partition}|USDCLP", metadata=metadata)
            instance.report_runless_asset_event(event)

        materialize(DRIFT_REPORT, "7d", severity="LOW")
        materialize(DRIFT_REPORT, "7d", **EVERY_KIND)  # the latest of 7d
        materialize(DRIFT_REPORT, "30d", severity="MEDIUM")
        materialize(PERFORMANCE_REPORT, "7d", degradation_rmse_pct=17.5)
        instance.wipe_assets([dg.AssetKey(PERFORMANCE_REPORT)])
        materialize(PERFORMANCE_REPORT, "30d", degradation_rmse_pct=-2.0)  # after the wipe: counts
    ours = latest_reports(home, HORIZONS)
    partitions = {h: f"{h}|USDCLP" for h in HORIZONS}
    dagsters = latest_reports_through_dagster(home, partitions, (DRIFT_REPORT, PERFORMANCE_REPORT))
    assert ours["7d"][0].keys() == EVERY_KIND.keys() and ours["7d"][0]["markdown"] == "- a rule"
    assert ours["7d"][1] == {} and ours["30d"] == ({"severity": "MEDIUM"}, {"degradation_rmse_pct": -2.0})
    for horizon in HORIZONS:
        for mine, theirs in zip(ours[horizon], dagsters[horizon], strict=True):
            assert mine.keys() == theirs.keys()
            assert all(_same(mine[label], value) for label, value in theirs.items()), (mine, theirs)


def test_an_instance_with_nothing_materialized_has_no_reports(tmp_path):
    home = instance_home(tmp_path)
    assert latest_reports(home, HORIZONS) == {h: ({}, {}) for h in HORIZONS}
    assert not (home / "history").exists()  # nothing created


@pytest.mark.parametrize(
    "config",
    [
        None,  # no dagster.yaml: Dagster's defaults
        {"telemetry": {"enabled": False}},
        {"storage": {"sqlite": {"base_dir": "{tmp}/sqlite_base"}}},
        {"storage": {"sqlite": {"base_dir": {"env": "FAST_CLI_TEST_BASE"}}}},
        {
            "event_log_storage": {
                "module": "dagster._core.storage.event_log",
                "class": "SqliteEventLogStorage",
                "config": {"base_dir": "{tmp}/legacy_events"},
            }
        },
        {
            "run_storage": {
                "module": "dagster._core.storage.runs",
                "class": "SqliteRunStorage",
                "config": {"base_dir": "{tmp}/legacy_runs"},
            }
        },
    ],
)
def test_the_event_log_is_where_dagster_puts_it(tmp_path, monkeypatch, config):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FAST_CLI_TEST_BASE", str(tmp_path / "from_env"))
    if config is not None:
        (home / "dagster.yaml").write_text(json.dumps(config).replace("{tmp}", str(tmp_path)))  # JSON is YAML
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        storage = instance.event_log_storage
        assert type(storage).__name__ == "SqliteEventLogStorage"
        assert sqlite_event_log_dir(home) == Path(storage._base_dir)


def test_any_other_event_log_is_left_to_dagster(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml", home / "dagster.yaml")
    assert sqlite_event_log_dir(home) is None  # production's PostgreSQL
    (home / "dagster.yaml").write_text("instance_class:\n  module: somewhere\n  class: SomeInstance\n")
    assert sqlite_event_log_dir(home) is None


def test_an_index_shard_of_another_dagster_version_is_left_to_dagster(tmp_path):
    import sqlite3

    from forex_assets.cli.instance_reports import UnknownEventFormat

    directory = tmp_path / "runs"
    directory.mkdir()
    sqlite3.connect(directory / "index.db").execute("CREATE TABLE event_logs (id INTEGER)").connection.close()
    with pytest.raises(UnknownEventFormat, match="no such"):
        read_index_shard(directory, ("7d",))


def test_status_schedules_with_the_policy_in_force(tmp_path, monkeypatch):
    assert operator_cli.POLICY_FILE_ENV == POLICY_FILE_ENV
    monkeypatch.delenv(POLICY_FILE_ENV, raising=False)
    assert operator_cli.schedule_days() == load_policy_in_force().settings.triggers.schedule_days
    assert operator_cli.schedule_days() == TriggerPolicy().schedule_days
    policy = tmp_path / "slow.json"
    policy.write_text(json.dumps({"name": "slow", "triggers": {"schedule_days": 21}}))
    monkeypatch.setenv(POLICY_FILE_ENV, str(policy))
    assert operator_cli.schedule_days() == 21
    policy.write_text(json.dumps({"name": "bad", "triggers": {"schedule_days": "often"}}))
    with pytest.raises(operator_cli.OperatorError, match="slow.json"):
        operator_cli.schedule_days()


def test_the_migration_heads_read_without_alembic_are_alembics():
    from forex_assets.core.storage.branch_heads import branch_heads
    from forex_assets.core.storage.schema_versions import MIGRATIONS_DIR, _script, target_revisions
    from forex_assets.core.storage.tables import PARTS

    heads = branch_heads(MIGRATIONS_DIR / "versions")
    script = _script()
    assert heads is not None and set(heads) == set(PARTS)
    assert set(heads.values()) == set(script.get_heads()) == target_revisions(None)
    for part in PARTS:
        assert {heads[part]} == {r.revision for r in script.get_revisions(f"{part}@head")} == target_revisions(part)


def test_migration_scripts_in_another_form_are_left_to_alembic(tmp_path):
    from forex_assets.core.storage.branch_heads import branch_heads

    def script(name: str, revision: str, down: object, labels: object, depends: object = None) -> None:
        lines = [f"revision = {revision!r}", f"down_revision = {down!r}", f"branch_labels = {labels!r}"]
        (tmp_path / f"{name}.py").write_text("\n".join([*lines, f"depends_on = {depends!r}", ""]))

    script("a1", "a1", None, ("a",))
    script("a2", "a2", "a1", None)
    script("b1", "b1", None, ("b",))
    assert branch_heads(tmp_path) == {"a": "a2", "b": "b1"}
    script("a3", "a3", ("a2", "b1"), None)  # a merge
    assert branch_heads(tmp_path) is None
    (tmp_path / "a3.py").unlink()
    script("b2", "b2", "b1", None, depends="a1")  # a dependency between branches
    assert branch_heads(tmp_path) is None
    script("b2", "b2", "b1", None)
    script("b3", "b3", "b1", None)  # two heads on one branch
    assert branch_heads(tmp_path) is None
