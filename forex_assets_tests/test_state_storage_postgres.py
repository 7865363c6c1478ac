"""The project's state in PostgreSQL (a throwaway cluster, as test_production_instance.py): tables in the schema
`forex` beside Dagster's, four processes writing at once lose or duplicate nothing, and a server stopped in
the middle of a sequence of writes is a clear error naming the database, leaves nothing half-written, and
the next write after its restart succeeds."""

from __future__ import annotations

import glob
import shutil
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from forex_assets.core.alerting.delivery import AlertLog, Delivery
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.monitoring.decision_log import VERDICT_INDEXES, DecisionLog, _last_flagged_statement
from forex_assets.core.storage import STATE_DATABASE_URL_ENV, StateDatabaseError
from forex_assets.defs.resources import WorkingArea
from forex_assets_tests.postgres_cluster import USER, PostgresCluster, query
from forex_assets_tests.test_state_storage_common import (
    HEADS,
    STEPS,
    alert,
    assert_legacy_rows,
    assert_nothing_lost_or_duplicated,
    decision,
    forecast,
    run_writers,
    write_legacy_files,
)

PASSWORD = "s3cret-not-checked"  # trust authentication: never checked, but must never show in an error

if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
    pytest.skip(
        "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: `make system-packages` "
        "(apt-get install postgresql) to run these tests",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def cluster():
    server = PostgresCluster().start()
    yield server
    server.stop()


@pytest.fixture
def url(cluster) -> str:
    return cluster.new_database("state")


def test_the_tables_are_in_the_schema_forex_with_their_keys_and_indexes(url, tmp_path):
    ForecastHistory(tmp_path / "forecast_history.sqlite", database_url=url).record(forecast("2024-03-01"))
    DecisionLog(tmp_path / "d.sqlite", database_url=url).record(decision("a", date(2024, 3, 1), optimize=True))
    AlertLog(tmp_path / "a.sqlite", database_url=url).record(alert("a"), Delivery("logged"))

    assert not list(tmp_path.iterdir())  # no SQLite file made
    tables = query(url, "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema <> "
                         "'pg_catalog' AND table_schema <> 'information_schema'")  # fmt: skip
    assert set(tables) == {
        ("forex", name)
        for name in (
            "forex_state_version", "forecast_runs", "forecast_steps", "decisions", "optimization_verdicts",
            "alerts", "backtest_forecasts",
        )
    }  # fmt: skip
    assert {v for (v,) in query(url, "SELECT version_num FROM forex.forex_state_version")} == HEADS
    indexes = dict(query(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'forex'"))
    assert "(pair, horizon, origin_date)" in indexes["forecast_runs_pkey"]
    assert "(pair, horizon, origin_date, step)" in indexes["forecast_steps_pkey"]
    assert indexes["decisions_optimized"].endswith("(pair, horizon, decided_on) WHERE (optimize = 1)")
    assert indexes["decisions_performance_override"].endswith(
        "(pair, horizon, decided_on) WHERE (performance_override = 1)"
    )
    assert indexes["optimization_verdicts_concluded"].endswith("(pair, horizon, decided_on)")
    assert indexes["optimization_verdicts_performance_override"].endswith(
        "(pair, horizon, decided_on) WHERE (performance_override = 1)"
    )
    types = dict(query(url, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
                             "'forex' AND table_name = 'forecast_steps'"))  # fmt: skip
    assert types["q0_5"] == "double precision" and types["origin_date"] == "text"

    # the daily look-up can be answered from the partial index (sequential scans off: the table is tiny)
    log = DecisionLog(tmp_path / "d.sqlite", database_url=url)
    with log.database.read() as db:
        db.exec_driver_sql("SET enable_seqscan = off")
        for flag, index in VERDICT_INDEXES.items():
            statement = _last_flagged_statement(flag).compile(
                dialect=db.dialect, schema_translate_map={None: "forex"}, render_schema_translate=True
            )
            plan = " ".join(
                row[0] for row in db.exec_driver_sql(f"EXPLAIN {statement}", {"pair": "USDCLP", "horizon": "7d"})
            )
            assert index in plan, plan


def test_four_processes_write_concurrently_without_losing_or_duplicating_rows(url, tmp_path):
    run_writers(url, tmp_path / "area")  # they also race to create the schema and tables of the empty database
    assert_nothing_lost_or_duplicated(
        ForecastHistory(tmp_path / "h.sqlite", database_url=url),
        DecisionLog(tmp_path / "d.sqlite", database_url=url),
        AlertLog(tmp_path / "a.sqlite", database_url=url),
    )
    assert len(query(url, "SELECT version_num FROM forex.forex_state_version")) == len(HEADS)  # migrated once
    assert not (tmp_path / "area").exists()


def test_postgres_stopped_mid_write_is_a_clear_error_nothing_is_half_written_and_writing_resumes(
    cluster, url, tmp_path, monkeypatch
):
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", PASSWORD)  # completes the URL, as in docker-compose
    history = ForecastHistory(tmp_path / "h.sqlite", database_url=url)
    log = DecisionLog(tmp_path / "d.sqlite", database_url=url)
    alerts = AlertLog(tmp_path / "a.sqlite", database_url=url)
    origins = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2024-03-01", periods=10)]
    for origin in origins[:5]:
        history.record(forecast(origin, version="v1"))

    # a sequence of writes (each origin made again with v2); the server stops in the 3rd forecast's
    # transaction, after its run row was replaced and its old steps deleted, before its new steps are written
    engine = history.database.engine
    step_inserts = []

    def stop_before_the_steps(connection, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO forex.forecast_steps"):
            step_inserts.append(statement)
            if len(step_inserts) == 3:
                cluster.pause()

    sa.event.listen(engine, "before_cursor_execute", stop_before_the_steps)
    written, failure = [], None
    try:
        for origin in origins[:5]:
            try:
                history.record(forecast(origin, version="v2", level=950.0))
                written.append(origin)
            except StateDatabaseError as error:
                failure = error
                break
    finally:
        sa.event.remove(engine, "before_cursor_execute", stop_before_the_steps)
    assert written == origins[:2] and failure is not None

    database = f"postgresql+psycopg2://{USER}:***@127.0.0.1:{cluster.port}/{sa.make_url(url).database} (schema forex)"
    message = str(failure)
    assert message.startswith(
        f"state database {database}: recording a forecast in the forecast history failed: the database cannot "
        "be reached or the connection was lost ("
    ), message
    assert "Check that PostgreSQL is running and reachable" in message
    assert "stored whole or not at all, never in part" in message
    assert PASSWORD not in message and "Traceback" not in message and "psycopg2" not in message.split(" failed")[1]
    assert failure.database == database
    assert failure.__cause__ is None and failure.__suppress_context__  # not a driver traceback

    # while it is down: every part says so, opening included
    for write in (
        lambda: log.record(decision("down", date(2024, 3, 9))),
        lambda: alerts.record(alert("down"), Delivery("logged")),
        lambda: DecisionLog(tmp_path / "d.sqlite", database_url=url),
    ):
        with pytest.raises(StateDatabaseError) as down:
            write()
        assert str(down.value).startswith(f"state database {database}: ") and PASSWORD not in str(down.value)
        assert "the database cannot be reached or the connection was lost" in str(down.value)

    cluster.resume()
    # nothing half-written: the interrupted origin still has its whole v1 forecast, the two before it v2
    runs, steps = history.runs(), history.steps()
    assert dict(zip(runs["origin_date"].dt.strftime("%Y-%m-%d"), runs["config_version"], strict=True)) == {
        origins[0]: "v2", origins[1]: "v2", origins[2]: "v1", origins[3]: "v1", origins[4]: "v1"
    }  # fmt: skip
    assert (steps.groupby("origin_date").size() == STEPS).all()
    assert sorted(steps.loc[steps["q0_5"] == 950.0, "origin_date"].dt.strftime("%Y-%m-%d").unique()) == origins[:2]
    assert log.decisions() == [] and alerts.entries() == []

    # and the sequence goes on where it stopped, through the same objects (their connections were replaced)
    for origin in origins[2:]:
        history.record(forecast(origin, version="v2", level=950.0))
    log.record(decision("up", date(2024, 3, 11)))
    alerts.record(alert("up"), Delivery("logged"))
    assert history.runs()["config_version"].tolist() == ["v2"] * 10
    assert len(history.steps()) == 10 * STEPS
    assert [d.reasons["marker"] for d in log.decisions()] == ["up"] and len(alerts.entries()) == 1


def test_a_working_area_pointed_at_postgres_by_the_environment_moves_its_sqlite_files_in(url, tmp_path, monkeypatch):
    root = tmp_path / "area"
    write_legacy_files(root)  # what the embedded default left in the working area
    monkeypatch.setenv(STATE_DATABASE_URL_ENV, url)
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", PASSWORD)
    area = WorkingArea(path=str(root))
    assert area.state_database == url

    history, log, alerts = area.forecast_history(), area.decision_log(), area.alert_log()
    assert_legacy_rows(history, log, alerts)
    assert query(url, "SELECT count(*) FROM forex.forecast_steps") == [(3,)]
    history.record(forecast("2024-03-01"))
    assert len(area.forecast_history().runs()) == 2  # copied once, then used
    assert len(area.decision_log().decisions()) == 2 and len(area.alert_log().entries()) == 2
