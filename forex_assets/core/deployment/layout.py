"""What a configuration store directory holds, its neighbours, and the store's errors (pure, no Dagster).

<root>/chronos_<h>.json   one schema-validated configuration per horizon (tracked)
<root>/.gitignore         keeps the rest out of git
<root>/backups/           a timestamped copy of each file a deploy or rollback replaced, and of each file a
                          repair discarded (``<name>.discarded-<UTC stamp>``); ``repairs.jsonl``, the log of
                          every repair (repair_log.py), and ``repairs.alerted``, those already alerted
<root>/.locks/            the lock files (locking.py)
<root>/.<name>.<x>.tmp    an atomic write in progress (forex_assets.core.files), or left by a kill

Anything else in the root (a ``chronos_7d.json.bak``, an editor's ``.chronos_7d.json.swp`` or
``chronos_7d.json~``) that is not committed is an unknown file: damage, moved to backups/ by a writer's open
(repair.py).

Beside the root, in its parent directory (creation.py):

.<root name>.lock             the creation lock: serialises making (or rebuilding) the store
.<root name>.new-<x>/         a store being built; renamed to <root> once complete (or left by a kill)
<root name>.broken-<stamp>/   what a rebuild found at <root> (a half-made store), kept as it was
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path

from forex_assets.core.horizons import HORIZONS

BACKUPS_DIR = "backups"
LOCKS_DIR = ".locks"
TEMP_GLOB = ".*.tmp"
GITIGNORE = f"{BACKUPS_DIR}/\n{LOCKS_DIR}/\n{TEMP_GLOB}\n"
REPAIR_LOG = f"{BACKUPS_DIR}/repairs.jsonl"
REPAIRS_ALERTED = f"{BACKUPS_DIR}/repairs.alerted"
_HORIZON_IN_NAME = re.compile(r"chronos_(" + "|".join(map(re.escape, HORIZONS)) + r")\.json")


class ConfigStoreError(RuntimeError):
    """A store operation was refused; the message says what and why. Nothing was changed."""


class StaleValidationError(ConfigStoreError):
    """A deploy was refused: the deployed version is no longer the one the candidate was validated against."""


class AlreadyOnConfigurationError(ConfigStoreError):
    """A rollback was refused: the deployed configuration already has the content asked for."""


class UnusableStoreError(ConfigStoreError):
    """The directory holds no usable store (half-made or not one); a writer's open rebuilds a half-made one."""


class RemoteError(ConfigStoreError):
    """The store's git remote could not be read or written (unreachable, refused); the message says which."""


def config_file_name(horizon: str) -> str:
    if horizon not in HORIZONS:
        raise ConfigStoreError(f"unknown horizon {horizon!r}; horizons are {', '.join(HORIZONS)}")
    return f"chronos_{horizon}.json"


def is_layout_name(name: str) -> bool:
    """Whether the store's layout has a place for ``name`` (a top-level entry of the root): the git repository,
    .gitignore, backups/, .locks/, a temp file of an atomic write, a horizon's configuration file."""
    if name in (".git", ".gitignore", BACKUPS_DIR, LOCKS_DIR) or fnmatch(name, TEMP_GLOB):
        return True
    return name in {f"chronos_{h}.json" for h in HORIZONS}


def horizon_in_name(name: str) -> str | None:
    """The horizon whose configuration file ``name`` is a copy of (``chronos_7d.json.bak``, ``.chronos_7d.json.swp``,
    ``chronos_7d.json~``: 7d); None when it names none."""
    match = _HORIZON_IN_NAME.search(name)
    return match[1] if match else None


def utc_stamp() -> str:
    """A UTC time for file names, to the microsecond: 20261126T071502123456Z."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def discarded_name(name: str, stamp: str) -> str:
    """Where a repair keeps a file it discarded, relative to the store root."""
    return f"{BACKUPS_DIR}/{name.replace('/', '_')}.discarded-{stamp}"


def creation_lock_path(root: Path) -> Path:
    return root.parent / f".{root.name}.lock"


def building_prefix(root: Path) -> str:
    """The name prefix of the directories a store is built in, beside ``root``."""
    return f".{root.name}.new-"


def aside_path(root: Path, stamp: str) -> Path:
    """A free name beside ``root`` for what a rebuild found there."""
    path = root.parent / f"{root.name}.broken-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root.parent / f"{root.name}.broken-{stamp}-{n}"
    return path
