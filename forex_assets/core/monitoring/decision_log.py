"""Every trigger decision, fired or not, with its reasons, persisted: SQLite in the working area, or the state
database (PostgreSQL) in production (``forex_assets.core.storage``).

The sensors and the replay ask every day for the last optimization and the last performance override:
those are ``MAX`` queries on partial indexes over (horizon, decided_on) that hold only the flagged
decisions, so their cost does not grow with the number of decisions logged (nor with the days since the
last flagged one)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from forex_assets.core.monitoring.triggers import TriggerDecision
from forex_assets.core.storage import StateDatabase
from forex_assets.core.storage.tables import FLAG_INDEXES
from forex_assets.core.storage.tables import decisions as decisions_table

__all__ = ["FLAG_INDEXES", "DecisionLog"]


def _last_flagged_statement(flag: str) -> sa.Select:
    if flag not in FLAG_INDEXES:
        raise ValueError(f"{flag!r} is not a decision flag ({', '.join(FLAG_INDEXES)})")
    # "= 1" as a literal, not a parameter: a partial index is used only for a condition that implies its own
    return sa.select(sa.func.max(decisions_table.c.decided_on)).where(
        decisions_table.c.horizon == sa.bindparam("horizon"), decisions_table.c[flag] == sa.literal_column("1")
    )


class DecisionLog:
    """Every trigger decision, persisted: in the SQLite file ``path`` (the embedded default), or, with
    ``database_url``, in that database (PostgreSQL: schema ``forex``), ``path`` unused except that the
    database adopts an embedded-default file's rows once; ``adopt_file=False`` (readers): never."""

    def __init__(self, path: Path | str, database_url: str | None = None, *, adopt_file: bool = True):
        self.path = Path(path)
        source = self.path if adopt_file or not database_url else None
        self.database = StateDatabase("decisions", source, database_url, what="trigger decision log")

    def record(self, decision: TriggerDecision, at: datetime | None = None) -> None:
        row = {
            "horizon": decision.horizon,
            "decided_on": decision.decided_on.isoformat(),
            "optimize": int(decision.optimize),
            "fired": json.dumps(decision.fired),
            "blocked": json.dumps(decision.blocked),
            "reasons": json.dumps(decision.reasons),
            "performance_override": int(decision.performance_override),
            "recorded_at": (at or datetime.now(UTC)).isoformat(),
        }
        with self.database.write("recording a decision in") as db:
            db.execute(sa.insert(decisions_table).values(**row))

    def entries(self, horizon: str | None = None) -> list[tuple[datetime | None, TriggerDecision]]:
        """(when it was recorded, the decision), oldest first; the time is None for old logs."""
        c = decisions_table.c
        query = sa.select(
            c.horizon, c.decided_on, c.optimize, c.fired, c.blocked, c.reasons, c.performance_override, c.recorded_at
        )
        if horizon is not None:
            query = query.where(c.horizon == horizon)
        with self.database.read() as db:
            rows = db.execute(query.order_by(c.id)).all()
        return [
            (
                datetime.fromisoformat(at) if at else None,
                TriggerDecision(
                    h,
                    date.fromisoformat(d),
                    bool(o),
                    tuple(json.loads(f)),
                    tuple(json.loads(b)),
                    json.loads(r),
                    bool(p),
                ),
            )
            for h, d, o, f, b, r, p, at in rows
        ]

    def decisions(self, horizon: str | None = None) -> list[TriggerDecision]:
        return [decision for _, decision in self.entries(horizon)]

    @staticmethod
    def last_flagged_query(flag: str) -> str:
        """The latest day of a horizon's decisions with ``flag`` set (ISO dates sort as text), answered from
        the flag's partial index alone: the statement :meth:`last_optimization` runs, as SQLite's SQL with
        one ``?`` (the horizon)."""
        return str(_last_flagged_statement(flag).compile(dialect=sqlite.dialect()))

    def _last_flagged(self, horizon: str, flag: str) -> date | None:
        with self.database.read() as db:
            day = db.execute(_last_flagged_statement(flag), {"horizon": horizon}).scalar()
        return date.fromisoformat(day) if day else None

    def last_optimization(self, horizon: str) -> date | None:
        return self._last_flagged(horizon, "optimize")

    def last_performance_override(self, horizon: str) -> date | None:
        return self._last_flagged(horizon, "performance_override")
