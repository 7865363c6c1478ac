"""Serialising the store's writers across processes and threads (pure, no Dagster).

Two kinds of lock files under ``<root>/.locks/`` (flock via ``filelock``; the kernel drops a lock when
its holder dies, so a kill -9 never leaves one held):

* ``store.lock`` around every git operation (the index is shared) and around opening, creating and
  repairing the store;
* ``<horizon>.lock`` around a whole deploy or rollback of one horizon (read, decide, write, commit).

Order: a horizon lock first, then the store lock, never the other way round. The locks are
per-thread: two threads that share one ConfigStore exclude each other as two processes do, and a
thread may take a lock it already holds again.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock

from forex_assets.core.deployment.layout import LOCKS_DIR


class StoreLocks:
    def __init__(self, root: Path):
        self.directory = Path(root) / LOCKS_DIR
        self.directory.mkdir(parents=True, exist_ok=True)
        self.store = FileLock(self.directory / "store.lock")
        self._horizons: dict[str, FileLock] = {}

    def horizon(self, horizon: str) -> FileLock:
        if horizon not in self._horizons:
            self._horizons[horizon] = FileLock(self.directory / f"{horizon}.lock")
        return self._horizons[horizon]
