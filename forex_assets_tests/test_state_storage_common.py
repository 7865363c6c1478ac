"""Shared by test_state_storage.py (SQLite) and test_state_storage_postgres.py: records, the concurrent
writers (run in spawned processes, so this module imports nothing heavy: no Dagster, no model stack) and
their checks, the files of the versions before the storage layer. No tests of its own."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from forex_assets.core.alerting.delivery import AlertLog, Delivery
from forex_assets.core.alerting.messages import Alert
from forex_assets.core.forecasting.history import ForecastHistory, ForecastRecord
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.triggers import TriggerDecision
from forex_assets.core.storage import VERSION_TABLE

HEADS = {"forecast_history_0002", "decisions_0003", "alerts_0002", "backtest_cache_0001"}
STEPS = 5
WRITERS, PER_WRITER, SHARED_ORIGINS = 4, 25, 5

# ------------------------------------------------------------------------------------------ records


def forecast(origin: str, version: str = "v1", level: float = 900.0, horizon: str = "7d") -> ForecastRecord:
    dates = list(pd.bdate_range(pd.Timestamp(origin) + pd.offsets.BDay(1), periods=STEPS))
    quantiles = np.tile(level + np.array([-20.0, -8.0, 0.0, 8.0, 20.0]), (STEPS, 1))
    return ForecastRecord(horizon, pd.Timestamp(origin), 899.0, dates, quantiles, version, "bundled:x", {}, 0.05)


def decision(marker: str, day: date, optimize: bool = False) -> TriggerDecision:
    return TriggerDecision("7d", day, optimize, ("schedule",) if optimize else (), (), {"marker": marker}, False)


def alert(marker: str) -> Alert:
    return Alert("deployed", "7d", f"[forex][7d] {marker}", "text", "<p>html</p>")


# ------------------------------------------------------------------------------------------ concurrent writers


def writer(url: str | None, root: str, worker: int, barrier) -> None:
    """One of the concurrent processes: opens the three parts at the same moment as the others (an empty
    database: they race to migrate it), then writes PER_WRITER forecasts of its own, decisions and alerts, and
    SHARED_ORIGINS forecasts that every writer writes too (the same keys, replaced)."""
    barrier.wait(timeout=120)
    root = Path(root)
    history = ForecastHistory(root / "forecast_history.sqlite", database_url=url)
    log = DecisionLog(root / "trigger_decisions.sqlite", database_url=url)
    alerts = AlertLog(root / "alerts.sqlite", database_url=url)
    start = pd.Timestamp("2020-01-01")
    for i in range(PER_WRITER):
        origin = (start + pd.offsets.BDay(worker * PER_WRITER + i)).strftime("%Y-%m-%d")
        history.record(forecast(origin, version=f"w{worker}", level=1000.0 * worker + i))
        log.record(decision(f"w{worker}-{i}", date(2020, 1, 1) + timedelta(days=i), optimize=i % 3 == 0))
        if i % 3 == 0:  # the optimization it launched reached its verdict
            log.record_verdict("7d", date(2020, 1, 1) + timedelta(days=i), "rejected", detail=f"w{worker}-{i}")
        alerts.record(alert(f"w{worker}-{i}"), Delivery("logged"))
        if i < SHARED_ORIGINS:
            shared = (pd.Timestamp("2030-01-01") + pd.offsets.BDay(i)).strftime("%Y-%m-%d")
            history.record(forecast(shared, version=f"w{worker}", level=1000.0 * worker + i))


def run_writers(url: str | None, root: Path) -> None:
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no engine or connection inherited
    barrier = context.Barrier(WRITERS)
    processes = [context.Process(target=writer, args=(url, str(root), w, barrier)) for w in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [p.exitcode for p in processes] == [0] * WRITERS


def assert_nothing_lost_or_duplicated(history: ForecastHistory, log: DecisionLog, alerts: AlertLog) -> None:
    runs, steps = history.runs(), history.steps()
    assert len(runs) == WRITERS * PER_WRITER + SHARED_ORIGINS
    assert not runs.duplicated(["horizon", "origin_date"]).any()
    assert len(steps) == len(runs) * STEPS and not steps.duplicated(["horizon", "origin_date", "step"]).any()
    merged = steps.merge(runs, on=["horizon", "origin_date"], validate="many_to_one")
    # every forecast whole and one writer's: its steps carry the level of the writer its run names
    worker = merged["config_version"].str[1:].astype(int)
    assert ((merged["q0_5"] - 1000.0 * worker).between(0, PER_WRITER)).all()
    for _, group in merged.groupby("origin_date"):
        assert group["config_version"].nunique() == 1 and group["q0_5"].nunique() == 1
    own = runs[runs["origin_date"] < pd.Timestamp("2030-01-01")]
    assert own["config_version"].value_counts().to_dict() == {f"w{w}": PER_WRITER for w in range(WRITERS)}

    expected = sorted(f"w{w}-{i}" for w in range(WRITERS) for i in range(PER_WRITER))
    assert sorted(d.reasons["marker"] for d in log.decisions()) == expected
    assert log.last_optimization("7d") == date(2020, 1, 1) + timedelta(days=(PER_WRITER - 1) // 3 * 3)
    concluded = sorted(f"w{w}-{i}" for w in range(WRITERS) for i in range(0, PER_WRITER, 3))
    assert sorted(v.detail for v in log.verdicts("7d")) == concluded
    assert sorted(a.subject.removeprefix("[forex][7d] ") for a in alerts.entries()) == expected
    for w in range(WRITERS):  # each writer's records in the order it wrote them
        mine = [int(d.reasons["marker"].split("-")[1]) for d in log.decisions() if d.reasons["marker"][1] == str(w)]
        assert mine == list(range(PER_WRITER))


def sqlite_schema(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    db.close()
    return dict(rows)


def sqlite_versions(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
    db.close()
    return {version for (version,) in rows}


# the schemas the files were written with before the storage layer (first versions: decisions without
# recorded_at and without the partial indexes)
LEGACY = {
    "forecast_history.sqlite": [
        "PRAGMA journal_mode=WAL",
        "CREATE TABLE forecast_runs (horizon TEXT NOT NULL, origin_date TEXT NOT NULL, last_price REAL NOT NULL, "
        "config_version TEXT NOT NULL, checkpoint TEXT NOT NULL, config_json TEXT NOT NULL, inference_seconds REAL "
        "NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (horizon, origin_date))",
        "CREATE TABLE forecast_steps (horizon TEXT NOT NULL, origin_date TEXT NOT NULL, step INTEGER NOT NULL, "
        "target_date TEXT NOT NULL, q0_025 REAL NOT NULL, q0_1 REAL NOT NULL, q0_5 REAL NOT NULL, q0_9 REAL NOT "
        "NULL, q0_975 REAL NOT NULL, PRIMARY KEY (horizon, origin_date, step))",
        "INSERT INTO forecast_runs VALUES ('7d', '2023-05-02', 880.5, 'old-v', 'bundled:x', '{}', 0.2, "
        "'2023-05-02T20:00:00+00:00')",
        *(
            f"INSERT INTO forecast_steps VALUES ('7d', '2023-05-02', {s}, '2023-05-0{2 + s}', 1, 2, 3, 4, 5)"
            for s in range(1, 4)
        ),
    ],
    "trigger_decisions.sqlite": [
        "CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, horizon TEXT NOT NULL, decided_on TEXT NOT "
        "NULL, optimize INTEGER NOT NULL, fired TEXT NOT NULL, blocked TEXT NOT NULL, reasons TEXT NOT NULL, "
        "performance_override INTEGER NOT NULL)",
        """INSERT INTO decisions VALUES (NULL, '7d', '2023-05-02', 1, '["drift"]', '[]', '{"drift": "old"}', 0)""",
        """INSERT INTO decisions VALUES (NULL, '7d', '2023-05-03', 0, '[]', '[]', '{"drift": "none"}', 1)""",
    ],
    "alerts.sqlite": [
        "CREATE TABLE alerts (id INTEGER PRIMARY KEY AUTOINCREMENT, sent_at TEXT NOT NULL, event TEXT NOT NULL, "
        "horizon TEXT NOT NULL, subject TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT "
        "NOT NULL)",
        "INSERT INTO alerts VALUES (NULL, '2023-05-02T20:00:00+00:00', 'deployed', '7d', 'old alert', 'sent', 1, '')",
        "INSERT INTO alerts VALUES (NULL, '2023-05-03T20:00:00+00:00', 'run_failed', 'all', 'old failure', 'failed', "
        "3, 'smtp down')",
    ],
}


def write_legacy_files(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, statements in LEGACY.items():
        with sqlite3.connect(root / name) as db:
            for statement in statements:
                db.execute(statement)
        db.close()


def assert_legacy_rows(history: ForecastHistory, log: DecisionLog, alerts: AlertLog) -> None:
    runs = history.runs("7d")
    assert runs["config_version"].tolist()[:1] == ["old-v"]
    assert runs["origin_date"].iloc[0] == pd.Timestamp("2023-05-02")
    assert history.steps("7d", since=pd.Timestamp("2023-05-01"))["q0_5"].tolist()[:3] == [3.0, 3.0, 3.0]
    entries = log.entries("7d")
    assert [(at, d.reasons) for at, d in entries[:2]] == [(None, {"drift": "old"}), (None, {"drift": "none"})]
    # each decision to optimize of a log written before verdicts were recorded counts as concluded, as it did
    # then (decisions_0002); the 05-03 decision did not optimize: no optimization, so no override, to count
    assert log.last_optimization("7d") == date(2023, 5, 2)
    assert [(v.decided_on, v.verdict) for v in log.verdicts("7d")[:1]] == [(date(2023, 5, 2), "assumed")]
    assert log.last_performance_override("7d") is None
    assert [a.subject for a in alerts.entries("7d")[:2]] == ["old alert", "old failure"]
