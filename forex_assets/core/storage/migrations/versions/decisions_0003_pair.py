"""trigger decisions: keyed by currency pair

Revision ID: decisions_0003
Revises: decisions_0002
Create Date: 2026-12-07

Every decision and verdict carries its pair (rows written before: USD/CLP's), and the guard's partial
indexes lead with it, so that a pair's last optimization is still read from an index alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from forex_assets.core.storage.migrations import state_schema

revision = "decisions_0003"
down_revision = "decisions_0002"
branch_labels = None
depends_on = None

LEGACY_PAIR = "USDCLP"  # frozen: the pair of every row written before this revision
#: table -> {index name: the flag its rows have set, None for all rows} (frozen copies of decisions_0001/0002)
INDEXES: dict[str, dict[str, str | None]] = {
    "decisions": {"decisions_optimized": "optimize", "decisions_performance_override": "performance_override"},
    "optimization_verdicts": {
        "optimization_verdicts_concluded": None,
        "optimization_verdicts_performance_override": "performance_override",
    },
}


def upgrade() -> None:
    schema = state_schema()
    for table, indexes in INDEXES.items():
        op.add_column(table, sa.Column("pair", sa.Text, nullable=False, server_default=LEGACY_PAIR), schema=schema)
        for name, flag in indexes.items():
            op.drop_index(name, table_name=table, schema=schema)
            condition = None if flag is None else sa.text(f"{flag} = 1")
            op.create_index(
                name,
                table,
                ["pair", "horizon", "decided_on"],
                schema=schema,
                sqlite_where=condition,
                postgresql_where=condition,
            )


def downgrade() -> None:
    raise NotImplementedError("the decision log is state: restore a backup made before the upgrade instead")
