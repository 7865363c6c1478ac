"""What a crash or a hand edit can leave in a store, found and repaired on a writer's open (pure, no Dagster).

A writer killed part-way (kill -9, power loss) can leave: a stray temp file of an atomic write, git's own
lock files, a configuration file written but not committed (or deleted), changes staged in the index but
not committed. A person can leave a hand edit of a configuration file, or a file a store never holds (a
``chronos_7d.json.bak`` copy, an editor's ``.chronos_7d.json.swp`` or ``chronos_7d.json~``). :func:`survey`
finds these and changes nothing (what a read-only open reports); :func:`repair` fixes them and says what it
did. Both want the store lock held, so that no live writer's files are taken for a crash's. An unknown file
never stops the store: nothing reads it, and forecasts go on.

The rules of a repair:

* the committed configuration (HEAD) is the one that is live: a file that differs from it, valid or not,
  is put back to HEAD's content. A configuration goes live only through a deploy (validated) or a
  rollback, never through an edit of the file, and a deploy that was killed before its commit did not
  happen (its run failed);
* whatever a repair discards is kept, under ``backups/<name>.discarded-<UTC stamp>``; git's own stale lock
  files (scratch of a killed git command) are the exception;
* every repair is returned (:class:`Repair`: what, which horizon, where the copy is); the store logs it
  (repair_log.py), and whoever holds an alert channel alerts it once (:func:`repair_alert`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import git

from forex_assets.core.alerting.messages import ALL_HORIZONS, Alert
from forex_assets.core.deployment.git_repo import GitRepo
from forex_assets.core.deployment.layout import (
    TEMP_GLOB,
    config_file_name,
    discarded_name,
    horizon_in_name,
    is_layout_name,
    utc_stamp,
)
from forex_assets.core.deployment.repair_log import RepairRecord
from forex_assets.core.forecasting.config import ConfigError, parse_config
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.templates import render


class Damage(Enum):
    STRAY_TEMP_FILE = "a temp file of an interrupted atomic write"
    STALE_GIT_LOCK = "a lock file of an interrupted git command"
    MISSING = "a committed configuration file is missing"
    UNCOMMITTED = (
        "a valid configuration file differs from the committed one (a hand edit, or a deploy killed before "
        "its commit); it is not live"
    )
    INVALID = "a configuration file differs from the committed one and is not a valid configuration"
    UNTRACKED = "a configuration file that was never committed (not live)"
    STAGED = "the index holds changes that are not committed"
    UNKNOWN = "a file a configuration store never holds (a copy, an editor's file); nothing reads it"


# what a writer's open does about each
REMEDY = {
    Damage.STRAY_TEMP_FILE: "move it to backups/",
    Damage.STALE_GIT_LOCK: "remove it",
    Damage.MISSING: "restore it from the committed version",
    Damage.UNCOMMITTED: "put back the committed version, keeping the edited file in backups/",
    Damage.INVALID: "put back the committed version, keeping the invalid file in backups/",
    Damage.UNTRACKED: "move it to backups/",
    Damage.STAGED: "reset the index to the commit, keeping the staged contents in backups/",
    Damage.UNKNOWN: "move it to backups/",
}


@dataclass(frozen=True)
class Finding:
    damage: Damage
    path: str  # relative to the store root ("" for the index)
    horizon: str | None = None

    def describe(self) -> str:
        """One line for a person: where, what, and what a writer's open will do about it."""
        where = self.path or "index"
        return f"{where}: {self.damage.value}; a writer's open (the next run) will: {REMEDY[self.damage]}"


@dataclass(frozen=True)
class Repair:
    text: str  # what was done, one line
    horizon: str | None = None  # None: the whole store
    kept: str | None = None  # where the discarded content is kept, relative to the store root

    def __str__(self) -> str:
        return self.text


def survey(repo: GitRepo, index: bool = True) -> list[Finding]:
    """What a crash or a hand edit left, in the order :func:`repair` handles it (``index``: staged changes
    too). Reads only."""
    root = repo.root
    found = [Finding(Damage.STRAY_TEMP_FILE, p.name) for p in sorted(root.glob(TEMP_GLOB))]
    found += [Finding(Damage.STALE_GIT_LOCK, str(p.relative_to(root))) for p in repo.lock_files()]
    head = repo.head
    found += [Finding(Damage.UNKNOWN, name, horizon_in_name(name)) for name in unknown_names(root, head)]
    for horizon in HORIZONS:
        name = config_file_name(horizon)
        committed = repo.text_at(head, name)
        path = root / name
        if not path.exists():
            if committed is not None:
                found.append(Finding(Damage.MISSING, name, horizon))
            continue
        if committed is None:
            found.append(Finding(Damage.UNTRACKED, name, horizon))
            continue
        current = path.read_text(errors="replace")
        if committed == current:
            continue
        try:
            parse_config(json.loads(current), name)
        except (json.JSONDecodeError, ConfigError):
            found.append(Finding(Damage.INVALID, name, horizon))
            continue
        found.append(Finding(Damage.UNCOMMITTED, name, horizon))
    if index and repo.index_dirty():
        found.append(Finding(Damage.STAGED, ""))
    return found


