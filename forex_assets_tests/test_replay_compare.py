"""Policies side by side (issue 13): `forex-assets replay --policy A.json --policy B.json` and replay_job with
policy files replay each policy on the same days and prices, write each policy's report and a comparison
whose rows are read from those reports; bad policy files, clashing names and an --out that cannot be
written are refused before the first replay day."""

import json
import re
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from forex_assets.cli.main import cli
from forex_assets.core.policy_file import PolicyFileError, policy_document
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.replay import compare
from forex_assets.core.replay.compare import (
    check_writable,
    compare_reports,
    format_comparison,
    load_policies,
    render_comparison_html,
    report_directories,
)
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets.defs.replay.jobs import replay_job
from forex_assets.defs.resources import PolicyResource, PriceSource, WorkingArea
from forex_assets_tests.real_cli import LENIENT_APPROVAL

REPO = Path(__file__).resolve().parents[1]
ROW_KEYS = ("optimizations", "approvals", "deploys", "rollbacks")

# "quiet": no trigger can fire (no optimization); "eager": the schedule fires every few days and every
# candidate is approved (optimizations and deploys)
QUIET = {
    "name": "quiet",
    "triggers": {"drift_enabled": False, "schedule_enabled": False, "performance_threshold_pct": 1000.0},
}
EAGER = {
    "name": "eager",
    "triggers": {"schedule_days": 4, "min_days_between_optimizations": 4, "drift_enabled": False},
    "approval": LENIENT_APPROVAL,
}


def _write(directory: Path, document: dict, filename: str | None = None) -> Path:
    path = directory / (filename or f"{document['name']}.json")
    path.write_text(json.dumps(document))
    return path


def _replay(*args: str):
    return CliRunner().invoke(cli, ["replay", *args], catch_exceptions=False)


def _one_line_error(result) -> str:
    assert result.exit_code == 2 and result.stdout == "", result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("forex-assets replay: ")
    return line


@pytest.fixture
def no_replay(monkeypatch):
    """Fails the test if any replay day would run."""

    def refuse(*args, **kwargs):
        raise AssertionError("a replay ran although the command should have been refused before it")

    monkeypatch.setattr(compare, "run_replay", refuse)


# --- the CLI, two policies on the same 10 days ----------------------------------------------------------


