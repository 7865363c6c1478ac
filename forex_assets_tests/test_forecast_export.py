"""`forex-assets forecasts`: the recorded forecasts exported as they were recorded (quantiles, version, dates),
CSV and JSON, the latest origin by default or a range of origins, and nothing written in the working area."""

import csv
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from forex_assets.cli.forecasts import export_columns
from forex_assets.cli.main import cli
from forex_assets.core.forecasting.history import QUANTILE_COLUMNS, ForecastHistory, ForecastRecord
from forex_assets.core.forecasting.production import target_business_days
from forex_assets.core.horizons import horizon_steps
from forex_assets.core.working_area import PROJECT_ROOT

# (horizon, origin, config version); the 7d forecast is the newest of all, the 30d ones must not include it
RECORDED = [
    ("30d", "2026-11-02", "20261030T090000Z-1a2b3c4d"),
    ("30d", "2026-11-03", "20261030T090000Z-1a2b3c4d"),
    ("30d", "2026-11-04", "20261103T101500Z-5e6f7a8b"),
    ("7d", "2026-11-05", "20261030T090000Z-0f0f0f0f"),
]


def _record(horizon: str, origin: str, version: str, seed: int) -> ForecastRecord:
    steps = horizon_steps(horizon)
    rng = np.random.default_rng(seed)
    centre = 940.0 + np.cumsum(rng.normal(0, 3, steps))  # values with every digit used: exported exactly?
    spread = np.outer(np.linspace(1, 3, steps), [-19.6, -12.8, 0.0, 12.8, 19.6]) + rng.uniform(0, 1e-3, (steps, 5))
    return ForecastRecord(
        horizon=horizon,
        origin_date=pd.Timestamp(origin),
        last_price=939.0 + seed / 7,
        target_dates=target_business_days(pd.Timestamp(origin), steps),
        quantiles=np.sort(centre[:, None] + spread, axis=1),
        config_version=version,
        checkpoint="bundled:usdclp-chronos2-mini",
        config={"context_length": 180},
        inference_seconds=0.05,
    )


@pytest.fixture
def area(tmp_path, monkeypatch):
    """A working area ($FOREX_ASSETS_HOME) whose forecast history holds RECORDED; the records by origin."""
    root = tmp_path / "area"
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(root))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    history = ForecastHistory(root / "forecast_history.sqlite")
    records = {}
    for seed, (horizon, origin, version) in enumerate(RECORDED):
        records[horizon, origin] = _record(horizon, origin, version, seed)
        history.record(records[horizon, origin])
    created = {(r.horizon, f"{r.origin_date:%Y-%m-%d}"): r.created_at for r in history.runs().itertuples()}
    return root, records, created


def invoke(*args: str):
    return CliRunner().invoke(cli, ["forecasts", *args], catch_exceptions=False)


def one_line_error(result) -> str:
    assert result.exit_code == 2 and result.stdout == "", result.output
    [line] = result.stderr.splitlines()
    return line


def exported_csv(*args: str) -> list[dict]:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == ",".join(export_columns())
    return list(csv.DictReader(io.StringIO(result.stdout)))


def assert_as_recorded(rows: list[dict], records: dict, created: dict, horizon: str, origins: list[str]) -> None:
    """Every row is the recorded forecast's: values equal to the last bit, whether read from CSV text or JSON."""
    expected = [(origin, step) for origin in origins for step in range(1, horizon_steps(horizon) + 1)]
    assert [(row["origin_date"], int(row["step"])) for row in rows] == expected
    for row in rows:
        record = records[horizon, row["origin_date"]]
        step = int(row["step"])
        assert row["horizon"] == horizon
        assert row["target_date"] == f"{record.target_dates[step - 1]:%Y-%m-%d}"
        assert [float(row[c]) for c in QUANTILE_COLUMNS] == record.quantiles[step - 1].tolist()
        assert float(row["last_price"]) == record.last_price
        assert row["config_version"] == record.config_version
        assert row["created_at"] == created[horizon, row["origin_date"]]


def test_the_latest_forecast_by_default_as_csv(area):
    _, records, created = area
    rows = exported_csv("--horizon", "30d")
    assert list(rows[0]) == [
        "horizon", "origin_date", "step", "target_date", "q0_025", "q0_1", "q0_5", "q0_9", "q0_975",
        "last_price", "config_version", "created_at",
    ]  # fmt: skip
    assert_as_recorded(rows, records, created, "30d", ["2026-11-04"])
    assert rows[0]["target_date"] == "2026-11-05" and rows[-1]["target_date"] == "2026-12-17"  # 30 days, 8 Dec off
    assert rows[0]["config_version"] == "20261103T101500Z-5e6f7a8b"
    assert_as_recorded(exported_csv("--horizon", "7d"), records, created, "7d", ["2026-11-05"])


