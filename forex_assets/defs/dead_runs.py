"""Runs whose process is gone, and the pool slots they still claim: found, marked failed, freed.

A step of the ``optimizer`` pool claims a slot in the instance and gives it back when it ends. A process
killed in the middle (SIGKILL, an OOM kill, a lost node) gives nothing back: its run stays STARTED and its
slot stays claimed, and every later search or validation waits for that slot for ever. :func:`sweep_dead_runs`
repairs that, with the instance's public API only:

- an in-progress run carrying owner tags (``forex_assets.core.run_owner``: the runs ``forex-assets run``
  executes in its own process) whose process is gone is marked failed (``report_run_failed``) with a
  message naming the process, and its claims are freed (``free_concurrency_slots_for_run``);
- a claim (or a queued claim) of a run that has finished, or no longer exists, is freed: nothing will ever
  give it back (every job of the code location runs in one process, ``defs/runs.py``: a finished run
  has no step left running).

Runs without owner tags (launched by the daemon or the UI) are run monitoring's business
(``run_monitoring`` in ``deploy/dagster.yaml``: a run worker whose container is gone is marked failed);
a run of another host is left alone (nothing here can tell whether it lives).

Who sweeps: ``forex-assets run`` at start-up and while it waits for a pool (``cli/run_guard.py``), and
:data:`dead_run_sensor` every 60 s wherever the daemon runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import dagster as dg

from forex_assets.core.run_owner import OWNER_HOST_TAG, OWNER_PID_TAG, OwnerState, owner_state
from forex_assets.defs.partitions import partition_label
from forex_assets.defs.runs import run_assets

#: Statuses of a run that has not ended; a run in one of them whose owner is gone never will.
UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class Claim:
    """A pool slot claimed by a step of a run, or (``pending``) a step queued for one."""

    pool: str
    run_id: str
    step_key: str
    pending: bool = False


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    label: str  # "forecast 30d", "__ephemeral_asset_job__ 7d", ...
    started: float | None
    why: str  # owner_state's reason: "no process has pid 123 on host any more"
    freed: tuple[Claim, ...]


@dataclass
class Sweep:
    dead_runs: list[DeadRun] = field(default_factory=list)
    #: claims of runs that had already finished (or no longer exist), freed
    orphan_claims: list[tuple[Claim, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per repair, for the terminal or a sensor's skip reason."""
        out = []
        for dead in self.dead_runs:
            held = sorted({(c.pool, c.step_key) for c in dead.freed})
            freed = "; freed its claim on " + ", ".join(f"pool {pool} (step {step})" for pool, step in held)
            out.append(
                f"run {dead.run_id} ({dead.label}, started {_clock(dead.started)}) was left unfinished by a "
                f"process that is gone ({dead.why}): marked failed{freed if dead.freed else ''}"
            )
        for claim, status in self.orphan_claims:
            out.append(
                f"freed the claim on pool {claim.pool} of step {claim.step_key} of run {claim.run_id} ({status})"
            )
        return out


def _clock(timestamp: float | None) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "never"