@pytest.fixture(scope="module")
def two_policies(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    files = [_write(tmp, EAGER), _write(tmp, QUIET)]  # eager first: the comparison keeps this order
    out = tmp / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOREX_ASSETS_HOME", str(tmp / "area"))
        result = _replay(
            "--start", "2026-10-19", "--end", "2026-10-30", "--horizons", "7d", "--no-progress",
            "--policy", str(files[0]), "--policy", str(files[1]), "--out", str(out),
        )  # fmt: skip
    return result, out


def test_cli_compares_two_policies_with_rows_read_from_their_own_reports(two_policies):
    result, out = two_policies
    assert result.exit_code == 0, result.output
    reports = {name: json.loads((out / name / "replay_report.json").read_text()) for name in ("eager", "quiet")}
    assert (out / "eager" / "replay_report.html").exists() and (out / "quiet" / "replay_report.html").exists()
    assert not (out / "replay_report.json").exists()  # per policy only
    comparison = json.loads((out / "replay_comparison.json").read_text())
    assert comparison["policies"] == ["eager", "quiet"]
    assert comparison["days_replayed"] == {"eager": 10, "quiet": 10} and comparison["same_days"]
    assert comparison["range"] == ["2026-10-19", "2026-10-30"] and comparison["partial"] == {}
    # each report carries its policy, as read from its file
    assert reports["eager"]["policy"]["triggers"]["schedule_days"] == 4
    assert reports["quiet"]["policy"]["triggers"]["drift_enabled"] is False
    rows = comparison["horizons"]["7d"]
    assert [row["policy"] for row in rows] == ["eager", "quiet"]
    for row in rows:
        r = reports[row["policy"]]["horizons"]["7d"]
        accuracy = r["accuracy"]
        assert row["days_replayed"] == 10
        assert {k: row[k] for k in ROW_KEYS} == {k: r[k] for k in ROW_KEYS}
        assert row["matured_origins"] == accuracy["origins"] == 10 - 7
        assert row["rmse_live_clp"] == accuracy["live"]["rmse_clp"]
        assert row["live_vs_static"] == pytest.approx(accuracy["live"]["rmse_clp"] / accuracy["static"]["rmse_clp"])
        assert row["live_vs_random_walk"] == pytest.approx(
            accuracy["live"]["rmse_clp"] / accuracy["random_walk"]["rmse_clp"]
        )
        assert row["wql_live_vs_static"] == pytest.approx(accuracy["live"]["wql"] / accuracy["static"]["wql"])
        assert row["wql_live_vs_ewma_band"] == pytest.approx(accuracy["live"]["wql"] / accuracy["ewma_band"]["wql"])
        assert row["coverage_95_live"] == accuracy["live"]["coverage_95"]
        assert row["false_positive_rate_rmse"] == r["false_positive_rate_rmse"]
        assert row["false_positive_rate_skill"] == r["false_positive_rate_skill"]
        assert row["dm_p_vs_static"] == accuracy["diebold_mariano_vs_static"].get("p_value")
    eager, quiet = rows
    # the thresholds made the difference ...
    assert quiet["optimizations"] == quiet["deploys"] == 0 and quiet["live_vs_static"] == pytest.approx(1.0)
    assert eager["optimizations"] >= 2 and eager["deploys"] == eager["optimizations"]
    assert reports["eager"]["horizons"]["7d"]["triggers"]["schedule"] == eager["optimizations"]
    # ... on the same days and prices: the static configuration and the random walk score alike
    assert eager["rmse_static_clp"] == quiet["rmse_static_clp"]
    assert eager["rmse_random_walk_clp"] == quiet["rmse_random_walk_clp"]
    assert comparison["differences"]["triggers.schedule_days"] == {"eager": 4, "quiet": 14}
    assert comparison["differences"]["approval.max_improvement_p_value"] == {"eager": 1.0, "quiet": 0.002}
    assert "triggers.performance_metric" not in comparison["differences"]  # the same in both


def test_cli_comparison_table_and_page(two_policies):
    result, out = two_policies
    comparison = json.loads((out / "replay_comparison.json").read_text())
    assert format_comparison(comparison) in result.stdout
    lines = result.stdout.splitlines()
    for row in comparison["horizons"]["7d"]:
        [line] = [x for x in lines if x.startswith(row["policy"] + " ")]
        assert line.split()[1:5] == [str(row[k]) for k in ("days_replayed", "optimizations", "deploys", "rollbacks")]
        assert f"{row['live_vs_static']:.3f}" in line and f"{row['rmse_live_clp']:.2f}" in line
        assert f"{row['wql_live_vs_ewma_band']:.3f}" in line
    assert f"comparison: {out / 'replay_comparison.html'}" in result.stdout
    page = (out / "replay_comparison.html").read_text()
    assert page.startswith("<!doctype html>") and 'href="eager/replay_report.html"' in page
    section = page[page.index('id="horizon-7d"') :]
    assert re.findall(r"<tr><th>([^<]+)</th><td", section[: section.index("</table>")]) == ["eager", "quiet"]


# --- refused before the first replay day ----------------------------------------------------------------


def test_cli_refuses_a_bad_policy_file_naming_the_file_and_the_key(tmp_path, monkeypatch, no_replay):
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(tmp_path / "area"))
    good = _write(tmp_path, QUIET)
    bad = _write(tmp_path, {"name": "bad", "triggers": {"performance_treshold_pct": 20}})
    line = _one_line_error(_replay("--policy", str(good), "--policy", str(bad), "--out", str(tmp_path / "out")))
    assert f"{bad}: section 'triggers': unknown key(s) performance_treshold_pct" in line
    typo = _write(tmp_path, {"triggers": {"schedule_days": "weekly"}}, "typo.json")
    line = _one_line_error(_replay("--policy", str(typo)))
    assert str(typo) in line and "'schedule_days'" in line
    line = _one_line_error(_replay("--policy", str(tmp_path / "missing.json")))
    assert line == f"forex-assets replay: {tmp_path / 'missing.json'}: policy file not found"
    line = _one_line_error(_replay("--policy", str(tmp_path)))  # a directory
    assert line.startswith(f"forex-assets replay: {tmp_path}: cannot read the policy file")
    assert not (tmp_path / "out").exists() and not (tmp_path / "area").exists()


def test_cli_refuses_policy_names_used_twice_or_unusable_as_a_directory(tmp_path, monkeypatch, no_replay):
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(tmp_path / "area"))
    first = _write(tmp_path, QUIET)
    second = _write(tmp_path, EAGER | {"name": "quiet"}, "other.json")
    line = _one_line_error(_replay("--policy", str(first), "--policy", str(second)))
    assert f"{second}: key 'name'" in line and f"'quiet' is also the name of {first}" in line
    line = _one_line_error(_replay("--policy", str(first), "--policy", str(first)))  # the same file twice
    assert "policy names must be unique" in line
    sneaky = _write(tmp_path, QUIET | {"name": "../elsewhere"}, "sneaky.json")
    line = _one_line_error(_replay("--policy", str(first), "--policy", str(sneaky)))
    assert f"{sneaky}: key 'name'" in line and "'../elsewhere' cannot name the policy's report directory" in line
    assert not (tmp_path / "area").exists()


