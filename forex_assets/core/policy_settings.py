"""Every threshold of the recalibration policy as one typed object: triggers, drift windows, performance
scoring, approval, rollback and the FX levers.

The dataclass defaults are the one declaration of every value. ``core/policy_file.py`` reads a policy from a
file (``policies/default.json``: every field at its default); production, ``forex-assets run`` and the replay
all use that reader, and the UI's descriptions are rendered from these values, never typed again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from forex_assets.core.deployment.rollback_rules import RollbackThresholds
from forex_assets.core.monitoring.thresholds import DriftThresholds, PerformancePolicy
from forex_assets.core.monitoring.triggers import TriggerPolicy
from forex_assets.core.recalibration.thresholds import ApprovalThresholds, LeverSettings


@dataclass(frozen=True)
class PolicySettings:
    """Every threshold of the policy: triggers, drift windows, performance scoring, approval, rollback."""

    triggers: TriggerPolicy = TriggerPolicy()
    drift: DriftThresholds = DriftThresholds()
    drift_per_horizon: Mapping[str, DriftThresholds] = field(default_factory=dict)
    performance: PerformancePolicy = PerformancePolicy()
    approval: ApprovalThresholds = ApprovalThresholds()
    rollback: RollbackThresholds = RollbackThresholds()
    # the FX levers fitted after the search; None = what each horizon's search-space file says
    levers: LeverSettings | None = None

    def drift_thresholds(self, horizon: str) -> DriftThresholds:
        return self.drift_per_horizon.get(horizon, self.drift)

    def scheduled_only(self) -> PolicySettings:
        """The weekly fallback's rules: the same policy where drift and performance do not count, so only the
        schedule (and its guard) can launch an optimization."""
        triggers = replace(self.triggers, drift_enabled=False, performance_threshold_pct=float("inf"))
        return replace(self, triggers=triggers)