def test_with_a_state_database_url_the_forecasts_come_from_the_database(tmp_path, monkeypatch):
    """Production: $FOREX_STATE_DATABASE_URL names the database that holds the history (a one-file SQLite URL
    here; PostgreSQL in deploy/), and no forecast_history.sqlite exists in the working area."""
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(tmp_path / "area"))
    monkeypatch.setenv("FOREX_STATE_DATABASE_URL", url)
    # a leftover embedded-default history in the working area: the export must not copy it into the database
    leftover = ForecastHistory(tmp_path / "area" / "forecast_history.sqlite")
    leftover.record(_record("30d", "2026-10-01", "20261001T090000Z-99999999", 9))
    history = ForecastHistory(tmp_path / "unused.sqlite", database_url=url)
    records = {}
    for seed, (horizon, origin, version) in enumerate(RECORDED):
        records[horizon, origin] = _record(horizon, origin, version, seed)
        history.record(records[horizon, origin])
    created = {(r.horizon, f"{r.origin_date:%Y-%m-%d}"): r.created_at for r in history.runs().itertuples()}
    rows = exported_csv("--horizon", "30d", "--since", "2026-11-03")
    assert_as_recorded(rows, records, created, "30d", ["2026-11-03", "2026-11-04"])
    assert not (tmp_path / "unused.sqlite").exists()
    origins = sorted(history.runs("30d")["origin_date"].dt.strftime("%Y-%m-%d"))
    assert origins == ["2026-11-02", "2026-11-03", "2026-11-04"]  # the leftover 2026-10-01 was not copied in
    monkeypatch.setenv("FOREX_STATE_DATABASE_URL", "postgresql://u@127.0.0.1:1/db")
    assert "cannot be reached" in one_line_error(invoke("--horizon", "30d"))


