"""Where the project keeps its state: the instance's working area and the seed configurations.

The working area holds the forecast history, the price-source cache and, later, the config store,
reports and backtest cache. It is ``$FOREX_ASSETS_HOME`` when set, else ``$DAGSTER_HOME/forex_assets``,
else ``./.forex_assets``.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEED_CONFIGS_DIR = PROJECT_ROOT / "configs"


def default_working_area() -> Path:
    if os.environ.get("FOREX_ASSETS_HOME"):
        return Path(os.environ["FOREX_ASSETS_HOME"]).expanduser()
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"]).expanduser() / "forex_assets"
    return Path.cwd() / ".forex_assets"
