"""`forex-assets replay` on the synthetic default: detection latency only for onsets the replay saw (an onset
before the first replay day is not measurable, said with the reason in the JSON report, the HTML and the
table), --inject-drift refuses a multiplier that is no drift and an onset outside the prices, and a repeated
horizon is replayed once (in every command that takes --horizons)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from forex_assets.cli.main import cli
from forex_assets.cli.replay import replay_command
from forex_assets.cli.run import run_command
from forex_assets.core.replay.engine import ReplaySettings

COMMAND = Path(sys.executable).parent / "forex-assets"
INJECTED, REGIME_CHANGE = "2026-09-09", "2026-09-21"  # the default series' regime change: 30 days before its end


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """8 replay days of 7d (asked twice) from 2026-09-16: a drift injected before them, the series' own
    regime change inside them. (the completed process, the JSON report, the report directory)"""
    root = tmp_path_factory.mktemp("replay")
    env = os.environ | {"DAGSTER_HOME": str(root / "home"), "FOREX_ASSETS_HOME": str(root / "area")}
    args = ["--start", "2026-09-16", "--end", "2026-09-25", "--horizons", "7d", "7d"]
    args += ["--inject-drift", f"{INJECTED}:3", "--no-progress", "--out", str(root / "out")]
    done = subprocess.run([str(COMMAND), "replay", *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads((root / "out" / "replay_report.json").read_text()), root / "out"


def test_an_onset_before_the_first_replay_day_has_no_latency_and_says_why(replayed):
    done, report, out = replayed
    assert report["injected_drifts"] == [INJECTED, REGIME_CHANGE]
    before, inside = report["horizons"]["7d"]["drift_latencies"]
    reason = (
        "the onset is before the first replay day 2026-09-16: the days from the onset to it were not replayed, "
        "so how long the drift went undetected is unknown"
    )
    assert before == {
        "onset": INJECTED,
        "detected": None,
        "detection_latency_days": None,
        "optimized": None,
        "optimization_latency_days": None,
        "not_measurable": reason,
    }
    assert f"latency of the drift from {INJECTED}: not measurable ({reason})" in done.stdout.splitlines()
    assert "latency not measurable because" in (out / "replay_report.html").read_text()
    # the onset inside the replayed days is timed from the onset, and it alone makes the median
    assert inside["onset"] == REGIME_CHANGE and inside["not_measurable"] is None
    assert inside["detected"] is not None and inside["detected"] >= REGIME_CHANGE
    days = ["2026-09-21", "2026-09-22", "2026-09-23", "2026-09-24", "2026-09-25"]  # replayed from the onset on
    assert inside["detection_latency_days"] == days.index(inside["detected"])
    assert report["horizons"]["7d"]["median_detection_latency_days"] == inside["detection_latency_days"]
    assert f"latency of the drift from {REGIME_CHANGE}" not in done.stdout


def test_a_horizon_asked_twice_is_replayed_once(replayed):
    done, report, _ = replayed
    assert list(report["horizons"]) == ["7d"] and report["days_replayed"] == 8
    assert report["horizons"]["7d"]["decisions"] == 8  # one trigger decision per day, not two
    assert sum(line.startswith("7d ") for line in done.stdout.splitlines()) == 2  # one row in each table


def test_every_command_takes_each_horizon_once_in_the_order_given():
    for command in (replay_command, run_command):
        params = command.make_context(command.name, ["--horizons", "30d", "7d", "30d", "7d"]).params
        assert params["horizons"] == ("30d", "7d")
    assert ReplaySettings(start=None, end=None, horizons=("7d", "90d", "7d")).horizons == ("7d", "90d")  # replay_job


@pytest.mark.parametrize(
    "drift, message",
    [
        ("2026-05-01:-2", "'2026-05-01:-2': the multiplier of the daily volatility from DATE on must be a positive"),
        ("2026-05-01:0", "'2026-05-01:0': the multiplier of the daily volatility from DATE on must be a positive"),
        ("2026-05-01:1", "'2026-05-01:1': the multiplier of the daily volatility from DATE on must be a positive"),
        ("2026-05-01:nan", "'2026-05-01:nan': the multiplier of the daily volatility from DATE on must be a posi"),
        ("2030-01-01", "2030-01-01: the onset must be a day after the first price and on or before the last one of "
         "synthetic:seed=20260101,2014-01-01..2026-10-30 (2014-01-01..2026-10-30)"),
    ],
)  # fmt: skip
def test_inject_drift_refuses_what_is_no_drift_in_one_line(drift, message, tmp_path, monkeypatch):
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(tmp_path / "area"))
    args = ["replay", "--inject-drift", drift, "--start", "2026-10-30", "--no-progress", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 2 and result.stdout == "", result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(f"forex-assets replay: --inject-drift {message}")
    if ":" in drift:
        assert line.endswith("a positive number other than 1 (3: three times as volatile, 0.5: half as volatile)")
    assert not (tmp_path / "area").exists() and not (tmp_path / "o").exists()  # refused before anything ran
