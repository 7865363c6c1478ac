"""Every trigger decision, fired or not, with its reasons, persisted (SQLite in the working area)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

from forex_assets.core.monitoring.triggers import TriggerDecision


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

    def last_optimization(self, horizon: str) -> date | None:
        dates = [d.decided_on for d in self.decisions(horizon) if d.optimize]
        return max(dates) if dates else None

    def last_performance_override(self, horizon: str) -> date | None:
        dates = [d.decided_on for d in self.decisions(horizon) if d.performance_override]
        return max(dates) if dates else None
