"""A run whose process is gone (SIGKILL, an OOM kill, a lost node) must not hold the optimizer pool for ever
(issue 21, item 1): the dead-run sweep (``forex_assets/defs/dead_runs.py``) marks it failed and frees its
claim; ``forex-assets run`` sweeps at start-up, says on the terminal when it waits for the pool, and stops on
SIGTERM while it waits.

Real parts throughout: processes that materialize in a temp ``$DAGSTER_HOME`` (SQLite instance of the
repo's dagster.yaml) and are killed for real, the sweep through the instance's API, and, at the end, the
operator's story through the ``forex-assets`` command itself.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from forex_assets.core.run_owner import (
    OWNER_HOST_TAG,
    OWNER_PID_TAG,
    OWNER_START_TAG,
    OwnerState,
    owner_state,
    owner_tags,
    process_start_stamp,
)
from forex_assets.core.working_area import PROJECT_ROOT
from forex_assets.defs.dead_runs import UNFINISHED, claims, dead_run_sensor, sweep_dead_runs

CLI = str(Path(sys.executable).parent / "forex-assets")

#: A process that materializes a one-step asset in the "optimizer" pool, tagged as its owner, and stays in
#: the step (holding the slot) until killed. "claimed" on stdout once the step runs.
HOLDER = """
import sys, time
import dagster as dg
from forex_assets.core.run_owner import owner_tags

@dg.asset(pool="optimizer")
def search():
    print("claimed", flush=True)
    time.sleep(600)

with dg.DagsterInstance.get() as instance:
    dg.materialize([search], instance=instance, tags=owner_tags())
