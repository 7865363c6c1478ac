"""The approval criteria (docs/decisions.md) as blocking asset checks on validation_report, in ONE step.

Two paths approve a candidate: the decision record's (the median: RMSE or MAPE lower, significantly, 95 %
coverage at least 0.90) and the distribution's (weighted quantile loss lower, significantly, RMSE no worse,
95 % coverage calibrated); error std, inference time and bias are needed by both. A criterion of the path
that did not approve does not block a report the other path approved: its check passes, its description
says "not needed: approved by the ... path". So the deploy's rule stays "every check passed".

One ``@multi_asset_check`` with one ``AssetCheckSpec`` per criterion: each criterion keeps its own check
(same name, one result per horizon partition in the UI, ERROR severity, blocking), but all of them are
evaluated by a single op, so an ``optimization_job`` run has 4 steps instead of 9. With a multiprocess
executor each step was a process that loaded the code location again (7-9 s and about 650 MB RSS each:
bench/results.md, "memory"); in process each step still costs its own events, input load and resource
setup. The criteria are a few comparisons on the report's metrics: nothing gains from running them apart.

Every result is yielded before Dagster fails the step, so a failed criterion never hides the verdict of
the others; a failed blocking check fails the step, and nothing downstream of validation_report
materializes for that partition in the same run. Thresholds come from the ``policy`` resource (the policy
file in force); each check's description is rendered from the default policy's values by the same function
that describes each evaluated criterion (``criterion_rule``), and each result names the policy that judged it.
"""

# no `from __future__ import annotations`: Dagster reads the `context` annotation as a class
import warnings
from collections.abc import Iterator

import dagster as dg

from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.recalibration.validation import (
    CRITERIA_NAMES,
    ApprovalThresholds,
    ValidationMetrics,
    approval_criteria,
    approval_path,
    check_outcome,
    criterion_rule,
)
from forex_assets.defs.partitions import pair_horizon_partitions
from forex_assets.defs.resources import PolicyResource

VALIDATION_REPORT = dg.AssetKey("validation_report")


def check_descriptions(thresholds: ApprovalThresholds) -> dict[str, str]:
    """criterion name -> the check's description, rendered from ``thresholds``."""
    return {name: criterion_rule(name, thresholds) for name in CRITERIA_NAMES}


#: the UI's check descriptions: the default policy's values (each result says the values of the policy in force)
DESCRIPTIONS = check_descriptions(PolicySettings().approval)


# Partitioned asset checks are a Dagster 1.13 preview feature, used on purpose: they give one result per
# horizon in the UI and block the deploy of that horizon only. Exactly that warning is silenced, for the
# whole process that loads the code location (dagster dev, code server, daemon); docs/architecture.md,
# "Preview features in use". pyproject.toml's pytest filterwarnings names the same message.
warnings.filterwarnings(
    "ignore",
    message="Specifying a partitions_def on an AssetCheckSpec is currently in preview",
    category=dg.PreviewWarning,
)

CHECK_SPECS = [
    dg.AssetCheckSpec(
        name,
        asset=VALIDATION_REPORT,
        blocking=True,
        description=DESCRIPTIONS[name] + " (default policy; each result: the policy in force)",
        partitions_def=pair_horizon_partitions,
    )
    for name in CRITERIA_NAMES
]


@dg.multi_asset_check(
    specs=CHECK_SPECS,
    name="approval_checks",
    description="The approval criteria of validation_report (the decision record's path and the "
    "distribution's), evaluated together: one result each.",
    can_subset=True,  # the UI may execute one check alone; only the selected ones are evaluated then
)
def approval_checks_op(
    context: dg.AssetCheckExecutionContext, validation_report: dict, policy: PolicyResource
) -> Iterator[dg.AssetCheckResult]:
    metrics = ValidationMetrics(**validation_report["metrics"])
    selected = {key.name for key in context.selected_asset_check_keys}
    in_force = policy.loaded()
    criteria = approval_criteria(metrics, in_force.settings.approval)
    path = approval_path(criteria, in_force.settings.approval)
    for criterion in criteria:
        if criterion.name not in selected:
            continue
        passed, description = check_outcome(criterion, path)
        yield dg.AssetCheckResult(
            asset_key=VALIDATION_REPORT,
            check_name=criterion.name,
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=description,
            metadata={
                "observed": float(criterion.observed),
                "threshold": float(criterion.threshold),
                "criterion_passed": criterion.passed,
                "path": criterion.path,
                "approved_by": path or "(rejected)",
                "policy": in_force.label(),
            },
        )


#: what the code location and in-process runs register (one definition; a list as before)
approval_checks = [approval_checks_op]
