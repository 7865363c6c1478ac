"""The backtest cache and the Optuna studies on the storage layer.

* no URL (the embedded default): the cache is its SQLite file, as before, and the studies their journals;
* a URL: the cache in the state database (table ``backtest_forecasts``), the studies in Optuna's RDBStorage
  there (PostgreSQL: schema ``forex_optuna``) with heartbeats. Against a throwaway PostgreSQL cluster (as
  test_state_storage_postgres.py): four processes putting overlapping cache entries at once lose and
  duplicate nothing; a search process killed mid-trial leaves a trial that the heartbeat fails once the grace
  period is over, and the resumed search runs it again; PostgreSQL stopped mid-write or mid-search is a clear
  error naming the database, nothing half-written, and the next run succeeds; a database that cannot be
  reached is such an error too.
"""

from __future__ import annotations

import glob
import multiprocessing
import os
import shutil
import signal
import socket
import sqlite3
import time
import warnings
from contextlib import closing
from pathlib import Path

import numpy as np
import optuna
import pytest
import sqlalchemy as sa

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.backtest.windows import PriceSeries, split_windows
from forex_assets.core.models.loading import checkpoint_identity, load_pipeline
from forex_assets.core.recalibration import study_storage
from forex_assets.core.recalibration.search import INTERRUPTED, _counts, _error, run_search
from forex_assets.core.recalibration.search_space import SearchSpace, enumerate_candidates
from forex_assets.core.recalibration.study_storage import MAX_RETRY, open_storage
from forex_assets.core.storage import StateDatabaseError
from forex_assets.defs.resources import WorkingArea
from forex_assets_tests.conftest import random_walk_prices
from forex_assets_tests.postgres_cluster import USER, PostgresCluster, query
from forex_assets_tests.test_state_storage_common import HEADS

PASSWORD = "s3cret-not-checked"  # trust authentication: never checked, but must never show in an error
STEPS = 7
WRITERS, OWN_KEYS, SHARED_KEYS, PUT_BATCH = 4, 150, 100, 40

requires_postgres = pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"),
    reason="PostgreSQL's server binaries (initdb, pg_ctl) are not installed: `make system-packages` "
    "(apt-get install postgresql) to run these tests",
)

# ------------------------------------------------------------------------------------------ helpers


def _quantiles(index: int, worker: int) -> np.ndarray:
    """The forecast worker ``worker`` stores under key ``index``: distinct for every (key, worker)."""
    return np.arange(STEPS * 5, dtype=np.float64).reshape(STEPS, 5) + 1000.0 * worker + index / 7.0


def _rows(worker: int) -> list[tuple[str, str, str, np.ndarray, float]]:
    """Worker ``worker``'s keys of its own, and the keys every worker writes (the same keys, other values);
    seconds say which worker wrote a row (``int(seconds)``)."""
    own = [(f"w{worker}-{i:04d}", i) for i in range(OWN_KEYS)]
    shared = [(f"shared-{i:04d}", i) for i in range(SHARED_KEYS)]
    return [
        (key, f"w{worker}", f"2024-01-{i % 28 + 1:02d}", _quantiles(i, worker), worker + i / 1000.0)
        for key, i in own + shared
    ]


def _cache_writer(url: str, worker: int, barrier) -> None:
    """One of the concurrent processes: opens the cache at the moment the others do (an empty database: they
    race to migrate it), then puts its rows in batches, in an order of its own (a transaction each)."""
    barrier.wait(timeout=120)
    cache = ForecastCache(f"/nonexistent/{worker}/backtest_cache.sqlite", database_url=url)
    rows = _rows(worker)
    order = np.random.default_rng(worker).permutation(len(rows))
    for start in range(0, len(rows), PUT_BATCH):
        cache.put_many([rows[i] for i in order[start : start + PUT_BATCH]])


def _space() -> SearchSpace:
    """Six candidates of the bundled model (a grid): two contexts and their ensemble, two preprocessings."""
    return SearchSpace.model_validate(
        {
            "horizon": "7d",
            "checkpoints": [{"checkpoint": "bundled:usdclp-chronos2-mini", "family": "chronos2"}],
            "context_length": [60, 120],
            "context_ensembles": [[60, 120]],
            "preprocessing": ["none", "log"],
            "search_origins": 10,
            "validation_origins": 10,
        }
    )


