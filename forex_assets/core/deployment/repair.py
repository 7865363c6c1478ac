"""What a crash can leave in a store, found and repaired on a writer's open (pure, no Dagster).

A writer killed part-way (kill -9, power loss) can leave: a stray temp file of an atomic write, git's
own lock files, a configuration file written but not committed (or deleted), changes staged in the
index but not committed. :func:`survey` finds these and changes nothing (what a read-only open can
report); :func:`repair` fixes them and says what it did. Both want the store lock held, so that no live
writer's files are taken for a crash's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from forex_assets.core.deployment.git_repo import GitRepo
from forex_assets.core.deployment.history import with_trailers
from forex_assets.core.deployment.layout import TEMP_GLOB, config_file_name
from forex_assets.core.forecasting.config import ConfigError, parse_config
from forex_assets.core.horizons import HORIZONS


class Damage(Enum):
    STRAY_TEMP_FILE = "a temp file of an interrupted atomic write"
    STALE_GIT_LOCK = "a lock file of an interrupted git command"
    MISSING = "a committed configuration file is missing"
    UNCOMMITTED = "a valid configuration file differs from HEAD (an interrupted deploy)"
    INVALID = "a configuration file differs from HEAD and is not a valid configuration"
    STAGED = "the index holds changes that are not committed"


@dataclass(frozen=True)
class Finding:
    damage: Damage
    path: str  # relative to the store root ("" for the index)
    horizon: str | None = None


def survey(repo: GitRepo, index: bool = True) -> list[Finding]:
    """What a crash left, in the order :func:`repair` handles it (``index``: staged changes too). Reads only."""
    root = repo.root
    found = [Finding(Damage.STRAY_TEMP_FILE, p.name) for p in sorted(root.glob(TEMP_GLOB))]
    found += [Finding(Damage.STALE_GIT_LOCK, str(p.relative_to(root))) for p in repo.lock_files()]
    head = repo.head
    for horizon in HORIZONS:
        name = config_file_name(horizon)
        committed = repo.text_at(head, name)
        path = root / name
        if not path.exists():
            if committed is not None:
                found.append(Finding(Damage.MISSING, name, horizon))
            continue
        current = path.read_text()
        if committed == current:
            continue
        try:
            parse_config(json.loads(current), name)
        except (json.JSONDecodeError, ConfigError):
            if committed is not None:  # an untracked invalid file is left where it is
                found.append(Finding(Damage.INVALID, name, horizon))
            continue
        found.append(Finding(Damage.UNCOMMITTED, name, horizon))
    if index and repo.index_dirty():
        found.append(Finding(Damage.STAGED, ""))
    return found


def repair(repo: GitRepo) -> list[str]:
    """Undo or finish what an interrupted writer left; returns what was done, one line each."""
    done = []
    for finding in survey(repo, index=False):
        name = finding.path
        match finding.damage:
            case Damage.STRAY_TEMP_FILE:
                (repo.root / name).unlink(missing_ok=True)
                done.append(f"removed stray temp file {name}")
            case Damage.STALE_GIT_LOCK:
                (repo.root / name).unlink(missing_ok=True)
                done.append(f"removed stale {name}")
            case Damage.MISSING:
                repo.restore_from_head(name)
                done.append(f"restored missing {name} from HEAD")
            case Damage.INVALID:
                repo.restore_from_head(name)
                done.append(f"restored {name} from HEAD: the uncommitted file was not a valid config")
            case Damage.UNCOMMITTED:
                summary = f"[{finding.horizon}] repair: commit the configuration an interrupted deploy left uncommitted"
                repo.commit_paths(with_trailers(summary, "repair", finding.horizon), name)
                done.append(f"committed {name} left uncommitted by an interrupted deploy")
    if repo.index_dirty():  # after the file repairs, which may have committed what a killed writer staged
        summary = "repair: commit changes staged by an interrupted writer"
        repo.commit_staged(with_trailers(summary, "repair"))
        done.append("committed changes staged by an interrupted writer")
    return done
