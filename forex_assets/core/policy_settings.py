"""Every threshold of the recalibration policy as one typed object: triggers, drift windows, performance
scoring, approval, rollback and the FX levers (``core/policy_file.py`` reads it from a policy file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from forex_assets.core.deployment.rollback_rules import RollbackThresholds
from forex_assets.core.monitoring.drift import DriftThresholds
from forex_assets.core.monitoring.performance import PerformancePolicy
from forex_assets.core.monitoring.triggers import TriggerPolicy
from forex_assets.core.recalibration.levers import LeverSettings
from forex_assets.core.recalibration.validation import ApprovalThresholds


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
