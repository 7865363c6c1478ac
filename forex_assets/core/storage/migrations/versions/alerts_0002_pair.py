"""alert log: every alert carries its currency pair

Revision ID: alerts_0002
Revises: alerts_0001
Create Date: 2026-12-07

Alerts written before this revision are USD/CLP's.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from forex_assets.core.storage.migrations import state_schema

revision = "alerts_0002"
down_revision = "alerts_0001"
branch_labels = None
depends_on = None

LEGACY_PAIR = "USDCLP"  # frozen: the pair of every row written before this revision


def upgrade() -> None:
    op.add_column(
        "alerts", sa.Column("pair", sa.Text, nullable=False, server_default=LEGACY_PAIR), schema=state_schema()
    )


def downgrade() -> None:
    raise NotImplementedError("the alert log is state: restore a backup made before the upgrade instead")