def _search(url: str | None, root: Path, loader=load_pipeline):
    space, series = _space(), PriceSeries.from_frame(random_walk_prices(400, seed=5))
    windows = split_windows(len(series.values), 7, space.search_origins, space.validation_origins)
    ids = {c.checkpoint: checkpoint_identity(c.checkpoint) for c in space.checkpoints}
    cache = ForecastCache(root / "backtest_cache.sqlite", database_url=url)
    return run_search(
        space, series, windows.search, loader, ids, cache, root / "optuna", progress=lambda m: None, database_url=url
    )


def _search_hanging_on_the_third_trial(url: str, root: str, heartbeat_s: int, grace_s: int) -> None:
    """The search process that is killed: its third trial never ends (it sleeps in the model's loading)."""
    study_storage.HEARTBEAT_INTERVAL_S, study_storage.GRACE_PERIOD_S = heartbeat_s, grace_s
    calls = {"n": 0}

    def hangs_on_the_third_trial(reference):
        calls["n"] += 1
        if calls["n"] == 3:
            time.sleep(600)
        return load_pipeline(reference)

    _search(url, Path(root), hangs_on_the_third_trial)


def _described(url: str, schema: str) -> str:
    parsed = sa.make_url(url)
    password = ":***" if parsed.password or os.environ.get("DAGSTER_POSTGRES_PASSWORD") else ""
    where = f"{parsed.host}:{parsed.port}/{parsed.database}"
    return f"postgresql+psycopg2://{parsed.username}{password}@{where} (schema {schema})"


@pytest.fixture(scope="module")
def cluster():
    server = PostgresCluster().start()
    yield server
    server.stop()


@pytest.fixture
def url(cluster) -> str:
    return cluster.new_database("cache_studies")


# ------------------------------------------------------------------------------------------ without PostgreSQL


def test_without_a_url_the_cache_is_its_sqlite_file_as_before(tmp_path, monkeypatch):
    monkeypatch.delenv("FOREX_STATE_DATABASE_URL", raising=False)
    area = WorkingArea(path=str(tmp_path / "area"))
    cache = area.backtest_cache()
    assert cache.database is None and cache.path == tmp_path / "area" / "backtest_cache.sqlite"

    cache.put_many(_rows(1)[:3])
    cache.put_many([("w1-0001", "w9", "2024-02-01", _quantiles(1, 9), 9.5)])  # a key again: replaced
    found = cache.get_many(["w1-0000", "w1-0001", "w1-0002", "missing"])
    assert sorted(found) == ["w1-0000", "w1-0001", "w1-0002"]
    np.testing.assert_array_equal(found["w1-0000"][0], _quantiles(0, 1))
    assert found["w1-0000"][0].shape == (STEPS, 5) and found["w1-0000"][1] == 1.0
    np.testing.assert_array_equal(found["w1-0001"][0], _quantiles(1, 9))
    assert found["w1-0001"][1] == 9.5
    assert cache.count() == 3 and cache.count("w1") == 2 and cache.count("w9") == 1

    # the same file as ever: table forecasts, no migration, nothing else in the working area
    assert {p.name for p in (tmp_path / "area").iterdir()} == {"backtest_cache.sqlite"}
    with closing(sqlite3.connect(cache.path)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"forecasts"}
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert ForecastCache(cache.path).count() == 3  # and a new object reads it


