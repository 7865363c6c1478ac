"""The log of what writers' opens of a store repaired, and which of it was alerted (pure, no Dagster).

Whoever opens the store for writing (a forecast, a deploy, a rollback, the rollback sensor, `make run`) may
be the one that repairs it (repair.py): each repair is appended to ``backups/repairs.jsonl`` (one JSON object
a line: id, time, what was done, horizon, where the discarded content is kept), under the store lock that the
repair itself holds, so a repair is logged exactly once. ``forex-assets history --kind repair`` and
``make run``'s summary read this log.

Alerting is separate, so that an opener without an alert channel (a forecast) still gets its repairs alerted:
any holder of one calls :meth:`RepairLog.alert_pending`, which, under a lock of its own, hands every repair
not alerted yet to the caller's ``send`` and then notes their ids in ``backups/repairs.alerted``. Each repair
is alerted once, whoever opened the store and however many alert.

A line torn by a kill is skipped when read, and the next append starts on a line of its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from filelock import FileLock, Timeout

from forex_assets.core.deployment.layout import LOCKS_DIR, REPAIR_LOG, REPAIRS_ALERTED, utc_stamp

ALERT_LOCK_TIMEOUT_S = 30.0  # another process alerting longer than this: it alerts what is pending, skip


class _Repair(Protocol):
    """What a repair log records of a repair (``repair.Repair``)."""

    @property
    def text(self) -> str: ...
    @property
    def horizon(self) -> str | None: ...
    @property
    def kept(self) -> str | None: ...


@dataclass(frozen=True)
class RepairRecord:
    id: str  # <UTC stamp>-<n>
    at: datetime  # UTC
    text: str  # what was done, one line
    horizon: str | None = None  # None: the whole store
    kept: str | None = None  # where the discarded content is kept, relative to the store root


def _append_lines(path: Path, lines: Iterable[str]) -> None:
    """Append whole lines and fsync; a line a kill left torn is ended first, so no record is merged into it."""
    text = "".join(f"{line}\n" for line in lines)
    if not text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                text = "\n" + text
        handle.write(text.encode())
        handle.flush()
        os.fsync(handle.fileno())


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _parse(line: str) -> RepairRecord | None:
    try:
        item = json.loads(line)
        return RepairRecord(
            item["id"], datetime.fromisoformat(item["at"]), item["text"], item.get("horizon"), item.get("kept")
        )
    except (ValueError, KeyError, TypeError):
        return None  # torn by a kill, or not ours: left out


class RepairLog:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.path = self.root / REPAIR_LOG
        self.alerted_path = self.root / REPAIRS_ALERTED

    def append(self, repairs: Iterable[_Repair]) -> list[RepairRecord]:
        """Log ``repairs`` (anything with ``text``, ``horizon`` and ``kept``: repair.Repair); the caller holds the
        store lock. Returns the records written."""
        now, stamp = datetime.now(UTC), utc_stamp()
        records = [RepairRecord(f"{stamp}-{n}", now, r.text, r.horizon, r.kept) for n, r in enumerate(repairs, 1)]
        _append_lines(
            self.path,
            (
                json.dumps({"id": r.id, "at": r.at.isoformat(), "text": r.text, "horizon": r.horizon, "kept": r.kept})
                for r in records
            ),
        )
        return records

    def entries(self) -> list[RepairRecord]:
        """Every repair logged, oldest first (reads only)."""
        return [record for record in map(_parse, _read_lines(self.path)) if record is not None]

    def since(self, at: datetime) -> list[RepairRecord]:
        return [record for record in self.entries() if record.at >= at]

    def pending(self) -> list[RepairRecord]:
        """The repairs not alerted yet (reads only)."""
        alerted = set(_read_lines(self.alerted_path))
        return [record for record in self.entries() if record.id not in alerted]

    def alert_pending(self, send: Callable[[list[RepairRecord]], object]) -> list[RepairRecord]:
        """``send`` the repairs not alerted yet, then note them alerted; returns them ([] when none, or when another
        process has been alerting for longer than ALERT_LOCK_TIMEOUT_S: it alerts them). ``send`` must not raise
        for a failed delivery (AlertNotifier.send does not): whatever it raises leaves them pending."""
        lock = FileLock(self.root / LOCKS_DIR / "repair_alerts.lock")
        (self.root / LOCKS_DIR).mkdir(parents=True, exist_ok=True)
        try:
            with lock.acquire(timeout=ALERT_LOCK_TIMEOUT_S):
                pending = self.pending()
                if pending:
                    send(pending)
                    _append_lines(self.alerted_path, (record.id for record in pending))
                return pending
        except Timeout:
            return []