"""


def _home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME with the repo's dagster.yaml, its instance created once (before any process races)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    dg.DagsterInstance.from_config(str(home)).dispose()
    return home


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FOREX_ASSETS_HOME", "FOREX_CONFIG_STORE_DIR")}
    return env | {"DAGSTER_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def _holder(home: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER], env=_env(home), stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout.readline().strip() == "claimed"
    return process


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    return records[-1].event_log_entry.message


# --- whose process is it ---------------------------------------------------------------------------------


def test_a_running_process_is_alive_and_a_reaped_one_is_gone():
    assert owner_state(owner_tags())[0] is OwnerState.ALIVE
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    tags = owner_tags(child.pid)
    assert owner_state(tags)[0] is OwnerState.ALIVE
    child.kill()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped: a zombie is gone too
    assert owner_state(tags) == (OwnerState.GONE, f"no process has pid {child.pid} on {socket.gethostname()} any more")
    child.wait()
    assert owner_state(tags)[0] is OwnerState.GONE


def test_a_reused_pid_or_a_reboot_is_not_mistaken_for_the_owner():
    if not process_start_stamp(os.getpid()):
        pytest.skip("no /proc: the pid alone is checked")
    boot, ticks = process_start_stamp(os.getpid()).split(":")
    reused = owner_tags() | {OWNER_START_TAG: f"{boot}:{int(ticks) - 1}"}  # same pid, another process
    assert owner_state(reused) == (
        OwnerState.GONE,
        f"pid {os.getpid()} on {socket.gethostname()} is another process now (it started at another time)",
    )
    rebooted = owner_tags() | {OWNER_START_TAG: f"another-boot:{ticks}"}
    assert owner_state(rebooted)[0] is OwnerState.GONE
    assert "was restarted" in owner_state(rebooted)[1]


def test_runs_without_owner_tags_or_of_another_host_are_left_alone():
    assert owner_state({})[0] is OwnerState.UNKNOWN  # launched by the daemon or the UI: run monitoring's
    elsewhere = owner_tags() | {OWNER_HOST_TAG: "another-host"}
    assert owner_state(elsewhere) == (
        OwnerState.UNKNOWN,
        f"its owner, pid {os.getpid()}, runs on host another-host, not on this host ({socket.gethostname()})",
    )


# --- the sweep, on a real instance with really killed processes ------------------------------------------


def test_the_sweep_frees_a_dead_runs_slot_so_that_a_waiting_run_goes_on(tmp_path):
    """The holder is SIGKILLed in its step; a second process blocks on the pool; the sweep marks the first
    failed (with a message naming its pid) and frees its slot; the second one gets the slot."""
    home = _home(tmp_path)
    holder = _holder(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [held] = claims(instance, ["optimizer"])
        _kill(holder)
        waiter = subprocess.Popen(
            [sys.executable, "-c", HOLDER], env=_env(home), stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 60
            while not any(c.pending and c.run_id != held.run_id for c in claims(instance, ["optimizer"])):
                assert time.monotonic() < deadline, "the second process never queued for the slot"
                time.sleep(0.2)
            assert instance.get_run_by_id(held.run_id).status == dg.DagsterRunStatus.STARTED  # what the issue saw

            sweep = sweep_dead_runs(instance)

            assert [d.run_id for d in sweep.dead_runs] == [held.run_id]
            [line] = sweep.lines()
            assert line.startswith(f"run {held.run_id} (search, started ")
            assert line.endswith(
                f"was left unfinished by a process that is gone (no process has pid {holder.pid} on "
                f"{socket.gethostname()} any more): marked failed; freed its claim on pool optimizer (step search)"
            )
            assert instance.get_run_by_id(held.run_id).status == dg.DagsterRunStatus.FAILURE
            assert _failure_message(instance, held.run_id).startswith(
                f"forex_assets: the process that ran this run is gone (no process has pid {holder.pid} on "
            )
            assert waiter.stdout.readline().strip() == "claimed"  # the slot went to the waiting run
            [now] = [c for c in claims(instance, ["optimizer"]) if not c.pending]
            assert now.run_id != held.run_id
            assert sweep_dead_runs(instance).lines() == []  # the live waiter is not touched
        finally:
            _kill(waiter)


def test_a_re_execution_carrying_a_dead_clis_owner_tags_is_left_alone(tmp_path):
    """The UI's re-execution of a `forex-assets run` run copies its parent's tags, the dead CLI's pid among
    them; it runs in the daemon's run worker, so the sweep must not mark it failed (the original run must)."""
    home = _home(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    tags = owner_tags(gone.pid)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        parent = instance.add_run(dg.DagsterRun(job_name="search", status=dg.DagsterRunStatus.STARTED, tags=tags))
        child = instance.add_run(
            dg.DagsterRun(
                job_name="search",
                status=dg.DagsterRunStatus.STARTED,
                tags=tags,
                parent_run_id=parent.run_id,
                root_run_id=parent.run_id,
            )
        )
        sweep = sweep_dead_runs(instance)
        assert [d.run_id for d in sweep.dead_runs] == [parent.run_id]
        assert instance.get_run_by_id(child.run_id).status == dg.DagsterRunStatus.STARTED


def test_a_claim_of_a_run_that_has_ended_is_freed(tmp_path):
    home = _home(tmp_path)

    @dg.asset
    def quick():
        return 1

    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_id = dg.materialize([quick], instance=instance).run_id
        instance.event_log_storage.set_concurrency_slots("optimizer", 1)
        # a slot the run never gave back (a run worker killed after its failure was recorded, say)
        assert instance.event_log_storage.claim_concurrency_slot("optimizer", run_id, "quick").is_claimed

        assert sweep_dead_runs(instance).lines() == [
            f"freed the claim on pool optimizer of step quick of run {run_id} (the run ended SUCCESS)"
        ]
        assert claims(instance, ["optimizer"]) == []


def test_the_dead_run_sensor_sweeps_where_the_daemon_runs(tmp_path):
    from forex_assets.definitions import defs

    sensor = {s.name: s for s in defs.sensors}["dead_run_sensor"]
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    home = _home(tmp_path)
    holder = _holder(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [held] = claims(instance, ["optimizer"])
        _kill(holder)

        result = dead_run_sensor(dg.build_sensor_context(instance=instance))

        assert re.fullmatch(
            rf"run {held.run_id} \(search, started [0-9: -]+\) was left unfinished by a process that is gone .*"
            r"marked failed; freed its claim on pool optimizer \(step search\)",
            result.skip_message,
        )
        assert claims(instance, ["optimizer"]) == []
        assert instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED)) == []
        again = dead_run_sensor(dg.build_sensor_context(instance=instance))
        assert again.skip_message == "no dead run, no orphaned pool claim"


