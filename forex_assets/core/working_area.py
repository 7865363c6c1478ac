"""Where the project keeps its state: the working area's layout, resolved once, and the seed configurations.

Every path and name of the working area is spelled here and nowhere else (a test scans the package for
them): the files of the forecast history, the trigger decisions, the alert log and the backtest cache, the
Optuna study directory, the config store, the reports, the replays, the mindicador.cl cache and the
candidates. :class:`WorkingAreaLayout` resolves each from explicit settings (the ``working_area`` resource's
fields, a command's options), then from the environment, then from the defaults:

=====================  ==========================================================================================
root                   ``$FOREX_ASSETS_HOME``, else ``$DAGSTER_HOME/forex_assets``, else the instance directory
                       the caller assumes (the CLI: the project's ``.dagster_home``) + ``/forex_assets``, else
                       ``./.forex_assets``
config store           ``$FOREX_CONFIG_STORE_DIR``, else ``<root>/config_store``
config store remote    ``$FOREX_CONFIG_STORE_REMOTE``, else none (the local repository alone)
cache                  ``$FOREX_CACHE_DIR``, else the root (backtest cache, Optuna journals)
state database URL     ``$FOREX_STATE_DATABASE_URL``, else none (SQLite files in the root)
=====================  ==========================================================================================

An empty variable counts as unset. The layout only names paths: it creates nothing (the ``working_area``
resource makes the directories it writes to).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEED_CONFIGS_DIR = PROJECT_ROOT / "configs"
#: the Dagster instance `make run` and the read-only commands use when $DAGSTER_HOME is unset
PROJECT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"

#: the currency pair whose state keeps the single-pair layout (``forex_assets.core.pairs.DEFAULT_PAIR``): the
#: config store, reports and candidates of an instance written before pairs are USD/CLP's, where they were
PRIMARY_PAIR = "USDCLP"


def pair_label(code: str) -> str:
    """How a pair's code reads to people, in tables, titles and alert subjects: ``EURCLP`` -> ``EUR/CLP``."""
    return f"{code[:3]}/{code[3:]}"


def pair_unit(code: str) -> str:
    """The unit of a pair's prices, quote per base: ``EURCLP`` -> ``CLP per EUR``."""
    return f"{code[3:]} per {code[:3]}"


# the environment variables, in the order the table above reads them
HOME_ENV = "FOREX_ASSETS_HOME"
DAGSTER_HOME_ENV = "DAGSTER_HOME"
CONFIG_STORE_DIR_ENV = "FOREX_CONFIG_STORE_DIR"
CONFIG_STORE_REMOTE_ENV = "FOREX_CONFIG_STORE_REMOTE"
CACHE_DIR_ENV = "FOREX_CACHE_DIR"
STATE_DATABASE_URL_ENV = "FOREX_STATE_DATABASE_URL"
ENVIRONMENT_VARIABLES = (
    HOME_ENV,
    DAGSTER_HOME_ENV,
    CONFIG_STORE_DIR_ENV,
    CONFIG_STORE_REMOTE_ENV,
    CACHE_DIR_ENV,
    STATE_DATABASE_URL_ENV,
)

# the names inside the working area
AREA_IN_INSTANCE = "forex_assets"  # the working area's directory inside a Dagster instance's
AREA_IN_CWD = ".forex_assets"  # the working area when neither variable says where
FORECAST_HISTORY_FILE = "forecast_history.sqlite"
DECISION_LOG_FILE = "trigger_decisions.sqlite"
ALERT_LOG_FILE = "alerts.sqlite"
BACKTEST_CACHE_FILE = "backtest_cache.sqlite"
OPTUNA_DIR = "optuna_studies"
CONFIG_STORE_DIR = "config_store"
REPORTS_DIR = "reports"
REPLAYS_DIR = "replays"
MINDICADOR_DIR = "mindicador"
CANDIDATES_DIR = "candidates"
FILE_NAMES = (FORECAST_HISTORY_FILE, DECISION_LOG_FILE, ALERT_LOG_FILE, BACKTEST_CACHE_FILE)
DIRECTORY_NAMES = (OPTUNA_DIR, CONFIG_STORE_DIR, REPORTS_DIR, REPLAYS_DIR, MINDICADOR_DIR, CANDIDATES_DIR)


def _given(value: str | os.PathLike[str] | None) -> str | None:
    """``value`` as text, None when unset or empty (blank)."""
    if value is None:
        return None
    return str(os.fspath(value)).strip() or None


def _path(value: str | os.PathLike[str]) -> Path:
    return Path(value).expanduser()