def test_a_sqlite_url_holds_the_cache_and_the_studies_in_its_one_file(tmp_path):
    state = tmp_path / "state.sqlite"
    area = WorkingArea(path=str(tmp_path / "area"), state_database_url=f"sqlite:///{state}")
    cache = area.backtest_cache()
    cache.put_many(_rows(2)[:5])
    assert cache.count("w2") == 5 and sorted(cache.get_many(["w2-0004", "x"])) == ["w2-0004"]
    np.testing.assert_array_equal(cache.get_many(["w2-0004"])["w2-0004"][0], _quantiles(4, 2))

    storage = open_storage(area.optuna_storage, "7d-abc-2024-01-31", area.state_database)
    assert isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval() == 30
    study = optuna.create_study(study_name="7d-abc-2024-01-31", storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1) ** 2, n_trials=3)
    again = optuna.load_study(
        study_name="7d-abc-2024-01-31", storage=open_storage(tmp_path, "ignored", f"sqlite:///{state}")
    )
    assert [t.state.name for t in again.trials] == ["COMPLETE"] * 3

    with closing(sqlite3.connect(state)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"backtest_forecasts", "forex_state_version", "studies", "trials", "trial_heartbeats"} <= tables
        assert db.execute("SELECT COUNT(*) FROM backtest_forecasts").fetchone() == (5,)
    area_files = [p.name for p in (tmp_path / "area").rglob("*") if p.is_file()]
    assert area_files == []  # no backtest_cache.sqlite, no journal


def test_a_trial_killed_by_the_heartbeat_is_interrupted_until_its_retries_are_spent():
    def killed(retries: int) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL,
            user_attrs={"label": "a"},
            system_attrs={"retry_history": list(range(retries))} if retries else {},
        )

    assert _error(killed(0)) == f"{INTERRUPTED} (process killed: no heartbeat)" and not _counts(killed(0))
    assert _error(killed(MAX_RETRY - 1)).startswith(INTERRUPTED)
    spent = killed(MAX_RETRY)
    assert _error(spent) == (
        f"its process was killed {MAX_RETRY + 1} times running this configuration (no heartbeat); not run again"
    )
    assert _counts(spent)  # a finished failure: the grid does not run it again
    failed = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={"error": "ValueError: x"})
    assert _error(failed) == "ValueError: x" and _counts(failed)
    done = optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=1.0, user_attrs={"metrics": {}})
    assert _error(done) == "" and _counts(done)


def test_an_unreachable_database_is_a_clear_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", PASSWORD)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://{USER}@127.0.0.1:{port}/nowhere"

    with pytest.raises(StateDatabaseError) as cache_error:
        ForecastCache(tmp_path / "backtest_cache.sqlite", database_url=url)
    with pytest.raises(StateDatabaseError) as studies_error:
        open_storage(tmp_path / "optuna", "7d-abc-2024-01-31", url)

    expected = [(cache_error, "forex", "backtest cache"), (studies_error, "forex_optuna", "Optuna study storage")]
    for raised, schema, what in expected:
        database = f"postgresql+psycopg2://{USER}:***@127.0.0.1:{port}/nowhere (schema {schema})"
        message = str(raised.value)
        assert message.startswith(
            f"state database {database}: opening the {what} failed: the database cannot be reached or the "
            "connection was lost ("
        ), message
        assert "Check that PostgreSQL is running and reachable" in message
        assert PASSWORD not in message and "Traceback" not in message
        assert raised.value.database == database
        assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no driver traceback
    assert list(tmp_path.iterdir()) == []  # no SQLite file, no journal instead


# ------------------------------------------------------------------------------------------ PostgreSQL