# --- the operator's story, through `forex-assets run` ----------------------------------------------------


def _start_cli(home: Path, out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [CLI, "run", *args],
        env=_env(home),
        cwd=PROJECT_ROOT,
        stdout=out.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for(predicate, what: str, timeout: float, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process ended first (status {process.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.5)


def test_a_killed_run_does_not_hold_the_pool_and_a_waiting_run_says_so_and_stops_on_sigterm(tmp_path):
    """Issue 21, item 1, as the operator met it: `forex-assets run` killed (SIGKILL) during the 7d search;
    meanwhile a second `forex-assets run` waits for the optimizer pool (and says who holds it) and is stopped
    with SIGTERM; then `forex-assets run --horizons 15d` frees the dead run's slot and completes."""
    home = _home(tmp_path)
    first = _start_cli(home, tmp_path / "first.txt", "--horizons", "7d")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        try:
            held = _wait_for(
                lambda: [c for c in claims(instance, ["optimizer"]) if not c.pending], "the 7d search", 300, first
            )[0]
            killed = instance.get_run_by_id(held.run_id)
            assert killed.tags[OWNER_PID_TAG] == str(first.pid)  # the run names its process
            os.kill(first.pid, signal.SIGSTOP)  # holds the slot, alive, while the second run comes

            second_out = tmp_path / "second.txt"
            second = _start_cli(home, second_out, "--horizons", "30d")
            line = _wait_for(
                lambda: re.search(r"^waiting for pool optimizer, held by .*$", second_out.read_text(), re.M),
                "the second run's pool wait",
                240,
                second,
            ).group(0)
            assert re.fullmatch(
                rf"waiting for pool optimizer, held by run {held.run_id} \(step candidate_config, started "
                rf"\d\d:\d\d, pid {first.pid} on {re.escape(socket.gethostname())}\)",
                line,
            )
            asked = time.monotonic()
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 143, second_out.read_text()
            assert time.monotonic() - asked < 10
            assert "forex-assets run: stopped by SIGTERM" in second_out.read_text()
            mine = dg.RunsFilter(statuses=UNFINISHED, tags={OWNER_PID_TAG: str(second.pid)})
            assert instance.get_run_records(mine) == []
        finally:
            _kill(first)  # SIGKILL: what the issue did, here to a stopped process holding the slot

        assert [c.run_id for c in claims(instance, ["optimizer"]) if not c.pending] == [held.run_id]
        third = subprocess.run(
            [CLI, "run", "--horizons", "15d"],
            env=_env(home),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )

        assert third.returncode == 0, third.stdout + third.stderr
        assert re.search(
            rf"^run {held.run_id} \(candidate_config, .*7d, started .*\) was left unfinished by a process that "
            rf"is gone \(no process has pid {first.pid} on .* any more\): marked failed; freed its claim on pool "
            r"optimizer \(step candidate_config\)$",
            third.stdout,
            re.M,
        ), third.stdout
        assert re.search(r"^  15d   (rejected|APPROVED) ", third.stdout, re.M), third.stdout
        assert instance.get_run_by_id(held.run_id).status == dg.DagsterRunStatus.FAILURE
        assert "the process that ran this run is gone" in _failure_message(instance, held.run_id)
        assert claims(instance, ["optimizer"]) == []
        assert instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED)) == []