def run_label(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """What the run materializes, and its partition: "candidate_config, deployed_config, ... 7d"."""
    assets = sorted(key.to_user_string() for key in run_assets(instance, run))
    what = ", ".join(assets) if assets else run.job_name
    partition = partition_label(run.tags.get("dagster/partition"))
    return f"{what} {partition}" if partition else what


def claims(instance: dg.DagsterInstance, pools: list[str] | None = None) -> list[Claim]:
    """Every claimed and queued slot of ``pools`` (default: every pool the instance knows)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    keys = sorted(storage.get_concurrency_keys()) if pools is None else pools
    out = []
    for key, info in storage.get_concurrency_infos(keys).items():
        out += [Claim(key, slot.run_id, slot.step_key) for slot in info.claimed_slots]
        queued = [step for step in info.pending_steps if step.assigned_timestamp is None]  # not yet given a slot
        out += [Claim(key, step.run_id, step.step_key, pending=True) for step in queued]
    return out


def started_by_a_cli_process(run: dg.DagsterRun) -> bool:
    """Whether the owner tags of ``run`` name the process that executes it: a run a `forex-assets` command
    executes in process. A run launched through a code location (the daemon, the UI, a re-execution from the
    UI, which copies its parent's tags and so the dead CLI's pid) runs elsewhere: run monitoring watches it."""
    return run.remote_job_origin is None and run.parent_run_id is None


def sweep_dead_runs(instance: dg.DagsterInstance, host: str | None = None) -> Sweep:
    """Mark failed the unfinished runs whose owner process is gone, and free every claim nothing will give
    back (module docstring). Idempotent; safe next to live runs, the sweeper's own included."""
    sweep = Sweep()
    all_claims = claims(instance)
    by_run: dict[str, list[Claim]] = {}
    for claim in all_claims:
        by_run.setdefault(claim.run_id, []).append(claim)
    for record in instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED)):
        run = record.dagster_run
        if not started_by_a_cli_process(run):
            continue
        state, why = owner_state(run.tags, host)
        if state is not OwnerState.GONE:
            continue
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.is_finished:  # finished meanwhile (a concurrent sweep)
            continue
        freed = tuple(by_run.pop(run.run_id, []))
        instance.report_run_failed(
            current,
            message=f"forex_assets: the process that ran this run is gone ({why}: killed, out of memory, or its "
            f"machine was lost); marked failed by the dead-run sweep"
            + (f", its claim on pool {', '.join(sorted({c.pool for c in freed}))} freed" if freed else ""),
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        sweep.dead_runs.append(DeadRun(run.run_id, run_label(instance, run), record.start_time, why, freed))
    for run_id, run_claims in by_run.items():
        claiming = instance.get_run_by_id(run_id)
        if claiming is not None and not claiming.is_finished:
            continue
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        status = "no such run" if claiming is None else f"the run ended {claiming.status.value}"
        sweep.orphan_claims += [(claim, status) for claim in run_claims if not claim.pending]
    return sweep


@dataclass(frozen=True)
class Holder:
    """A run holding a slot of a pool, as the terminal names it."""

    claim: Claim
    started: float | None
    pid: str | None
    host: str | None

    def describe(self) -> str:
        started = dt.datetime.fromtimestamp(self.started).strftime("%H:%M") if self.started else "not yet"
        owner = f", pid {self.pid}" + (f" on {self.host}" if self.host else "") if self.pid else ""
        return f"run {self.claim.run_id} (step {self.claim.step_key}, started {started}{owner})"


def pool_holders(instance: dg.DagsterInstance, pool: str, exclude_run: str | None = None) -> list[Holder]:
    """The runs (other than ``exclude_run``) holding a slot of ``pool`` now."""
    out = []
    for claim in claims(instance, [pool]):
        if claim.pending or claim.run_id == exclude_run:
            continue
        record = instance.get_run_record_by_id(claim.run_id)
        tags = record.dagster_run.tags if record else {}
        out.append(
            Holder(claim, record.start_time if record else None, tags.get(OWNER_PID_TAG), tags.get(OWNER_HOST_TAG))
        )
    return out


def pool_limit(instance: dg.DagsterInstance, pool: str) -> int | None:
    """The slot limit of ``pool`` (its own, else the instance's default), None when the pool is not limited."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return None
    info = storage.get_concurrency_info(pool)
    if info.slot_count or not info.using_default_limit:
        return info.limit
    return instance.global_op_concurrency_default_limit


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks failed the runs whose process is gone (a `forex-assets run` killed by SIGKILL, out of "
    "memory or with its machine) and frees the pool slots nothing will give back, so that the next search "
    "does not wait for them for ever.",
)
def dead_run_sensor(context: dg.SensorEvaluationContext):
    lines = sweep_dead_runs(context.instance).lines()
    for line in lines:
        context.log.warning(line)
    return dg.SkipReason("; ".join(lines) if lines else "no dead run, no orphaned pool claim")
