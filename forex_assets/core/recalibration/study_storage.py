"""Where the configuration search keeps its Optuna studies, and how a study is named, opened and repaired.

* The study name pins the horizon, the search space, the checkpoints and the window
  (:func:`study_name`), so a search interrupted half-way resumes where it stopped.
* Embedded default (no state database URL, and the replay): a directory in the working area with one
  Optuna journal file per study (``<dir>/<study name>.journal``). Opening a study replays only its own
  journal, so the cost does not grow with the number of studies run before (one shared journal grew to
  tens of MB over a multi-year replay and was re-read on every search). Journals of the older single-file
  layout (``optuna_studies.journal``) are no longer read; they may be deleted.
* A journal torn by a process killed mid-write (its last line cut short) would make every later search
  of the study fail, so it is repaired before the study opens: a copy of the whole file is set aside
  (``<name>.journal.corrupt-<UTC stamp>``, logged and recorded, see ``core/corrupt_files.py``) and the
  journal is cut back to its intact records; the trials lost with the cut are run again.
* With a state database URL (production: the instance's PostgreSQL): Optuna's RDBStorage in that
  database, in its own schema ``forex_optuna`` (Optuna keeps its schema version in a table
  ``alembic_version``, the name of Dagster's own in ``public``; the project's tables are in ``forex``).
  A running trial records a heartbeat every ``HEARTBEAT_INTERVAL_S``; one whose heartbeat is older than
  ``GRACE_PERIOD_S`` (its process was killed) is marked FAIL by the next search of the study and queued
  again (at most ``MAX_RETRY`` times: a configuration that kills its process every time ends FAIL).
  The database's errors are a :class:`~forex_assets.core.storage.StateDatabaseError` naming it
  (:func:`study_database_errors`), never its password.

The search itself (sampler, objective, resume of interrupted trials, leaderboard) is
:mod:`forex_assets.core.recalibration.search`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from forex_assets.core.corrupt_files import SetAside, truncate_journal
from forex_assets.core.recalibration.search_space import SearchSpace
from forex_assets.core.storage import (
    STATE_DATABASE_URL_ENV,
    StateDatabaseError,
    StateDatabaseUnavailable,
    complete_url,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

JOURNAL_SUFFIX = ".journal"


def study_journal_path(directory: Path, name: str) -> Path:
    """The journal file of study ``name`` in the storage ``directory``."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"study name {name!r} cannot name a journal file")
    return Path(directory) / f"{name}{JOURNAL_SUFFIX}"


def _journal_record(line: bytes) -> None:
    """Raise ValueError unless ``line`` is one Optuna journal record (a JSON object with an op code)."""
    record = json.loads(line)
    if not isinstance(record, dict) or "op_code" not in record:
        raise ValueError("not an Optuna journal record")


def repair_journal(path: Path) -> SetAside | None:
    """Cut a torn journal back to its intact records (a copy of the whole file is set aside first); None
    when it is whole. Runs under the journal's own write lock, so a record being appended right now by
    another process is never mistaken for a torn one."""
    from optuna.storages.journal import JournalFileSymlinkLock

    path = Path(path)
    if not path.is_file():
        return None
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        return truncate_journal(path, f"Optuna journal of study {path.name[: -len(JOURNAL_SUFFIX)]}", _journal_record)
    finally:
        lock.release()


