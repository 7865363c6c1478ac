"""The working_area resource: where the project's state lives (forecast history, config store, logs, caches)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from forex_assets.core.alerting.delivery import AlertLog
from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.storage import configured_url
from forex_assets.core.working_area import SEED_CONFIGS_DIR, default_working_area


class WorkingArea(dg.ConfigurableResource):
    """The instance's working area (forecast history, caches, later the config store and reports)."""

    path: str | None = Field(
        default=None, description="directory for the project's state; default $DAGSTER_HOME/forex_assets"
    )
    configs_dir: str | None = Field(default=None, description="seed configurations; default the repo's configs/")
    config_store_dir: str | None = Field(
        default=None,
        description="the versioned config store (a git repository); default $FOREX_CONFIG_STORE_DIR, "
        "else <working area>/config_store",
    )
    config_store_remote: str | None = Field(
        default=None,
        description="git remote that is the config store's source of truth (a bare repository's path or a git "
        "URL; its branch main); the store directory is then a local clone of it. Default $FOREX_CONFIG_STORE_REMOTE, "
        "else none: the local repository alone",
    )
    cache_dir: str | None = Field(
        default=None,
        description="backtest forecast cache and Optuna journals when there is no state database; default "
        "$FOREX_CACHE_DIR, else the working area",
    )
    state_database_url: str | None = Field(
        default=None,
        description="the database of the forecast history, trigger decisions, alert log, backtest cache and "
        "Optuna studies (a SQLAlchemy URL; PostgreSQL, e.g. postgresql+psycopg2://dagster@host:5432/dagster: "
        "tables in its schema forex, the Optuna studies in its schema forex_optuna, the "
        "password from $FOREX_STATE_DATABASE_PASSWORD, $DAGSTER_POSTGRES_PASSWORD or $DAGSTER_PG_PASSWORD, never "
        "in this URL); default $FOREX_STATE_DATABASE_URL, else SQLite files in the working area",
    )

    @property
    def root(self) -> Path:
        path = Path(self.path).expanduser() if self.path else default_working_area()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def configs(self) -> Path:
        return Path(self.configs_dir).expanduser() if self.configs_dir else SEED_CONFIGS_DIR

    @property
    def state_database(self) -> str | None:
        """The state database's URL: state_database_url, else $FOREX_STATE_DATABASE_URL; None: SQLite files in
        the working area (forecast_history.sqlite, trigger_decisions.sqlite, alerts.sqlite)."""
        return configured_url(self.state_database_url)

    def forecast_history(self) -> ForecastHistory:
        return ForecastHistory(self.root / "forecast_history.sqlite", database_url=self.state_database)

    def config_store(self) -> ConfigStore:
        """The versioned configuration store (a git repository), seeded from configs/ when new."""
        configured = self.config_store_dir or os.environ.get("FOREX_CONFIG_STORE_DIR")
        path = Path(configured).expanduser() if configured else self.root / "config_store"
        remote = self.config_store_remote or os.environ.get("FOREX_CONFIG_STORE_REMOTE") or None
        store = ConfigStore(path, seed_dir=self.configs, remote=remote)
        for repair in store.repairs:
            dg.get_dagster_logger().warning(f"config store {path}: {repair}")
        return store

    def deployed_config(self, horizon: str) -> tuple[ChronosConfig, str]:
        """The configuration the horizon's forecasts use now, and its version id (from the store)."""
        store = self.config_store()
        return store.read(horizon), store.current_version(horizon).id

    def decision_log(self) -> DecisionLog:
        return DecisionLog(self.root / "trigger_decisions.sqlite", database_url=self.state_database)

    def alert_log(self) -> AlertLog:
        return AlertLog(self.root / "alerts.sqlite", database_url=self.state_database)

    @property
    def cache(self) -> Path:
        configured = self.cache_dir or os.environ.get("FOREX_CACHE_DIR")
        path = Path(configured).expanduser() if configured else self.root
        path.mkdir(parents=True, exist_ok=True)
        return path

    def backtest_cache(self) -> ForecastCache:
        """The backtest forecast cache: in the state database when there is one (table backtest_forecasts),
        else the SQLite file backtest_cache.sqlite in the cache directory."""
        return ForecastCache(self.cache / "backtest_cache.sqlite", database_url=self.state_database)

    @property
    def optuna_storage(self) -> Path:
        """The Optuna study directory: one journal file per study, so opening a study does not re-read every
        study run before. A single-file ``optuna_studies.journal`` left by older versions is no longer read.
        Not used when there is a state database (``state_database``): the studies are there (schema
        forex_optuna on PostgreSQL, with heartbeats)."""
        return self.cache / "optuna_studies"

    def reports_dir(self, horizon: str) -> Path:
        path = self.root / "reports" / horizon
        path.mkdir(parents=True, exist_ok=True)
        return path
