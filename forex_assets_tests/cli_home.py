"""The real `forex-assets` command in a subprocess, on a Dagster instance home of a test's own (as an operator runs
it): no production setting of the developer's shell reaches it, and no SMTP (alerts go to the run log and the
alert log)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from forex_assets.core.working_area import PROJECT_ROOT, SEED_CONFIGS_DIR

FOREX_ASSETS = Path(sys.executable).parent / "forex-assets"
CLEARED = (
    "FOREX_ASSETS_HOME",
    "FOREX_CONFIG_STORE_DIR",
    "FOREX_CONFIG_STORE_REMOTE",
    "FOREX_STATE_DATABASE_URL",
    "FOREX_PAIRS_FILE",
    "FOREX_SMTP_HOST",
    "FOREX_ALERT_TO",
)


def instance_home(tmp_path: Path) -> Path:
    """An instance home as a fresh machine has it: the repo's dagster.yaml, nothing run yet."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def area(home: Path) -> Path:
    """The working area of the instance (what `forex-assets` uses by default)."""
    return home / "forex_assets"


def store_root(home: Path) -> Path:
    return area(home) / "config_store"


def seeded_store(home: Path):
    """The config store of the instance, made from the repo's seeds as the first run makes it."""
    from forex_assets.core.deployment.config_store import ConfigStore

    return ConfigStore(store_root(home), seed_dir=SEED_CONFIGS_DIR)


def cli(home: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """``forex-assets ARGS`` with DAGSTER_HOME=home (and ``env``); stdout and stderr as text."""
    environment = {k: v for k, v in os.environ.items() if k not in CLEARED} | {"DAGSTER_HOME": str(home)} | env
    return subprocess.run(
        [str(FOREX_ASSETS), *args], env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )
