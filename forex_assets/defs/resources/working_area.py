"""The working_area resource: where the project's state lives (forecast history, config store, logs, caches).

Its paths come from one place, :class:`~forex_assets.core.working_area.WorkingAreaLayout` (the fields below,
then the environment, then the defaults). The config store is opened for writing once per resource instance:
Dagster makes one instance per run and one per sensor tick, so a run or a tick opens (locks, repairs, fetches)
the store once, however many times its code asks for it.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from forex_assets.core.alerting.delivery import AlertLog
from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.deployment.config_store import ConfigStore, ConfigStoreError
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.working_area import (
    AREA_IN_INSTANCE,
    CACHE_DIR_ENV,
    CONFIG_STORE_DIR,
    CONFIG_STORE_DIR_ENV,
    CONFIG_STORE_REMOTE_ENV,
    DAGSTER_HOME_ENV,
    HOME_ENV,
    PRIMARY_PAIR,
    STATE_DATABASE_URL_ENV,
    WorkingAreaLayout,
)


class WorkingArea(dg.ConfigurableResource):
    """The instance's working area (forecast history, caches, the config store and reports)."""

    path: str | None = Field(
        default=None,
        description=f"directory for the project's state; default ${HOME_ENV}, else "
        f"${DAGSTER_HOME_ENV}/{AREA_IN_INSTANCE}",
    )
    configs_dir: str | None = Field(default=None, description="seed configurations; default the repo's configs/")
    config_store_dir: str | None = Field(
        default=None,
        description=f"the versioned config store (a git repository); default ${CONFIG_STORE_DIR_ENV}, "
        f"else <working area>/{CONFIG_STORE_DIR}",
    )
    config_store_remote: str | None = Field(
        default=None,
        description="git remote that is the config store's source of truth (a bare repository's path or a git "
        "URL; its branch main); the store directory is then a local clone of it. Default "
        f"${CONFIG_STORE_REMOTE_ENV}, else none: the local repository alone",
    )
    cache_dir: str | None = Field(
        default=None,
        description="backtest forecast cache and Optuna journals when there is no state database; default "
        f"${CACHE_DIR_ENV}, else the working area",
    )
    state_database_url: str | None = Field(
        default=None,
        description="the database of the forecast history, trigger decisions, alert log, backtest cache and "
        "Optuna studies (a SQLAlchemy URL; PostgreSQL, e.g. postgresql+psycopg2://dagster@host:5432/dagster: "
        "tables in its schema forex, the Optuna studies in its schema forex_optuna, the "
        "password from $FOREX_STATE_DATABASE_PASSWORD, $DAGSTER_POSTGRES_PASSWORD or $DAGSTER_PG_PASSWORD, never "
        f"in this URL); default ${STATE_DATABASE_URL_ENV}, else SQLite files in the working area",
    )
    # this instance's writer's opens of the config stores: pair -> (the (directory, remote, seeds) it was opened
    # on, the store)
    _stores: dict[str, tuple[tuple, ConfigStore]] = PrivateAttr(default_factory=dict)

    @property
    def layout(self) -> WorkingAreaLayout:
        """Every path of the working area: the fields, else the environment, else the defaults."""
        return WorkingAreaLayout.from_environment(
            self.path,
            configs_dir=self.configs_dir,
            config_store_dir=self.config_store_dir,
            config_store_remote=self.config_store_remote,
            cache_dir=self.cache_dir,
            state_database_url=self.state_database_url,
        )

    def _made(self, cache: bool = False) -> WorkingAreaLayout:
        """The layout, with the working area's root (and the cache directory) made when missing."""
        layout = self.layout
        layout.root.mkdir(parents=True, exist_ok=True)
        if cache:
            layout.cache.mkdir(parents=True, exist_ok=True)
        return layout

    @property
    def root(self) -> Path:
        return self._made().root

    @property
    def configs(self) -> Path:
        return self.layout.configs

    @property
    def state_database(self) -> str | None:
        """The state database's URL (state_database_url, else the environment); None: SQLite files in the
        working area."""
        return self.layout.state_database_url

    def forecast_history(self, pair: str = PRIMARY_PAIR) -> ForecastHistory:
        """The pair's forecast history (one database for every pair, its rows keyed by pair)."""
        layout = self._made()
        return ForecastHistory(layout.forecast_history, database_url=layout.state_database_url, pair=pair)

    def config_store(self, pair: str = PRIMARY_PAIR) -> ConfigStore:
        """The pair's versioned configuration store (a git repository of its own: one file per horizon, its own
        history), opened for writing once per resource instance (one per run, one per sensor tick): created from
        the seed configurations when new, repaired, fetched from its remote; each repair is logged as a warning.
        Opened again only when the layout names another store (another directory, remote or seeds)."""
        layout = self.layout
        try:
            remote = layout.config_store_remote_for(pair)
        except ValueError as error:
            raise ConfigStoreError(str(error)) from None
        opened_on = (layout.config_store_for(pair), remote, layout.configs)
        if pair not in self._stores or self._stores[pair][0] != opened_on:
            store = ConfigStore(opened_on[0], seed_dir=layout.configs, remote=remote)
            for text in (*store.repairs, *store.warnings):  # warnings: e.g. a remote out of reach
                dg.get_dagster_logger().warning(f"config store {store.root}: {text}")
            self._stores[pair] = (opened_on, store)
        return self._stores[pair][1]

    def deployed_config(self, horizon: str, pair: str = PRIMARY_PAIR) -> tuple[ChronosConfig, str]:
        """The configuration the pair's horizon's forecasts use now, and its version id (from its store)."""
        store = self.config_store(pair)
        return store.read(horizon), store.current_version(horizon).id

    def decision_log(self, pair: str = PRIMARY_PAIR) -> DecisionLog:
        layout = self._made()
        return DecisionLog(layout.decision_log, database_url=layout.state_database_url, pair=pair)

    def alert_log(self, pair: str = PRIMARY_PAIR) -> AlertLog:
        layout = self._made()
        return AlertLog(layout.alert_log, database_url=layout.state_database_url, pair=pair)

    @property
    def cache(self) -> Path:
        return self._made(cache=True).cache

    def backtest_cache(self) -> ForecastCache:
        """The backtest forecast cache: in the state database when there is one (table backtest_forecasts),
        else its SQLite file in the cache directory."""
        layout = self._made(cache=True)
        return ForecastCache(layout.backtest_cache, database_url=layout.state_database_url)

    @property
    def optuna_storage(self) -> Path:
        """The Optuna study directory: one journal file per study, so opening a study does not re-read every
        study run before (a single-file journal left by older versions is no longer read). Not used when there
        is a state database (``state_database``): the studies are there (schema forex_optuna on PostgreSQL,
        with heartbeats)."""
        return self._made(cache=True).optuna_studies

    def reports_dir(self, horizon: str, pair: str = PRIMARY_PAIR) -> Path:
        path = self.layout.reports_for(horizon, pair)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def candidate_file(self, horizon: str, pair: str = PRIMARY_PAIR) -> Path:
        """Where candidate_config writes the pair's horizon's latest candidate and leaderboard (JSON)."""
        return self._made().candidate_file(horizon, pair)

    def replay_dir(self, name: str) -> Path:
        """The directory of one replay run from the instance (not made here)."""
        return self._made().replays / name
