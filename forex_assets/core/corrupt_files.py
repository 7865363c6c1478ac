"""Files found corrupt on disk: set a cache or journal aside and carry on, or fail with a clear error for state.

A cache (the backtest cache) or a journal (an Optuna study) can always be rebuilt, so a corrupt one must not
block every later search: it is **set aside** (renamed to ``<name>.corrupt-<UTC stamp>``, kept for a post
mortem), a warning naming both paths is logged, and the caller starts afresh. State that cannot be rebuilt
(the forecast history) is never discarded silently: it raises :class:`CorruptFileError` naming the file and
what to do.

Every set-aside is a :class:`SetAside` event, logged at WARNING on the ``forex_assets.corrupt_files`` logger
and kept for the life of the process, so the caller can alert on it::

    with collect_set_aside() as events:
        run_search(...)
    for event in events:  # the files set aside while the block ran
        notify(event.message())
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

#: SQLite's sidecar files in WAL mode; they travel with the database when it is set aside (a stale WAL
#: next to a new, empty database would be replayed into it).
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


class CorruptFileError(RuntimeError):
    """A file the project keeps is unreadable; the message names it, the problem and what to do."""

    def __init__(self, message: str, path: Path | str):
        super().__init__(message)
        self.path = Path(path)


@dataclass(frozen=True)
class SetAside:
    """A corrupt file that was renamed out of the way so that work could go on."""

    what: str  # "backtest cache", "Optuna journal of study 7d-..."
    path: Path  # where it was (and where the rebuilt or repaired file now is)
    kept_as: Path  # where the corrupt content is kept
    problem: str  # what was wrong with it
    action: str  # what was done so that work goes on
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def message(self) -> str:
        return (
            f"{self.what} {self.path} is corrupt ({self.problem}); the corrupt file is kept as {self.kept_as}; "
            f"{self.action}. Nothing else is needed; delete the kept file once it is no longer wanted."
        )


_events: list[SetAside] = []
_events_lock = threading.Lock()


def record_set_aside(event: SetAside) -> SetAside:
    """Log ``event`` (WARNING) and keep it for :func:`set_aside_events` / :func:`collect_set_aside`."""
    log.warning(event.message())
    with _events_lock:
        _events.append(event)
    return event


def set_aside_events() -> list[SetAside]:
    """Every file set aside by this process, oldest first."""
    with _events_lock:
        return list(_events)


@contextmanager
def collect_set_aside() -> Iterator[list[SetAside]]:
    """The files set aside while the ``with`` block runs (the list fills when the block ends)."""
    with _events_lock:
        start = len(_events)
    collected: list[SetAside] = []
    try:
        yield collected
    finally:
        with _events_lock:
            collected.extend(_events[start:])


def aside_path(path: Path, at: datetime | None = None) -> Path:
    """``<path>.corrupt-<UTC stamp>``, not yet taken."""
    stamp = (at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    candidate = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    return candidate


def move_aside(path: Path, sidecars: tuple[str, ...] = ()) -> Path | None:
    """Rename ``path`` (and ``<path><suffix>`` for each sidecar suffix) to :func:`aside_path`; None when
    ``path`` is gone already (another process set it aside first)."""
    path = Path(path)
    target = aside_path(path)
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    for suffix in sidecars:
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists():
            os.replace(sidecar, target.with_name(target.name + suffix))
    return target


def copy_aside(path: Path) -> Path:
    """Copy ``path`` to :func:`aside_path` (for a file that is repaired in place)."""
    target = aside_path(Path(path))
    shutil.copy2(path, target)
    return target


# ------------------------------------------------------------------------------------------------ SQLite


def sqlite_corruption(error: BaseException | None) -> sqlite3.DatabaseError | None:
    """SQLite's "file is not a database" or "database disk image is malformed" error behind ``error`` (also
    when wrapped: pandas re-raises SQLite's errors as its own); None for errors that say nothing about the
    file (locked, read-only, disk full, a bad statement)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, sqlite3.DatabaseError):
            code = getattr(error, "sqlite_errorcode", None)
            if code is not None:
                corrupt = code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
            else:
                corrupt = "not a database" in str(error).lower() or "malformed" in str(error).lower()
            return error if corrupt else None
        error = error.__cause__  # explicit wrapping only (pandas: raise DatabaseError(...) from exc)
    return None


def is_corrupt_sqlite(error: BaseException | None) -> bool:
    return sqlite_corruption(error) is not None


def set_aside_sqlite(
    path: Path, what: str, error: BaseException, action: str = "an empty one took its place"
) -> SetAside | None:
    """Move a corrupt SQLite file and its sidecars aside and record the event; None when another process
    moved it first."""
    kept_as = move_aside(Path(path), SQLITE_SIDECARS)
    if kept_as is None:
        return None
    problem = str(sqlite_corruption(error) or error)
    return record_set_aside(SetAside(what, Path(path), kept_as, problem, action))


# ------------------------------------------------------------------------------------------------ journals


def first_bad_line(path: Path, parse: Callable[[bytes], object]) -> tuple[int, int, str] | None:
    """``(byte offset, line number, problem)`` of the first line of ``path`` that does not end with a newline
    or that ``parse`` (bytes -> anything) rejects; None when every line is whole."""
    offset = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                return offset, number, f"line {number} is cut short: {len(line)} bytes and no end of line"
            try:
                parse(line)
            except ValueError as error:
                return offset, number, f"line {number} is not a valid record: {error}"
            offset += len(line)
    return None


def truncate_journal(path: Path, what: str, parse: Callable[[bytes], object]) -> SetAside | None:
    """Cut an append-only journal back to its intact records, after keeping a copy of the whole file.

    A process killed mid-write leaves a torn last line; a writer that appended after it (before this check
    existed) merged its record into that line. Everything from the first bad line on is dropped: a prefix of
    the journal is always a consistent history, and what was dropped is redone (cheaply, from the backtest
    cache). The caller holds the journal's write lock. None when the journal is whole."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return None
    bad = first_bad_line(path, parse)
    if bad is None:
        return None
    offset, number, problem = bad
    kept_as = copy_aside(path)
    with open(path, "r+b") as handle:
        handle.truncate(offset)
        handle.flush()
        os.fsync(handle.fileno())
    action = (
        f"the journal was cut back to its first {number - 1} record(s), which are intact; a trial whose records "
        "were cut runs again"
    )
    return record_set_aside(SetAside(what, path, kept_as, problem, action))
