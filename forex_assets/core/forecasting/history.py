"""Persistent forecast history (SQLite in the working area).

One row per (horizon, origin date) in ``forecast_runs`` and one per forecast step in
``forecast_steps``. Recording the same origin again replaces it: re-runs never duplicate rows.

A corrupt file is an error (:class:`~forex_assets.core.corrupt_files.CorruptFileError`), never set aside
silently: see :func:`corrupt_history_error`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from forex_assets.core.corrupt_files import CorruptFileError, sqlite_corruption
from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES


def quantile_column(level: float) -> str:
    """0.025 -> 'q0_025'."""
    return "q" + f"{level:g}".replace(".", "_")


QUANTILE_COLUMNS = [quantile_column(q) for q in FORECAST_QUANTILES]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS forecast_runs (
    horizon TEXT NOT NULL,
    origin_date TEXT NOT NULL,
    last_price REAL NOT NULL,
    config_version TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    config_json TEXT NOT NULL,
    inference_seconds REAL NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (horizon, origin_date)
);
CREATE TABLE IF NOT EXISTS forecast_steps (
    horizon TEXT NOT NULL,
    origin_date TEXT NOT NULL,
    step INTEGER NOT NULL,
    target_date TEXT NOT NULL,
    {", ".join(f"{c} REAL NOT NULL" for c in QUANTILE_COLUMNS)},
    PRIMARY KEY (horizon, origin_date, step)
);
"""


@dataclass(frozen=True)
class ForecastRecord:
    horizon: str
    origin_date: pd.Timestamp
    last_price: float
    target_dates: list[pd.Timestamp]
    quantiles: np.ndarray  # (steps, len(FORECAST_QUANTILES)), CLP
    config_version: str
    checkpoint: str
    config: dict
    inference_seconds: float

    def table(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.quantiles, columns=QUANTILE_COLUMNS)
        frame.insert(0, "target_date", pd.to_datetime(self.target_dates))
        frame.insert(0, "step", np.arange(1, len(self.target_dates) + 1))
        return frame


def corrupt_history_error(path: Path, error: BaseException) -> CorruptFileError:
    """The error for an unreadable forecast history.

    Unlike the backtest cache or an Optuna journal, the history is state, not a cache: the forecasts in it
    were made with the configurations deployed at the time and cannot be made again, and the performance
    reports and the rollback watch score them once they mature. Setting it aside by itself would quietly
    reset that record (a deploy would lose its post-deploy watch, the performance trigger its matured
    forecasts), so nothing is moved or written, and the operator decides: restore a backup, or start an
    empty history knowingly."""
    return CorruptFileError(
        f"{path}: the forecast history is corrupt ({error}). It is state, not a cache (the performance "
        "reports and the rollback watch score the forecasts recorded in it), so it was left as it is and "
        f"nothing was written. Restore it from a backup; or, to start an empty history (the forecasts "
        f"recorded so far are then no longer scored), move {path.name} and its -wal and -shm files, if any, "
        f"out of {path.parent} and run again.",
        path,
    )


class ForecastHistory:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._guarded(self._create)

    def _create(self) -> None:
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except BaseException:
            db.close()
            raise
        return db

    def _guarded(self, operation: Callable[[], object]):
        """``operation()``; a corrupt file raises :func:`corrupt_history_error` (and stays where it is)."""
        try:
            return operation()
        except Exception as error:  # pandas wraps SQLite's errors in its own
            corruption = sqlite_corruption(error)
            if corruption is not None:
                raise corrupt_history_error(self.path, corruption) from None
            raise

    def record(self, record: ForecastRecord) -> None:
        """Store a forecast, replacing any earlier one for the same horizon and origin."""
        self._guarded(lambda: self._record(record))

    def _record(self, record: ForecastRecord) -> None:
        if record.quantiles.shape != (len(record.target_dates), len(FORECAST_QUANTILES)):
            raise ValueError(
                f"quantiles of shape {record.quantiles.shape} do not match "
                f"{len(record.target_dates)} steps x {len(FORECAST_QUANTILES)} levels"
            )
        origin = record.origin_date.strftime("%Y-%m-%d")
        key = (record.horizon, origin)
        steps = [
            (record.horizon, origin, i + 1, pd.Timestamp(d).strftime("%Y-%m-%d"), *map(float, row))
            for i, (d, row) in enumerate(zip(record.target_dates, record.quantiles, strict=True))
        ]
        with closing(self._connect()) as db, db:  # one transaction: all or nothing
            db.execute("DELETE FROM forecast_steps WHERE horizon = ? AND origin_date = ?", key)
            db.execute(
                "INSERT OR REPLACE INTO forecast_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *key,
                    float(record.last_price),
                    record.config_version,
                    record.checkpoint,
                    json.dumps(record.config, sort_keys=True),
                    float(record.inference_seconds),
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )
            db.executemany(f"INSERT INTO forecast_steps VALUES ({', '.join('?' * (4 + len(QUANTILE_COLUMNS)))})", steps)

    def _read(
        self, table: str, order: str, horizon: str | None, since: pd.Timestamp | None, version: str | None = None
    ) -> pd.DataFrame:
        """Rows of ``horizon`` (all horizons when None) with an origin on or after ``since`` (a windowed
        query on the primary key: what a day's monitoring reads does not grow with the history)."""
        conditions, params = [], []
        if horizon is not None:
            conditions.append("horizon = ?")
            params.append(horizon)
        if since is not None:
            conditions.append("origin_date >= ?")
            params.append(pd.Timestamp(since).strftime("%Y-%m-%d"))
        if version is not None:
            conditions.append("config_version = ?")
            params.append(version)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""

        def read() -> pd.DataFrame:
            with closing(self._connect()) as db:
                return pd.read_sql_query(f"SELECT * FROM {table}{where} ORDER BY {order}", db, params=tuple(params))

        return self._guarded(read)

    def runs(
        self, horizon: str | None = None, since: pd.Timestamp | None = None, version: str | None = None
    ) -> pd.DataFrame:
        """Forecast runs, optionally only those from ``since`` on and made by configuration ``version``."""
        frame = self._read("forecast_runs", "horizon, origin_date", horizon, since, version)
        frame["origin_date"] = pd.to_datetime(frame["origin_date"])
        return frame

    def steps(self, horizon: str | None = None, since: pd.Timestamp | None = None) -> pd.DataFrame:
        frame = self._read("forecast_steps", "horizon, origin_date, step", horizon, since)
        for column in ("origin_date", "target_date"):
            frame[column] = pd.to_datetime(frame[column])
        return frame
