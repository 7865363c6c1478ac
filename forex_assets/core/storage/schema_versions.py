"""The state database's schema versions (Alembic revisions in ``migrations/``, one branch per part of the
state): which revisions a database must be at, which it is at, the lock that serializes migrations and the
upgrade itself. Used by :class:`~forex_assets.core.storage.engine.StateDatabase` when a part opens, by
:mod:`~forex_assets.core.storage.legacy` when it copies an old SQLite file in under the same lock, and by
``migrations/env.py``. Pure SQLAlchemy and Alembic: no connection is made here, the caller gives one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forex_assets.core.storage.branch_heads import branch_heads

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

#: Alembic's version table (in the state schema on PostgreSQL, in each file on SQLite); not
#: ``alembic_version``, which is Dagster's own in the same database
VERSION_TABLE = "forex_state_version"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: the key of the PostgreSQL advisory lock that serializes migrations (any constant; "forex" in ASCII)
MIGRATION_LOCK_KEY = 0x666F726578


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def known_revisions() -> set[str]:
    return {script.revision for script in _script().walk_revisions()}


def target_revisions(part: str | None) -> set[str]:
    """The revisions a database must be at: the head of ``part``'s branch, or every head (all parts)."""
    heads = branch_heads(MIGRATIONS_DIR / "versions")  # without loading Alembic (a read-only open needs no more)
    if heads is not None and (part is None or part in heads):
        return set(heads.values()) if part is None else {heads[part]}
    script = _script()
    if part is None:
        return set(script.get_heads())
    return {revision.revision for revision in script.get_revisions(f"{part}@head")}


def prepare_migration(connection: Connection, schema: str | None) -> None:
    """Inside the migration's transaction, before Alembic runs: on PostgreSQL wait for the migration lock
    (released at commit) and make the schema."""
    if connection.dialect.name == "postgresql":
        if schema is None:
            raise ValueError("a PostgreSQL state database is migrated in a schema: none was given")
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.execute(sa.schema.CreateSchema(schema, if_not_exists=True))


def current_revisions(connection: Connection, schema: str | None) -> set[str]:
    if not sa.inspect(connection).has_table(VERSION_TABLE, schema=schema):
        return set()
    versions = sa.table(VERSION_TABLE, sa.column("version_num"), schema=schema)
    return set(connection.execute(sa.select(versions.c.version_num)).scalars())


def run_upgrade(connection: Connection, schema: str | None, target: str) -> None:
    """Alembic's upgrade to ``target`` on ``connection``, inside the caller's transaction."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    command.upgrade(config, target)
