"""Persistent forecast history: SQLite in the working area, or the state database (PostgreSQL) in production.

One row per (pair, horizon, origin date) in ``forecast_runs`` and one per forecast step in ``forecast_steps``
(``forex_assets.core.storage.tables``). Recording the same origin again replaces it, in one transaction:
re-runs never duplicate rows, and concurrent writers of the same origin leave exactly one of them. A
:class:`ForecastHistory` is one currency pair's (``pair``, default USD/CLP): it writes and reads that pair's
rows only.

A corrupt file is an error (:class:`~forex_assets.core.corrupt_files.CorruptFileError`), never set aside
silently: see :func:`corrupt_history_error`. A database that cannot be reached is a
:class:`~forex_assets.core.storage.StateDatabaseError` naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from forex_assets.core.corrupt_files import CorruptFileError
from forex_assets.core.storage import StateDatabase
from forex_assets.core.storage.tables import (
    LEGACY_PAIR,
    QUANTILE_COLUMNS,
    forecast_runs,
    forecast_steps,
    quantile_column,
)

# the levels of forecasting.quantiles.FORECAST_QUANTILES, one column each (the same tuple; imported from the
# tables so that reading the history does not load the model stack)
from forex_assets.core.storage.tables import STORED_QUANTILES as FORECAST_QUANTILES

__all__ = ["QUANTILE_COLUMNS", "ForecastHistory", "ForecastRecord", "corrupt_history_error", "quantile_column"]


@dataclass(frozen=True)
class ForecastRecord:
    horizon: str
    origin_date: pd.Timestamp
    last_price: float
    target_dates: list[pd.Timestamp]
    quantiles: np.ndarray  # (steps, len(FORECAST_QUANTILES)), CLP
    config_version: str
    checkpoint: str
    config: dict[str, Any]
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
    """The forecast history in the SQLite file ``path`` (the embedded default), or, with ``database_url``,
    in that database (every part of the state together; PostgreSQL: schema ``forex``), ``path`` unused except
    that the database adopts the rows of an embedded-default file there once; ``adopt_file=False`` (readers
    such as the command line): never. ``read_only``: only read, create nothing (``StateDatabase``'s read_only:
    a missing file is an error, an existing one is not written, a file is never adopted)."""

    def __init__(
        self,
        path: Path | str,
        database_url: str | None = None,
        *,
        pair: str = LEGACY_PAIR,
        adopt_file: bool = True,
        read_only: bool = False,
    ):
        self.path = Path(path)
        self.pair = pair  # every record written and read is this pair's
        self.database = StateDatabase(
            "forecast_history",
            self.path if (adopt_file and not read_only) or not database_url else None,
            database_url,
            what="forecast history",
            wal=True,
            on_corrupt=corrupt_history_error,
            read_only=read_only,
        )

    def record(self, record: ForecastRecord) -> None:
        """Store a forecast, replacing any earlier one for the same horizon and origin (one transaction: all
        or nothing)."""
        if record.quantiles.shape != (len(record.target_dates), len(FORECAST_QUANTILES)):
            raise ValueError(
                f"quantiles of shape {record.quantiles.shape} do not match "
                f"{len(record.target_dates)} steps x {len(FORECAST_QUANTILES)} levels"
            )
        origin = record.origin_date.strftime("%Y-%m-%d")
        run = {
            "pair": self.pair,
            "horizon": record.horizon,
            "origin_date": origin,
            "last_price": float(record.last_price),
            "config_version": record.config_version,
            "checkpoint": record.checkpoint,
            "config_json": json.dumps(record.config, sort_keys=True),
            "inference_seconds": float(record.inference_seconds),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        steps = [
            {
                "pair": self.pair,
                "horizon": record.horizon,
                "origin_date": origin,
                "step": i + 1,
                "target_date": pd.Timestamp(d).strftime("%Y-%m-%d"),
                **dict(zip(QUANTILE_COLUMNS, map(float, row), strict=True)),
            }
            for i, (d, row) in enumerate(zip(record.target_dates, record.quantiles, strict=True))
        ]
        same_run = (
            (forecast_steps.c.pair == self.pair)
            & (forecast_steps.c.horizon == record.horizon)
            & (forecast_steps.c.origin_date == origin)
        )
        with self.database.write("recording a forecast in") as db:
            # the run first: its row lock (PostgreSQL) queues a concurrent writer of the same origin until this
            # transaction ends, so the steps are never a mix of two writers'
            db.execute(self.database.upsert(forecast_runs, run, ["pair", "horizon", "origin_date"]))
            db.execute(sa.delete(forecast_steps).where(same_run))
            if steps:
                db.execute(sa.insert(forecast_steps), steps)

    def _read(
        self,
        table: sa.Table,
        order: list[str],
        horizon: str | None,
        since: pd.Timestamp | None,
        version: str | None = None,
    ) -> pd.DataFrame:
        """This pair's rows of ``horizon`` (all horizons when None) with an origin on or after ``since`` (a windowed
        query on the primary key: what a day's monitoring reads does not grow with the history)."""
        query = sa.select(*(c for c in table.columns if c.name != "pair"))
        condition = self.database.pair_condition(table, self.pair)
        if condition is not None:
            query = query.where(condition)
        if horizon is not None:
            query = query.where(table.c.horizon == horizon)
        if since is not None:
            query = query.where(table.c.origin_date >= pd.Timestamp(since).strftime("%Y-%m-%d"))
        if version is not None:
            query = query.where(table.c.config_version == version)
        query = query.order_by(*(table.c[name] for name in order))
        with self.database.read("reading") as db:
            result = db.execute(query)
            columns, rows = list(result.keys()), [tuple(row) for row in result.fetchall()]
        # plain tuples: pandas inspects SQLAlchemy rows attribute by attribute (~20x slower)
        return pd.DataFrame(rows, columns=columns)

    def runs(
        self, horizon: str | None = None, since: pd.Timestamp | None = None, version: str | None = None
    ) -> pd.DataFrame:
        """Forecast runs, optionally only those from ``since`` on and made by configuration ``version``."""
        frame = self._read(forecast_runs, ["horizon", "origin_date"], horizon, since, version)
        frame["origin_date"] = pd.to_datetime(frame["origin_date"])
        return frame

    def steps(self, horizon: str | None = None, since: pd.Timestamp | None = None) -> pd.DataFrame:
        frame = self._read(forecast_steps, ["horizon", "origin_date", "step"], horizon, since)
        for column in ("origin_date", "target_date"):
            frame[column] = pd.to_datetime(frame[column])
        return frame
