"""The memory cgroup that bench/bench_memory.py runs optimization runs in: does it limit and count what it says?

A child cgroup v1 memory group with a hard limit, a command moved into it before it starts, and the
counters read afterwards (peak usage, failcnt, OOM kills). Skipped, with the reason, where the memory
controller is not writable (no cgroup v1 memory hierarchy, not root).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_memory  # noqa: E402

REASON = bench_memory.cgroup_unavailable_reason()
needs_cgroup = pytest.mark.skipif(REASON is not None, reason=str(REASON))
MIB = 2**20


def _allocate(mib: int) -> list[str]:
    """A Python process that touches ``mib`` MiB of anonymous memory, then exits 0."""
    return [sys.executable, "-c", f"b = bytearray({mib} * 2**20); b[::4096] = b'x' * len(b[::4096])"]


def test_own_memory_cgroup_reads_the_v1_line(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("9:name=systemd:/\n4:memory:/process_api/abc\n0::/\n")
    assert bench_memory.own_memory_cgroup(str(proc)) == Path("/sys/fs/cgroup/memory/process_api/abc")
    proc.write_text("0::/user.slice\n")
    with pytest.raises(OSError, match="no cgroup v1 memory controller"):
        bench_memory.own_memory_cgroup(str(proc))


@needs_cgroup
def test_a_run_within_the_limit_is_counted_and_not_killed(tmp_path):
    with bench_memory.MemoryCgroup(f"test_within_{os.getpid()}", limit_bytes=512 * MIB) as group:
        assert int(group.read("memory.limit_in_bytes")) == 512 * MIB
        result = bench_memory.measure(_allocate(200), dict(os.environ), group, tmp_path / "log")
        path = group.path
    assert not path.exists()  # removed
    assert result.returncode == 0
    assert 200 * MIB <= result.cgroup.max_usage_bytes <= 512 * MIB  # the child was charged to the group
    assert result.largest_process_rss_bytes >= 200 * MIB
    assert result.cgroup.oom_kills == 0 and result.cgroup.failcnt == 0


@needs_cgroup
def test_a_run_over_the_limit_is_oom_killed_and_counted(tmp_path):
    with bench_memory.MemoryCgroup(f"test_over_{os.getpid()}", limit_bytes=128 * MIB) as group:
        result = bench_memory.measure(_allocate(400), dict(os.environ), group, tmp_path / "log")
        path = group.path
    assert not path.exists()
    assert result.returncode == -9  # SIGKILL from the OOM killer
    assert result.cgroup.failcnt > 0  # charges that hit the limit
    assert result.cgroup.oom_kills in (1, -1)  # -1: a kernel whose oom_control does not count kills
    assert result.cgroup.max_usage_bytes <= 128 * MIB + MIB
