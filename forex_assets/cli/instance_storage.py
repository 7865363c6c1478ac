"""The first opening of a Dagster instance, made once under a lock shared by every process of the machine.

Dagster creates an embedded instance's SQLite databases (``history/runs.db``, ``history/runs/index.db``,
``schedules/schedules.db``) the first time the instance is opened: it checks for each table, creates what is
missing and stamps the Alembic revision, with no lock. Two processes opening a fresh ``$DAGSTER_HOME`` at
once (two cycles started together, a cycle and `dagster dev`) both see no table and both create them; the
slower one dies with ``table secondary_indexes already exists`` (or ``runs``, ``job_ticks``,
``alembic_version``...), the opening taking a few seconds on a fresh instance.

:func:`prepare_instance` is what an entry point that may open a fresh instance calls before it opens it:
under an exclusive ``fcntl`` lock on :data:`LOCK_NAME` in ``$DAGSTER_HOME`` it writes ``dagster.yaml`` from
the template when there is none (whole: a reader never sees half of it) and opens the instance once, so that
its storage is created (and migrated) by one process while the others wait; they then open complete
databases, which reads only. Opening an existing instance costs about 0.15 s.

The project's own state (``forex_assets.core.storage``: decision log, alert log, forecast history) does not
need this: each part's migration runs in a ``BEGIN IMMEDIATE`` transaction that checks the version again
once it holds the write lock (``StateDatabase.migrate``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef  # what DagsterInstance.get() opens, for a given home

#: the lock file, in ``$DAGSTER_HOME`` (empty; its lock is what counts, released when its holder ends)
LOCK_NAME = ".forex_assets_instance.lock"


@contextmanager
def instance_lock(home: Path) -> Iterator[None]:
    """Hold the exclusive lock of the instance in ``home`` (waits while another process holds it)."""
    home.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(home / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock (a killed holder's too)


def _copy_whole(source: Path, target: Path) -> None:
    """``source`` to ``target`` through a temporary file renamed over it: never a half-written ``target``."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        shutil.copy2(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def prepare_instance(home: Path, template: Path | None = None) -> None:
    """Make the instance in ``home`` (``$DAGSTER_HOME``) ready to open by any number of processes at once:
    under :func:`instance_lock`, ``dagster.yaml`` from ``template`` when ``home`` has none, and the storage
    created by opening the instance once."""
    with instance_lock(home):
        config = home / "dagster.yaml"
        if template is not None and template.exists() and not config.exists():
            _copy_whole(template, config)
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))):
            pass  # opening creates and stamps what is missing; closing keeps it
