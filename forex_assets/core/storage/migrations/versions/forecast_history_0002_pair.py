"""forecast history: keyed by currency pair (pair, horizon, origin_date)

Revision ID: forecast_history_0002
Revises: forecast_history_0001
Create Date: 2026-12-07

Until now the history held one series (USD/CLP). From this revision every run and step carries its pair,
first in the primary key, so two pairs' forecasts of the same horizon and origin are two records. A history
written before keeps every row, each USD/CLP's. The primary key changes, which SQLite cannot alter in place:
each table is rebuilt (a new table with the new key, the rows copied, the old one dropped, the new one renamed),
inside the migration's transaction, on both databases.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from forex_assets.core.storage.migrations import state_schema

revision = "forecast_history_0002"
down_revision = "forecast_history_0001"
branch_labels = None
depends_on = None

LEGACY_PAIR = "USDCLP"  # frozen: the pair of every row written before this revision
QUANTILE_COLUMNS = ("q0_025", "q0_1", "q0_5", "q0_9", "q0_975")  # frozen, as in forecast_history_0001
DOUBLE: sa.Double[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def _pair() -> sa.Column[str]:
    return sa.Column("pair", sa.Text, nullable=False, server_default=LEGACY_PAIR)


def _rebuild(name: str, columns: list[sa.Column[Any]], key: list[str], schema: str | None) -> None:
    """``name`` rebuilt with ``columns`` (the pair first) and primary key ``key``, its rows kept."""
    new = f"{name}_keyed_by_pair"
    op.create_table(new, *columns, sa.PrimaryKeyConstraint(*key, name=f"{new}_pkey"), schema=schema)
    kept = [c.name for c in columns if c.name != "pair"]
    old_table = sa.table(name, *(sa.column(c) for c in kept), schema=schema)
    new_table = sa.table(new, *(sa.column(c) for c in ["pair", *kept]), schema=schema)
    rows = sa.select(sa.literal(LEGACY_PAIR), *(old_table.c[c] for c in kept))
    op.execute(new_table.insert().from_select(["pair", *kept], rows))
    op.drop_table(name, schema=schema)
    op.rename_table(new, name, schema=schema)
    if op.get_bind().dialect.name == "postgresql":  # the key's name as PostgreSQL would give the table's own
        op.execute(sa.text(f'ALTER TABLE "{schema}"."{name}" RENAME CONSTRAINT "{new}_pkey" TO "{name}_pkey"'))


def upgrade() -> None:
    schema = state_schema()
    _rebuild(
        "forecast_runs",
        [
            _pair(),
            sa.Column("horizon", sa.Text, nullable=False),
            sa.Column("origin_date", sa.Text, nullable=False),
            sa.Column("last_price", DOUBLE, nullable=False),
            sa.Column("config_version", sa.Text, nullable=False),
            sa.Column("checkpoint", sa.Text, nullable=False),
            sa.Column("config_json", sa.Text, nullable=False),
            sa.Column("inference_seconds", DOUBLE, nullable=False),
            sa.Column("created_at", sa.Text, nullable=False),
        ],
        ["pair", "horizon", "origin_date"],
        schema,
    )
    _rebuild(
        "forecast_steps",
        [
            _pair(),
            sa.Column("horizon", sa.Text, nullable=False),
            sa.Column("origin_date", sa.Text, nullable=False),
            sa.Column("step", sa.Integer, nullable=False),
            sa.Column("target_date", sa.Text, nullable=False),
            *(sa.Column(name, DOUBLE, nullable=False) for name in QUANTILE_COLUMNS),
        ],
        ["pair", "horizon", "origin_date", "step"],
        schema,
    )


def downgrade() -> None:
    raise NotImplementedError("the forecast history is state: restore a backup made before the upgrade instead")
