"""On-disk cache of backtest forecasts (SQLite), keyed by checkpoint, configuration, horizon, origin
date and a digest of the context, so a later run computes only new origins.

It is a pure cache: a corrupt file is set aside (``<name>.corrupt-<UTC stamp>``, a logged and recorded
:class:`~forex_assets.core.corrupt_files.SetAside`), an empty cache takes its place and the work goes on.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path

import numpy as np

from forex_assets.core.corrupt_files import is_corrupt_sqlite, set_aside_sqlite
from forex_assets.core.forecasting.config import SAMPLING_FAMILY, ChronosConfig
from forex_assets.core.forecasting.quantiles import (
    FORECAST_QUANTILES,
)


def model_fields(config: ChronosConfig) -> dict:
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
    """Backtest forecasts on disk (SQLite): quantiles (steps x levels) and seconds per forecast."""

    WHAT = "backtest cache"

    def __init__(self, path: Path | str):
        self.path = Path(path)
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

    def _guarded(self, operation: Callable[[], object]):
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
        return self._guarded(lambda: self._count(checkpoint_id))

    def _count(self, checkpoint_id: str | None) -> int:
        with closing(self._connect()) as db:
            if checkpoint_id is None:
                return db.execute("SELECT COUNT(*) FROM forecasts").fetchone()[0]
            return db.execute("SELECT COUNT(*) FROM forecasts WHERE checkpoint = ?", (checkpoint_id,)).fetchone()[0]