@requires_postgres
def test_four_processes_putting_overlapping_cache_entries_lose_and_duplicate_nothing(url):
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no engine or connection inherited
    barrier = context.Barrier(WRITERS)
    processes = [context.Process(target=_cache_writer, args=(url, w, barrier)) for w in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [p.exitcode for p in processes] == [0] * WRITERS

    cache = ForecastCache("/nonexistent/backtest_cache.sqlite", database_url=url)
    own = [f"w{w}-{i:04d}" for w in range(WRITERS) for i in range(OWN_KEYS)]
    shared = [f"shared-{i:04d}" for i in range(SHARED_KEYS)]
    assert cache.count() == WRITERS * OWN_KEYS + SHARED_KEYS
    found = cache.get_many(own + shared)
    assert len(found) == len(own) + len(shared)
    for key in own:  # exactly the values of its one writer
        worker, i = int(key[1]), int(key[3:])
        quantiles, seconds = found[key]
        np.testing.assert_array_equal(quantiles, _quantiles(i, worker))
        assert seconds == worker + i / 1000.0
    winners = []
    for i, key in enumerate(shared):  # one writer's row, whole: its seconds, quantiles and checkpoint
        quantiles, seconds = found[key]
        worker = int(seconds)
        assert seconds == worker + i / 1000.0 and 0 <= worker < WRITERS
        np.testing.assert_array_equal(quantiles, _quantiles(i, worker))
        winners.append(worker)
    assert sum(cache.count(f"w{w}") for w in range(WRITERS)) == cache.count()
    assert [cache.count(f"w{w}") for w in range(WRITERS)] == [OWN_KEYS + winners.count(w) for w in range(WRITERS)]
    assert query(url, "SELECT key FROM forex.backtest_forecasts GROUP BY key HAVING COUNT(*) > 1") == []
    assert query(url, "SELECT COUNT(*) FROM forex.backtest_forecasts") == [(WRITERS * OWN_KEYS + SHARED_KEYS,)]
    assert sorted(query(url, "SELECT version_num FROM forex.forex_state_version")) == sorted((v,) for v in HEADS)


@requires_postgres
def test_postgres_stopped_mid_put_is_a_clear_error_nothing_is_half_written_and_the_next_put_succeeds(
    cluster, url, monkeypatch
):
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", PASSWORD)
    cache = ForecastCache("/nonexistent/backtest_cache.sqlite", database_url=url)
    first, second = _rows(0)[:100], _rows(1)  # 100 rows, then 250
    cache.put_many(first)

    inserts = []

    def stop_before_the_second_batch(connection, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO forex.backtest_forecasts"):
            inserts.append(statement)
            if len(inserts) == 2:
                cluster.pause()

    monkeypatch.setattr("forex_assets.core.backtest.cache.BATCH", 100)  # 250 rows: three INSERT statements
    engine = cache.database.engine
    sa.event.listen(engine, "before_cursor_execute", stop_before_the_second_batch)
    try:
        with pytest.raises(StateDatabaseError) as raised:
            cache.put_many(second)
    finally:
        sa.event.remove(engine, "before_cursor_execute", stop_before_the_second_batch)
    database = _described(url, "forex")
    message = str(raised.value)
    assert message.startswith(
        f"state database {database}: storing forecasts in the backtest cache failed: the database cannot be "
        "reached or the connection was lost ("
    ), message
    assert "stored whole or not at all, never in part" in message and PASSWORD not in message
    assert raised.value.__cause__ is None

    with pytest.raises(StateDatabaseError, match="reading forecasts from the backtest cache failed"):
        cache.get_many(["w0-0000"])
    cluster.resume()
    # nothing of the interrupted put: its first batch (committed to nobody) is gone with it
    assert cache.count() == 100 and cache.count("w1") == 0
    cache.put_many(second)  # and the same object writes again (its connections were replaced)
    assert cache.count() == 350 and cache.count("w1") == 250
    np.testing.assert_array_equal(cache.get_many(["shared-0099"])["shared-0099"][0], _quantiles(99, 1))


@requires_postgres
def test_a_search_killed_mid_trial_leaves_a_trial_the_heartbeat_fails_and_the_resumed_search_runs_again(
    url, tmp_path, monkeypatch
):
    heartbeat_s, grace_s = 1, 3
    monkeypatch.setattr(study_storage, "HEARTBEAT_INTERVAL_S", heartbeat_s)
    monkeypatch.setattr(study_storage, "GRACE_PERIOD_S", grace_s)
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=_search_hanging_on_the_third_trial, args=(url, str(tmp_path), heartbeat_s, grace_s)
    )
    process.start()
    storage = open_storage(tmp_path / "optuna", "unused", url)
    deadline, running = time.monotonic() + 240, []
    try:
        while time.monotonic() < deadline and not running and process.is_alive():
            time.sleep(0.5)
            names = optuna.get_all_study_names(storage)
            if not names:
                continue
            study = optuna.load_study(study_name=names[0], storage=storage)
            trials = study.get_trials()
            if [t.state for t in trials].count(optuna.trial.TrialState.COMPLETE) < 2:
                continue  # the third trial is the one that hangs
            running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING and t.params]
            beating = {trial_id for (trial_id,) in query(url, "SELECT trial_id FROM forex_optuna.trial_heartbeats")}
            running = [t for t in running if t._trial_id in beating]
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=60)
    assert running, "the search process never reached its third trial"
    [killed] = running
    label = killed.user_attrs["label"]
    assert killed.number == 2 and [t.state.name for t in study.get_trials()][:2] == ["COMPLETE"] * 2

    # within the grace period the trial is left RUNNING: its process could be alive
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    assert study.get_trials()[killed.number].state == optuna.trial.TrialState.RUNNING

    time.sleep(grace_s + 1.5)  # the heartbeat is now older than the grace period
    calls = {"n": 0}

    def counting(reference):
        calls["n"] += 1
        return load_pipeline(reference)

    outcome = _search(url, tmp_path, counting)
    assert calls["n"] == 4  # the killed trial again, and the three never started
    space = _space()
    assert outcome.trials_complete == 6 and outcome.trials_failed == 0
    assert sorted(outcome.leaderboard["label"]) == sorted(c.label for c in enumerate_candidates(space))
    assert killed.number not in set(outcome.leaderboard["trial"])

    trials = optuna.load_study(study_name=outcome.study_name, storage=storage).get_trials()
    failed = trials[killed.number]
    assert failed.state == optuna.trial.TrialState.FAIL  # by the heartbeat: the process recorded nothing
    assert "error" not in failed.user_attrs and "metrics" not in failed.user_attrs
    assert _error(failed) == f"{INTERRUPTED} (process killed: no heartbeat)"
    [rerun] = [t for t in trials if t.user_attrs.get("requeue_of") == killed.number]
    assert rerun.system_attrs["failed_trial"] == killed.number and rerun.system_attrs["retry_history"] == [
        killed.number
    ]
    assert rerun.state == optuna.trial.TrialState.COMPLETE and rerun.user_attrs["label"] == label
    assert "error" not in rerun.user_attrs and rerun.number in set(outcome.leaderboard["trial"])
    assert [t.state.name for t in trials].count("COMPLETE") == 6 and len(trials) == 7  # nothing else queued

    # Optuna's tables in their own schema (its alembic_version is not Dagster's), the cache's rows in forex
    schemas = query(
        url,
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name IN "
        "('studies', 'trials', 'trial_heartbeats', 'alembic_version', 'backtest_forecasts')",
    )
    assert sorted(schemas) == [
        ("forex", "backtest_forecasts"),
        ("forex_optuna", "alembic_version"),
        ("forex_optuna", "studies"),
        ("forex_optuna", "trial_heartbeats"),
        ("forex_optuna", "trials"),
    ]
    assert ForecastCache(tmp_path / "backtest_cache.sqlite", database_url=url).count() > 0
    assert not (tmp_path / "backtest_cache.sqlite").exists() and not (tmp_path / "optuna").exists()