@pytest.mark.parametrize("policies", [0, 2], ids=["without --policy", "two policies"])
def test_cli_refuses_an_out_it_cannot_write_before_the_first_day(tmp_path, monkeypatch, no_replay, policies):
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(tmp_path / "area"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    args = [arg for p in (QUIET, EAGER)[:policies] for arg in ("--policy", str(_write(tmp_path, p)))]
    line = _one_line_error(
        _replay(*args, "--start", "2026-10-29", "--end", "2026-10-30", "--out", str(blocker / "sub"))
    )
    assert f"cannot write the report to {blocker / 'sub'}" in line


def test_check_writable_creates_the_directory_and_leaves_no_probe(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_writable(target) == target and target.is_dir() and list(target.iterdir()) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match="cannot write the report to .*file"):
        check_writable(tmp_path / "file")
    assert report_directories(tmp_path / "one", ["default"]) == {"default": tmp_path / "one"}
    assert report_directories(tmp_path / "two", ["x", "y"]) == {
        "x": tmp_path / "two" / "x",
        "y": tmp_path / "two" / "y",
    }
    assert (tmp_path / "two" / "y").is_dir()


def test_the_shipped_policy_files_load_with_distinct_names():
    policies = load_policies(sorted((REPO / "policies").glob("*.json")))
    assert list(policies) == ["adr", "default", "random-walk-trigger"]
    assert policies["default"] == PolicySettings()
    assert policies["random-walk-trigger"].triggers.performance_metric == "random_walk"
    with pytest.raises(PolicyFileError, match="policy names must be unique"):
        load_policies([REPO / "policies" / "adr.json", REPO / "policies" / "adr.json"])


# --- the comparison itself, on reports made by hand -----------------------------------------------------


def _report(source="synthetic", days=20, optimizations=1, live=10.0, policy=None, partial=None) -> dict:
    accuracy = {
        "origins": 13,
        "live": {"rmse_clp": live, "mape_pct": 1.0, "coverage_95": 0.92, "wql": 0.006},
        "static": {"rmse_clp": 8.0, "mape_pct": 1.0, "coverage_95": 0.9, "wql": 0.005},
        "random_walk": {"rmse_clp": 12.5, "mape_pct": 1.0, "coverage_95": None},
        "ewma_band": {"rmse_clp": 12.5, "wql": 0.0075},
        "diebold_mariano_vs_static": {"statistic": 1.2, "p_value": 0.21},
        "diebold_mariano_vs_random_walk": {"note": "not computable"},
    }
    horizon = {
        "optimizations": optimizations, "approvals": 1, "deploys": 1, "rollbacks": 0,
        "false_positive_rate_rmse": 0.5, "false_positive_rate_skill": None, "accuracy": accuracy,
    }  # fmt: skip
    report = {
        "source": source, "range": ["2025-01-01", "2025-01-28"], "days_replayed": days, "days_planned": 20,
        "partial": partial is not None, "partial_reason": partial, "injected_drifts": [],
        "horizons": {"7d": horizon, "30d": horizon | {"accuracy": {"origins": 0, "note": "none matured"}}},
    }  # fmt: skip
    if policy is not None:
        report["policy"] = policy
    return report


def test_compare_reports_rows_ratios_and_differences():
    strict = policy_document("strict", PolicySettings())
    loose = json.loads(json.dumps(strict)) | {"name": "loose"}
    loose["triggers"]["performance_threshold_pct"] = 30.0
    comparison = compare_reports({"strict": _report(policy=strict), "loose": _report(optimizations=4, policy=loose)})
    assert comparison["policies"] == ["strict", "loose"]
    assert list(comparison["horizons"]) == ["7d", "30d"]
    strict_row, loose_row = comparison["horizons"]["7d"]
    assert strict_row["optimizations"] == 1 and loose_row["optimizations"] == 4
    assert strict_row["live_vs_static"] == pytest.approx(1.25) and strict_row["live_vs_random_walk"] == 0.8
    assert strict_row["coverage_95_live"] == 0.92 and strict_row["dm_p_vs_static"] == 0.21
    assert strict_row["wql_live_vs_static"] == pytest.approx(1.2) and strict_row["wql_live_vs_ewma_band"] == 0.8
    no_accuracy = comparison["horizons"]["30d"][0]
    assert no_accuracy["matured_origins"] == 0 and no_accuracy["rmse_live_clp"] is None
    assert no_accuracy["live_vs_static"] is None and no_accuracy["dm_p_vs_static"] is None
    assert no_accuracy["wql_live_vs_static"] is None and no_accuracy["wql_live_vs_ewma_band"] is None
    assert comparison["differences"] == {"triggers.performance_threshold_pct": {"strict": 15.0, "loose": 30.0}}
    text = format_comparison(comparison)
    assert "settings that differ:" in text and "strict 15.0, loose 30.0" in text
    assert re.search(
        r"^strict\s+20\s+1\s+1\s+0\s+13\s+10\.00\s+1\.250\s+0\.800\s+1\.200\s+0\.800\s+92\.0 %\s+50 %\s+n/a\s+0\.210$",
        text,
        re.M,
    )


def test_compare_reports_marks_partial_reports_and_refuses_different_replays():
    comparison = compare_reports({"a": _report(), "b": _report(days=7, partial="stopped on 2025-01-10")})
    assert comparison["partial"] == {"b": "stopped on 2025-01-10"} and not comparison["same_days"]
    assert format_comparison(comparison).startswith("PARTIAL REPORT (b): stopped on 2025-01-10")
    assert "<b>PARTIAL REPORT</b> (b)" in render_comparison_html(comparison)
    with pytest.raises(ValueError, match="not of the same replay: source"):
        compare_reports({"a": _report(), "b": _report(source="csv usdclp.csv")})
    with pytest.raises(ValueError, match="no report"):
        compare_reports({})


def test_the_comparison_page_escapes_what_comes_from_data():
    script = "<script>alert(1)</script>"
    policy = policy_document("a", PolicySettings())
    other = json.loads(json.dumps(policy)) | {"name": "b"}
    other["triggers"]["performance_metric"] = script
    comparison = compare_reports(
        {"a": _report(source=script, policy=policy), "b": _report(source=script, policy=other)}
    )
    page = render_comparison_html(comparison, {"a": "a/replay_report.html"})
    assert script not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<a href="a/replay_report.html">a</a>' in page


# --- replay_job with policy files -----------------------------------------------------------------------


def test_replay_job_records_a_report_per_policy_and_the_comparison(tmp_path):
    files = [str(_write(tmp_path, QUIET)), str(_write(tmp_path, EAGER | {"name": "eager"}))]
    working_area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    config = {"ops": {"replay_history": {"config": {"start": "2026-10-29", "end": "2026-10-30",
                                                      "horizons": ["7d"], "policies": files}}}}  # fmt: skip
    with dg.instance_for_test() as instance:
        result = replay_job.execute_in_process(
            run_config=config,
            instance=instance,
            resources={"price_source": PriceSource(), "working_area": working_area, "policy": PolicyResource()},
        )
        assert result.success
        recorded = result.asset_materializations_for_node("replay_history")
        reports = [m for m in recorded if m.asset_key == dg.AssetKey("replay_report")]
        comparison_event = instance.get_latest_materialization_event(dg.AssetKey("replay_comparison"))
        messages = [e.message for e in instance.all_logs(result.run_id)]
    assert [m.metadata["policy"].value for m in reports] == ["quiet", "eager"]
    assert any("replay eager: 2/2 days (2026-10-30)" in m for m in messages)
    metadata = comparison_event.asset_materialization.metadata
    assert metadata["policies"].value == "quiet, eager" and metadata["same_days"].value is True
    rows = [r.data for r in metadata["comparison"].value.records]
    assert [(r["horizon"], r["policy"]) for r in rows] == [("7d", "quiet"), ("7d", "eager")]
    out = Path(metadata["json_report"].value).parent
    for row, event in zip(rows, reports, strict=True):
        report = json.loads((out / row["policy"] / "replay_report.json").read_text())
        assert Path(event.metadata["json_report"].value) == out / row["policy"] / "replay_report.json"
        assert {k: row[k] for k in ROW_KEYS} == {k: report["horizons"]["7d"][k] for k in ROW_KEYS}
        assert row["days_replayed"] == report["days_replayed"] == 2


def test_replay_job_refuses_a_bad_policy_file_before_replaying(tmp_path, no_replay):
    bad = _write(tmp_path, {"name": "bad", "rollback": {"consecutive_failures": "three"}})
    working_area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    config = {"ops": {"replay_history": {"config": {"policies": [str(bad)]}}}}
    with dg.instance_for_test() as instance:
        result = replay_job.execute_in_process(
            run_config=config,
            instance=instance,
            resources={"price_source": PriceSource(), "working_area": working_area, "policy": PolicyResource()},
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith(f"replay: {bad}: ") and "consecutive_failures" in description
    assert not (tmp_path / "area" / "replays").exists()
