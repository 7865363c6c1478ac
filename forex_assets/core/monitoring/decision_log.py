"""Every trigger decision, fired or not, with its reasons, persisted (SQLite in the working area).

The sensors and the replay ask every day for the last optimization and the last performance override:
those are ``MAX`` queries on partial indexes over (horizon, decided_on) that hold only the flagged
decisions, so their cost does not grow with the number of decisions logged (nor with the days since the
last flagged one)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

from forex_assets.core.monitoring.triggers import TriggerDecision

#: flag column -> the partial index on (horizon, decided_on) of the decisions with that flag set
FLAG_INDEXES = {"optimize": "decisions_optimized", "performance_override": "decisions_performance_override"}


class DecisionLog:
    """Every trigger decision, persisted (SQLite)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, horizon TEXT NOT NULL, "
                "decided_on TEXT NOT NULL, optimize INTEGER NOT NULL, fired TEXT NOT NULL, blocked TEXT NOT NULL, "
                "reasons TEXT NOT NULL, performance_override INTEGER NOT NULL)"
            )
            columns = {row[1] for row in db.execute("PRAGMA table_info(decisions)")}
            if "recorded_at" not in columns:  # logs written before decisions carried a time
                db.execute("ALTER TABLE decisions ADD COLUMN recorded_at TEXT")
            for flag, index in FLAG_INDEXES.items():
                db.execute(f"CREATE INDEX IF NOT EXISTS {index} ON decisions (horizon, decided_on) WHERE {flag} = 1")

    def record(self, decision: TriggerDecision, at: datetime | None = None) -> None:
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            db.execute(
                "INSERT INTO decisions (horizon, decided_on, optimize, fired, blocked, reasons, performance_override, "
                "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    decision.horizon,
                    decision.decided_on.isoformat(),
                    int(decision.optimize),
                    json.dumps(decision.fired),
                    json.dumps(decision.blocked),
                    json.dumps(decision.reasons),
                    int(decision.performance_override),
                    (at or datetime.now(UTC)).isoformat(),
                ),
            )

    def entries(self, horizon: str | None = None) -> list[tuple[datetime | None, TriggerDecision]]:
        """(when it was recorded, the decision), oldest first; the time is None for old logs."""
        query, params = (
            "SELECT horizon, decided_on, optimize, fired, blocked, reasons, performance_override, recorded_at "
            "FROM decisions",
            (),
        )
        if horizon is not None:
            query, params = query + " WHERE horizon = ?", (horizon,)
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            rows = db.execute(query + " ORDER BY id", params).fetchall()
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
        the flag's partial index alone."""
        if flag not in FLAG_INDEXES:
            raise ValueError(f"{flag!r} is not a decision flag ({', '.join(FLAG_INDEXES)})")
        return f"SELECT MAX(decided_on) FROM decisions WHERE horizon = ? AND {flag} = 1"

    def _last_flagged(self, horizon: str, flag: str) -> date | None:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            (day,) = db.execute(self.last_flagged_query(flag), (horizon,)).fetchone()
        return date.fromisoformat(day) if day else None

    def last_optimization(self, horizon: str) -> date | None:
        return self._last_flagged(horizon, "optimize")

    def last_performance_override(self, horizon: str) -> date | None:
        return self._last_flagged(horizon, "performance_override")
