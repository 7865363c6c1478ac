"""Did every blocking check of the latest validation_report of a horizon pass? (reads the instance)"""

from __future__ import annotations

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter

from forex_assets.core.recalibration.validation import CRITERIA_NAMES

VALIDATION_REPORT = dg.AssetKey("validation_report")


def failed_approval_checks(instance: dg.DagsterInstance, horizon: str) -> list[str]:
    """Names of the approval checks that did not pass for the latest validation_report[horizon].

    A check that has not run on that materialization counts as not passed ("... (not run)").
    """
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=VALIDATION_REPORT, asset_partitions=[horizon]), limit=1
    ).records
    if not records:
        return [f"{name} (validation_report {horizon} never materialized)" for name in CRITERIA_NAMES]
    report_run = records[0].run_id
    failed = []
    for name in CRITERIA_NAMES:
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(VALIDATION_REPORT, name), limit=1, partition_filter=PartitionKeyFilter(key=horizon)
        )
        if not history or history[0].run_id != report_run:
            failed.append(f"{name} (not run on the latest report)")
            continue
        evaluation = history[0].event.dagster_event.event_specific_data if history[0].event else None
        if evaluation is None or not evaluation.passed:
            failed.append(name)
    return failed
