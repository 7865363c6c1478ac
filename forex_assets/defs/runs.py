"""What a run materializes, whichever way it was launched."""

from __future__ import annotations

import dagster as dg


def run_assets(instance: dg.DagsterInstance, run: dg.DagsterRun) -> set[dg.AssetKey]:
    """The assets a run targets: its asset selection (UI, sensors, schedules) or, for in-process runs
    (``materialize()``), the planned materializations it recorded."""
    if run.asset_selection:
        return set(run.asset_selection)
    planned = instance.get_records_for_run(
        run_id=run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    return {r.event_log_entry.dagster_event.asset_key for r in planned}
