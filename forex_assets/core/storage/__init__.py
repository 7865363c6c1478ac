"""The project's state behind one storage layer: SQLite files in the working area by default, the instance's
PostgreSQL (schema ``forex``) in production. See :mod:`forex_assets.core.storage.engine`."""

from forex_assets.core.storage.engine import (
    PASSWORD_ENVS,
    STATE_SCHEMA,
    StateDatabase,
    StateDatabaseError,
    StateDatabaseMissing,
    StateDatabaseUnavailable,
    complete_url,
    configured_url,
    describe_url,
    masked_url,
)
from forex_assets.core.storage.schema_versions import VERSION_TABLE
from forex_assets.core.working_area import STATE_DATABASE_URL_ENV

__all__ = [
    "PASSWORD_ENVS",
    "STATE_DATABASE_URL_ENV",
    "STATE_SCHEMA",
    "VERSION_TABLE",
    "StateDatabase",
    "StateDatabaseError",
    "StateDatabaseMissing",
    "StateDatabaseUnavailable",
    "complete_url",
    "configured_url",
    "describe_url",
    "masked_url",
]
