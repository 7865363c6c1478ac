"""Which process runs an in-process run, and whether that process is still there.

A run that ``forex-assets run`` executes in its own process has no run worker that Dagster's run monitoring
could check: killed (SIGKILL, an OOM kill, a lost node, a reboot), it stays STARTED in the instance for ever,
with any pool slot it had claimed. So such runs carry :func:`owner_tags`: the process id, the host name and
the process's start stamp (the kernel's boot id and the process start time in clock ticks since boot, read
from ``/proc``), which tell a live owner from a dead one without guessing, even when the pid has been reused
by another process or the machine was rebooted.

Pure: no Dagster. ``forex_assets.defs.dead_runs`` acts on :func:`owner_state`.
"""

from __future__ import annotations

import enum
import os
import socket
from collections.abc import Mapping
from pathlib import Path

OWNER_PID_TAG = "forex/owner_pid"
OWNER_HOST_TAG = "forex/owner_host"
#: "<boot id>:<start time in clock ticks since boot>" on Linux; "" where /proc does not say (pid check only).
OWNER_START_TAG = "forex/owner_start"

_PROC = Path("/proc")


class OwnerState(enum.Enum):
    ALIVE = "alive"
    GONE = "gone"
    #: no owner tags (a run launched by the daemon or the UI: run monitoring's business), or another host
    UNKNOWN = "unknown"


def _boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), None when there is no such process."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return None
    return text[text.rfind(")") + 2 :].split()


def process_start_stamp(pid: int) -> str:
    """``<boot id>:<start ticks>`` of process ``pid``; "" where /proc is not available or has no such process."""
    fields = _stat_fields(pid) if _PROC.is_dir() else None
    boot = _boot_id()
    if not fields or not boot:
        return ""
    return f"{boot}:{fields[19]}"  # field 22 of stat: starttime


def owner_tags(pid: int | None = None) -> dict[str, str]:
    """Run tags naming this process (or ``pid``) as the run's owner."""
    pid = os.getpid() if pid is None else pid
    return {
        OWNER_PID_TAG: str(pid),
        OWNER_HOST_TAG: socket.gethostname(),
        OWNER_START_TAG: process_start_stamp(pid),
    }


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    fields = _stat_fields(pid) if _PROC.is_dir() else None
    return not (fields and fields[0] in ("Z", "X"))  # a zombie (killed, not yet reaped) is gone


def owner_state(tags: Mapping[str, str], host: str | None = None) -> tuple[OwnerState, str]:
    """Whether the process named by a run's owner tags still runs, and why: GONE when no process has its pid
    on this host, or the process with that pid started at another time or before another boot (the pid was
    reused); UNKNOWN without owner tags or for another host (nothing here can tell)."""
    pid_text = tags.get(OWNER_PID_TAG)
    owner_host = tags.get(OWNER_HOST_TAG, "")
    if not pid_text or not pid_text.isdigit():
        return OwnerState.UNKNOWN, "the run has no owner process tag (launched by the daemon or the UI)"
    host = socket.gethostname() if host is None else host
    pid = int(pid_text)
    if owner_host != host:
        return OwnerState.UNKNOWN, f"its owner, pid {pid}, runs on host {owner_host}, not on this host ({host})"
    if not _pid_exists(pid):
        return OwnerState.GONE, f"no process has pid {pid} on {host} any more"
    recorded = tags.get(OWNER_START_TAG, "")
    if recorded:
        now = process_start_stamp(pid)
        if now and now.split(":")[0] != recorded.split(":")[0]:
            return OwnerState.GONE, f"{host} was restarted since pid {pid} started the run"
        if now and now != recorded:
            return OwnerState.GONE, f"pid {pid} on {host} is another process now (it started at another time)"
    return OwnerState.ALIVE, f"pid {pid} on {host} is running"
