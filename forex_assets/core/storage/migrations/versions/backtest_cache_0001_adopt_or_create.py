"""backtest cache: the backtest_forecasts table (in a shared state database)

Revision ID: backtest_cache_0001
Revises:
Create Date: 2026-11-28

The backtest cache's rows in a shared state database (PostgreSQL in production): one per key (a digest of
the checkpoint, the configuration, the horizon's steps, the origin and the context), the quantiles as the
float64 bytes of a (steps x levels) array. The embedded default keeps its own backtest_cache.sqlite (table
``forecasts``, ``forex_assets.core.backtest.cache``), which this migration does not touch: that file is a
pure cache and is neither versioned nor copied in (its rows are computed again where they are missing). A
table made by hand with this shape is adopted as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from forex_assets.core.storage.migrations import state_schema

revision = "backtest_cache_0001"
down_revision = None
branch_labels = ("backtest_cache",)
depends_on = None

Double: sa.Double[float] = sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    schema = state_schema()
    if not sa.inspect(op.get_bind()).has_table("backtest_forecasts", schema=schema):
        op.create_table(
            "backtest_forecasts",
            sa.Column("key", sa.Text, nullable=False),
            sa.Column("checkpoint", sa.Text, nullable=False),
            sa.Column("origin_date", sa.Text, nullable=False),
            sa.Column("steps", sa.Integer, nullable=False),
            sa.Column("quantiles", sa.LargeBinary, nullable=False),
            sa.Column("seconds", Double, nullable=False),
            sa.PrimaryKeyConstraint("key"),
            schema=schema,
        )


def downgrade() -> None:
    raise NotImplementedError("the backtest cache is not rebuilt by going back: drop the table, it fills again")
