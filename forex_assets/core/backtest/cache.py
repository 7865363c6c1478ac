"""Cache of backtest forecasts, keyed by checkpoint, configuration, horizon, origin date and a digest of the
context, so a later run computes only new origins.

Two places, as the rest of the state (``forex_assets.core.storage``):

* **no state database URL** (the embedded default, and the replay): its own SQLite file in the working area
  (``backtest_cache.sqlite``), read and written with the ``sqlite3`` module directly: it is on the hot path of
  every search. It is a pure cache: a corrupt file is set aside (``<name>.corrupt-<UTC stamp>``, a logged and
  recorded :class:`~forex_assets.core.corrupt_files.SetAside`), an empty cache takes its place and the work
  goes on;
* **a state database URL** (production's PostgreSQL): the table ``backtest_forecasts`` of that database
  (schema ``forex``, part ``backtest_cache``). Each ``put_many`` is one transaction of ``INSERT ... ON
  CONFLICT (key) DO UPDATE`` in key order, so processes writing overlapping keys at once queue on the rows
  instead of failing or deadlocking, and each key is stored once (the last writer's row, whole). A database
  that cannot be reached is a :class:`~forex_assets.core.storage.StateDatabaseError` naming it. The file of
  the embedded default is not read (nor copied in): what is missing is computed again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from forex_assets.core.corrupt_files import is_corrupt_sqlite, set_aside_sqlite
from forex_assets.core.forecasting.config import SAMPLING_FAMILY, ChronosConfig
from forex_assets.core.forecasting.quantiles import (
    FORECAST_QUANTILES,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

    from forex_assets.core.storage import StateDatabase

_Result = TypeVar("_Result")

#: keys per ``IN (...)`` query, rows per ``INSERT`` statement
BATCH = 500


def model_fields(config: ChronosConfig) -> dict[str, Any]:
    """The configuration fields that change a forecast (not the horizon label or the baseline)."""
    fields = {
        "family": config.family,
        "context_lengths": list(config.context_lengths),
        "preprocessing": config.preprocessing,
    }
    if config.family == SAMPLING_FAMILY:
        fields |= config.sampling_kwargs() | {"seed": config.seed}
    return fields


def _context_digest(values: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()[:16]


class ForecastCache:
    """Backtest forecasts: quantiles (steps x levels) and seconds per forecast. In the SQLite file ``path``
    (the embedded default), or, with ``database_url``, in that state database (``path`` unused)."""

    WHAT = "backtest cache"

    def __init__(self, path: Path | str, database_url: str | None = None):
        self.path = Path(path)
        self.database_url = database_url
        self.database: StateDatabase | None = None
        if database_url is not None:
            from forex_assets.core.storage import StateDatabase

            # no path: the embedded default's file is a cache, not state to copy in
            self.database = StateDatabase("backtest_cache", None, database_url, what=self.WHAT)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._guarded(self._create)

    def _create(self) -> None:
        with closing(self._connect()) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS forecasts (key TEXT PRIMARY KEY, checkpoint TEXT NOT NULL, "
                "origin_date TEXT NOT NULL, steps INTEGER NOT NULL, quantiles BLOB NOT NULL, "
                "seconds REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except BaseException:
            db.close()
            raise
        return db

    def _guarded(self, operation: Callable[[], _Result]) -> _Result:
        """``operation()``; when the file is corrupt, set it aside, start an empty cache and run it again.

        A first corruption error is retried as is: another process may have set the file aside a moment
        ago, and the file now at ``path`` is its new, healthy cache (which must not be set aside in turn)."""
        for retry in (False, True):
            try:
                return operation()
            except Exception as error:
                if not is_corrupt_sqlite(error):
                    raise
                if retry:
                    set_aside_sqlite(self.path, self.WHAT, error)
        self._create()
        return operation()

    @staticmethod
    def key(checkpoint_id: str, config: ChronosConfig, steps: int, origin_date: str, context: np.ndarray) -> str:
        document = {
            "checkpoint": checkpoint_id,
            "config": model_fields(config),
            "steps": steps,
            "levels": list(FORECAST_QUANTILES),
            "origin": origin_date,
            "context": _context_digest(context),
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, tuple[np.ndarray, float]]:
        if self.database is not None:
            return self._database_get_many(self.database, keys)
        return self._guarded(lambda: self._get_many(keys))

    def _get_many(self, keys: Sequence[str]) -> dict[str, tuple[np.ndarray, float]]:
        found: dict[str, tuple[np.ndarray, float]] = {}
        with closing(self._connect()) as db:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                rows = db.execute(
                    f"SELECT key, steps, quantiles, seconds FROM forecasts WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, steps, blob, seconds in rows:
                    found[key] = (np.frombuffer(blob, dtype=np.float64).reshape(steps, -1), seconds)
        return found

    def put_many(self, rows: Sequence[tuple[str, str, str, np.ndarray, float]]) -> None:
        """rows: (key, checkpoint id, origin date, quantiles (steps, levels), seconds per forecast)."""
        if self.database is not None:
            self._database_put_many(self.database, rows)
            return
        self._guarded(lambda: self._put_many(rows))

    def _put_many(self, rows: Sequence[tuple[str, str, str, np.ndarray, float]]) -> None:
        with closing(self._connect()) as db, db:
            db.executemany(
                "INSERT OR REPLACE INTO forecasts VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (k, c, o, q.shape[0], np.ascontiguousarray(q, dtype=np.float64).tobytes(), s)
                    for k, c, o, q, s in rows
                ],
            )

    def count(self, checkpoint_id: str | None = None) -> int:
        if self.database is not None:
            return self._database_count(self.database, checkpoint_id)
        return self._guarded(lambda: self._count(checkpoint_id))

    def _count(self, checkpoint_id: str | None) -> int:
        with closing(self._connect()) as db:
            if checkpoint_id is None:
                return int(db.execute("SELECT COUNT(*) FROM forecasts").fetchone()[0])
            query = "SELECT COUNT(*) FROM forecasts WHERE checkpoint = ?"
            return int(db.execute(query, (checkpoint_id,)).fetchone()[0])

    # ------------------------------------------------------------------------------ in a state database

    def _database_get_many(self, database: StateDatabase, keys: Sequence[str]) -> dict[str, tuple[np.ndarray, float]]:
        import sqlalchemy as sa

        from forex_assets.core.storage.tables import backtest_forecasts as table

        found: dict[str, tuple[np.ndarray, float]] = {}
        query = sa.select(table.c.key, table.c.steps, table.c.quantiles, table.c.seconds)
        with database.read("reading forecasts from") as db:
            for start in range(0, len(keys), BATCH):
                chunk = list(keys[start : start + BATCH])
                for row in db.execute(query.where(table.c.key.in_(chunk))):
                    quantiles = np.frombuffer(bytes(row.quantiles), dtype=np.float64).reshape(row.steps, -1)
                    found[row.key] = (quantiles, row.seconds)
        return found

    def _database_put_many(
        self, database: StateDatabase, rows: Sequence[tuple[str, str, str, np.ndarray, float]]
    ) -> None:
        from forex_assets.core.storage.tables import backtest_forecasts as table

        latest = {  # a key given twice: its last row (one statement may not change a row twice)
            k: {
                "key": k,
                "checkpoint": c,
                "origin_date": o,
                "steps": q.shape[0],
                "quantiles": np.ascontiguousarray(q, dtype=np.float64).tobytes(),
                "seconds": float(s),
            }
            for k, c, o, q, s in rows
        }
        if not latest:
            return
        # in key order: writers of overlapping keys lock their rows in the same order, so they queue, never
        # deadlock
        values = [latest[key] for key in sorted(latest)]
        statement: SqliteInsert | PostgresqlInsert
        if database.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(table)
        else:
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            statement = postgresql_insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                name: statement.excluded[name]
                for name in ("checkpoint", "origin_date", "steps", "quantiles", "seconds")
            },
        )
        with database.write("storing forecasts in") as db:
            for start in range(0, len(values), BATCH):
                db.execute(statement, values[start : start + BATCH])

    def _database_count(self, database: StateDatabase, checkpoint_id: str | None) -> int:
        import sqlalchemy as sa

        from forex_assets.core.storage.tables import backtest_forecasts as table

        query = sa.select(sa.func.count()).select_from(table)
        if checkpoint_id is not None:
            query = query.where(table.c.checkpoint == checkpoint_id)
        with database.read("counting the forecasts of") as db:
            return db.execute(query).scalar_one()
