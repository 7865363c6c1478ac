"""`forex-assets status` / `history` and the optimization_metrics asset on a prepared instance: a month of a
30d horizon (a drift-triggered deploy, a rejected performance-triggered candidate, a quiet decision, an
automatic rollback), written through the project's own stores with fixed times."""

import json
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, replace
from datetime import UTC, date, datetime

import dagster as dg
import pytest
from click.testing import CliRunner

from forex_assets.cli import operator as operator_cli
from forex_assets.cli.main import cli
from forex_assets.cli.views import next_weekly_run
from forex_assets.core.alerting.delivery import Delivery
from forex_assets.core.alerting.messages import rollback_executed
from forex_assets.core.deployment.deploy import deploy_from_report
from forex_assets.core.monitoring.triggers import TriggerDecision
from forex_assets.core.working_area import PROJECT_ROOT, SEED_CONFIGS_DIR
from forex_assets.defs.monitoring.optimization_metrics import optimization_metrics
from forex_assets.defs.resources import WorkingArea
from forex_assets_tests.test_validation import GOOD

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def invoke(*args: str):
    """`forex-assets ARGS` in process; an exception other than an exit fails the test with its traceback."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def one_line_error(result) -> str:
    """The error a command refused with: exit status 2, nothing on stdout, one line on stderr (no traceback)."""
    assert result.exit_code == 2 and result.stdout == "", result.output
    [line] = result.stderr.splitlines()
    return line


def _decision(day, fired, optimize, reasons):
    return TriggerDecision("30d", day, optimize, tuple(fired), (), reasons, False)


def _report_file(working_area, stamp, approved, failed, rmse_change, **distribution):
    metrics = {"rmse_improvement": rmse_change} | distribution
    document = {"approved": approved, "failed_criteria": failed, "metrics": metrics}
    (working_area.reports_dir("30d") / f"validation_30d_{stamp}.json").write_text(json.dumps(document))


@pytest.fixture
def prepared(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")  # as `make run` seeds it
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("FOREX_ASSETS_HOME", raising=False)

    def commit_time(text):
        monkeypatch.setenv("GIT_COMMITTER_DATE", text)
        monkeypatch.setenv("GIT_AUTHOR_DATE", text)

    commit_time("2026-11-01T00:00:00+00:00")
    # where `forex-assets status` looks: $DAGSTER_HOME/forex_assets
    working_area = WorkingArea(path=str(home / "forex_assets"), configs_dir=str(SEED_CONFIGS_DIR))
    store, log = working_area.config_store(), working_area.decision_log()
    seed = store.current_version("30d")

    drift = "severity HIGH: volatility ratio 2.56 (HIGH: above 2.0 or below 0.50)"
    log.record(_decision(date(2026, 11, 2), ["drift"], True, {"drift": drift}), at=_utc(2026, 11, 2, 8, 0))
    _report_file(working_area, "20261102T090000Z", True, [], -10.0)
    candidate = store.read("30d").model_copy(update={"context_length": 180})
    report = {
        "horizon": "30d",
        "candidate": candidate.model_dump(mode="json", exclude_none=True),
        "metrics": asdict(replace(GOOD, rmse_current=10.0, rmse_new=9.0, rmse_improvement=-10.0)),
        "validation_window": ["2026-09-01", "2026-10-15"],
        "deployed_version": seed.id,
    }
    commit_time("2026-11-02T10:00:00+00:00")
    _, deployed, _ = deploy_from_report(store, report)

    slow = "rmse degraded +17.5 % (threshold 15 %)"
    log.record(_decision(date(2026, 11, 9), ["performance"], True, {"performance": slow}), at=_utc(2026, 11, 9, 8))
    _report_file(
        working_area,
        "20261109T093000Z",
        False,
        ["coverage_95_sufficient"],
        -6.0,
        wql_improvement=-1.5,
        ci95_coverage_new=0.89,
    )
    quiet = {"performance": "rmse change +2.0 % within 15 %", "drift": "severity LOW below MEDIUM"}
    log.record(_decision(date(2026, 11, 16), [], False, quiet), at=_utc(2026, 11, 16, 22))

    commit_time("2026-11-20T12:00:00+00:00")
    reason = "automatic rollback: 3 consecutive failed forecast runs"
    rolled = store.rollback("30d", "previous", reason)
    alert = rollback_executed("30d", reason, deployed.id, seed.id, rolled.id)
    working_area.alert_log().record(alert, Delivery("sent", 1), at=_utc(2026, 11, 20, 12, 1))

    with dg.DagsterInstance.get() as instance:
        metadata = {"drift_report": {"severity": "MEDIUM", "as_of": "2026-11-20"}}
        metadata["performance_report"] = {
            "degradation_rmse_pct": 17.5,
            "band_test_wql": 0.0103,
            "band_test_wql_ewma_band": 0.01,
            "band_test_coverage_95": 0.9,
            "band_test_kupiec_p_95": 0.04,
        }
        for key, values in metadata.items():
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition="30d|USDCLP", metadata=values))
    return working_area, {"seed": seed, "deployed": deployed, "rolled": rolled}


def test_status_shows_each_horizon_at_a_glance(prepared):
    working_area, versions = prepared
    text = operator_cli.status(now=NOW)
    rows = {line.split()[0]: line for line in text.splitlines() if re.match(r"(7|15|30|90)d ", line)}
    assert set(rows) == {"7d", "15d", "30d", "90d"}
    row = rows["30d"]
    assert versions["rolled"].id in row and "2026-11-20 12:00 UTC" in row
    assert "MEDIUM (2026-11-20)" in row and "+17.5 % RMSE" in row
    assert "WQL 1.03x EWMA, 95 % cov 0.90 (Kupiec p 0.04)" in row  # the band against the EWMA band
    assert "2026-11-09 (performance)" in row
    assert "2026-11-29 02:00" in row  # due from 11-23; the weekly run is Sunday 02:00 America/Santiago
    assert f"ROLLBACK v{versions['deployed'].id}" in row and "[sent, 6 d ago]" in row
    quiet = rows["7d"]
    assert quiet.count("no report") == 3 and "never" in quiet and quiet.rstrip().endswith("none")


def test_history_tells_what_happened_to_a_horizon_with_reasons(prepared):
    working_area, versions = prepared
    result = invoke("history", "--horizon", "30d")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if " UTC  " in line]
    kinds = [line.split()[3] for line in lines]
    assert kinds == ["seed", "decision", "validation", "deploy", "decision", "validation", "decision", "rollback"]
    assert lines[1].startswith("2026-11-02 08:00 UTC") and "optimize (drift)" in lines[1] and "ratio 2.56" in lines[1]
    assert "validation approved: RMSE change -10.00 %" in lines[2]
    assert lines[3].startswith("2026-11-02 10:00 UTC") and versions["deployed"].id in lines[3]
    assert "RMSE 9.000 vs 10.000 CLP" in lines[3]
    assert "rejected (coverage_95_sufficient)" in lines[5]
    assert lines[5].endswith("RMSE change -6.00 %, WQL change -1.50 %, 95 % coverage 0.890")
    assert "no optimization" in lines[6] and "severity LOW below MEDIUM" in lines[6]
    assert "3 consecutive failed forecast runs" in lines[7] and f"to {versions['seed'].id}" in lines[7]

    result = invoke("history", "--horizon", "30d", "--since", "2026-11-10", "--kind", "rollback", "decision")
    assert result.exit_code == 0, result.output
    later = [line for line in result.stdout.splitlines() if " UTC  " in line]
    assert [line.split()[3] for line in later] == ["decision", "rollback"]


def test_optimization_metrics_from_store_decisions_and_reports(prepared):
    working_area, _ = prepared
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [optimization_metrics], partition_key="USDCLP", instance=instance, resources={"working_area": working_area}
        )
        metadata = {
            k: v.value for k, v in result.asset_materializations_for_node("optimization_metrics")[0].metadata.items()
        }
    assert metadata["30d_optimizations"] == 2
    assert metadata["30d_validations"] == 2 and metadata["30d_validation_success_rate"] == 0.5
    assert metadata["30d_deploys"] == 1 and metadata["30d_rollbacks"] == 1
    assert metadata["30d_last_deploy_rmse_before_clp"] == 10.0 and metadata["30d_last_deploy_rmse_after_clp"] == 9.0
    assert metadata["30d_median_hours_trigger_to_deploy"] == 2.0
    assert metadata["7d_optimizations"] == 0 and "7d_validation_success_rate" not in metadata
    summary = {r.data["horizon"]: r.data for r in metadata["summary"].records}
    assert (summary["30d"]["by_drift"], summary["30d"]["by_performance"], summary["30d"]["by_schedule"]) == (1, 1, 0)
    [deploy] = metadata["deploys"].records
    assert deploy.data["rmse_change_pct"] == -10.0 and deploy.data["deployed_at"] == "2026-11-02 10:00 UTC"
    assert "data:image/png;base64," in metadata["plot"]


def test_clear_errors_for_an_unknown_horizon_or_a_missing_instance(tmp_path, monkeypatch):
    line = one_line_error(invoke("history", "--horizon", "45d"))
    assert line == "forex-assets history: unknown horizon '45d'; horizons are 7d, 15d, 30d, 90d"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "nowhere"))
    line = one_line_error(invoke("status"))
    assert line.startswith(f"forex-assets status: no Dagster instance at {tmp_path / 'nowhere'}: run `make run` first")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "empty"))
    line = one_line_error(invoke("history", "--horizon", "7d"))
    assert line.startswith("forex-assets history: ") and "is not a Dagster instance" in line


def test_clear_error_for_an_instance_without_a_config_store(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("FOREX_ASSETS_HOME", raising=False)
    monkeypatch.delenv("FOREX_CONFIG_STORE_DIR", raising=False)
    line = one_line_error(invoke("status"))
    assert line.startswith("forex-assets status: no forex_assets config store at ") and "nothing has run" in line


PRICE_SOURCE = [
    "--source",
    "--csv-path",
    "--csv-date-column",
    "--csv-value-column",
    "--csv-delimiter",
    "--csv-decimal",
    "--csv-thousands",
    "--csv-date-format",
    "--csv-encoding",
    "--csv-skip-missing",
]
OPTIONS = {
    "run": [*PRICE_SOURCE, "--horizons", "--pair", "--no-recalibration", "--policy"],
    "status": ["--pair"],
    "history": ["--horizon", "--since", "--kind", "--pair"],
    "rollback": ["--horizon", "--to", "--reason", "--pair", *PRICE_SOURCE],
    "replay": [*PRICE_SOURCE, "--pair", "--pairs-file", "--start", "--end", "--horizons", "--inject-drift",
               "--policy", "--out", "--keep-state", "--no-progress"],
    "forecasts": ["--horizon", "--since", "--until", "--format", "--output", "--pair"],
}  # fmt: skip


@pytest.mark.parametrize("command", list(OPTIONS))
def test_each_command_has_help_that_lists_its_options(command):
    for flag in ("--help", "-h"):
        result = invoke(command, flag)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"Usage: forex-assets {command} [OPTIONS]")
        listed = re.findall(r"^  (?:-h, )?(--[a-z-]+)", result.stdout, re.MULTILINE)
        assert listed == [*OPTIONS[command], "--help"]


def test_one_group_usage_without_a_command_and_exit_2_for_an_unknown_one():
    usage = invoke()
    assert usage.exit_code == 2 and "Usage: forex-assets [OPTIONS] COMMAND" in usage.output
    commands = usage.output.partition("\nCommands:\n")[2]
    listed = re.findall(r"^  (\w+) ", commands, re.MULTILINE)
    assert listed == ["run", "status", "history", "rollback", "replay", "forecasts"]
    assert invoke("--help").exit_code == 0 and invoke("--help").stdout == usage.output
    unknown = invoke("forecast")
    assert unknown.exit_code == 2 and unknown.stdout == ""
    assert "No such command 'forecast'" in unknown.stderr and "Traceback" not in unknown.stderr
    missing = invoke("history")  # click's usage errors: exit 2 too
    assert missing.exit_code == 2 and "Missing option '--horizon'" in missing.stderr
    bad = invoke("history", "--horizon", "7d", "--since", "2026-13-01")
    assert bad.exit_code == 2 and "'2026-13-01' is not a date (YYYY-MM-DD)" in bad.stderr


def test_the_commands_are_imported_when_used():
    """`forex-assets --help` answers at once: it does not load Dagster and the asset graph."""
    code = (
        "import sys\n"
        "from forex_assets.cli.main import cli\n"
        "cli(['--help'], standalone_mode=False)\n"
        "assert not {'dagster', 'pandas', 'forex_assets.cli.run'} & set(sys.modules), 'imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "replay" in done.stdout


@pytest.mark.parametrize(
    "now, due, expected",
    [
        (_utc(2026, 11, 26, 12), None, "2026-11-29 02:00"),  # Thursday -> Sunday
        (_utc(2026, 11, 29, 4), None, "2026-11-29 02:00"),  # Sunday 01:00 Santiago (UTC-3): later today
        (_utc(2026, 11, 29, 6), None, "2026-12-06 02:00"),  # Sunday 03:00 Santiago: next week
        (_utc(2026, 11, 26, 12), date(2026, 12, 10), "2026-12-13 02:00"),  # not due before Dec 10
    ],
)
def test_next_weekly_run(now, due, expected):
    tick = next_weekly_run(now, "0 2 * * 0", "America/Santiago", due)
    assert f"{tick:%Y-%m-%d %H:%M}" == expected and tick.strftime("%a") == "Sun"


def test_status_last_optimization_is_the_latest_verdict_and_names_a_decision_without_one(tmp_path):
    """``status`` counts what the guard counts: an optimization that reached a verdict; a later decision to
    optimize whose run was killed is shown as having no verdict, not as the last optimization."""
    from forex_assets.cli.views import last_optimization_text
    from forex_assets.core.monitoring.decision_log import DecisionLog

    log = DecisionLog(tmp_path / "decisions.sqlite")
    assert last_optimization_text(log, "7d") == ("never", None)

    def optimize(day: date, fired: tuple[str, ...]) -> None:
        log.record(TriggerDecision("7d", day, True, fired, (), {}, False))

    optimize(date(2026, 11, 2), ("drift",))
    assert last_optimization_text(log, "7d") == (
        "2026-11-02 (drift): no verdict (running, or its run died)",
        None,
    )
    log.record_verdict("7d", date(2026, 11, 2), "rejected")
    assert last_optimization_text(log, "7d") == ("2026-11-02 (drift): rejected", date(2026, 11, 2))
    optimize(date(2026, 11, 30), ("performance",))  # killed before its verdict
    text, counted = last_optimization_text(log, "7d")
    assert text == "2026-11-02 (drift): rejected; 2026-11-30 (performance): no verdict (running, or its run died)"
    assert counted == date(2026, 11, 2)
    assert last_optimization_text(log, "30d") == ("never", None)
    # a verdict reached late for an earlier decision (a slow run) does not move the guard's day back
    log.record_verdict("7d", date(2026, 11, 30), "approved")
    log.record_verdict("7d", date(2026, 11, 16), "rejected")
    assert last_optimization_text(log, "7d") == ("2026-11-30 (performance): approved", date(2026, 11, 30))
    assert log.last_optimization("7d") == date(2026, 11, 30)  # what the guard counts from


def test_history_names_the_path_that_approved(tmp_path):
    from forex_assets.core.monitoring.optimization_history import validation_events

    document = {
        "approved": True,
        "approved_by": "distribution",
        "failed_criteria": [],
        "metrics": {"rmse_improvement": 0.2, "wql_improvement": -3.1, "ci95_coverage_new": 0.951},
    }
    (tmp_path / "validation_7d_20261201T100000Z.json").write_text(json.dumps(document))
    [event] = validation_events(tmp_path, "7d")
    assert event.summary == (
        "validation approved by the distribution path: RMSE change +0.20 %, WQL change -3.10 %, 95 % coverage 0.951"
    )