def configured_state_database_url(value: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """``value``, else ``$FOREX_STATE_DATABASE_URL``; None (empty or unset) means the embedded SQLite files."""
    environ = os.environ if environ is None else environ
    return _given(value) or _given(environ.get(STATE_DATABASE_URL_ENV))


def dagster_home(environ: Mapping[str, str] | None = None) -> Path:
    """The Dagster instance the CLI works on: ``$DAGSTER_HOME``, else the project's ``.dagster_home`` (what
    `make run` fills)."""
    environ = os.environ if environ is None else environ
    configured = _given(environ.get(DAGSTER_HOME_ENV))
    return _path(configured) if configured else PROJECT_DAGSTER_HOME


def default_working_area() -> Path:
    """The working area's root as the environment says (``WorkingAreaLayout.from_environment().root``)."""
    return WorkingAreaLayout.from_environment().root


@dataclass(frozen=True)
class WorkingAreaLayout:
    """Every path and name of one working area, resolved once (see the module's table)."""

    root: Path
    configs: Path  # the seed configurations and search spaces (the repo's configs/ by default)
    config_store: Path  # the versioned configuration store (a git repository)
    config_store_remote: str | None  # the store's source of truth (a bare repository or a git URL); None: local
    cache: Path  # the backtest cache and the Optuna journals
    state_database_url: str | None  # None: SQLite files in the root

    @classmethod
    def from_environment(
        cls,
        root: str | os.PathLike[str] | None = None,
        *,
        configs_dir: str | os.PathLike[str] | None = None,
        config_store_dir: str | os.PathLike[str] | None = None,
        config_store_remote: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        state_database_url: str | None = None,
        instance_home: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> WorkingAreaLayout:
        """The layout from the explicit settings given, each else its environment variable, else its default.
        ``instance_home``: the Dagster instance directory to assume when ``$DAGSTER_HOME`` is unset (the CLI
        passes the project's ``.dagster_home``); None: the root is then ``./.forex_assets``."""
        environ = os.environ if environ is None else environ
        chosen_root = _given(root) or _given(environ.get(HOME_ENV))
        if chosen_root:
            area = _path(chosen_root)
        elif home := _given(environ.get(DAGSTER_HOME_ENV)):
            area = _path(home) / AREA_IN_INSTANCE
        elif instance_home is not None:
            area = _path(instance_home) / AREA_IN_INSTANCE
        else:
            area = Path.cwd() / AREA_IN_CWD
        store = _given(config_store_dir) or _given(environ.get(CONFIG_STORE_DIR_ENV))
        cache = _given(cache_dir) or _given(environ.get(CACHE_DIR_ENV))
        configs = _given(configs_dir)
        return cls(
            root=area,
            configs=_path(configs) if configs else SEED_CONFIGS_DIR,
            config_store=_path(store) if store else area / CONFIG_STORE_DIR,
            config_store_remote=_given(config_store_remote) or _given(environ.get(CONFIG_STORE_REMOTE_ENV)),
            cache=_path(cache) if cache else area,
            state_database_url=configured_state_database_url(state_database_url, environ),
        )

    @classmethod
    def in_directory(
        cls, root: str | os.PathLike[str], configs_dir: str | os.PathLike[str] | None = None
    ) -> WorkingAreaLayout:
        """A self-contained working area in ``root`` (a replay's): every part inside it, SQLite files, no
        remote; the environment is not read."""
        area = _path(root)
        configs = _given(configs_dir)
        return cls(area, _path(configs) if configs else SEED_CONFIGS_DIR, area / CONFIG_STORE_DIR, None, area, None)

    # ------------------------------------------------------------------------------ the parts

    @property
    def forecast_history(self) -> Path:
        """The forecast history's SQLite file (unused, but still named, with a state database)."""
        return self.root / FORECAST_HISTORY_FILE

    @property
    def decision_log(self) -> Path:
        """The trigger decisions' SQLite file."""
        return self.root / DECISION_LOG_FILE

    @property
    def alert_log(self) -> Path:
        """The alert log's SQLite file."""
        return self.root / ALERT_LOG_FILE

    @property
    def backtest_cache(self) -> Path:
        """The backtest forecast cache's SQLite file, in the cache directory."""
        return self.cache / BACKTEST_CACHE_FILE

    @property
    def optuna_studies(self) -> Path:
        """The Optuna study directory (one journal per study), in the cache directory; unused with a state
        database, which holds the studies."""
        return self.cache / OPTUNA_DIR

    @property
    def reports(self) -> Path:
        """The validation reports, one directory per horizon."""
        return self.root / REPORTS_DIR

    def reports_for(self, horizon: str, pair: str = PRIMARY_PAIR) -> Path:
        """A pair's validation reports of ``horizon``: ``reports/<h>`` for USD/CLP (where they always were),
        ``reports/<PAIR>/<h>`` for another pair."""
        return self.reports / horizon if pair == PRIMARY_PAIR else self.reports / pair / horizon

    def config_store_for(self, pair: str = PRIMARY_PAIR) -> Path:
        """A pair's config store (its own git repository: its own files, history and locks): the config store
        for USD/CLP (where it always was), ``<config store>_<PAIR>`` beside it for another pair."""
        if pair == PRIMARY_PAIR:
            return self.config_store
        return self.config_store.with_name(f"{self.config_store.name}_{pair}")

    def config_store_remote_for(self, pair: str = PRIMARY_PAIR) -> str | None:
        """A pair's config store remote: the remote with ``{pair}`` replaced by the pair's code (one repository
        per pair, e.g. ``git@host:fx/store-{pair}.git``); a remote without ``{pair}`` is USD/CLP's alone, and
        another pair's store is then refused (ValueError naming the setting) rather than pushed over it."""
        remote = self.config_store_remote
        if remote is None:
            return None
        if "{pair}" in remote:
            return remote.replace("{pair}", pair)
        if pair == PRIMARY_PAIR:
            return remote
        raise ValueError(
            f"the config store remote {remote} is one pair's; to keep {pair}'s store on a remote too, put {{pair}} "
            f"in ${CONFIG_STORE_REMOTE_ENV} (or the working_area resource's config_store_remote), e.g. "
            "git@host:fx/store-{pair}.git: one repository per pair"
        )

    @property
    def replays(self) -> Path:
        """Replays run from the instance or the CLI, one directory each."""
        return self.root / REPLAYS_DIR

    @property
    def mindicador_cache(self) -> Path:
        """The mindicador.cl price source's cache of yearly answers."""
        return self.root / MINDICADOR_DIR

    @property
    def candidates(self) -> Path:
        """The latest candidate of each horizon's search, with its leaderboard (JSON)."""
        return self.root / CANDIDATES_DIR

    def candidate_file(self, horizon: str, pair: str = PRIMARY_PAIR) -> Path:
        name = f"candidate_{horizon}.json" if pair == PRIMARY_PAIR else f"candidate_{pair}_{horizon}.json"
        return self.candidates / name
