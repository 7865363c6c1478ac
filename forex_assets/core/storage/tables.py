"""The tables of the project's state (SQLAlchemy Core), one definition for SQLite and PostgreSQL.

The tables carry no schema: on PostgreSQL the engine maps them into the state schema (``forex``) with
``schema_translate_map``; a SQLite file has no schemas. Dates are ISO text (``YYYY-MM-DD``) and times ISO
8601 text, as the SQLite files have always held them: they sort as text, so the windowed and ``MAX``
queries are the same on both databases, and a file written by an older version is read unchanged.

These are the tables the code reads and writes now; what a database holds is made by the Alembic migrations
(``migrations/versions``), which keep their own frozen copy of each step. A change here needs a migration.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

#: the quantile levels the forecast history stores, one column each (``forecasting.quantiles``'s
#: ``FORECAST_QUANTILES``, written out so that the decision and alert logs do not import the model stack;
#: test_state_storage.py keeps the two equal)
STORED_QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)


def quantile_column(level: float) -> str:
    """0.025 -> 'q0_025'."""
    return "q" + f"{level:g}".replace(".", "_")


QUANTILE_COLUMNS = [quantile_column(q) for q in STORED_QUANTILES]

#: a float of 8 bytes on both: REAL on SQLite (what the files have always declared), DOUBLE PRECISION on
#: PostgreSQL (whose REAL is 4 bytes)
Double: sa.Double[float] = sa.Double().with_variant(sa.REAL(), "sqlite")

metadata = sa.MetaData()

#: the currency pair of every row written before the state was keyed by pair (migrations ``*_pair``): a
#: single-pair instance was USD/CLP's (``forex_assets.core.pairs.DEFAULT_PAIR``, a test keeps the two equal)
LEGACY_PAIR = "USDCLP"


def pair_column() -> sa.Column[str]:
    """Every table's first key: the currency pair (``USDCLP``) the row belongs to."""
    return sa.Column("pair", sa.Text, nullable=False, server_default=LEGACY_PAIR)


# ------------------------------------------------------------------ forecast history (part "forecast_history")

#: one row per (pair, horizon, origin date); recording the same origin again replaces it
forecast_runs = sa.Table(
    "forecast_runs",
    metadata,
    pair_column(),
    sa.Column("horizon", sa.Text, nullable=False),
    sa.Column("origin_date", sa.Text, nullable=False),
    sa.Column("last_price", Double, nullable=False),
    sa.Column("config_version", sa.Text, nullable=False),
    sa.Column("checkpoint", sa.Text, nullable=False),
    sa.Column("config_json", sa.Text, nullable=False),
    sa.Column("inference_seconds", Double, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("pair", "horizon", "origin_date"),
)

#: one row per forecast step of a run (replaced with it, in the same transaction)
forecast_steps = sa.Table(
    "forecast_steps",
    metadata,
    pair_column(),
    sa.Column("horizon", sa.Text, nullable=False),
    sa.Column("origin_date", sa.Text, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("target_date", sa.Text, nullable=False),
    *(sa.Column(name, Double, nullable=False) for name in QUANTILE_COLUMNS),
    sa.PrimaryKeyConstraint("pair", "horizon", "origin_date", "step"),
)

# ------------------------------------------------------------------ trigger decisions (part "decisions")

#: flag column -> the partial index on (pair, horizon, decided_on) of the decisions with that flag set
FLAG_INDEXES = {"optimize": "decisions_optimized", "performance_override": "decisions_performance_override"}

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("horizon", sa.Text, nullable=False),
    sa.Column("decided_on", sa.Text, nullable=False),
    sa.Column("optimize", sa.Integer, nullable=False),  # 0/1 (the partial indexes test "= 1" on both databases)
    sa.Column("fired", sa.Text, nullable=False),  # JSON list
    sa.Column("blocked", sa.Text, nullable=False),  # JSON list
    sa.Column("reasons", sa.Text, nullable=False),  # JSON object
    sa.Column("performance_override", sa.Integer, nullable=False),
    sa.Column("recorded_at", sa.Text, nullable=True),  # None in logs written before decisions carried a time
    pair_column(),
    sqlite_autoincrement=True,
)

#: one row per optimization that reached a verdict (``forex_assets.core.monitoring.triggers``, "Verdicts"):
#: approved, rejected, or failed for a reason waiting does not cure; an optimization whose run died or was
#: killed has none. ``decided_on`` and ``performance_override`` are those of the decision that launched it:
#: the guard counts the days between optimizations (and performance overrides) from them.
optimization_verdicts = sa.Table(
    "optimization_verdicts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("horizon", sa.Text, nullable=False),
    sa.Column("decided_on", sa.Text, nullable=False),
    sa.Column("performance_override", sa.Integer, nullable=False),  # 0/1, as in decisions
    sa.Column("verdict", sa.Text, nullable=False),  # approved, rejected, failed (assumed: adopted from an old log)
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=True),  # the Dagster run that reached it; None in a replay
    sa.Column("recorded_at", sa.Text, nullable=False),
    pair_column(),
    sa.Index("optimization_verdicts_concluded", "pair", "horizon", "decided_on"),
    sa.Index(
        "optimization_verdicts_performance_override",
        "pair",
        "horizon",
        "decided_on",
        sqlite_where=sa.text("performance_override = 1"),
        postgresql_where=sa.text("performance_override = 1"),
    ),
    sqlite_autoincrement=True,
)

