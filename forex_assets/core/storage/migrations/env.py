"""Alembic's environment for the state migrations.

Run by ``StateDatabase.migrate`` with the connection (already in its transaction, holding the migration
lock) and the schema in ``config.attributes``; or by the ``alembic`` command line with ``-x url=...`` or
``$FOREX_STATE_DATABASE_URL``, in one transaction under the same lock.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from forex_assets.core.storage.engine import (
    STATE_SCHEMA,
    WRITE_OPTION,
    complete_url,
    configured_url,
    engine_for,
)
from forex_assets.core.storage.schema_versions import VERSION_TABLE, prepare_migration


def _run(connection: Connection, schema: str | None) -> None:
    context.configure(
        connection=connection,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _from_command_line() -> None:
    url = configured_url(context.get_x_argument(as_dictionary=True).get("url"))
    if url is None:
        raise SystemExit("give the state database: alembic ... -x url=<SQLAlchemy URL>, or $FOREX_STATE_DATABASE_URL")
    complete = complete_url(url)
    schema = None if complete.get_backend_name() == "sqlite" else STATE_SCHEMA
    engine = engine_for(complete)
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            prepare_migration(connection, schema)
            _run(connection, schema)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: the first migrations inspect the database they adopt")
if context.config.attributes.get("connection") is not None:
    _run(context.config.attributes["connection"], context.config.attributes.get("schema"))
else:
    _from_command_line()
