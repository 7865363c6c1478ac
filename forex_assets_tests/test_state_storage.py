"""The project's state behind one storage layer (``forex_assets.core.storage``), on SQLite: the embedded default
keeps the same files, adopts the files of older versions, writes each record whole from concurrent processes,
and names the file in its errors. The same against PostgreSQL: test_state_storage_postgres.py (which uses the
writers and checks of this module)."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic.config import main as alembic_main

from forex_assets.core.alerting.delivery import AlertLog, Delivery
from forex_assets.core.corrupt_files import CorruptFileError
from forex_assets.core.forecasting import history as history_module
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.storage import (
    STATE_DATABASE_URL_ENV,
    VERSION_TABLE,
    StateDatabaseError,
    complete_url,
    configured_url,
    describe_url,
    tables,
)
from forex_assets.core.storage import engine as storage_engine
from forex_assets.core.storage.schema_versions import MIGRATIONS_DIR, target_revisions
from forex_assets.defs.resources import WorkingArea
from forex_assets_tests.test_state_storage_common import (
    HEADS,
    LEGACY,
    STEPS,
    alert,
    assert_legacy_rows,
    assert_nothing_lost_or_duplicated,
    decision,
    forecast,
    run_writers,
    sqlite_schema,
    sqlite_versions,
    write_legacy_files,
)

# ------------------------------------------------------------------------------------------ tests


def test_the_stored_quantile_columns_are_the_forecast_quantiles():
    assert tables.STORED_QUANTILES == FORECAST_QUANTILES
    assert history_module.QUANTILE_COLUMNS == tables.QUANTILE_COLUMNS == ["q0_025", "q0_1", "q0_5", "q0_9", "q0_975"]
    assert [c.name for c in tables.forecast_steps.columns][-5:] == tables.QUANTILE_COLUMNS


def test_one_branch_of_migrations_per_part_each_with_one_head():
    assert target_revisions(None) == HEADS
    assert {part: target_revisions(part) for part in tables.PARTS} == {
        "forecast_history": {"forecast_history_0002"},
        "decisions": {"decisions_0003"},
        "alerts": {"alerts_0002"},
        "backtest_cache": {"backtest_cache_0001"},
    }


def test_the_embedded_default_keeps_its_three_files_each_with_its_own_part(tmp_path, monkeypatch):
    monkeypatch.delenv(STATE_DATABASE_URL_ENV, raising=False)
    area = WorkingArea(path=str(tmp_path / "area"))
    assert area.state_database is None
    area.forecast_history().record(forecast("2024-03-01"))
    area.decision_log().record(decision("a", date(2024, 3, 1), optimize=True))
    area.alert_log().record(alert("a"), Delivery("logged"))

    files = {p.name for p in (tmp_path / "area").iterdir()}
    assert files == {"forecast_history.sqlite", "trigger_decisions.sqlite", "alerts.sqlite"}  # no -wal, -shm left
    root = tmp_path / "area"
    assert {"forecast_runs", "forecast_steps"} <= set(sqlite_schema(root / "forecast_history.sqlite"))
    assert "decisions" not in sqlite_schema(root / "forecast_history.sqlite")
    assert {"decisions", "decisions_optimized", "decisions_performance_override", "optimization_verdicts"} <= set(
        sqlite_schema(root / "trigger_decisions.sqlite")
    )
    alerts_schema = sqlite_schema(root / "alerts.sqlite")
    assert "alerts" in alerts_schema and "forecast_runs" not in alerts_schema
    assert sqlite_versions(root / "forecast_history.sqlite") == {"forecast_history_0002"}
    assert sqlite_versions(root / "trigger_decisions.sqlite") == {"decisions_0003"}
    assert sqlite_versions(root / "alerts.sqlite") == {"alerts_0002"}
    with sqlite3.connect(root / "forecast_history.sqlite") as db:  # the history in WAL mode, as before
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_files_written_before_the_storage_layer_are_adopted_and_keep_working(tmp_path):
    root = tmp_path / "area"
    write_legacy_files(root)

    history = ForecastHistory(root / "forecast_history.sqlite")
    log = DecisionLog(root / "trigger_decisions.sqlite")
    alerts = AlertLog(root / "alerts.sqlite")

    assert_legacy_rows(history, log, alerts)
    assert sqlite_versions(root / "trigger_decisions.sqlite") == {"decisions_0003"}
    decisions_schema = sqlite_schema(root / "trigger_decisions.sqlite")
    assert "recorded_at TEXT" in decisions_schema["decisions"]
    assert set(tables.FLAG_INDEXES.values()) | set(tables.VERDICT_INDEXES.values()) <= set(decisions_schema)
    # and they are written to as before
    history.record(forecast("2023-05-02", version="new-v"))  # replaces the old origin
    log.record(decision("new", date(2023, 5, 4), optimize=True), at=datetime(2023, 5, 4, tzinfo=UTC))
    log.record_verdict("7d", date(2023, 5, 4), "approved")
    alerts.record(alert("new"), Delivery("sent", 1))
    assert history.runs("7d")["config_version"].tolist() == ["new-v"] and len(history.steps("7d")) == STEPS
    assert log.last_optimization("7d") == date(2023, 5, 4) and log.entries()[-1][0] == datetime(2023, 5, 4, tzinfo=UTC)
    assert alerts.last("7d").subject == "[forex][7d] new"

    # opening a current file again only reads it
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.iterdir()}
    ForecastHistory(root / "forecast_history.sqlite")
    DecisionLog(root / "trigger_decisions.sqlite")
    AlertLog(root / "alerts.sqlite")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.iterdir()} == before


def test_one_sqlite_url_holds_every_part(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    area = WorkingArea(path=str(tmp_path / "area"), state_database_url=url)
    area.forecast_history().record(forecast("2024-03-01"))
    area.decision_log().record(decision("a", date(2024, 3, 1)))
    area.alert_log().record(alert("a"), Delivery("logged"))
    assert {"forecast_runs", "forecast_steps", "decisions", "alerts"} <= set(sqlite_schema(tmp_path / "state.sqlite"))
    assert sqlite_versions(tmp_path / "state.sqlite") == HEADS
    assert not any(p.suffix == ".sqlite" for p in (tmp_path / "area").iterdir())


def test_a_working_areas_files_are_copied_once_into_a_shared_database(tmp_path, caplog):
    root = tmp_path / "area"
    write_legacy_files(root)
    legacy = {name: (root / name).read_bytes() for name in LEGACY}
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"  # the same path as to PostgreSQL (see the postgres tests)
    area = WorkingArea(path=str(root), state_database_url=url)

    with caplog.at_level("WARNING", logger="forex_assets.core.storage.legacy"):
        history, log, alerts = area.forecast_history(), area.decision_log(), area.alert_log()
    assert_legacy_rows(history, log, alerts)
    assert len(caplog.records) == 3 and "copied 4 row(s) from" in caplog.records[0].getMessage()
    assert "is no longer read or written" in caplog.records[0].getMessage()

    log.record(decision("new", date(2023, 5, 4)))
    again = area.decision_log()  # not copied twice
    assert [d.reasons.get("marker") for d in again.decisions()] == [None, None, "new"]
    assert len(area.forecast_history().runs()) == 1 and len(area.alert_log().entries()) == 2
    assert {name: (root / name).read_bytes() for name in LEGACY} == legacy  # the files only read


def test_sqlite_four_processes_write_concurrently_without_losing_or_duplicating_rows(tmp_path):
    run_writers(None, tmp_path / "area")
    root = tmp_path / "area"
    assert_nothing_lost_or_duplicated(
        ForecastHistory(root / "forecast_history.sqlite"),
        DecisionLog(root / "trigger_decisions.sqlite"),
        AlertLog(root / "alerts.sqlite"),
    )


def test_a_file_locked_too_long_is_an_error_naming_it_and_nothing_is_written(tmp_path, monkeypatch):
    path = tmp_path / "trigger_decisions.sqlite"
    monkeypatch.setattr(storage_engine, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    log = DecisionLog(path)  # its engine waits 0.2 s for a lock
    log.record(decision("kept", date(2024, 3, 1)))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StateDatabaseError) as raised:
            log.record(decision("refused", date(2024, 3, 2)))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(raised.value)
    assert message.startswith(f"{path}: recording a decision in the trigger decision log failed (database is locked)")
    assert "held the file locked" in message and "stored whole or not at all" in message
    assert raised.value.database == str(path) and raised.value.__cause__ is None
    assert [d.reasons["marker"] for d in log.decisions()] == ["kept"]
    log.record(decision("after", date(2024, 3, 3)))
    assert [d.reasons["marker"] for d in log.decisions()] == ["kept", "after"]


def test_the_switch_to_wal_waits_for_a_writer_like_any_lock_and_still_gives_up_at_the_timeout(tmp_path, monkeypatch):
    # SQLite fails a journal-mode switch at once, without its busy handler, while another connection holds
    # the write lock of a file still in rollback mode: what the first opens of a new working area met when
    # several processes raced (one in four CI runs of the concurrent-writers test failed at open in 4 ms)
    path = tmp_path / "forecast_history.sqlite"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE unrelated (x)")
    holder.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.5, lambda: holder.execute("ROLLBACK"))
    started = time.monotonic()
    releaser.start()
    try:
        history = ForecastHistory(path)
    finally:
        releaser.join()
    waited_s = time.monotonic() - started
    assert waited_s >= 0.45
    assert history.runs().empty
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()

    other = tmp_path / "other" / "forecast_history.sqlite"
    other.parent.mkdir()
    monkeypatch.setattr(storage_engine, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    second = sqlite3.connect(other, isolation_level=None)
    second.execute("CREATE TABLE unrelated (x)")
    second.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StateDatabaseError) as raised:
            ForecastHistory(other)
    finally:
        second.execute("ROLLBACK")
        second.close()
        holder.close()
    assert str(raised.value).startswith(f"{other}: opening the forecast history failed (database is locked)")


def test_a_corrupt_decision_log_or_alert_log_is_an_error_naming_the_file(tmp_path):
    parts = (
        (DecisionLog, "trigger_decisions.sqlite", "trigger decision log"),
        (AlertLog, "alerts.sqlite", "alert log"),
    )
    for cls, name, what in parts:
        path = tmp_path / name
        path.write_bytes(b"not a database, " * 512)
        with pytest.raises(CorruptFileError) as raised:
            cls(path)
        assert str(raised.value).startswith(f"{path}: the {what} is corrupt (file is not a database)")
        assert raised.value.path == path and path.read_bytes() == b"not a database, " * 512


def test_a_database_migrated_by_a_newer_version_is_refused_clearly(tmp_path):
    path = tmp_path / "alerts.sqlite"
    AlertLog(path)
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'alerts_0099'")
    db.close()
    with pytest.raises(StateDatabaseError, match="at migration alerts_0099, which this version of forex_assets"):
        AlertLog(path)


# ------------------------------------------------------------------------------------------ URLs


def test_the_url_comes_from_the_resource_else_the_environment_else_none():
    assert configured_url(None, {}) is None
    assert configured_url("", {STATE_DATABASE_URL_ENV: "  "}) is None
    assert configured_url(None, {STATE_DATABASE_URL_ENV: "postgresql://u@h/d"}) == "postgresql://u@h/d"
    assert configured_url("sqlite:///x", {STATE_DATABASE_URL_ENV: "postgresql://u@h/d"}) == "sqlite:///x"


def test_a_postgres_url_gets_psycopg2_and_its_password_from_the_environment():
    env = {"DAGSTER_PG_PASSWORD": "helm-secret", "DAGSTER_POSTGRES_PASSWORD": "compose-secret"}
    url = complete_url("postgresql://dagster@db:5432/dagster", env)
    assert url.drivername == "postgresql+psycopg2" and url.password == "compose-secret"
    assert complete_url("postgresql://dagster@db/d", {"DAGSTER_PG_PASSWORD": "h"}).password == "h"
    assert complete_url("postgresql://dagster@db/d", env | {"FOREX_STATE_DATABASE_PASSWORD": "own"}).password == "own"
    assert complete_url("postgresql+psycopg2://dagster:inline@db/d", env).password == "inline"
    assert complete_url("postgresql://dagster@db/d", {}).password is None  # libpq's own (PGPASSWORD, .pgpass)
    assert describe_url(url) == "postgresql+psycopg2://dagster:***@db:5432/dagster (schema forex)"
    with pytest.raises(ValueError, match="is for mysql: only PostgreSQL"):
        complete_url("mysql://u:secret@h/d", {})
    with pytest.raises(ValueError, match="is not a database URL") as raised:
        complete_url("u:secret@h/d", {})
    assert "secret" not in str(raised.value)


def test_the_alembic_command_line_migrates_a_database_given_by_url(tmp_path):
    path = tmp_path / "state.sqlite"
    alembic_main(["-c", str(MIGRATIONS_DIR / "alembic.ini"), "-x", f"url=sqlite:///{path}", "upgrade", "heads"])
    assert sqlite_versions(path) == HEADS
    engine = sa.create_engine(f"sqlite:///{path}")
    assert {"forecast_runs", "forecast_steps", "decisions", "alerts"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_a_corrupt_file_to_move_into_a_shared_database_is_an_error_naming_it_and_is_left_alone(tmp_path):
    root = tmp_path / "area"
    root.mkdir()
    garbage = b"not a database, " * 512
    (root / "forecast_history.sqlite").write_bytes(garbage)
    area = WorkingArea(path=str(root), state_database_url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    with pytest.raises(CorruptFileError) as raised:
        area.forecast_history()
    path = root / "forecast_history.sqlite"
    assert str(raised.value).startswith(f"{path}: the forecast history is corrupt (file is not a database)")
    assert raised.value.path == path and path.read_bytes() == garbage
    assert area.decision_log().decisions() == []  # the other parts are not concerned
