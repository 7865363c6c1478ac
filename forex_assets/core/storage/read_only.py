"""Opening an existing SQLite file only to read it, leaving it and its directory exactly as they were.

For the read-only commands (`forex-assets status`, `history`, `forecasts`) on a live working area, a copy of
it (an auditor's, a backup) or a read-only mount. What SQLite needs (measured with the files of a real run, in
WAL mode, on a ``mount -o ro`` bind mount and on a writable copy):

* **no ``-wal`` file, a writable directory** (the usual case: no process has the file open): ``mode=ro``
  would leave a ``-wal`` and a ``-shm`` file behind (a read-only connection may not delete them), so the file is
  opened ``mode=rw`` (never created: a missing file is an error) and every connection sets ``PRAGMA
  query_only``: it cannot write, and the last connection to close removes the ``-wal`` and ``-shm`` files it
  made. The file's bytes and time stay as they were, and a writer starting meanwhile is seen as by any reader;
* **a ``-wal`` and a ``-shm`` file** (a process has the file open, or a copy was taken while one had):
  ``mode=ro`` reads the rows in the ``-wal`` too, and a read-only connection never folds them into the file
  (a ``mode=rw`` reader closing last would: the copy's bytes would change). Where the ``-shm`` file (SQLite's
  shared-memory index of the ``-wal``, not data) is writable, it is updated as by any reader;
* **no ``-wal`` file (or an empty one) in a directory it cannot write** (a read-only mount, another user's
  files): SQLite cannot make the ``-shm`` file that reading a WAL-mode file needs ("unable to open database
  file"); the file holds every row, and ``immutable=1`` reads it without a ``-shm`` file and without locks (a
  process of another user writing it at the same moment could make a read fail; run again);
* **a ``-wal`` file with rows but no ``-shm`` file**: neither reads it whole (``immutable=1`` would skip the
  rows in the ``-wal``), so the file and its ``-wal`` are copied into a private temporary directory, read
  there, and deleted when the process ends.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import URL


def sqlite_read_query(path: Path) -> tuple[Path, dict[str, str]]:
    """The file to open for reading ``path`` (itself, or a private copy) and its SQLite URI parameters."""
    path = Path(path).absolute()
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    if wal.is_file() and shm.is_file():
        return path, {"mode": "ro"}
    if wal.is_file() and wal.stat().st_size > 0:
        return _private_copy(path), {"mode": "rw"}
    if os.access(path.parent, os.W_OK) and not wal.is_file():
        return path, {"mode": "rw"}
    return path, {"mode": "ro", "immutable": "1"}


def sqlite_read_uri(path: Path) -> str:
    """``file:PATH?mode=...`` (an SQLite URI, for ``sqlite3.connect(..., uri=True)``) that reads ``path``."""
    target, query = sqlite_read_query(path)
    return f"file:{quote(str(target))}?" + "&".join(f"{key}={value}" for key, value in query.items())


def sqlite_read_url(path: Path) -> URL:
    """The SQLAlchemy URL that reads ``path`` (``sqlite:///file:PATH?mode=...&uri=true``); the connections it
    makes must set ``PRAGMA query_only=1`` (``mode=rw``)."""
    target, query = sqlite_read_query(path)
    return URL.create("sqlite", database=f"file:{quote(str(target))}", query={**query, "uri": "true"})


_copies: list[str] = []


def _remove_copies() -> None:
    for directory in _copies:
        shutil.rmtree(directory, ignore_errors=True)


def _private_copy(path: Path) -> Path:
    """``path`` and its ``-wal`` copied into a temporary directory of this process (removed at exit)."""
    directory = tempfile.mkdtemp(prefix="forex_assets-read-")
    if not _copies:
        atexit.register(_remove_copies)
    _copies.append(directory)
    copy = Path(directory) / path.name
    shutil.copyfile(path, copy)
    shutil.copyfile(f"{path}-wal", f"{copy}-wal")
    return copy