@requires_postgres
def test_postgres_stopped_mid_search_fails_it_naming_the_database_and_the_next_search_finishes_it(
    cluster, url, tmp_path
):
    calls = {"n": 0}

    def stops_postgres_in_the_third_trial(reference):
        calls["n"] += 1
        if calls["n"] == 3:
            cluster.pause()
        return load_pipeline(reference)

    try:
        with pytest.raises(StateDatabaseError) as raised:
            _search(url, tmp_path, stops_postgres_in_the_third_trial)
    finally:
        if calls["n"] >= 3:
            cluster.resume()
    message = str(raised.value)
    assert message.startswith(f"state database {_described(url, 'forex')}: "), message
    assert "the database cannot be reached or the connection was lost" in message
    assert "Check that PostgreSQL is running and reachable" in message
    assert "Traceback" not in message and raised.value.__cause__ is None
    assert calls["n"] == 3  # the search stopped there

    resumed = {"n": 0}

    def counting(reference):
        resumed["n"] += 1
        return load_pipeline(reference)

    outcome = _search(url, tmp_path, counting)
    assert resumed["n"] == 4  # the interrupted trial, and the three never started
    assert outcome.trials_complete == 6
    assert sorted(outcome.leaderboard["label"]) == sorted(c.label for c in enumerate_candidates(_space()))
