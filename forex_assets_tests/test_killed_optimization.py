"""A killed optimization does not count (issue 21, item 3): the guard counts an optimization once it reached a
verdict (approved, rejected, or failed for a reason waiting does not cure), never from its decision alone.

Before, a `forex-assets run` killed after the 7d "optimize" decision was recorded but before the search made
the next run say "held back: last optimization 0 days ago (minimum 14)": the drift response was lost for 14
days. The rule is one (``core/monitoring/triggers.py``, "What the guard counts"): the replay, the sensors and
`make run` read the same verdicts from the decision log.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from forex_assets.cli.run import materialize_selection
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.drift import Severity
from forex_assets.core.monitoring.triggers import TriggerDecision, TriggerPolicy, decide
from forex_assets.core.policy import PolicySettings, Recalibration, record_verdict, trigger_inputs
from forex_assets.core.working_area import PROJECT_ROOT, SEED_CONFIGS_DIR
from forex_assets.defs.monitoring.assets import drift_report, performance_report
from forex_assets.defs.monitoring.automation import optimization_sensor, optimization_tags
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.recalibration.assets import candidate_config, validation_report
from forex_assets.defs.resources import WorkingArea, code_location_resources

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
DAY = date(2026, 11, 2)
SETTINGS = PolicySettings(triggers=TriggerPolicy(performance_metric="rmse"))


def _decide(log: DecisionLog, today: date, severity=Severity.HIGH, degradation=None):
    inputs = trigger_inputs("7d", today, severity, "test drift", degradation or {}, log)
    return decide(inputs, SETTINGS.triggers)


# ------------------------------------------------------------------------------ the rule, pure


def test_the_guard_counts_an_optimization_once_it_reached_a_verdict(tmp_path):
    log = DecisionLog(tmp_path / "trigger_decisions.sqlite")
    first = _decide(log, DAY)
    assert first.optimize and first.fired == ("drift", "schedule")
    log.record(first)  # ... and the process was killed before the search: no verdict

    again = _decide(log, DAY + timedelta(days=1))
    assert again.optimize and again.fired == ("drift", "schedule") and not again.blocked
    assert again.reasons["schedule"] == "never optimized"
    log.record(again)
    record_verdict(log, again, Recalibration("7d", verdict="rejected"))  # this one reached its verdict

    held = _decide(log, DAY + timedelta(days=2))
    assert not held.optimize and held.blocked == ("drift",)
    assert held.reasons["drift"].endswith("; held back: last optimization 1 days ago (minimum 14)")
    [verdict] = log.verdicts("7d")
    assert (verdict.decided_on, verdict.verdict, verdict.performance_override) == (again.decided_on, "rejected", False)


def test_a_failure_that_waiting_cures_is_no_verdict_and_one_that_it_does_not_is(tmp_path):
    log = DecisionLog(tmp_path / "trigger_decisions.sqlite")
    decision = TriggerDecision("7d", DAY, True, ("drift",), (), {"drift": "x"}, False)
    transient = Recalibration("7d", error="StateDatabaseUnavailable: locked", concluded=False)
    record_verdict(log, decision, transient)
    assert log.verdicts() == [] and log.last_optimization("7d") is None
    record_verdict(log, decision, Recalibration("7d", error="SearchError: no configuration could be evaluated"))
    assert [(v.verdict, v.detail) for v in log.verdicts()] == [
        ("failed", "SearchError: no configuration could be evaluated")
    ]
    assert log.last_optimization("7d") == DAY
    with pytest.raises(ValueError, match="'killed' is not a verdict"):
        log.record_verdict("7d", DAY, "killed")


def test_a_performance_override_counts_towards_its_three_days_only_once_it_reached_a_verdict(tmp_path):
    log = DecisionLog(tmp_path / "trigger_decisions.sqlite")
    start = DAY - timedelta(days=5)
    log.record(TriggerDecision("7d", start, True, ("schedule",), (), {}, False))
    log.record_verdict("7d", start, "approved")
    degraded = {"rmse": 30.0}
    override = _decide(log, DAY, Severity.NONE, degraded)
    assert override.optimize and override.performance_override
    log.record(override)  # killed before its verdict
    again = _decide(log, DAY + timedelta(days=1), Severity.NONE, degraded)
    assert again.optimize and again.performance_override, again.reasons  # the killed override does not count
    log.record(again)
    log.record_verdict("7d", again.decided_on, "rejected", performance_override=True)
    held = _decide(log, DAY + timedelta(days=2), Severity.NONE, degraded)
    assert not held.optimize
    assert "the last performance override was 1 days ago (at most one every 3)" in held.reasons["performance"]


# ------------------------------------------------------------------------------ a log written before verdicts

OLD_ROWS = [  # horizon, decided_on, optimize, performance_override
    ("7d", "2026-10-01", 1, 0),
    ("7d", "2026-10-05", 1, 1),
    ("7d", "2026-10-06", 0, 0),
    ("30d", "2026-09-01", 0, 0),
]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_log_written_before_verdicts_keeps_its_guard_after_the_upgrade(tmp_path, backend):
    """Migration decisions_0002 on a log at decisions_0001 with rows: each decision to optimize counts as
    concluded (verdict "assumed"), as it did then; SQLite and PostgreSQL alike."""
    from alembic.config import main as alembic_main

    from forex_assets.core.storage.schema_versions import MIGRATIONS_DIR

    cluster = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    else:
        if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
            pytest.skip("PostgreSQL's server binaries are not installed (apt-get install postgresql)")
        from forex_assets_tests.postgres_cluster import PostgresCluster

        cluster = PostgresCluster().start()
        url = cluster.new_database("verdicts")
    try:
        alembic_main(["-c", str(MIGRATIONS_DIR / "alembic.ini"), "-x", f"url={url}", "upgrade", "decisions_0001"])
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
        table = "decisions" if backend == "sqlite" else "forex.decisions"
        with engine.begin() as db:
            for horizon, day, optimize, override in OLD_ROWS:
                db.execute(
                    sa.text(
                        f"INSERT INTO {table} (horizon, decided_on, optimize, fired, blocked, reasons, "
                        "performance_override) VALUES (:h, :d, :o, '[]', '[]', '{}', :p)"
                    ),
                    {"h": horizon, "d": day, "o": optimize, "p": override},
                )
        engine.dispose()

        log = DecisionLog(tmp_path / "unused.sqlite", database_url=url, adopt_file=False)  # migrates to the heads
        assert [(v.horizon, v.decided_on.isoformat(), v.verdict, v.performance_override) for v in log.verdicts()] == [
            ("7d", "2026-10-01", "assumed", False),
            ("7d", "2026-10-05", "assumed", True),
        ]
        assert log.last_optimization("7d") == log.last_performance_override("7d") == date(2026, 10, 5)
        assert log.last_optimization("30d") is None
        assert len(log.decisions()) == 4  # the decisions themselves untouched
    finally:
        if cluster is not None:
            cluster.stop()


# ------------------------------------------------------------------------------ a search that fails for good


def test_a_search_that_fails_for_good_is_recorded_as_the_verdict_of_the_decision_in_its_tags(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(SEED_CONFIGS_DIR, configs)
    (configs / "search_space_7d.json").write_text("{ not json")
    working_area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(configs))
    resources = code_location_resources(working_area)
    decision = TriggerDecision("7d", DAY, True, ("performance",), (), {"performance": "worse"}, True)
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET
        ).success
        result = materialize_selection(
            instance, resources, [candidate_config, validation_report], "7d", optimization_tags(decision)
        )
    assert not result.success
    [verdict] = working_area.decision_log().verdicts("7d")
    assert (verdict.decided_on, verdict.verdict, verdict.performance_override) == (DAY, "failed", True)
    assert verdict.run_id == result.run_id
    assert verdict.detail.startswith("candidate_config 7d: ") and "search_space_7d.json" in verdict.detail
    assert working_area.decision_log().last_performance_override("7d") == DAY


# ------------------------------------------------------------------------------ the sensor waits for a run in flight


def test_the_sensor_does_not_decide_while_an_optimization_is_in_flight_and_decides_once_it_died(tmp_path):
    from forex_assets.definitions import defs

    working_area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    resources = code_location_resources(working_area)
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET
        ).success
        assert materialize_selection(instance, resources, [drift_report, performance_report], "7d").success
        definitions = dg.Definitions(
            assets=defs.assets,
            asset_checks=defs.asset_checks,
            jobs=defs.jobs,
            sensors=defs.sensors,
            resources=resources,
        )
        job = definitions.resolve_job_def("optimization_job")
        running = instance.create_run_for_job(
            job, tags={"dagster/partition": "7d|USDCLP", "forex/optimizer": "7d"}, status=dg.DagsterRunStatus.STARTED
        )

        def tick(cursor):
            context = dg.build_sensor_context(
                instance=instance, resources=resources, cursor=cursor, definitions=definitions
            )
            result = optimization_sensor.evaluate_tick(context)
            return {r.partition_key: r for r in result.run_requests}, result.cursor

        requests, cursor = tick(None)
        assert requests == {} and "7d|USDCLP" not in json.loads(cursor)
        assert working_area.decision_log().decisions("7d") == []  # no decision while the run may reach a verdict

        instance.report_run_failed(instance.get_run_by_id(running.run_id))  # it died: no verdict
        requests, cursor = tick(cursor)
        assert set(requests) == {"7d|USDCLP"} and "7d|USDCLP" in json.loads(cursor)
        [decision] = working_area.decision_log().decisions("7d")
        assert decision.optimize and decision.reasons["schedule"] == "never optimized"
        tags = requests["7d|USDCLP"].tags
        assert (tags["forex/decided_on"], tags["forex/performance_override"]) == (decision.decided_on.isoformat(), "0")


def test_an_in_process_search_of_forex_assets_run_counts_as_in_flight():
    """`forex-assets run` materializes candidate_config in process (an ephemeral job, no asset selection): the
    sensor and the weekly schedule must see it as an optimization under way, as they see optimization_job."""
    from forex_assets.definitions import defs
    from forex_assets.defs.monitoring.automation import optimization_in_flight
    from forex_assets.defs.recalibration.assets import candidate_config

    with dg.instance_for_test() as instance:
        ephemeral = dg.define_asset_job("__ephemeral_asset_job__", selection=[candidate_config])
        definitions = dg.Definitions(assets=defs.assets, jobs=[ephemeral], resources=code_location_resources())
        job = definitions.resolve_job_def(ephemeral.name)
        run = instance.create_run_for_job(
            job, tags={"dagster/partition": "7d|USDCLP"}, status=dg.DagsterRunStatus.STARTED
        )
        assert not run.asset_selection  # what made it invisible before
        assert optimization_in_flight(instance, "7d") == run.run_id
        assert optimization_in_flight(instance, "30d") is None
        instance.report_run_failed(instance.get_run_by_id(run.run_id))
        assert optimization_in_flight(instance, "7d") is None


# ------------------------------------------------------------------------------ the operator's case, end to end


def _optimize_decisions(path: Path) -> list[tuple]:
    if not path.exists():
        return []
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute(
                "SELECT decided_on, fired FROM decisions WHERE horizon = '7d' AND optimize = 1"
            ).fetchall()
    except sqlite3.OperationalError:  # the file is being created (no table yet)
        return []


def _run(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "forex_assets.cli.run", "--horizons", "7d"],  # what `make run` runs
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_run_killed_after_the_optimize_decision_optimizes_again_at_the_next_run(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "FOREX_ASSETS_HOME"} | {"DAGSTER_HOME": str(home)}
    log_path = home / "forex_assets" / "trigger_decisions.sqlite"

    killed = _run(env)
    deadline = time.monotonic() + 240
    while not _optimize_decisions(log_path) and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)  # right after the decision to optimize was recorded
    output = killed.communicate(timeout=60)[0]
    assert killed.returncode == -signal.SIGKILL, output
    [(day, fired)] = _optimize_decisions(log_path)
    assert json.loads(fired) == ["drift", "schedule"]
    assert not (home / "forex_assets" / "optuna_studies").exists()  # the search had not started

    following = _run(env)
    output = following.communicate(timeout=600)[0]
    assert following.returncode == 0, output
    decisions = output.split("monitoring and trigger decisions:\n", 1)[1]
    assert decisions.startswith("  7d    OPTIMIZE (drift, schedule)\n"), output
    assert "        schedule    never optimized\n" in decisions and "held back" not in decisions, output
    assert "recalibration (candidate search -> validation on the later, disjoint window):\n  7d    " in output

    # its optimization reached a verdict, recorded with the run and the decision's day: now the guard holds
    log = DecisionLog(log_path)
    [verdict] = log.verdicts("7d")
    assert verdict.decided_on.isoformat() == day and verdict.verdict in ("approved", "rejected")
    assert verdict.run_id and f"  7d    {'APPROVED' if verdict.verdict == 'approved' else 'rejected'} " in output
    held = _decide(log, verdict.decided_on)
    assert not held.optimize and held.reasons["drift"].endswith("held back: last optimization 0 days ago (minimum 14)")