#: the verdict a decision to optimize logged before verdicts were recorded stands for (it counted as done then)
ASSUMED_VERDICT = "assumed"
ASSUMED_DETAIL = "decided before verdicts were recorded: counted as concluded, as it was then"


def assumed_verdicts(decision_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verdict rows of a log written before ``optimization_verdicts`` existed, from its decision rows (what
    migration ``decisions_0002`` adds to a file it upgrades; the import of such a file into a database too)."""
    return [
        {
            "pair": row.get("pair") or LEGACY_PAIR,
            "horizon": row["horizon"],
            "decided_on": row["decided_on"],
            "performance_override": row["performance_override"],
            "verdict": ASSUMED_VERDICT,
            "detail": ASSUMED_DETAIL,
            "run_id": None,
            "recorded_at": row["recorded_at"] or row["decided_on"],
        }
        for row in decision_rows
        if row["optimize"] == 1
    ]


#: what the guard asks -> the index of optimization_verdicts that answers it alone (a MAX of decided_on)
VERDICT_INDEXES = {
    "optimize": "optimization_verdicts_concluded",
    "performance_override": "optimization_verdicts_performance_override",
}

# ------------------------------------------------------------------ alert log (part "alerts")

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sent_at", sa.Text, nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("horizon", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    pair_column(),
    sqlite_autoincrement=True,
)

# ------------------------------------------------------------------ backtest cache (part "backtest_cache")

#: the backtest cache in a shared state database (``forex_assets.core.backtest.cache``; the embedded default
#: keeps its own SQLite file, table ``forecasts``): one row per key, the quantiles as the float64 bytes of a
#: (steps x levels) array; writing a key again replaces its row
backtest_forecasts = sa.Table(
    "backtest_forecasts",
    metadata,
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("checkpoint", sa.Text, nullable=False),
    sa.Column("origin_date", sa.Text, nullable=False),
    sa.Column("steps", sa.Integer, nullable=False),
    sa.Column("quantiles", sa.LargeBinary, nullable=False),  # BLOB on SQLite, BYTEA on PostgreSQL
    sa.Column("seconds", Double, nullable=False),
    sa.PrimaryKeyConstraint("key"),
)

#: each part of the state: its tables, and the Alembic branch (label) whose migrations make them. In the
#: embedded default each part is its own SQLite file (but for the backtest cache, whose file the cache keeps
#: itself, unversioned); in a shared database (PostgreSQL) all parts are there.
PARTS: dict[str, tuple[sa.Table, ...]] = {
    "forecast_history": (forecast_runs, forecast_steps),
    "decisions": (decisions, optimization_verdicts),
    "alerts": (alerts,),
    "backtest_cache": (backtest_forecasts,),
}
