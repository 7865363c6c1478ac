"""Every trigger decision, fired or not, with its reasons, persisted: SQLite in the working area, or the state
database (PostgreSQL) in production (``forex_assets.core.storage``).

With the decisions, the verdict of each optimization that reached one (table ``optimization_verdicts``):
the guard counts those only (``forex_assets.core.monitoring.triggers``, "What the guard counts"), so an
optimization whose run died or was killed holds nothing back.

The sensors and the replay ask every day for the last optimization and the last performance override:
those are ``MAX`` queries on indexes over the verdicts' (horizon, decided_on) (a partial one for the
overrides), so their cost does not grow with the number of decisions logged (nor with the days since the
last optimization)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from forex_assets.core.monitoring.triggers import VERDICTS, OptimizationVerdict, TriggerDecision
from forex_assets.core.storage import StateDatabase
from forex_assets.core.storage.tables import FLAG_INDEXES, LEGACY_PAIR, VERDICT_INDEXES
from forex_assets.core.storage.tables import decisions as decisions_table
from forex_assets.core.storage.tables import optimization_verdicts as verdicts_table

__all__ = ["FLAG_INDEXES", "VERDICT_INDEXES", "DecisionLog"]


def _last_flagged_statement(flag: str, keyed_by_pair: bool = True) -> sa.Select[Any]:
    """The latest ``decided_on`` of the pair's horizon's optimizations that reached a verdict (``flag``
    "optimize"), or of those that were performance overrides (``flag`` "performance_override").
    ``keyed_by_pair`` False: of a log an older version wrote (read before its upgrade), which has no pair."""
    if flag not in VERDICT_INDEXES:
        raise ValueError(f"{flag!r} is not a decision flag ({', '.join(VERDICT_INDEXES)})")
    c = verdicts_table.c
    condition = c.horizon == sa.bindparam("horizon")
    if keyed_by_pair:
        condition = (c.pair == sa.bindparam("pair")) & condition
    statement = sa.select(sa.func.max(c.decided_on)).where(condition)
    if flag == "optimize":
        return statement
    # "= 1" as a literal, not a parameter: a partial index is used only for a condition that implies its own
    return statement.where(c[flag] == sa.literal_column("1"))


class DecisionLog:
    """Every trigger decision, persisted: in the SQLite file ``path`` (the embedded default), or, with
    ``database_url``, in that database (PostgreSQL: schema ``forex``), ``path`` unused except that the
    database adopts an embedded-default file's rows once; ``adopt_file=False`` (readers): never.
    ``read_only``: only read, create nothing (``StateDatabase``'s read_only; never adopts a file)."""

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
        self.pair = pair  # every decision and verdict written and read is this pair's
        source = self.path if (adopt_file and not read_only) or not database_url else None
        self.database = StateDatabase(
            "decisions", source, database_url, what="trigger decision log", read_only=read_only
        )

    def record(self, decision: TriggerDecision, at: datetime | None = None) -> None:
        self.record_many([decision], at)

    def record_many(self, decisions: Sequence[TriggerDecision], at: datetime | None = None) -> None:
        """Record ``decisions`` in their order, in one transaction (all or none): a sensor tick's decisions."""
        if not decisions:
            return
        rows = [self._row(decision, at) for decision in decisions]
        with self.database.write("recording a decision in") as db:
            db.execute(sa.insert(decisions_table), rows)

    def _row(self, decision: TriggerDecision, at: datetime | None) -> dict[str, Any]:
        return {
            "pair": self.pair,
            "horizon": decision.horizon,
            "decided_on": decision.decided_on.isoformat(),
            "optimize": int(decision.optimize),
            "fired": json.dumps(decision.fired),
            "blocked": json.dumps(decision.blocked),
            "reasons": json.dumps(decision.reasons),
            "performance_override": int(decision.performance_override),
            "recorded_at": (at or datetime.now(UTC)).isoformat(),
        }

    def record_verdict(
        self,
        horizon: str,
        decided_on: date,
        verdict: str,
        *,
        performance_override: bool = False,
        detail: str = "",
        run_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record that the optimization launched by the horizon's decision of ``decided_on`` reached
        ``verdict`` (one of ``VERDICTS``); from now on the guard counts it. ``performance_override``: that
        decision's flag."""
        if verdict not in VERDICTS:
            raise ValueError(f"{verdict!r} is not a verdict ({', '.join(VERDICTS)})")
        row = {
            "pair": self.pair,
            "horizon": horizon,
            "decided_on": decided_on.isoformat(),
            "performance_override": int(performance_override),
            "verdict": verdict,
            "detail": detail,
            "run_id": run_id,
            "recorded_at": (at or datetime.now(UTC)).isoformat(),
        }
        with self.database.write("recording a verdict in") as db:
            db.execute(sa.insert(verdicts_table).values(**row))

    def verdicts(self, horizon: str | None = None) -> list[OptimizationVerdict]:
        """The optimizations that reached a verdict, in the order they reached it."""
        c = verdicts_table.c
        query = sa.select(c.horizon, c.decided_on, c.verdict, c.performance_override, c.detail, c.run_id, c.recorded_at)
        condition = self.database.pair_condition(verdicts_table, self.pair)
        if condition is not None:
            query = query.where(condition)
        if horizon is not None:
            query = query.where(c.horizon == horizon)
        with self.database.read() as db:
            rows: Sequence[Sequence[Any]] = db.execute(query.order_by(c.id)).all()
        return [
            OptimizationVerdict(h, date.fromisoformat(d), v, bool(p), detail, run, datetime.fromisoformat(at))
            for h, d, v, p, detail, run, at in rows
        ]

    def entries(self, horizon: str | None = None) -> list[tuple[datetime | None, TriggerDecision]]:
        """(when it was recorded, the decision), oldest first; the time is None for old logs."""
        c = decisions_table.c
        query = sa.select(
            c.horizon, c.decided_on, c.optimize, c.fired, c.blocked, c.reasons, c.performance_override, c.recorded_at
        )
        condition = self.database.pair_condition(decisions_table, self.pair)
        if condition is not None:
            query = query.where(condition)
        if horizon is not None:
            query = query.where(c.horizon == horizon)
        with self.database.read() as db:
            rows: Sequence[Sequence[Any]] = db.execute(query.order_by(c.id)).all()
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
        """The latest decision day of a horizon's optimizations that reached a verdict (``flag`` "optimize"),
        or of those among them that were performance overrides (ISO dates sort as text), answered from an
        index of ``VERDICT_INDEXES`` alone: the statement :meth:`last_optimization` runs, as SQLite's SQL
        with two ``?`` (the pair, the horizon)."""
        return str(_last_flagged_statement(flag).compile(dialect=sqlite.dialect()))

    def _last_flagged(self, horizon: str, flag: str) -> date | None:
        if self.database.keyed_by_pair(verdicts_table):
            statement, values = _last_flagged_statement(flag), {"pair": self.pair, "horizon": horizon}
        elif self.pair == LEGACY_PAIR:  # a log an older version wrote: every optimization is USD/CLP's
            statement, values = _last_flagged_statement(flag, keyed_by_pair=False), {"horizon": horizon}
        else:
            return None
        with self.database.read() as db:
            day = db.execute(statement, values).scalar()
        return date.fromisoformat(day) if day else None

    def last_optimization(self, horizon: str) -> date | None:
        """The decision day of the horizon's latest optimization that reached a verdict (what the guard counts;
        a decision to optimize whose run died or was killed is not one)."""
        return self._last_flagged(horizon, "optimize")

    def last_performance_override(self, horizon: str) -> date | None:
        """The decision day of the horizon's latest performance override whose optimization reached a verdict."""
        return self._last_flagged(horizon, "performance_override")
