"""forecast history: forecast_runs and forecast_steps (adopts a file written before migrations)

Revision ID: forecast_history_0001
Revises:
Create Date: 2026-11-27

Tables that exist already (a forecast_history.sqlite written by an older version) are kept as they are:
their shape is the one below, which the history has had since it was first written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from forex_assets.core.storage.migrations import state_schema

revision = "forecast_history_0001"
down_revision = None
branch_labels = ("forecast_history",)
depends_on = None

QUANTILE_COLUMNS = ("q0_025", "q0_1", "q0_5", "q0_9", "q0_975")  # frozen: a new level is a new revision
DOUBLE: sa.Double[float] = sa.Double().with_variant(sa.REAL(), "sqlite")  # 8 bytes on both databases


def upgrade() -> None:
    schema = state_schema()
    existing = set(sa.inspect(op.get_bind()).get_table_names(schema=schema))
    if "forecast_runs" not in existing:
        op.create_table(
            "forecast_runs",
            sa.Column("horizon", sa.Text, nullable=False),
            sa.Column("origin_date", sa.Text, nullable=False),
            sa.Column("last_price", DOUBLE, nullable=False),
            sa.Column("config_version", sa.Text, nullable=False),
            sa.Column("checkpoint", sa.Text, nullable=False),
            sa.Column("config_json", sa.Text, nullable=False),
            sa.Column("inference_seconds", DOUBLE, nullable=False),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("horizon", "origin_date"),
            schema=schema,
        )
    if "forecast_steps" not in existing:
        op.create_table(
            "forecast_steps",
            sa.Column("horizon", sa.Text, nullable=False),
            sa.Column("origin_date", sa.Text, nullable=False),
            sa.Column("step", sa.Integer, nullable=False),
            sa.Column("target_date", sa.Text, nullable=False),
            *(sa.Column(name, DOUBLE, nullable=False) for name in QUANTILE_COLUMNS),
            sa.PrimaryKeyConstraint("horizon", "origin_date", "step"),
            schema=schema,
        )


def downgrade() -> None:
    raise NotImplementedError("the forecast history is state: restore a backup made before the upgrade instead")
