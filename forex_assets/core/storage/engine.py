"""Where the project's state lives, and how it is opened, migrated, written and read (SQLAlchemy Core).

Two places, chosen by one URL (``$FOREX_STATE_DATABASE_URL``, or the ``state_database_url`` of the
``working_area`` resource):

* **none** (the embedded default, ``make run``): each part of the state is its own SQLite file in the
  working area, the same files as ever (``forecast_history.sqlite``, ``trigger_decisions.sqlite``,
  ``alerts.sqlite``; the backtest cache keeps its own ``backtest_cache.sqlite`` and the Optuna studies their
  journals, see ``core/backtest/cache.py`` and ``core/recalibration/search.py``). A file written by an
  older version is adopted by the first open (the migration creates what is missing and records its
  version in the file);
* **a PostgreSQL URL** (production: the instance's own database, ``postgresql+psycopg2://user@host:port/db``):
  every part's tables in the schema ``forex`` of that database. A URL without a password takes it from
  ``$FOREX_STATE_DATABASE_PASSWORD``, else ``$DAGSTER_POSTGRES_PASSWORD`` (docker-compose), else
  ``$DAGSTER_PG_PASSWORD`` (Dagster's Helm chart), so no file needs to hold it. (A ``sqlite:///`` URL puts
  every part in that one file.)

Every write is one transaction (``BEGIN IMMEDIATE`` on SQLite, so writers queue instead of failing): it is
stored whole or not at all. A database that cannot be reached, a connection lost mid-write, a lock held too
long, are a :class:`StateDatabaseError` that names the database (never its password) and says what to do,
not a driver traceback. A corrupt SQLite file is the caller's :class:`~forex_assets.core.corrupt_files.
CorruptFileError` (state is never set aside silently).

Opening a part brings its tables to the latest migration (Alembic, ``migrations/``), under a lock
(PostgreSQL: an advisory transaction lock; SQLite: the write lock), so that processes opening a new
database at once do not race; when the database is already current, opening only reads its version.

Opened ``read_only`` (the commands that only read: `forex-assets status`, `history`, `forecasts`), a part
creates nothing (no file, no directory, no table, no migration, no adoption of a file): a SQLite file that does
not exist is a :class:`StateDatabaseMissing`, an existing one is read without writing a byte
(:mod:`forex_assets.core.storage.read_only`, a read-only mount included), a PostgreSQL session is read-only;
``empty`` says that the part's tables do not exist (nothing was ever recorded there), and a database at an
older migration is read as it is (a query that needs what it lacks says which command upgrades it).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

from forex_assets.core.corrupt_files import CorruptFileError, sqlite_corruption
from forex_assets.core.retries import TransientError
from forex_assets.core.storage.legacy import import_sqlite_part
from forex_assets.core.storage.schema_versions import (
    current_revisions,
    known_revisions,
    prepare_migration,
    run_upgrade,
    target_revisions,
)
from forex_assets.core.storage.tables import LEGACY_PAIR, PARTS
from forex_assets.core.working_area import STATE_DATABASE_URL_ENV, configured_state_database_url

#: where a PostgreSQL URL without a password finds it, in this order
PASSWORD_ENVS = ("FOREX_STATE_DATABASE_PASSWORD", "DAGSTER_POSTGRES_PASSWORD", "DAGSTER_PG_PASSWORD")
#: the PostgreSQL schema of the project's tables (Dagster's own tables stay in ``public``)
STATE_SCHEMA = "forex"
SQLITE_BUSY_TIMEOUT_S = 30
POSTGRES_CONNECT_TIMEOUT_S = 10
WRITE_OPTION = "forex_state_write"  # execution option: this connection's transaction writes (SQLite: BEGIN IMMEDIATE)


class StateDatabaseError(RuntimeError):
    """The state database could not be reached, or an operation on it failed; the message names the
    database (without its password), what was being done, and what to do."""

    def __init__(self, message: str, database: str):
        super().__init__(message)
        self.database = database


class StateDatabaseMissing(StateDatabaseError):
    """A part opened ``read_only`` names a SQLite file that does not exist (nothing was created)."""


class StateDatabaseUnavailable(StateDatabaseError, TransientError):
    """The database could not be reached, the connection was lost, or a SQLite file stayed locked: waiting may
    cure it, so a step's retry policy tries again (``forex_assets.core.retries.is_transient``)."""


