"""How runs of this code location execute, and what a run materializes, whichever way it was launched."""

from __future__ import annotations

import dagster as dg

#: The executor of every run of this code location: all steps in the run worker's process, one after the
#: other. A run container (DockerRunLauncher, K8sRunLauncher) then holds one Python process with torch and
#: the code location loaded once, instead of the run worker plus one subprocess per step that each import
#: them again (Dagster's default, the multiprocess executor). Every job here is a chain (optimization_job:
#: candidate -> validation -> its checks -> deploy) or a single asset or op, so a second process could never
#: run anything at the same time as the first; parallelism comes from separate runs (one per horizon and
#: partition), which the run coordinator's limits and the "optimizer" pool already govern. What a step
#: subprocess would have isolated (a crash or an OOM kill of one step) fails the run either way: a run worker
#: killed in its container is marked failed by run monitoring (deploy/dagster.yaml), which frees the pool
#: slots it held 60 s later; a `forex-assets run` process killed mid-step is found by the dead-run sweep
#: (defs/dead_runs.py). A finished run has no step left running, so its slots can be freed at once.
#: bench/results.md, "memory" section: measured in a 1 GiB memory cgroup.
RUN_EXECUTOR = dg.in_process_executor


def run_assets(instance: dg.DagsterInstance, run: dg.DagsterRun) -> set[dg.AssetKey]:
    """The assets a run targets: its asset selection (UI, sensors, schedules) or, for in-process runs
    (``materialize()``), the planned materializations it recorded."""
    if run.asset_selection:
        return set(run.asset_selection)
    planned = instance.get_records_for_run(
        run_id=run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    events = [r.event_log_entry.dagster_event for r in planned]
    return {e.asset_key for e in events if e is not None and e.asset_key is not None}