def test_json_is_a_list_of_records_with_the_same_values(area):
    _, records, created = area
    result = invoke("--horizon", "30d", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and len(rows) == 30 and list(rows[0]) == export_columns()
    assert isinstance(rows[0]["step"], int) and all(isinstance(rows[0][c], float) for c in QUANTILE_COLUMNS)
    assert_as_recorded(rows, records, created, "30d", ["2026-11-04"])
    as_csv = exported_csv("--horizon", "30d")
    assert [{k: str(v) for k, v in row.items()} for row in rows] == as_csv  # the same export, either format


def test_a_range_of_origins_with_since_and_until(area):
    _, records, created = area
    days = ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert_as_recorded(exported_csv("--horizon", "30d", "--since", "2026-11-03"), records, created, "30d", days[1:])
    assert_as_recorded(exported_csv("--horizon", "30d", "--since", "2026-11-01"), records, created, "30d", days)
    both = exported_csv("--horizon", "30d", "--since", "2026-11-03", "--until", "2026-11-03")
    assert_as_recorded(both, records, created, "30d", ["2026-11-03"])
    assert_as_recorded(exported_csv("--horizon", "30d", "--until", "2026-11-02"), records, created, "30d", days[:1])
    assert exported_csv("--horizon", "30d", "--since", "2026-12-01") == []  # an empty range: the header only
    result = invoke("--horizon", "30d", "--since", "2026-12-01", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    backwards = invoke("--horizon", "30d", "--since", "2026-11-04", "--until", "2026-11-02")
    assert backwards.exit_code == 2 and "--since 2026-11-04 is after --until 2026-11-02" in backwards.stderr


def _snapshot(root) -> dict:
    """Every file under ``root`` with its bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def test_read_only_nothing_is_created_or_changed_in_the_working_area(area, tmp_path):
    root, _, _ = area
    before = _snapshot(root)
    assert list(before) == [root / "forecast_history.sqlite"]
    out = tmp_path / "export.json"
    for args in (
        ["--horizon", "30d"],
        ["--horizon", "30d", "--since", "2026-11-01", "--format", "json"],
        ["--horizon", "7d", "--until", "2026-11-30", "--format", "json", "--output", str(out)],
        ["--horizon", "15d"],  # refused: no 15d forecasts
    ):
        invoke(*args)
        assert _snapshot(root) == before, args
    assert out.read_text() == invoke("--horizon", "7d", "--format", "json").stdout


def test_clear_one_line_errors_and_no_working_area_created(tmp_path, monkeypatch):
    root = tmp_path / "nowhere"
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(root))
    out = tmp_path / "out.csv"
    line = one_line_error(invoke("--horizon", "30d", "--output", str(out)))
    assert line == (
        f"forex-assets forecasts: no forecast history at {root / 'forecast_history.sqlite'}: run `make run` "
        "first, or set DAGSTER_HOME (or FOREX_ASSETS_HOME) to the instance whose forecasts to export"
    )
    assert not root.exists() and not out.exists()
    root.mkdir()  # a working area without a history
    assert one_line_error(invoke("--horizon", "30d")).startswith("forex-assets forecasts: no forecast history at ")
    (root / "forecast_history.sqlite").touch()  # opening an empty file would write the schema into it
    assert one_line_error(invoke("--horizon", "30d")).endswith("is empty: not a forecast history")
    assert (root / "forecast_history.sqlite").stat().st_size == 0 and len(list(root.iterdir())) == 1
    (root / "forecast_history.sqlite").write_bytes(b"not a database, " * 512)
    line = one_line_error(invoke("--horizon", "30d"))
    assert line.startswith("forex-assets forecasts: ") and "the forecast history is corrupt" in line
    assert (root / "forecast_history.sqlite").read_bytes() == b"not a database, " * 512


def test_a_history_that_cannot_be_opened_is_a_one_line_error(area, monkeypatch):
    """What a reader without write access gets from SQLite in WAL mode (it cannot create the -shm file)."""
    root, _, _ = area

    def refuse(self, *args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(ForecastHistory, "runs", refuse)
    line = one_line_error(invoke("--horizon", "30d"))
    assert line.startswith(
        f"forex-assets forecasts: cannot read the forecast history {root / 'forecast_history.sqlite'}: "
        "attempt to write a readonly database"
    )


def test_no_forecasts_of_the_horizon_and_usage_errors(area):
    root, _, _ = area
    line = one_line_error(invoke("--horizon", "15d"))
    assert line == f"forex-assets forecasts: no 15d forecasts recorded in {root / 'forecast_history.sqlite'}"
    unknown = invoke("--horizon", "45d")
    assert unknown.exit_code == 2 and "'45d' is not one of '7d', '15d', '30d', '90d'" in unknown.stderr
    assert invoke("--horizon", "30d", "--format", "xml").exit_code == 2
    assert "Missing option '--horizon'" in invoke().stderr


def test_the_installed_command_with_the_working_area_from_the_environment(area, tmp_path):
    """As a BI job would run it: a subprocess, the working area from $DAGSTER_HOME (its forex_assets/)."""
    root, records, created = area
    home = tmp_path / "instance"
    (home / "forex_assets").mkdir(parents=True)
    (root / "forecast_history.sqlite").rename(home / "forex_assets" / "forecast_history.sqlite")
    env = {k: v for k, v in os.environ.items() if k != "FOREX_ASSETS_HOME"} | {"DAGSTER_HOME": str(home)}
    code = "from forex_assets.cli.main import cli; cli(prog_name='forex-assets')"
    done = subprocess.run(
        [sys.executable, "-c", code, "forecasts", "--horizon", "30d", "--since", "2026-11-02", "--until", "2026-11-03"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert_as_recorded(rows, records, created, "30d", ["2026-11-02", "2026-11-03"])
    assert sorted(p.name for p in home.rglob("*")) == ["forecast_history.sqlite", "forex_assets"]


def test_the_documented_schema_and_queries_match_the_real_tables(area):
    """docs/forecast_table.md: its columns and keys are the tables', and its latest-per-horizon query gives what
    the command exports."""
    root, _, _ = area
    doc = (PROJECT_ROOT / "docs" / "forecast_table.md").read_text()
    with closing(sqlite3.connect(f"file:{root / 'forecast_history.sqlite'}?mode=ro", uri=True)) as db:
        for table in ("forecast_runs", "forecast_steps"):
            section = doc.split(f"## `{table}`")[1].split("\n## ")[0]
            documented = re.findall(r"^\| `(\w+)` \| (\w+)(, \*\*PK\*\*)? \|", section, re.MULTILINE)
            actual = [(name, kind, ", **PK**" if key else "") for _, name, kind, _, _, key in db.execute(
                f"PRAGMA table_info({table})"
            )]  # fmt: skip
            assert documented == actual, table
        latest, in_range, *others = [db.execute(q).fetchall() for q in re.findall(r"```sql\n(.*?)```", doc, re.S)]
    assert len(others) == 2 and all(others)
    as_tuples = [
        (row["horizon"], row["origin_date"], int(row["step"]), row["target_date"],
         *(float(row[c]) for c in QUANTILE_COLUMNS), float(row["last_price"]), row["config_version"], row["created_at"])
        for horizon in ("30d", "7d") for row in exported_csv("--horizon", horizon)
    ]  # fmt: skip
    assert latest == as_tuples
    assert [(o, step) for o, step, *_ in in_range] == [(o, k) for o in ("2026-11-02", "2026-11-03", "2026-11-04")
                                                      for k in range(1, 31)]  # fmt: skip