# ------------------------------------------------------------------------------------------------ URLs


def configured_url(value: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """``value``, else ``$FOREX_STATE_DATABASE_URL``; None (empty or unset) means the embedded SQLite files
    (resolved by the working-area layout, :mod:`forex_assets.core.working_area`)."""
    return configured_state_database_url(value, environ)


def complete_url(url: str | URL, environ: Mapping[str, str] | None = None) -> URL:
    """``url`` ready to connect: ``postgresql://`` means psycopg2 (the driver of dagster-postgres;
    SQLAlchemy 2.1 would pick psycopg 3), and a PostgreSQL URL without a password takes the first of
    :data:`PASSWORD_ENVS` that is set. Only PostgreSQL and SQLite are supported."""
    environ = os.environ if environ is None else environ
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except sqlalchemy.exc.ArgumentError:
        raise ValueError(
            f"the state database URL {_without_secret(str(url))!r} (${STATE_DATABASE_URL_ENV}) is not a database URL; "
            "use postgresql+psycopg2://user@host:5432/database (or leave it unset for SQLite files in the working area)"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg2")
        if parsed.password is None:
            password = next((environ[name] for name in PASSWORD_ENVS if environ.get(name)), None)
            if password is not None:
                parsed = parsed.set(password=password)
        return parsed
    if backend == "sqlite":
        return parsed
    raise ValueError(
        f"the state database URL {parsed.render_as_string(hide_password=True)} (${STATE_DATABASE_URL_ENV}) is for "
        f"{backend}: only PostgreSQL (postgresql+psycopg2://...) and SQLite (sqlite:///path, or no URL at all) "
        "are supported"
    )


def masked_url(text: str) -> str:
    """The URL ``text`` as given, its password (if any) replaced by ``***``: what messages may show."""
    try:
        return make_url(text).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return _without_secret(text)


def _without_secret(text: str) -> str:
    """A URL-ish text with its password (between the user's ``:`` and the ``@``) masked."""
    if "@" not in text:
        return text
    credentials, _, host = text.rpartition("@")
    scheme, separator, credentials = credentials.rpartition("://")
    user, colon, _ = credentials.partition(":")
    return f"{scheme}{separator}{user}{':***' if colon else ''}@{host}"


def describe_url(url: URL) -> str:
    """How errors name a database: the URL without its password (and the schema, on PostgreSQL)."""
    if url.get_backend_name() == "sqlite":
        return str(Path(url.database)) if url.database else "sqlite (in memory)"
    return f"{url.render_as_string(hide_password=True)} (schema {STATE_SCHEMA})"


# ------------------------------------------------------------------------------------------------ engines

_engines: dict[tuple[int, str, bool, bool], Engine] = {}
_engines_lock = threading.Lock()


def _switch_to_wal(dbapi_connection: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode=WAL``, waiting like any other lock. SQLite does not call the busy handler for a
    journal-mode switch: while another process switches a new file (the first opens of an empty working area
    race), the pragma fails at once with "database is locked". It is retried here until the busy timeout; on a
    file already in WAL mode it is a no-op that never waits."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    pause_s = 0.005
    while True:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause_s > deadline:
                raise
        finally:
            cursor.close()
        time.sleep(pause_s)
        pause_s = min(pause_s * 2, 0.1)


def _sqlite_engine(url: URL, wal: bool, read_only: bool = False) -> Engine:
    # a connection per operation (NullPool), as before: nothing holds the file open between operations, the
    # -wal and -shm files go away with the last connection, and a file set aside is never written through a
    # pooled handle
    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # the driver's own transaction handling off: SQLAlchemy's "begin" below emits BEGIN, so that DDL is
        # transactional too (a migration is all or nothing) and a write can take the lock up front
        dbapi_connection.isolation_level = None
        if read_only:  # sqlite_read_url's mode=rw: this connection cannot write (nor switch to WAL)
            dbapi_connection.execute("PRAGMA query_only=1")
        elif wal:
            _switch_to_wal(dbapi_connection)

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # a writer takes the write lock at BEGIN (waiting up to the busy timeout): a deferred transaction that
        # reads, then writes, could fail at once with "database is locked" when another writer went first
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: URL, read_only: bool = False) -> Engine:
    try:
        import psycopg2  # noqa: F401 - the driver, from the production extra (dagster-postgres)
    except ModuleNotFoundError:
        raise StateDatabaseError(
            f"state database {describe_url(url)}: PostgreSQL needs the psycopg2 driver, which is not installed: "
            "pip install -e '.[production]' (it comes with dagster-postgres)",
            describe_url(url),
        ) from None
    return sa.create_engine(
        url,
        pool_size=2,
        max_overflow=4,
        pool_pre_ping=True,  # a connection the server dropped (restart, failover) is replaced, not used
        pool_recycle=1800,
        connect_args={
            "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
            "application_name": "forex_assets",
            **({"options": "-c default_transaction_read_only=on"} if read_only else {}),
        },
        execution_options={"schema_translate_map": {None: STATE_SCHEMA}},
    )


def _forget_inherited_engines() -> None:
    """In a forked child: drop the parent's pools without closing their connections (they are the parent's;
    closing them here would end its sessions). The child opens its own (engines are per process)."""
    global _engines_lock
    _engines_lock = threading.Lock()  # another thread of the parent may have held it at the fork
    for engine in list(_engines.values()):
        engine.dispose(close=False)
    _engines.clear()


os.register_at_fork(after_in_child=_forget_inherited_engines)


def engine_for(url: URL, wal: bool = False, read_only: bool = False) -> Engine:
    """One engine per database and process (a forked process makes its own); ``wal``: SQLite's journal mode;
    ``read_only``: connections that cannot write (SQLite: ``url`` is :func:`sqlite_read_url`'s)."""
    sqlite = url.get_backend_name() == "sqlite"
    key = (os.getpid(), url.render_as_string(hide_password=False), wal and sqlite and not read_only, read_only)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _sqlite_engine(url, wal, read_only) if sqlite else _postgres_engine(url, read_only)
            _engines[key] = engine
        return engine


# ------------------------------------------------------------------------------------------------ the database


def _driver_message(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return " ".join(lines) or type(original).__name__


class StateDatabase:
    """One part of the state (``forecast_history``, ``decisions`` or ``alerts``) in its database.

    ``url`` None: the SQLite file ``path`` holds this part alone (the embedded default). Else ``url`` (a
    PostgreSQL or SQLite URL) holds every part; ``path`` is then where the embedded default kept this part,
    whose rows are copied in once if the part is still empty there (:mod:`forex_assets.core.storage.legacy`).

    ``what`` names the part in errors ("forecast history"); ``on_corrupt(path, sqlite_error)`` makes the
    error for a corrupt SQLite file (default: a :class:`CorruptFileError` naming the file; nothing is moved).
    ``read_only``: only read, create nothing (see the module's docstring); ``empty`` then says whether the
    part's tables are missing (nothing recorded), ``outdated`` whether the database is at an older migration.
    """

    def __init__(
        self,
        part: str,
        path: Path | str | None = None,
        url: str | URL | None = None,
        *,
        what: str,
        wal: bool = False,
        on_corrupt: Callable[[Path, BaseException], Exception] | None = None,
        read_only: bool = False,
    ):
        if part not in PARTS:
            raise ValueError(f"{part!r} is not a part of the state ({', '.join(PARTS)})")
        self.part, self.what, self._on_corrupt, self.read_only = part, what, on_corrupt, read_only
        self.empty = self.outdated = False
        self._columns_seen: dict[tuple[str, str], bool] = {}
        if url is None:
            if path is None:
                raise ValueError("a state database needs a SQLite file or a URL")
            self.path: Path | None = Path(path)
            self.url = URL.create("sqlite", database=str(self.path))
            self.shared = False
        else:
            self.url = complete_url(url)
            self.path = Path(self.url.database) if self.is_sqlite and self.url.database else None
            self.shared = True
        if read_only:
            self.engine = engine_for(self._read_only_url(), read_only=True)
            self.check_readable()
            return
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = engine_for(self.url, wal=wal)
        self.migrate()
        if self.shared and path is not None:  # the part's file of the embedded default, moved in once
            import_sqlite_part(self, Path(path))

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def schema(self) -> str | None:
        return None if self.is_sqlite else STATE_SCHEMA

    @property
    def description(self) -> str:
        return describe_url(self.url)

    def __repr__(self) -> str:
        return f"StateDatabase({self.part!r}, {self.description!r})"

    # -------------------------------------------------------------------------------------- errors

    def corrupt_error(self, error: BaseException, path: Path | None = None) -> Exception:
        """The error for the SQLite file ``path`` (default this database's) found corrupt by ``error``."""
        path = path or self.path
        if path is None:  # only a SQLite file is found corrupt: an in-memory database has none
            raise ValueError(f"{self.description}: no SQLite file to name as corrupt ({error})")
        if self._on_corrupt is not None:
            return self._on_corrupt(path, error)
        return CorruptFileError(
            f"{path}: the {self.what} is corrupt ({error}). It was left as it is and nothing was written. "
            f"Restore it from a backup; or, to start an empty one, move {path.name} and its -wal and -shm "
            f"files, if any, out of {path.parent} and run again.",
            path,
        )

    def _read_only_url(self) -> URL:
        if not self.is_sqlite:
            return self.url
        if self.path is None:
            raise StateDatabaseMissing(f"{self.description}: an in-memory database holds no {self.what}", "memory")
        if not self.path.is_file():
            raise StateDatabaseMissing(
                f"{self.path}: no such database file (the {self.what} was looked for there; nothing was created).",
                self.description,
            )
        from forex_assets.core.storage.read_only import sqlite_read_url

        return sqlite_read_url(self.path)

    def _failure(self, error: sqlalchemy.exc.DBAPIError, doing: str, writing: bool) -> StateDatabaseError:
        detail = _driver_message(error)
        if self.url.password:
            detail = detail.replace(self.url.password, "***")
        unavailable = False
        if self.is_sqlite:
            hint = ""
            if "locked" in detail or "busy" in detail:
                unavailable = True
                hint = f" Another process held the file locked for more than {SQLITE_BUSY_TIMEOUT_S} s; run again."
            message = f"{self.description}: {doing} the {self.what} failed ({detail}).{hint}"
        else:
            # lost (SQLAlchemy invalidated the connection), or never made (a client-side error: no SQLSTATE from
            # the server); a server's own refusal (deadlock, constraint...) carries its SQLSTATE and reads as is
            client_side = getattr(getattr(error, "orig", None), "pgcode", None) is None
            if error.connection_invalidated or (
                isinstance(error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError) and client_side
            ):
                unavailable = True
                problem = f"the database cannot be reached or the connection was lost ({detail})"
                hint = (
                    f" Check that PostgreSQL is running and reachable (and the URL: ${STATE_DATABASE_URL_ENV} or "
                    "the working_area resource's state_database_url), then run again."
                )
            else:
                problem, hint = detail, ""
            message = f"state database {self.description}: {doing} the {self.what} failed: {problem}."
            message += hint
        if writing:
            message += " The write is one transaction: it is stored whole or not at all, never in part."
        if self.outdated and not unavailable:
            message += (
                " Its tables were written by an older version of forex_assets and this command only reads them: "
                "`forex-assets run` (or any run of the instance) upgrades them in place; then run this again."
            )
        return (StateDatabaseUnavailable if unavailable else StateDatabaseError)(message, self.description)

    @contextmanager
    def _translated(self, doing: str, writing: bool = False) -> Iterator[None]:
        """Errors of the block as this module's errors: a corrupt SQLite file, or a failed operation."""
        try:
            yield
        except (CorruptFileError, StateDatabaseError):
            raise
        except Exception as error:
            corruption = sqlite_corruption(error) if self.is_sqlite else None
            if corruption is not None:
                raise self.corrupt_error(corruption) from None
            if isinstance(error, sqlalchemy.exc.DBAPIError):
                raise self._failure(error, doing, writing) from None
            raise

    # -------------------------------------------------------------------------------------- operations

    @contextmanager
    def write(self, doing: str = "writing") -> Iterator[Connection]:
        """A connection in one transaction, committed when the block ends, rolled back if it raises."""
        with self._translated(doing, writing=True), self.engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                yield connection

    @contextmanager
    def read(self, doing: str = "reading") -> Iterator[Connection]:
        with self._translated(doing), self.engine.connect() as connection:
            yield connection

    def upsert(self, table: sa.Table, values: dict[str, Any], keys: list[str]) -> SqliteInsert | PostgresqlInsert:
        """``INSERT ... ON CONFLICT (keys) DO UPDATE`` of ``values`` (both databases): concurrent writers of
        the same key queue on its row instead of failing, and the last one's values stay."""
        statement: SqliteInsert | PostgresqlInsert
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(table).values(**values)
        else:
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            statement = postgresql_insert(table).values(**values)
        return statement.on_conflict_do_update(
            index_elements=keys, set_={name: statement.excluded[name] for name in values if name not in keys}
        )

    def pair_condition(self, table: sa.Table, pair: str) -> sa.ColumnElement[bool] | None:
        """The condition that selects ``pair``'s rows of ``table``. A reader of tables an older version wrote
        (read-only, not upgraded yet: no ``pair`` column) reads them as they are: every row is USD/CLP's, so
        the condition is None (all rows) for USD/CLP and false for another pair."""
        if not self.keyed_by_pair(table):
            return None if pair == LEGACY_PAIR else sa.false()
        return table.c.pair == pair

    def keyed_by_pair(self, table: sa.Table) -> bool:
        """Whether ``table`` has its ``pair`` column: always, but in tables an older version wrote that a reader
        (read-only) finds before their upgrade."""
        return not self.outdated or self._has_column(table.name, "pair")

    def _has_column(self, table: str, column: str) -> bool:
        key = (table, column)
        if key not in self._columns_seen:
            with self._translated("opening"), self.engine.connect() as connection:
                names = {c["name"] for c in sa.inspect(connection).get_columns(table, schema=self.schema)}
            self._columns_seen[key] = column in names
        return self._columns_seen[key]

    # -------------------------------------------------------------------------------------- migrations

    def migrate(self) -> None:
        """Bring this part (a shared database: every part) to the latest migration; a no-op read when it is
        there already."""
        target = None if self.shared else self.part
        wanted = target_revisions(target)
        with self._translated("opening"):
            with self.engine.connect() as connection:
                current = current_revisions(connection, self.schema)
            if wanted <= current:
                return
            self._refuse_unknown(current)
            with self.engine.connect() as connection:
                connection.execution_options(**{WRITE_OPTION: True})
                with connection.begin():
                    prepare_migration(connection, self.schema)
                    current = current_revisions(connection, self.schema)  # another process may have done it
                    if not wanted <= current:
                        self._refuse_unknown(current)
                        run_upgrade(connection, self.schema, "heads" if target is None else f"{target}@head")

    def check_readable(self) -> None:
        """The read-only open: the migration's version, read; nothing written. Sets ``empty`` (none of the
        part's tables exist) and ``outdated`` (older than this version's migrations); refuses a newer one."""
        wanted = target_revisions(None if self.shared else self.part)
        with self._translated("opening"), self.engine.connect() as connection:
            current = current_revisions(connection, self.schema)
            if not wanted <= current:
                inspector = sa.inspect(connection)
                present = [t for t in PARTS[self.part] if inspector.has_table(t.name, schema=self.schema)]
                self.empty = not present
        if not wanted <= current:
            self._refuse_unknown(current)
            self.outdated = not self.empty

    def _refuse_unknown(self, current: set[str]) -> None:
        unknown = current - known_revisions()
        if unknown:
            raise StateDatabaseError(
                f"state database {self.description}: its tables are at migration {', '.join(sorted(unknown))}, "
                "which this version of forex_assets does not know (it was written by a newer version). Run the "
                "newer version, or restore a backup made before it ran.",
                self.description,
            )
