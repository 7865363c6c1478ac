"""Moving a working area's SQLite state into a shared state database, once, by itself.

A working area that ran with the embedded default has its state in SQLite files. When it is then pointed at
a state database (``$FOREX_STATE_DATABASE_URL``: production's PostgreSQL), the first process that opens a
part whose tables are still empty there copies the part's rows from its file (``forecast_history.sqlite``,
``trigger_decisions.sqlite``, ``alerts.sqlite``), in one transaction under the migration lock, so that no
forecast, decision or alert is left behind and two processes never copy it twice. The file is only read
(never changed, moved or deleted): it stays as a backup, and is not used again (the tables are no longer
empty). Decisions and alerts keep their order (they get new ids, in the same order).

The part's database is given by its caller, :class:`~forex_assets.core.storage.engine.StateDatabase`, as the
:class:`StatePart` it is: this module never imports the engine (an import-linter contract keeps it so).
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import AbstractContextManager, closing
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from forex_assets.core.corrupt_files import sqlite_corruption
from forex_assets.core.storage.schema_versions import prepare_migration
from forex_assets.core.storage.tables import (
    LEGACY_PAIR,
    PARTS,
    assumed_verdicts,
    decisions,
    optimization_verdicts,
)

log = logging.getLogger(__name__)
BATCH_ROWS = 5000


class StatePart(Protocol):
    """What the copy needs of one part of the state in its database (a ``StateDatabase``)."""

    part: str
    path: Path | None
    what: str

    @property
    def schema(self) -> str | None: ...

    @property
    def description(self) -> str: ...

    def read(self, doing: str = ...) -> AbstractContextManager[sa.Connection]: ...

    def write(self, doing: str = ...) -> AbstractContextManager[sa.Connection]: ...

    def corrupt_error(self, error: BaseException, path: Path | None = None) -> Exception: ...


def _is_empty(connection: sa.Connection, tables: tuple[sa.Table, ...]) -> bool:
    return all(connection.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first() is None for t in tables)


def _has_table(path: Path, name: str) -> bool:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return found is not None


def _file_rows(path: Path, table: sa.Table) -> list[dict[str, Any]]:
    """The rows of ``table`` in the SQLite file ``path`` (opened read-only), oldest first; columns the file
    lacks (``recorded_at`` of the first decision logs) are None, but ``pair``: USD/CLP, the one pair then. None
    of them when the file lacks the table."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        present = {row[1] for row in db.execute(f'PRAGMA table_info("{table.name}")')}
        if not present:
            return []
        columns = [c.name for c in table.columns if c.name in present and c.name != "id"]
        key = [c.name for c in table.primary_key.columns if c.name in present]
        order = "id" if "id" in present else ", ".join(key)
        query = f'SELECT {", ".join(columns)} FROM "{table.name}" ORDER BY {order}'
        rows = [dict(zip(columns, row, strict=True)) for row in db.execute(query)]
    missing: dict[str, str | None] = {c.name: None for c in table.columns if c.name not in present and c.name != "id"}
    if "pair" in missing:  # a file written before the state was keyed by pair: USD/CLP's
        missing["pair"] = LEGACY_PAIR
    for row in rows:
        row.update(missing)
    return rows


def import_sqlite_part(database: StatePart, source: Path) -> int:
    """Copy ``database.part``'s rows from the SQLite file ``source`` when the part's tables in ``database``
    are empty; the number of rows copied (0: nothing to do)."""
    tables = PARTS[database.part]
    if not source.is_file() or source.stat().st_size == 0:
        return 0
    if database.path is not None and source.resolve() == database.path.resolve():
        return 0
    with database.read("opening") as connection:
        if not _is_empty(connection, tables):
            return 0
    try:
        contents = {table: _file_rows(source, table) for table in tables}
        if database.part == "decisions" and not _has_table(source, optimization_verdicts.name):
            # a log written before verdicts were recorded: its decisions to optimize keep counting (decisions_0002)
            contents[optimization_verdicts] = assumed_verdicts(contents[decisions])
    except sqlite3.DatabaseError as error:
        corruption = sqlite_corruption(error)
        if corruption is not None:  # the part's own error, naming the file: nothing copied, the file left alone
            raise database.corrupt_error(corruption, source) from None
        raise
    if not any(contents.values()):
        return 0
    copied = 0
    with database.write(f"importing {source} into") as connection:
        prepare_migration(connection, database.schema)  # the same lock: one importer at a time
        if not _is_empty(connection, tables):  # another process was first
            return 0
        for table, rows in contents.items():
            for start in range(0, len(rows), BATCH_ROWS):
                connection.execute(sa.insert(table), rows[start : start + BATCH_ROWS])
            copied += len(rows)
    log.warning(
        f"{database.what}: copied {copied} row(s) from {source} into the state database {database.description}, "
        f"which holds it from now on; {source.name} is no longer read or written (keep it as a backup, or delete it)"
    )
    return copied
