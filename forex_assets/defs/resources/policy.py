"""The policy resources: monitoring, trigger, rollback and approval thresholds."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from forex_assets.core.deployment.rollback_rules import RollbackThresholds
from forex_assets.core.monitoring.drift import DriftThresholds
from forex_assets.core.monitoring.performance import PerformancePolicy
from forex_assets.core.monitoring.triggers import TriggerPolicy
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.recalibration.validation import ApprovalThresholds


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