def open_storage(directory: Path, name: str, database_url: str | None = None) -> optuna.storages.BaseStorage:
    """Study ``name``'s own append-only Optuna journal in ``directory``: persistent and resumable, far
    cheaper per trial than an SQLite RDB storage (which cost more than the bundled model's forecasts in
    the benchmark), and opened by replaying only this study's records, whatever else the directory holds.
    A torn journal is repaired first (``repair_journal``).

    With ``database_url`` (the state database): :func:`open_database_storage`, which holds every study
    (``directory`` and ``name`` are not used)."""
    if database_url is not None:
        return open_database_storage(database_url)
    from optuna.storages.journal import JournalFileBackend

    path = study_journal_path(directory, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_journal(path)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


# ------------------------------------------------------------------------------ studies in the state database

#: the PostgreSQL schema of Optuna's tables in the state database: their own, not ``forex``, since Optuna
#: keeps its schema version in a table named ``alembic_version``, which is Dagster's own (in ``public``)
STUDY_SCHEMA = "forex_optuna"
#: seconds between the heartbeats of a running trial
HEARTBEAT_INTERVAL_S = 30
#: a running trial whose last heartbeat is older than this (seconds) has lost its process: it is failed
GRACE_PERIOD_S = 120
#: times a trial failed by the heartbeat is queued again (then it stays FAIL: its configuration may be what
#: kills the process, e.g. out of memory)
MAX_RETRY = 3
#: the PostgreSQL advisory lock held while Optuna's schema and tables are made ("forexo" in ASCII)
STUDY_LOCK_KEY = 0x666F7265786F
POSTGRES_CONNECT_TIMEOUT_S = 10
STUDY_STORAGE = "Optuna study storage"


class _RetryKilledTrial(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a trial failed by the heartbeat, as this module queues trials again: the new trial
    records which one it runs again (``requeue_of``), and not an error of the dead one."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trial = copy.copy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != "error"} | {"requeue_of": trial.number}
        super().__call__(study, trial)


def describe_study_database(url: URL) -> str:
    """How errors name the studies' database: its URL without the password, and the schema (PostgreSQL)."""
    if url.get_backend_name() == "sqlite":
        return str(Path(url.database)) if url.database else "sqlite (in memory)"
    return f"{url.render_as_string(hide_password=True)} (schema {STUDY_SCHEMA})"


def _study_database_error(url: URL, error: BaseException, doing: str) -> StateDatabaseError:
    import sqlalchemy.exc

    database = describe_study_database(url)
    cause = error
    while not isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.__cause__ is not None:
        cause = cause.__cause__  # Optuna's StorageInternalError wraps the driver's error
    original = getattr(cause, "orig", None) or cause
    detail = " ".join(line.strip() for line in str(original).splitlines() if line.strip()) or type(original).__name__
    if url.password:
        detail = detail.replace(url.password, "***")
    lost = isinstance(cause, sqlalchemy.exc.DBAPIError) and (
        cause.connection_invalidated
        or (
            isinstance(cause, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
            and getattr(cause.orig, "pgcode", None) is None
        )
    )
    if lost and url.get_backend_name() == "postgresql":
        problem = f"the database cannot be reached or the connection was lost ({detail})"
        hint = (
            f" Check that PostgreSQL is running and reachable (and the URL: ${STATE_DATABASE_URL_ENV} or the "
            "working_area resource's state_database_url), then run again."
        )
    else:
        problem, hint = detail, ""
    kind = StateDatabaseUnavailable if lost or "database is locked" in detail else StateDatabaseError
    return kind(f"state database {database}: {doing} the {STUDY_STORAGE} failed: {problem}.{hint}", database)


@contextmanager
def study_database_errors(url: URL, doing: str) -> Iterator[None]:
    """The database's errors in the block (a driver's, or Optuna's wrapping of one) as a
    :class:`StateDatabaseError` naming the database, not a traceback."""
    import sqlalchemy.exc

    try:
        yield
    except StateDatabaseError:
        raise
    except (sqlalchemy.exc.DBAPIError, optuna.exceptions.StorageInternalError) as error:
        raise _study_database_error(url, error, doing) from None


@contextmanager
def _postgres_study_schema(url: URL) -> Iterator[None]:
    """Hold the advisory lock that serializes the making of Optuna's tables (processes opening an empty
    database at once would race to create them) and make the schema ``forex_optuna``."""
    import sqlalchemy as sa
    import sqlalchemy.exc
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(
        url,
        poolclass=NullPool,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, "application_name": "forex_assets"},
    )
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": STUDY_LOCK_KEY})
            connection.execute(sa.schema.CreateSchema(STUDY_SCHEMA, if_not_exists=True))
            connection.commit()
            try:
                yield
            finally:
                with suppress(sqlalchemy.exc.DBAPIError):  # a lost connection took its lock with it
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": STUDY_LOCK_KEY})
                    connection.commit()
    finally:
        engine.dispose()


#: (process, URL, heartbeat interval (s), grace period (s), retries) -> the storage
_database_storages: dict[tuple[int, str, int, int, int], optuna.storages.RDBStorage] = {}
_database_storages_lock = threading.Lock()


def _forget_inherited_storages() -> None:
    """In a forked child: drop the parent's storages without closing their connections (they are the
    parent's; closing them here would end its sessions). The child opens its own."""
    global _database_storages_lock
    _database_storages_lock = threading.Lock()  # another thread of the parent may have held it at the fork
    for storage in list(_database_storages.values()):
        storage.engine.dispose(close=False)
    _database_storages.clear()


os.register_at_fork(after_in_child=_forget_inherited_storages)


def open_database_storage(database_url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage in the state database ``database_url`` (PostgreSQL: schema ``forex_optuna``,
    made when missing), with heartbeats (``HEARTBEAT_INTERVAL_S``, ``GRACE_PERIOD_S``) and the retry of a
    trial whose process was killed (``MAX_RETRY``). One per database and process. A database that cannot
    be reached is a :class:`StateDatabaseError` naming it."""
    url = complete_url(database_url)
    key = (os.getpid(), url.render_as_string(hide_password=False), HEARTBEAT_INTERVAL_S, GRACE_PERIOD_S, MAX_RETRY)
    with _database_storages_lock:
        storage = _database_storages.get(key)
        if storage is None:
            storage = _database_storages[key] = _rdb_storage(url)
        return storage


def _rdb_storage(url: URL) -> optuna.storages.RDBStorage:
    postgres = url.get_backend_name() == "postgresql"
    if postgres:
        try:
            import psycopg2  # noqa: F401 - the driver, from the production extra (dagster-postgres)
        except ModuleNotFoundError:
            database = describe_study_database(url)
            raise StateDatabaseError(
                f"state database {database}: PostgreSQL needs the psycopg2 driver, which is not installed: "
                "pip install -e '.[production]' (it comes with dagster-postgres)",
                database,
            ) from None
        engine_kwargs = {
            "pool_size": 2,
            "max_overflow": 4,
            "pool_pre_ping": True,  # a connection the server dropped (restart, failover) is replaced, not used
            "pool_recycle": 1800,
            "connect_args": {
                "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
                "application_name": "forex_assets",
                # Optuna's tables, unqualified, in its own schema (and only there: not Dagster's alembic_version)
                "options": f"-c search_path={STUDY_SCHEMA}",
            },
        }
    else:
        engine_kwargs = {"connect_args": {"timeout": 30}}
        if url.database:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # RDBStorage formats its URL ({SCHEMA_VERSION}): braces of a password are doubled to stay as they are
    text = url.render_as_string(hide_password=False).replace("{", "{{").replace("}", "}}")
    with study_database_errors(url, "opening"), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are "experimental"
        with _postgres_study_schema(url) if postgres else nullcontext():
            return optuna.storages.RDBStorage(
                text,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_INTERVAL_S,
                grace_period=GRACE_PERIOD_S,
                heartbeat_stale_trial_callback=_RetryKilledTrial(max_retry=MAX_RETRY),
            )


def has_heartbeat(storage: optuna.storages.BaseStorage) -> bool:
    return isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval() is not None


def stored_studies(directory: Path) -> list[str]:
    """Names of the studies with a journal in ``directory`` (sorted; none when it does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p.name[: -len(JOURNAL_SUFFIX)] for p in directory.glob(f"*{JOURNAL_SUFFIX}") if p.is_file())


def study_name(space: SearchSpace, checkpoint_ids: dict[str, str], window_end: str, series_digest: str = "") -> str:
    """The study a search resumes: the same search space, checkpoints, window and series (``series_digest``:
    two currency pairs searched on the same day with the same space are two studies, not one resumed)."""
    checkpoints = "+".join(sorted(checkpoint_ids.values()))
    digest = hashlib.sha256(f"{space.digest()}|{checkpoints}|{series_digest}".encode()).hexdigest()[:10]
    return f"{space.horizon}-{digest}-{window_end}"
