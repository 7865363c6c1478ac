"""What a configuration store directory holds, and the store's error (pure, no Dagster).

<root>/chronos_<h>.json   one schema-validated configuration per horizon (tracked)
<root>/.gitignore         keeps the rest out of git
<root>/backups/           a timestamped copy of each file a deploy or rollback replaced
<root>/.locks/            the lock files (locking.py)
<root>/.<name>.<x>.tmp    an atomic write in progress (forex_assets.core.files), or left by a kill
"""

from __future__ import annotations

from forex_assets.core.horizons import HORIZONS

BACKUPS_DIR = "backups"
LOCKS_DIR = ".locks"
TEMP_GLOB = ".*.tmp"
GITIGNORE = f"{BACKUPS_DIR}/\n{LOCKS_DIR}/\n{TEMP_GLOB}\n"


class ConfigStoreError(RuntimeError):
    """A store operation was refused; the message says what and why. Nothing was changed."""


def config_file_name(horizon: str) -> str:
    if horizon not in HORIZONS:
        raise ConfigStoreError(f"unknown horizon {horizon!r}; horizons are {', '.join(HORIZONS)}")
    return f"chronos_{horizon}.json"
