"""alert log: the alerts table (adopts a file written before migrations)

Revision ID: alerts_0001
Revises:
Create Date: 2026-11-27

An alerts.sqlite written by an older version is kept as it is: its table has the shape below.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from forex_assets.core.storage.migrations import state_schema

revision = "alerts_0001"
down_revision = None
branch_labels = ("alerts",)
depends_on = None


def upgrade() -> None:
    schema = state_schema()
    if not sa.inspect(op.get_bind()).has_table("alerts", schema=schema):
        op.create_table(
            "alerts",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("sent_at", sa.Text, nullable=False),
            sa.Column("event", sa.Text, nullable=False),
            sa.Column("horizon", sa.Text, nullable=False),
            sa.Column("subject", sa.Text, nullable=False),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("error", sa.Text, nullable=False),
            schema=schema,
            sqlite_autoincrement=True,
        )


def downgrade() -> None:
    raise NotImplementedError("the alert log is state: restore a backup made before the upgrade instead")
