"""What `forex-assets run` does around its in-process runs: says on the terminal when a step waits (for a
retry, for a pool slot), stops on Ctrl-C and SIGTERM whatever it is doing, and frees what dead runs hold.

Why it is needed: ``dg.materialize`` runs the steps in this process with Dagster's in-process executor,
which, for the whole run, replaces the SIGINT and SIGTERM handlers by one that only sets a flag, and checks
that flag only when a step's own code starts. While a step waits for a slot of the ``optimizer`` pool
(polling in a tight loop) or for its retry delay (a plain ``time.sleep`` of up to minutes), nothing checks
it: Ctrl-C and SIGTERM were ignored, for ever when the slot's holder had been killed. And the console
logger is quiet (the summary reports failures), so a retry or a wait said nothing at all.

:class:`RunGuard`, for the duration of the cycle:

- runs :func:`forex_assets.defs.dead_runs.sweep_dead_runs` at start-up, and again every few seconds while a
  step waits for a pool, so a slot held by a killed run is given back;
- before a run that needs a pool, waits in this process until the pool has a free slot (:meth:`wait_for_pool`),
  saying who holds it; sleeping, interruptible, instead of in Dagster's busy loop;
- a watcher thread reads the run's events and prints one line per step retry and one per pool wait
  (:func:`retry_line`, :func:`pool_wait_line`), and nothing else;
- Ctrl-C or SIGTERM: outside a run, or while a step's code runs, the run ends as Dagster ends it (the step
  is interrupted, the run fails) and the cycle stops (:func:`checkpoint`). While a step waits (a pool slot,
  a retry delay), or when the run has not ended 20 s after the signal, or at a second signal, the watcher
  ends it from outside: the run is marked canceled, its pool claims are freed, and the process exits with
  status 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM).

The watcher learns of a signal through ``signal.set_wakeup_fd`` (Python writes the signal number to a pipe
whatever handler is installed), so it sees the signals Dagster's handler swallows.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping

import click
import dagster as dg

from forex_assets.core.error_text import describe_error
from forex_assets.core.run_owner import owner_tags
from forex_assets.defs.dead_runs import UNFINISHED, pool_holders, pool_limit, run_label, sweep_dead_runs
from forex_assets.defs.partitions import partition_label

#: After a signal, how long a step's code may take to stop before the run is ended from outside.
STOP_GRACE_S = 20.0
#: How often the watcher reads the run's events, and the pre-run pool wait checks the pool.
POLL_S = 1.0
POOL_POLL_S = 2.0
#: While a step waits for a pool inside a run: how often the holders are checked for dead ones.
SWEEP_WHILE_WAITING_S = 5.0

_WATCHED = {dg.DagsterEventType.STEP_UP_FOR_RETRY, dg.DagsterEventType.ENGINE_EVENT}
_RESUMED = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_RESTARTED}

_active: RunGuard | None = None


class Stopped(BaseException):
    """Ctrl-C or SIGTERM: the cycle stops (a BaseException, so that no ``except Exception`` swallows it)."""

    def __init__(self, signum: int, detail: str = ""):
        super().__init__(signum)
        self.signum = signum
        self.detail = detail

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


@functools.cache
def own_tags() -> dict[str, str]:
    """Owner tags naming this process (``forex_assets.core.run_owner``), put on every run it executes."""
    return owner_tags()


def _clock(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")


def retry_line(step: str, error, attempt: int, max_retries: int | None, at: float, wait_s: float) -> str:
    """``pair_prices: <what failed>; retry 1 of 3 at 14:02:11 (in 42 s)``"""
    what = describe_error(error).splitlines()[0] if error is not None else "failed"
    what = what if len(what) <= 240 else what[:237] + "..."
    of = f" of {max_retries}" if max_retries else ""
    return f"{step}: {what}; retry {attempt}{of} at {_clock(at)} (in {wait_s:.0f} s)"


def pool_wait_line(pool: str, holders) -> str:
    """``waiting for pool optimizer, held by run <id> (step candidate_config, started 14:01, pid 123)``"""
    if not holders:
        return f"waiting for pool {pool}"
    return f"waiting for pool {pool}, held by {', '.join(h.describe() for h in holders)}"


def checkpoint() -> None:
    """Between two runs of the cycle: raise :class:`Stopped` when a signal came during the last one."""
    if _active is not None:
        _active.raise_if_stopped()


def wait_for_pools(pools: list[str]) -> None:
    """Before a run that needs ``pools``: wait for a free slot of each (no-op outside ``forex-assets run``)."""
    if _active is not None:
        for pool in pools:
            _active.wait_for_pool(pool)


class RunGuard:
    """Context manager around the cycle (module docstring). ``max_retries``: step key -> the step's
    retry policy's ``max_retries``, for "retry 1 of 3"."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        max_retries: Mapping[str, int] | None = None,
        echo: Callable[[str], None] = click.echo,
    ):
        self.instance = instance
        self.max_retries = dict(max_retries or {})
        self.echo = echo
        self._signals: list[tuple[int, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # --- main thread -----------------------------------------------------------------------------------

    def __enter__(self) -> RunGuard:
        global _active
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("RunGuard handles signals: enter it in the main thread")
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        os.set_blocking(self._read_fd, False)
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._previous_handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self._thread = threading.Thread(target=self._watch, name="forex-run-guard", daemon=True)
        self._thread.start()
        _active = self
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        global _active
        _active = None
        self._stop.set()
        self._thread.join(timeout=10)
        signal.set_wakeup_fd(self._previous_wakeup)
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        os.close(self._read_fd)
        os.close(self._write_fd)
        if isinstance(exc, Stopped):
            ended = self._end_own_runs(self.instance, f"stopped by {exc.name}")
            if ended:
                exc.detail = f"; run {', '.join(ended)} marked canceled, its pool claims freed"

    def _on_signal(self, signum: int, _frame) -> None:
        raise Stopped(signum)

    def raise_if_stopped(self) -> None:
        self._drain_signals()
        with self._lock:
            signals = list(self._signals)
        if signals:
            raise Stopped(signals[0][0])

    def sweep(self, instance: dg.DagsterInstance | None = None) -> None:
        for line in sweep_dead_runs(instance or self.instance).lines():
            self.echo(line)

    def wait_for_pool(self, pool: str) -> None:
        """Until ``pool`` has a free slot; says once per set of holders who holds it. Interruptible."""
        announced = None
        while True:
            self.sweep()
            limit = pool_limit(self.instance, pool)
            holders = pool_holders(self.instance, pool)
            if limit is None or len(holders) < limit:
                return
            key = sorted(h.claim.run_id for h in holders)
            if key != announced:
                self.echo(pool_wait_line(pool, holders))
                announced = key
            time.sleep(POOL_POLL_S)

    # --- watcher thread ----------------------------------------------------------------------------------

    def _own_unfinished_runs(self, instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
        # pid, host and process start: an older dead run whose pid this process reuses is not this process's
        records = instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED, tags=dict(own_tags())))
        return [r.dagster_run for r in records]

    def _end_own_runs(self, instance: dg.DagsterInstance, why: str) -> list[str]:
        """Mark this process's unfinished runs canceled and free their claims; their ids."""
        ended = []
        for run in self._own_unfinished_runs(instance):
            instance.report_run_canceled(run, message=f"forex-assets run {why}; its pool claims were freed")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            ended.append(run.run_id)
        return ended

    def _watch(self) -> None:
        with dg.DagsterInstance.from_ref(self.instance.get_ref()) as instance:
            state = _WatchState()
            while True:
                last_pass = self._stop.is_set()  # one more pass after the cycle: a retry of its last run
                if not last_pass:
                    select.select([self._read_fd], [], [], POLL_S)
                    self._drain_signals()
                try:
                    runs = self._watch_runs(instance, state)
                    if last_pass:
                        return
                    if state.waiting_for_pool() and time.monotonic() - state.last_sweep > SWEEP_WHILE_WAITING_S:
                        state.last_sweep = time.monotonic()
                        self.sweep(instance)
                    self._maybe_stop(instance, runs, state)
                except Exception as error:  # the watcher must never take the cycle down
                    if not state.warned:
                        state.warned = True
                        print(f"forex-assets run: the run watcher failed: {error!r}", file=sys.stderr, flush=True)
                    if last_pass:
                        return

    def _watch_runs(self, instance: dg.DagsterInstance, state: _WatchState) -> list[dg.DagsterRun]:
        """Narrate the new events of this process's runs since the guard began; its unfinished runs."""
        records = instance.get_run_records(dg.RunsFilter(tags=dict(own_tags()), created_after=state.began))
        unfinished = []
        for record in records:
            run = record.dagster_run
            if run.run_id in state.done:
                continue
            self._narrate(instance, run, state)
            if run.is_finished:  # its events were all stored before it finished: read to the end
                state.done.add(run.run_id)
            else:
                unfinished.append(run)
        return unfinished

    def _drain_signals(self) -> None:
        """Note the signals Python wrote to the wakeup pipe (whichever handler was installed)."""
        with self._lock:
            try:
                data = os.read(self._read_fd, 64)
            except BlockingIOError:
                return
            for signum in data:
                if signum in (signal.SIGINT, signal.SIGTERM):
                    self._signals.append((signum, time.monotonic()))

    def _narrate(self, instance: dg.DagsterInstance, run: dg.DagsterRun, state: _WatchState) -> None:
        result = instance.get_records_for_run(
            run.run_id, cursor=state.cursors.get(run.run_id), of_type=_WATCHED | _RESUMED
        )
        state.cursors[run.run_id] = result.cursor
        label = partition_label(run.tags.get("dagster/partition"))
        for record in result.records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None:  # not a Dagster event: none of the types asked for
                continue
            step = event.step_key or "run"
            name = f"{step} {label}" if label else step
            if event.event_type in _RESUMED:
                state.waiting.pop((run.run_id, step), None)
            elif event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY:
                data = event.step_retry_data
                attempt = state.retries[(run.run_id, step)] = state.retries.get((run.run_id, step), 0) + 1
                wait_s = float(data.seconds_to_wait or 0)
                error = data.error.cause if data.error is not None and data.error.cause is not None else data.error
                state.waiting[(run.run_id, step)] = "waiting for its retry"
                if error is not None and error.cls_name == "DagsterExecutionInterruptedError":
                    continue  # the step was stopped by Ctrl-C or SIGTERM: the stop is said, not a retry
                self.echo(
                    retry_line(name, error, attempt, self.max_retries.get(step), entry.timestamp + wait_s, wait_s)
                )
            elif (event.message or "").startswith("Step blocked by limit for pool"):
                pool = str(event.engine_event_data.metadata["pool"].value)
                state.waiting[(run.run_id, step)] = f"waiting for pool {pool}"
                self.echo(pool_wait_line(pool, pool_holders(instance, pool, exclude_run=run.run_id)))

    def _maybe_stop(self, instance: dg.DagsterInstance, runs: list[dg.DagsterRun], state: _WatchState) -> None:
        with self._lock:
            signals = list(self._signals)
        if not signals or not runs:
            return  # no signal, or no run in progress: the main thread's handler stops the cycle
        own = {r.run_id for r in runs}
        waits = [what for (run_id, _), what in state.waiting.items() if run_id in own]
        late = time.monotonic() - signals[0][1] > STOP_GRACE_S
        if not (waits or late or len(signals) > 1):
            return  # a step's code runs: Dagster interrupts it, the run fails, checkpoint() stops the cycle
        signum = signals[-1][0]
        doing = waits[0] if waits else f"the run had not stopped {STOP_GRACE_S:g} s after the signal"
        ended = self._end_own_runs(instance, f"stopped by {signal.Signals(signum).name} ({doing})")
        print(
            f"forex-assets run: stopped by {signal.Signals(signum).name} ({doing}); run "
            f"{', '.join(f'{r.run_id} ({run_label(instance, r)})' for r in runs if r.run_id in ended)} marked "
            "canceled, its pool claims freed",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        os._exit(128 + signum)


class _WatchState:
    def __init__(self):
        self.cursors: dict[str, str | None] = {}
        self.retries: dict[tuple[str, str], int] = {}
        #: (run id, step key) -> what the step waits for
        self.waiting: dict[tuple[str, str], str] = {}
        self.last_sweep = 0.0
        self.warned = False
        self.done: set[str] = set()
        self.began = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)

    def waiting_for_pool(self) -> bool:
        return any(what.startswith("waiting for pool") for what in self.waiting.values())
