"""Dagster resources: thin wrappers that turn run configuration into calls of the pure modules."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from forex_assets.core.alerting.delivery import AlertLog
from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.deployment.rollback_rules import RollbackThresholds
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.drift import DriftThresholds
from forex_assets.core.monitoring.performance import PerformancePolicy
from forex_assets.core.monitoring.triggers import TriggerPolicy
from forex_assets.core.policy import PolicySettings
from forex_assets.core.prices.schema import (
    DEFAULT_MAX_DAILY_MOVE,
    DEFAULT_MAX_GAP_BUSINESS_DAYS,
    DEFAULT_MAX_PRICE,
    DEFAULT_MIN_PRICE,
    PriceRules,
    validate_prices,
)
from forex_assets.core.prices.sources import CsvFormat, MindicadorClient, read_price_csv, synthetic_prices
from forex_assets.core.recalibration.validation import ApprovalThresholds
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


class MonitoringPolicy(dg.ConfigurableResource):
    """Drift windows, performance scoring and trigger thresholds; per-horizon drift windows optional.
    Defaults and their reasons: docs/decisions.md (Triggers, Drift)."""

    baseline_window: int = Field(default=90, ge=20, description="log returns in the drift baseline")
    test_window: int = Field(default=30, ge=10, description="latest log returns tested for drift")
    per_horizon_windows: dict[str, list[int]] = Field(
        default_factory=dict, description='e.g. {"90d": [180, 60]}: [baseline, test] for one horizon'
    )
    performance_window_days: int = Field(default=14, ge=1)
    min_live_forecasts: int = Field(default=5, ge=1)
    performance_threshold_pct: float = Field(default=15.0, description="degradation that triggers, %")
    performance_metric: Literal["rmse", "skill", "random_walk"] = Field(
        default="random_walk",
        description="rmse or skill: degradation against the baseline above performance_threshold_pct; random_walk: "
        "the deployed version's matured forecasts significantly worse than the random walk's",
    )
    performance_p_value: float = Field(default=0.05, gt=0, lt=1, description="significance of the random_walk rule")
    min_days_between_optimizations: int = Field(default=14, ge=0)
    performance_override_min_days: int = Field(default=3, ge=0)
    schedule_days: int = Field(default=14, ge=1)
    rollback_consecutive_failures: int = Field(default=3, ge=1, description="failed forecast runs in a row")
    rollback_rmse_ratio: float = Field(default=1.5, gt=0, description="matured RMSE / baseline RMSE")
    rollback_min_matured_forecasts: int = Field(default=5, ge=1, description="before the RMSE rule counts")
    rollback_inference_time_ratio: float = Field(default=3.0, gt=0, description="forecast / baseline seconds")
    rollback_min_inference_excess_seconds: float = Field(
        default=1.0, ge=0, description="and at least this many seconds above the baseline (load is not a fault)"
    )
    rollback_slow_forecasts: int = Field(
        default=3, ge=1, description="... on each of the latest this many forecasts (their fastest is judged)"
    )

    def trigger_policy(self, drift: bool = True, performance: bool = True) -> TriggerPolicy:
        return TriggerPolicy(
            performance_threshold_pct=self.performance_threshold_pct if performance else float("inf"),
            performance_metric=self.performance_metric,
            performance_p_value=self.performance_p_value,
            schedule_days=self.schedule_days,
            min_days_between_optimizations=self.min_days_between_optimizations,
            performance_override_min_days=self.performance_override_min_days,
            drift_enabled=drift,
        )

    def policy_settings(self, approval: ApprovalPolicy | None = None, scheduled_only: bool = False) -> PolicySettings:
        """The policy's settings (``forex_assets.core.policy``); ``scheduled_only``: the weekly fallback's
        rules, where drift and performance do not count."""
        return PolicySettings(
            triggers=self.trigger_policy(drift=not scheduled_only, performance=not scheduled_only),
            drift=DriftThresholds(baseline_window=self.baseline_window, test_window=self.test_window),
            drift_per_horizon={
                h: DriftThresholds(baseline_window=b, test_window=w) for h, (b, w) in self.per_horizon_windows.items()
            },
            performance=PerformancePolicy(
                window_days=self.performance_window_days, min_live_forecasts=self.min_live_forecasts
            ),
            approval=(approval or ApprovalPolicy()).thresholds(),
            rollback=RollbackThresholds(
                consecutive_failures=self.rollback_consecutive_failures,
                inference_time_ratio=self.rollback_inference_time_ratio,
                min_inference_excess_seconds=self.rollback_min_inference_excess_seconds,
                slow_forecasts=self.rollback_slow_forecasts,
                rmse_ratio=self.rollback_rmse_ratio,
                min_matured_forecasts=self.rollback_min_matured_forecasts,
            ),
        )


class ApprovalPolicy(dg.ConfigurableResource):
    """Thresholds of the blocking approval checks on validation_report (docs/decisions.md, Approval criteria)."""

    min_rmse_improvement_pct: float = Field(default=5.0, description="RMSE at least this % lower ...")
    min_mape_improvement_pct: float = Field(default=3.0, description="... or MAPE at least this % lower")
    max_error_std_growth_pct: float = Field(default=10.0, description="error std may grow at most this %")
    max_inference_time_ratio: float = Field(default=1.5, description="candidate / deployed seconds per forecast")
    min_coverage_95: float = Field(default=0.90, description="95 % interval coverage at least")
    max_inference_excess_seconds: float = Field(
        default=1.0, ge=0, description="... unless at most this many seconds slower (load is not a cost)"
    )
    max_abs_bias_clp: float = Field(default=5.0, description="|bias| below this many CLP ...")
    max_bias_growth_pct: float = Field(default=10.0, description="... or at most this % above the deployed config's")
    max_improvement_p_value: float = Field(
        default=0.002,
        gt=0,
        le=1,
        description="one-sided Diebold-Mariano p that the candidate's error is lower (0.05 / ~26 tests a year)",
    )

    def thresholds(self) -> ApprovalThresholds:
        return ApprovalThresholds(**self.model_dump())


class PriceSource(dg.ConfigurableResource):
    """Where usdclp_prices comes from: 'synthetic' (default), 'csv' or 'mindicador'."""

    source: Literal["synthetic", "csv", "mindicador"] = "synthetic"
    synthetic_seed: int = 20260101
    synthetic_start: str = "2014-01-01"
    synthetic_end: str = Field(default="2026-10-30", description="last business day of the synthetic series")
    csv_path: str | None = None
    csv_date_column: str = "date"
    csv_value_column: str = "usdclp"
    csv_delimiter: str = Field(default="auto", description="',', ';', 'tab', '|' or 'auto' (detected)")
    csv_decimal: str = Field(default="auto", description="'.', ',' or 'auto': an ambiguous file is refused")
    csv_thousands: str = Field(default="auto", description="'none', '.', ',', ' ', \"'\" or 'auto'")
    csv_date_format: str = Field(default="auto", description="a strftime format, e.g. '%d-%m-%Y', or 'auto'")
    csv_encoding: str = Field(default="auto", description="a Python codec, e.g. 'latin-1', or 'auto'")
    mindicador_base_url: str = "https://mindicador.cl"
    mindicador_start_year: int = 2014
    mindicador_end_year: int | None = None
    mindicador_cache_dir: str | None = Field(default=None, description="default <working area>/mindicador")
    timeout_s: float = 10.0
    max_retries: int = 3
    backoff_s: float = 1.0
    max_daily_move: float = Field(default=DEFAULT_MAX_DAILY_MOVE, gt=0, description="fraction, 0.15 = 15 %")
    max_gap_business_days: int = Field(default=DEFAULT_MAX_GAP_BUSINESS_DAYS, ge=0)
    min_price: float = Field(default=DEFAULT_MIN_PRICE, gt=0, description="CLP per USD; lower prices fail the contract")
    max_price: float = Field(
        default=DEFAULT_MAX_PRICE, gt=0, description="CLP per USD; higher prices fail the contract"
    )

    def csv_format(self) -> CsvFormat:
        return CsvFormat(
            self.csv_delimiter, self.csv_decimal, self.csv_thousands, self.csv_date_format, self.csv_encoding
        )

    def describe(self) -> str:
        if self.source == "csv":
            return f"csv:{self.csv_path}"
        if self.source == "mindicador":
            return f"mindicador:{self.mindicador_base_url}"
        return f"synthetic:seed={self.synthetic_seed},{self.synthetic_start}..{self.synthetic_end}"

    def fetch(self) -> pd.DataFrame:
        if self.source == "csv":
            if not self.csv_path:
                raise dg.Failure("price source 'csv' needs csv_path")
            return read_price_csv(self.csv_path, self.csv_date_column, self.csv_value_column, self.csv_format())
        if self.source == "mindicador":
            cache = (
                Path(self.mindicador_cache_dir) if self.mindicador_cache_dir else default_working_area() / "mindicador"
            )
            client = MindicadorClient(self.mindicador_base_url, cache, self.timeout_s, self.max_retries, self.backoff_s)
            return client.prices(self.mindicador_start_year, self.mindicador_end_year, today=date.today())
        return synthetic_prices(self.synthetic_seed, self.synthetic_start, self.synthetic_end)

    def load(self) -> pd.DataFrame:
        """Fetch and validate; raises PriceValidationError / PriceSourceError on bad data."""
        rules = PriceRules(self.max_daily_move, self.max_gap_business_days, self.min_price, self.max_price)
        return validate_prices(self.fetch(), rules, source=self.describe())


def code_location_resources(
    working_area: WorkingArea | None = None, price_source: PriceSource | None = None, **overrides
) -> dict:
    """Every resource of the code location, each at its defaults unless given: one list for the
    definitions, `make run`, the tests and the benchmarks."""
    from forex_assets.defs.alerting.resources import AlertNotifier

    return {
        "price_source": price_source or PriceSource(),
        "working_area": working_area or WorkingArea(),
        "approval_policy": ApprovalPolicy(),
        "monitoring_policy": MonitoringPolicy(),
        "alerts": AlertNotifier(),
    } | overrides
