"""trigger decisions: the optimization_verdicts table (the guard counts optimizations that reached a verdict)

Revision ID: decisions_0002
Revises: decisions_0001
Create Date: 2027-01-18

Until now the guard counted every decision to optimize from the moment it was recorded, so an optimization
killed before its search still held the horizon back for 14 days. From this revision it counts the
optimizations that reached a verdict (approved, rejected, or failed for a reason waiting does not cure),
recorded in ``optimization_verdicts``. A log written before keeps its guard: each of its decisions to
optimize gets a verdict ``assumed`` (nothing says whether it concluded; it counted as done before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from forex_assets.core.storage.migrations import state_schema

revision = "decisions_0002"
down_revision = "decisions_0001"
branch_labels = None
depends_on = None

ADOPTED_DETAIL = "decided before verdicts were recorded: counted as concluded, as it was then"  # frozen copy


def upgrade() -> None:
    schema = state_schema()
    op.create_table(
        "optimization_verdicts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("horizon", sa.Text, nullable=False),
        sa.Column("decided_on", sa.Text, nullable=False),
        sa.Column("performance_override", sa.Integer, nullable=False),
        sa.Column("verdict", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("run_id", sa.Text, nullable=True),
        sa.Column("recorded_at", sa.Text, nullable=False),
        schema=schema,
        sqlite_autoincrement=True,
    )
    op.create_index(
        "optimization_verdicts_concluded", "optimization_verdicts", ["horizon", "decided_on"], schema=schema
    )
    condition = sa.text("performance_override = 1")
    op.create_index(
        "optimization_verdicts_performance_override",
        "optimization_verdicts",
        ["horizon", "decided_on"],
        schema=schema,
        sqlite_where=condition,
        postgresql_where=condition,
    )
    decisions = sa.table(
        "decisions",
        sa.column("id"),
        sa.column("horizon"),
        sa.column("decided_on"),
        sa.column("optimize"),
        sa.column("performance_override"),
        sa.column("recorded_at"),
        schema=schema,
    )
    verdicts = sa.table(
        "optimization_verdicts",
        *(sa.column(name) for name in ("horizon", "decided_on", "performance_override", "verdict", "detail")),
        sa.column("recorded_at"),
        schema=schema,
    )
    adopted = sa.select(
        decisions.c.horizon,
        decisions.c.decided_on,
        decisions.c.performance_override,
        sa.literal("assumed"),
        sa.literal(ADOPTED_DETAIL),
        sa.func.coalesce(decisions.c.recorded_at, decisions.c.decided_on),
    ).where(decisions.c.optimize == sa.literal_column("1"))
    op.execute(
        verdicts.insert().from_select(
            ["horizon", "decided_on", "performance_override", "verdict", "detail", "recorded_at"],
            adopted.order_by(decisions.c.id),
        )
    )


def downgrade() -> None:
    raise NotImplementedError("the decision log is state: restore a backup made before the upgrade instead")
