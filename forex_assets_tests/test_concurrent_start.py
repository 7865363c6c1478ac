"""Cycles started together on a fresh $DAGSTER_HOME (issue 21, item 12): all succeed.

Dagster creates an embedded instance's SQLite databases on the first opening, without a lock; two processes
opening a fresh instance together both created them and one died with "table secondary_indexes already
exists" (or runs, job_ticks, alembic_version). `forex-assets run` now creates the storage once, under a
lock in $DAGSTER_HOME (``forex_assets.cli.instance_storage``).

The processes are the real command (``cli`` of ``forex_assets.cli.main``, as the ``forex-assets`` script
calls it), each held at a gate after its imports until all are ready, so that they open the instance within
milliseconds of each other instead of whenever their imports happen to finish (seconds apart on a loaded
machine).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from forex_assets.cli.instance_storage import LOCK_NAME, instance_lock, prepare_instance
from forex_assets.core.working_area import PROJECT_ROOT

GATED_CLI = """
import sys, time
from pathlib import Path
from forex_assets.cli.main import cli
import forex_assets.cli.run  # noqa: F401 - everything imported before the gate
gate, me, together = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
(gate / me).touch()
deadline = time.monotonic() + 120
while len(list(gate.iterdir())) < together and time.monotonic() < deadline:
    time.sleep(0.005)
cli(sys.argv[4:], prog_name="forex-assets")
"""


def _start_together(home, gate, count, *args):
    env = {k: v for k, v in os.environ.items() if k != "FOREX_ASSETS_HOME"} | {"DAGSTER_HOME": str(home)}
    gate.mkdir()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", GATED_CLI, str(gate), f"p{i}", str(count), *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(count)
    ]
    return [(p.wait(timeout=300), p.stdout.read()) for p in processes]


def test_cycles_started_together_on_a_fresh_dagster_home_all_succeed(tmp_path):
    # three cycles at once, twice: on the code without the lock, 3 of the 4 rounds tried had a cycle die (the race
    # window is the time Dagster takes to create and stamp a database), so two rounds miss it rarely
    for round_ in range(2):
        home = tmp_path / f"home{round_}"
        results = _start_together(home, tmp_path / f"gate{round_}", 3, "run", "--no-recalibration", "--horizons", "7d")
        for status, output in results:
            assert status == 0, f"round {round_}:\n{output}"
            assert "already exists" not in output and "Traceback" not in output, output
            assert f"(DAGSTER_HOME={home})" in output
            forecast_row = output.split("status\n", 1)[1].splitlines()[1]
            assert forecast_row.startswith("7d ") and forecast_row.endswith(" ok"), output
        assert (home / "dagster.yaml").read_text() == (PROJECT_ROOT / "dagster.yaml").read_text()
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
            runs = instance.get_runs()
        # each cycle: pair_prices, then the 7d forecast; all six recorded, all successful
        assert len(runs) == 6 and {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}


def test_the_instance_is_prepared_under_a_lock_that_waits_for_its_holder(tmp_path):
    """While another process holds the lock, preparing waits; then it finds the storage and only opens it."""
    home = tmp_path / "home"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from forex_assets.cli.instance_storage import instance_lock\n"
            "with instance_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(2)",
            str(home),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    started = time.monotonic()
    prepare_instance(home, PROJECT_ROOT / "dagster.yaml")
    waited = time.monotonic() - started
    assert holder.wait(timeout=30) == 0
    assert waited > 1.0  # it waited for the holder (2 s from the moment it printed)
    assert (home / LOCK_NAME).exists() and (home / "history" / "runs.db").exists()
    with instance_lock(home):  # released: taken again at once
        pass
