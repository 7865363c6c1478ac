"""One blocking asset check per approval criterion (docs/decisions.md) on validation_report.

A failed check has ERROR severity, so nothing downstream of validation_report materializes for that
partition in the same run. Thresholds come from the ``approval_policy`` resource.
"""

import warnings

import dagster as dg

from forex_assets.core.recalibration.validation import CRITERIA_NAMES, ValidationMetrics, approval_criteria
from forex_assets.defs.partitions import horizon_partitions
from forex_assets.defs.resources import ApprovalPolicy

DESCRIPTIONS = {
    "accuracy_improves": "RMSE at least 5 % lower or MAPE at least 3 % lower than the deployed config",
    "error_std_stable": "error std (stability) grows at most 10 %",
    "inference_time_bounded": "inference time at most 1.5 x the deployed config's, or at most 50 ms slower",
    "coverage_95_sufficient": "95 % interval coverage at least 0.90",
    "bias_bounded": "|bias| below 5 CLP, or at most 1.1 x the deployed config's",
    "improvement_significant": "the RMSE improvement is significant: one-sided Diebold-Mariano p at most 0.05",
}


# Partitioned asset checks are a Dagster 1.13 preview feature, used on purpose: they give one result per
# horizon in the UI and block the deploy of that horizon only. Exactly that warning is silenced, for the
# whole process that loads the code location (dagster dev, code server, daemon); docs/architecture.md,
# "Preview features in use". pyproject.toml's pytest filterwarnings names the same message.
warnings.filterwarnings(
    "ignore",
    message="Specifying a partitions_def on an AssetCheckSpec is currently in preview",
    category=dg.PreviewWarning,
)


def _criterion_check(name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="validation_report",
        name=name,
        blocking=True,
        description=DESCRIPTIONS[name] + " (defaults; see the approval_policy resource)",
        partitions_def=horizon_partitions,
    )
    def _check(validation_report: dict, approval_policy: ApprovalPolicy) -> dg.AssetCheckResult:
        metrics = ValidationMetrics(**validation_report["metrics"])
        criterion = next(c for c in approval_criteria(metrics, approval_policy.thresholds()) if c.name == name)
        return dg.AssetCheckResult(
            passed=criterion.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=criterion.description,
            metadata={"observed": float(criterion.observed), "threshold": float(criterion.threshold)},
        )

    return _check


approval_checks = [_criterion_check(name) for name in CRITERIA_NAMES]