def unknown_names(root: Path, head: git.Commit) -> list[str]:
    """The entries of ``root`` that the store's layout has no place for and that are not committed at ``head``
    (a committed file, whatever its name, is history: left alone)."""
    return sorted(p.name for p in root.iterdir() if not is_layout_name(p.name) and p.name not in head.tree)


def _keep(root: Path, name: str, stamp: str, move: bool = False) -> str:
    """Copy (or move) ``root/name`` under backups/; returns where it is kept, relative to ``root``."""
    kept = discarded_name(name, stamp)
    (root / kept).parent.mkdir(parents=True, exist_ok=True)
    (shutil.move if move else shutil.copy2)(root / name, root / kept)
    return kept


def repair(repo: GitRepo) -> list[Repair]:
    """Undo what an interrupted writer or a hand edit left, keeping a copy of what is discarded; returns
    what was done."""
    root, done, stamp = repo.root, [], utc_stamp()
    head_id = repo.head.hexsha[:8]
    for finding in survey(repo, index=False):
        name, horizon = finding.path, finding.horizon
        match finding.damage:
            case Damage.STRAY_TEMP_FILE:
                kept = _keep(root, name, stamp, move=True)
                done.append(Repair(f"moved stray temp file {name} of an interrupted write to {kept}", None, kept))
            case Damage.STALE_GIT_LOCK:
                (root / name).unlink(missing_ok=True)
                done.append(Repair(f"removed stale {name} of an interrupted git command"))
            case Damage.MISSING:
                repo.restore_from_head(name)
                done.append(Repair(f"restored missing {name} from the committed version {head_id}", horizon))
            case Damage.INVALID | Damage.UNCOMMITTED:
                kept = _keep(root, name, stamp)
                repo.restore_from_head(name)
                why = (
                    "it was not a valid configuration"
                    if finding.damage is Damage.INVALID
                    else "it differed from the committed configuration (a hand edit, or a deploy killed before "
                    "its commit) and a configuration goes live only through a validated deploy or a rollback"
                )
                text = f"restored {name} from the committed version {head_id}: {why}; the discarded file is in {kept}"
                done.append(Repair(text, horizon, kept))
            case Damage.UNTRACKED:
                kept = _keep(root, name, stamp, move=True)
                text = f"moved {name}, never committed (not live, never validated), to {kept}"
                done.append(Repair(text, horizon, kept))
            case Damage.UNKNOWN:
                kept = _keep(root, name, stamp, move=True)
                text = f"moved {name}, a file a configuration store never holds (nothing read it), to {kept}"
                done.append(Repair(text, horizon, kept))
    staged = repo.staged()
    if staged:  # after the file repairs, which reset what a killed deploy staged for its own file
        kept_names = []
        for name, content in staged.items():
            if content is not None:
                kept = discarded_name(f"{name}.staged", stamp)
                (root / kept).parent.mkdir(parents=True, exist_ok=True)
                (root / kept).write_bytes(content)
                kept_names.append(kept)
        repo.reset_index()
        where = f"; the staged contents are kept in {', '.join(kept_names)}" if kept_names else ""
        text = f"reset the index to the commit: {', '.join(staged)} staged but never committed{where}"
        done.append(Repair(text, None, ", ".join(kept_names) or None))
    return done


def repair_alert(root: Path | str, repairs: Sequence[Repair | RepairRecord]) -> Alert | None:
    """The alert for what writers of the store repaired (None when nothing was): an operator must learn that a
    hand edit was put back, a stray file moved, or a crash cleaned up, and where the discarded content is kept."""
    if not repairs:
        return None
    horizons = {r.horizon for r in repairs}
    only = horizons.pop() if len(horizons) == 1 else None
    horizon = only if only is not None else ALL_HORIZONS
    subject = f"[forex][{horizon}] config store repaired ({len(repairs)} repair{'s' if len(repairs) > 1 else ''})"
    intro = (
        f"The configuration store {root} was repaired by a process that opened it for writing. The committed "
        "configurations are the live ones; nothing unvalidated went live."
    )
    rows = [(f"repair {i}", r.text) for i, r in enumerate(repairs, 1)]
    notes = ["Discarded content is kept under backups/ in the store (or beside it, for a rebuilt store)."]
    width = max(len(k) for k, _ in rows)
    text = "\n".join([intro, "", *(f"{k.ljust(width)}  {v}" for k, v in rows), "", *notes]) + "\n"
    html = render("alert.html.j2", subject=subject, intro=intro, rows=rows, notes=notes)
    return Alert("config_store_repaired", horizon, subject, text, html)
