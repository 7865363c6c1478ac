"""trigger decisions: the decisions table and its partial indexes (adopts a file written before migrations)

Revision ID: decisions_0001
Revises:
Create Date: 2026-11-27

A trigger_decisions.sqlite written by an older version is kept, rows and all; what the first versions
lacked is added: the recorded_at column (None for the decisions logged before it) and the two partial
indexes of the daily look-ups (last optimization, last performance override).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from forex_assets.core.storage.migrations import state_schema

revision = "decisions_0001"
down_revision = None
branch_labels = ("decisions",)
depends_on = None

#: flag column -> its partial index on (horizon, decided_on), holding the decisions with the flag set
FLAG_INDEXES = {"optimize": "decisions_optimized", "performance_override": "decisions_performance_override"}


def upgrade() -> None:
    schema = state_schema()
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("decisions", schema=schema):
        op.create_table(
            "decisions",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("horizon", sa.Text, nullable=False),
            sa.Column("decided_on", sa.Text, nullable=False),
            sa.Column("optimize", sa.Integer, nullable=False),
            sa.Column("fired", sa.Text, nullable=False),
            sa.Column("blocked", sa.Text, nullable=False),
            sa.Column("reasons", sa.Text, nullable=False),
            sa.Column("performance_override", sa.Integer, nullable=False),
            sa.Column("recorded_at", sa.Text, nullable=True),
            schema=schema,
            sqlite_autoincrement=True,
        )
        indexes = set()
    else:
        columns = {column["name"] for column in inspector.get_columns("decisions", schema=schema)}
        if "recorded_at" not in columns:  # logs written before decisions carried a time
            op.add_column("decisions", sa.Column("recorded_at", sa.Text, nullable=True), schema=schema)
        indexes = {index["name"] for index in inspector.get_indexes("decisions", schema=schema)}
    for flag, name in FLAG_INDEXES.items():
        if name not in indexes:
            condition = sa.text(f"{flag} = 1")
            op.create_index(
                name,
                "decisions",
                ["horizon", "decided_on"],
                schema=schema,
                sqlite_where=condition,
                postgresql_where=condition,
            )


def downgrade() -> None:
    raise NotImplementedError("the decision log is state: restore a backup made before the upgrade instead")
