"""What `forex-assets run` says while a step waits, and how it stops (issue 21, items 1 and 13).

Through the real command against the fake mindicador server (``mindicador_server.py``, pointed at with
``FOREX_MINDICADOR_URL``): each step retry prints what failed and when it tries again (the console log is
otherwise quiet), and Ctrl-C during a retry wait (Dagster's in-process executor sleeps there with the
interrupt held back) stops the run at once, marked canceled.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from forex_assets.core.working_area import PROJECT_ROOT
from forex_assets.defs.dead_runs import UNFINISHED
from forex_assets.defs.prices.retries import PRICES_RETRY_POLICY
from forex_assets.defs.step_retries import DELAY_SCALE_ENV, retry_decision
from forex_assets_tests.mindicador_server import FakeMindicador

CLI = str(Path(sys.executable).parent / "forex-assets")
ARGS = ["run", "--source", "mindicador", "--horizons", "7d", "--no-recalibration"]


@pytest.fixture
def api():
    server = FakeMindicador()
    yield server
    server.close()


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    dg.DagsterInstance.from_config(str(home)).dispose()
    return home


def _env(home: Path, api: FakeMindicador, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FOREX_ASSETS_HOME", "FOREX_CONFIG_STORE_DIR")}
    return env | {"DAGSTER_HOME": str(home), "FOREX_MINDICADOR_URL": api.url, "PYTHONUNBUFFERED": "1"} | extra


def test_each_step_retry_prints_what_failed_and_when_it_tries_again(api, tmp_path):
    api.script[2014] = ["503:0"]  # down for good: every attempt of the step fails
    done = subprocess.run(
        [CLI, *ARGS],
        env=_env(_home(tmp_path), api, **{DELAY_SCALE_ENV: "0.01"}),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 1, done.stdout + done.stderr
    failed = f"mindicador: {api.year_url(2014)} failed after 4 attempts (last error: HTTP 503)"
    lines = done.stdout.splitlines()
    for number, line in enumerate(lines[:3], start=1):
        assert re.fullmatch(
            rf"pair_prices: {re.escape(failed)}; retry {number} of 3 at \d\d:\d\d:\d\d \(in \d+ s\)", line
        )
    # nothing else from the runs: the failure is the summary's, once
    assert "pair_prices failed: " + failed in done.stdout + done.stderr
    assert "gave up after 4 attempt(s) of the step" in done.stdout + done.stderr
    assert "dagster - " not in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert len(api.requests) == 16  # 4 step attempts x 4 client attempts


def test_ctrl_c_during_a_step_retry_wait_stops_at_once(api, tmp_path):
    api.script[2014] = ["503:120"]  # the source asks for 2 minutes: the client leaves that wait to the step
    home = _home(tmp_path)
    out = tmp_path / "out.txt"
    process = subprocess.Popen(
        [CLI, *ARGS], env=_env(home, api), cwd=PROJECT_ROOT, stdout=out.open("w"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 180
    while not re.search(r"retry 1 of 3 at .* \(in 120 s\)", out.read_text()):
        assert process.poll() is None and time.monotonic() < deadline, out.read_text()
        time.sleep(0.3)

    asked = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130, out.read_text()

    assert time.monotonic() - asked < 10  # not the 120 s of the retry wait
    text = out.read_text()
    match = re.search(
        r"^forex-assets run: stopped by SIGINT \(waiting for its retry\); run (\S+) \(pair_prices\) marked "
        r"canceled, its pool claims freed$",
        text,
        re.M,
    )
    assert match, text
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id(match.group(1)).status == dg.DagsterRunStatus.CANCELED
        assert instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED)) == []


def test_the_retry_delay_scale_shortens_the_policy_delay_and_a_bad_one_is_named(monkeypatch):
    error = ConnectionError("connection refused")
    monkeypatch.setenv(DELAY_SCALE_ENV, "0.01")
    waits = [retry_decision(error, PRICES_RETRY_POLICY, 0, "r").seconds_to_wait for _ in range(50)]
    assert max(waits) <= 0.6  # (2^1 - 1) x 30 s +- 30 s, x 0.01
    monkeypatch.setenv(DELAY_SCALE_ENV, "fast")
    with pytest.raises(ValueError, match=f"^{DELAY_SCALE_ENV}='fast' is not a number >= 0"):
        retry_decision(error, PRICES_RETRY_POLICY, 0, "r")
