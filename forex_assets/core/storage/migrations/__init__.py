"""Alembic migrations of the project's state (``forex_assets.core.storage``).

One branch per part of the state, so that each embedded SQLite file carries only its own part:
``forecast_history`` (``forecast_runs``, ``forecast_steps``), ``decisions``, ``alerts``, ``backtest_cache``
(``backtest_forecasts``, used only with a database URL: the embedded default keeps its cache file). Optuna's
studies are not here: in a database URL, Optuna creates and migrates its own tables (schema ``forex_optuna``
on PostgreSQL, because its version table is named like Dagster's ``alembic_version``). A shared database
(PostgreSQL) is upgraded to every head. The first revision of each branch adopts what an older version
left: it creates the tables that are missing and brings existing ones to the same shape, never dropping
or rewriting rows.

The code runs them itself when a part is opened (``StateDatabase.migrate``). By hand, e.g. before a
release, or to see where a database is::

    FOREX_STATE_DATABASE_URL=postgresql+psycopg2://dagster@host:5432/dagster \\
        alembic -c forex_assets/core/storage/migrations/alembic.ini upgrade heads
    alembic -c forex_assets/core/storage/migrations/alembic.ini -x url=sqlite:////path/alerts.sqlite current

A new revision: ``alembic -c forex_assets/core/storage/migrations/alembic.ini revision --head <part>@head
-m "..."``, then write its ``upgrade()`` (with ``schema=state_schema()`` on every operation) and change
``tables.py`` to match.
"""

from __future__ import annotations


def state_schema() -> str | None:
    """The schema the running migration works in: ``forex`` on PostgreSQL, None on SQLite."""
    from alembic import op

    return op.get_context().version_table_schema
