"""Did every blocking check of the latest validation_report of a horizon pass? (reads the instance)"""

from __future__ import annotations

import dagster as dg

from forex_assets.core.recalibration.validation import CRITERIA_NAMES

VALIDATION_REPORT = dg.AssetKey("validation_report")


def failed_approval_checks(instance: dg.DagsterInstance, partition: str) -> list[str]:
    """Names of the approval checks that did not pass for the latest validation_report[partition] (one pair's
    horizon: ``7d|USDCLP``).

    The checks that count are the ones evaluated in the run that materialized that report, on its
    partition. A check that has not run there counts as not passed ("... (not run)").
    """
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=VALIDATION_REPORT, asset_partitions=[str(partition)]), limit=1
    ).records
    if not records:
        return [f"{name} (validation_report {partition} never materialized)" for name in CRITERIA_NAMES]
    passed: dict[str, bool] = {}
    for entry in instance.all_logs(records[0].run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.asset_check_evaluation
        if evaluation and evaluation.asset_key == VALIDATION_REPORT and evaluation.partition == str(partition):
            passed[evaluation.check_name] = evaluation.passed  # in log order: the last evaluation wins
    return [
        name if name in passed else f"{name} (not run on the latest report)"
        for name in CRITERIA_NAMES
        if not passed.get(name, False)
    ]
