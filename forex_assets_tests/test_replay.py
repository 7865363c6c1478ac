"""Replay of history: a short synthetic replay with one injected drift, no look-ahead, bad input, a source
failing mid-replay, the CLI and the Dagster job."""

from collections import Counter
from dataclasses import replace

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from forex_assets.cli.main import cli
from forex_assets.cli.replay import replay_command
from forex_assets.core.calendar import chilean_holidays
from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.forecasting.production import target_business_days
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.triggers import TriggerPolicy
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.prices.sources import PriceSourceError
from forex_assets.core.prices.synthetic import InjectedDrift, inject_drifts, usdclp_like_series
from forex_assets.core.replay.engine import PriceProvider, ReplayError, ReplaySettings, run_replay
from forex_assets.core.replay.report import build_report, format_table, render_html
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets.defs.replay.jobs import replay_job
from forex_assets.defs.resources import PolicyResource, PriceSource, WorkingArea
from forex_assets_tests.conftest import lenient_approval

BASE = usdclp_like_series(regime_change=None, end="2025-12-31")
DAYS = pd.DatetimeIndex(BASE["date"])
START, ONSET, END = DAYS[-40], DAYS[-32], DAYS[-15]  # 26 replay days, the drift on the 9th
PRICES = inject_drifts(BASE, [InjectedDrift(ONSET, vol_multiplier=4.0)])
# a short replay needs a shorter guard than 14 days to show a drift-triggered optimization
POLICY = TriggerPolicy(min_days_between_optimizations=5, schedule_days=60)


def _settings(**changes) -> ReplaySettings:
    settings = ReplaySettings(
        start=START.date(),
        end=END.date(),
        horizons=("7d",),
        policy=PolicySettings(triggers=POLICY),
        injected_drifts=(ONSET,),
    )
    return replace(settings, **changes)


@pytest.fixture(scope="module")
def short_replay(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("replay")
    settings = _settings(
        policy=PolicySettings(triggers=POLICY, approval=lenient_approval().settings().approval)
    )  # approvals, so deploys happen too
    seen = []
    result = run_replay(PriceProvider(PRICES, "synthetic test"), settings, workdir, lambda i, n, d: seen.append(d))
    return result, build_report(result, PRICES[PRICES["date"] <= END]), seen


def test_the_drift_is_detected_and_an_optimization_runs(short_replay):
    result, report, seen = short_replay
    assert not result.partial and len(result.days) == 26 and seen == result.days
    r = report["horizons"]["7d"]
    [latency] = r["drift_latencies"]
    assert latency["onset"] == str(ONSET.date())
    assert latency["detection_latency_days"] is not None and latency["detection_latency_days"] <= 7
    assert latency["optimization_latency_days"] is not None
    drift_optimizations = [e for e in r["events"] if "drift" in e["fired"]]
    assert drift_optimizations and pd.Timestamp(drift_optimizations[0]["day"]) >= ONSET
    assert r["optimizations"] >= 1 and r["automation_rate"] == 1.0
    assert r["deploys"] >= 1  # lenient approval in this replay
    assert r["zero_downtime_share"] == 1.0  # every deployed configuration forecast the next day


def test_the_report_agrees_with_the_config_store_and_the_decision_log(short_replay):
    result, report, _ = short_replay
    r = report["horizons"]["7d"]
    log = DecisionLog(result.workdir / "trigger_decisions.sqlite").decisions("7d")
    assert r["decisions"] == len(log) == 26  # one decision per replay day
    assert r["optimizations"] == sum(d.optimize for d in log)
    fired = Counter(kind for d in log for kind in d.fired)
    assert r["triggers"] == {kind: fired.get(kind, 0) for kind in ("performance", "drift", "schedule")}
    assert [str(d.decided_on) for d in log] == [str(day.date()) for day in result.days]
    summaries = [v.summary for v in ConfigStore(result.workdir / "config_store").history("7d")]
    assert r["deploys"] == sum(s.startswith("[7d] deploy") for s in summaries)
    assert r["rollbacks"] == sum(s.startswith("[7d] rollback") for s in summaries)
    assert sum(s.startswith("[7d] baseline") for s in summaries) == 1  # the seed's measured baseline
    assert r["approvals"] == r["deploys"]
    # versions carry the replay day, not the wall clock
    deploy_days = {v.committed_at.date() for v in ConfigStore(result.workdir / "config_store").history("7d")[:-1]}
    assert deploy_days <= {day.date() for day in result.days}


def test_accuracy_of_live_static_and_random_walk_on_the_same_matured_origins(short_replay):
    result, report, _ = short_replay
    accuracy = report["horizons"]["7d"]["accuracy"]
    # origins whose 7 targets (Chilean business days) are all known by the last replay day: the 7 last ones
    # are not, nor is the one before them, whose path skips the holiday of 8 Dec 2025
    assert accuracy["origins"] == 26 - 7 - 1
    # the random walk's score, recomputed from the prices alone: each matured origin's last price against the
    # fixings of its 7 target dates
    fixings = PRICES.set_index("date")["usdclp"]
    matured = [d for d in result.days if target_business_days(d, 7)[-1] <= END]
    errors = np.concatenate(
        [fixings[pd.DatetimeIndex(target_business_days(d, 7))].to_numpy() - fixings[d] for d in matured]
    )
    assert len(matured) == accuracy["origins"]
    assert accuracy["random_walk"]["rmse_clp"] == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-9)
    for key in ("live", "static"):  # the model's forecasts: the same order of error, not the same numbers
        assert 0.5 < accuracy[key]["rmse_clp"] / accuracy["random_walk"]["rmse_clp"] < 2.0
    history = ForecastHistory(result.workdir / "forecast_history.sqlite")
    runs = history.runs("7d")
    assert [pd.Timestamp(d) for d in runs["origin_date"]] == result.days  # one forecast per day, on that day
    steps = history.steps("7d")
    first = steps[steps["origin_date"] == runs["origin_date"].iloc[0]].sort_values("step")
    actual = PRICES.set_index("date")["usdclp"][pd.DatetimeIndex(first["target_date"])].to_numpy()
    assert np.isfinite(actual).all()


def test_no_look_ahead(tmp_path):
    """The same range replayed on prices that end on its last day and on prices that go on for 60 wild
    business days after it: any step that read a price after its replay day would make them differ."""
    end = DAYS[-50]
    short = PRICES[PRICES["date"] <= end]
    future = PRICES[PRICES["date"] > end].head(60).assign(usdclp=lambda f: f["usdclp"] * 1.5)
    longer = pd.concat([short, future], ignore_index=True)
    settings = _settings(start=DAYS[-62].date(), end=end.date(), injected_drifts=())
    a = run_replay(PriceProvider(short, "ends on the last replay day"), settings, tmp_path / "a")
    b = run_replay(PriceProvider(longer, "goes on after it"), settings, tmp_path / "b")
    assert a.days == b.days and len(a.days) == 13
    log_a = DecisionLog(tmp_path / "a" / "trigger_decisions.sqlite").decisions("7d")
    log_b = DecisionLog(tmp_path / "b" / "trigger_decisions.sqlite").decisions("7d")
    assert log_a == log_b
    steps_a = ForecastHistory(tmp_path / "a" / "forecast_history.sqlite").steps("7d")
    steps_b = ForecastHistory(tmp_path / "b" / "forecast_history.sqlite").steps("7d")
    quantiles = [c for c in steps_a.columns if c.startswith("q")]
    np.testing.assert_allclose(steps_a[quantiles].to_numpy(), steps_b[quantiles].to_numpy())
    store_a = [v.summary for v in ConfigStore(tmp_path / "a" / "config_store").history("7d")]
    store_b = [v.summary for v in ConfigStore(tmp_path / "b" / "config_store").history("7d")]
    assert store_a == store_b
    assert [o.verdict for o in a.traces["7d"].optimizations] == [o.verdict for o in b.traces["7d"].optimizations]


@pytest.mark.parametrize(
    "start, end, message",
    [
        ("2030-01-01", "2030-02-01", "is outside the prices of synthetic test (2014-01-01..2025-12-31)"),
        ("2025-12-01", "2026-02-01", "is not inside the prices of synthetic test"),
        ("2025-12-10", "2025-12-01", "is empty: the start is after the end"),
        (
            "2014-03-03",
            "2014-04-01",
            "too little history before 2014-03-03: 43 business days of prices, the configurations need 374",
        ),
    ],
)
def test_bad_ranges_are_refused_before_anything_runs(tmp_path, start, end, message):
    settings = _settings(start=pd.Timestamp(start).date(), end=pd.Timestamp(end).date())
    with pytest.raises(ReplayError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_replay(PriceProvider(BASE, "synthetic test"), settings, tmp_path / "w")
    assert not (tmp_path / "w").exists()  # nothing was created


class FailingOnDay(PriceProvider):
    """A source that stops answering part-way (a network outage mid-replay)."""

    def __init__(self, prices, fail_on):
        super().__init__(prices, "flaky source")
        self.fail_on = fail_on

    def visible(self, day):
        if day >= self.fail_on:
            raise PriceSourceError(f"mindicador.cl answered 503 for {day.date()}")
        return super().visible(day)


def test_a_source_failing_mid_replay_gives_a_clearly_marked_partial_report(tmp_path):
    settings = _settings(start=DAYS[-20].date(), end=DAYS[-15].date(), injected_drifts=())
    result = run_replay(FailingOnDay(PRICES, DAYS[-17]), settings, tmp_path)
    assert result.partial and len(result.days) == 3 and result.planned_days == 6
    assert f"stopped on {DAYS[-17].date()} (3 of 6 days replayed)" in result.partial_reason
    assert "PriceSourceError: mindicador.cl answered 503" in result.partial_reason
    report = build_report(result, PRICES[PRICES["date"] <= DAYS[-18]])
    assert report["partial"] and report["days_replayed"] == 3
    table = format_table(report)
    assert table.startswith("PARTIAL REPORT: stopped on") and "3 of 6 business days" in table
    assert "<b>PARTIAL REPORT</b>" in render_html(report, PRICES)


def _replay(*args: str):
    """`forex-assets replay ARGS` in process; an exception other than an exit fails the test with its traceback."""
    return CliRunner().invoke(cli, ["replay", *args], catch_exceptions=False)


def _one_line_error(result) -> str:
    assert result.exit_code == 2 and result.stdout == "", result.output
    [line] = result.stderr.splitlines()
    return line


def test_cli_replay_writes_the_report_and_refuses_a_bad_range(tmp_path, monkeypatch):
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(tmp_path / "area"))
    args = ["--start", "2026-10-29", "--end", "2026-10-30", "--horizons", "7d", "--no-progress"]
    result = _replay(*args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "2 of 2 business days" in result.stdout and (tmp_path / "out" / "replay_report.html").exists()
    assert '"days_replayed": 2' in (tmp_path / "out" / "replay_report.json").read_text()
    line = _one_line_error(_replay("--start", "2030-01-01", "--end", "2030-02-01", "--no-progress"))
    assert line.startswith("forex-assets replay: ") and "is outside the prices of synthetic" in line


def test_cli_replay_refuses_bad_sources_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(tmp_path / "area"))
    line = _one_line_error(_replay("--source", "csv", "--no-progress"))
    assert line.startswith("forex-assets replay: --source csv needs --csv-path")
    line = _one_line_error(_replay("--source", "csv", "--csv-path", str(tmp_path / "missing.csv"), "--no-progress"))
    assert line.startswith("forex-assets replay: the price source failed: ") and "missing.csv" in line
    line = _one_line_error(_replay("--source", "csv", "--csv-path", "usdclp.csv", "--inject-drift", "2026-03-02"))
    assert line == "forex-assets replay: --inject-drift is for the synthetic source only"
    bad = _replay("--inject-drift", "2026-03-02:x")
    assert bad.exit_code == 2 and "'2026-03-02:x': expected DATE[:VOLATILITY_MULTIPLIER]" in bad.stderr
    assert not (tmp_path / "area").exists()  # refused before anything ran


def test_cli_replay_options_take_several_values_as_before():
    def parsed(*args: str) -> dict:
        return replay_command.make_context("replay", list(args)).params

    assert parsed()["horizons"] == ("7d", "15d", "30d", "90d") and parsed()["source"] == "synthetic"
    params = parsed("--horizons", "7d", "30d", "--inject-drift", "2026-03-02:2.5", "--no-progress")
    assert params["horizons"] == ("7d", "30d") and params["no_progress"]
    [drift] = params["inject_drift"]
    assert drift.onset == pd.Timestamp("2026-03-02") and drift.vol_multiplier == 2.5
    assert parsed("--horizons=15d", "90d", "--start", "2026-01-05")["horizons"] == ("15d", "90d")
    assert parsed("--horizons", "7d", "--horizons", "90d")["horizons"] == ("7d", "90d")
    assert str(parsed("--start", "2026-01-05")["start"]) == "2026-01-05"


def test_replay_job_logs_progress_and_records_the_report(tmp_path):
    working_area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    config = {"ops": {"replay_history": {"config": {"start": "2026-10-27", "end": "2026-10-30",
                                                      "horizons": ["7d"], "log_every_days": 2}}}}  # fmt: skip
    with dg.instance_for_test() as instance:
        result = replay_job.execute_in_process(
            run_config=config,
            instance=instance,
            resources={"price_source": PriceSource(), "working_area": working_area, "policy": PolicyResource()},
        )
        assert result.success
        messages = [e.message for e in instance.all_logs(result.run_id)]
        event = instance.get_latest_materialization_event(dg.AssetKey("replay_report")).asset_materialization
    assert any("replay: 2/4 days (2026-10-28)" in m for m in messages)
    assert any("replay: 4/4 days (2026-10-30)" in m for m in messages)
    assert event.metadata["days_replayed"].value == 4 and event.metadata["partial"].value is False
    [row] = event.metadata["summary"].value.records
    assert row.data["horizon"] == "7d"
    assert (tmp_path / "area" / "replays").exists()


def test_replay_job_names_a_date_that_is_not_one(tmp_path):
    working_area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    config = {"ops": {"replay_history": {"config": {"start": "2026-13-01", "horizons": ["7d"]}}}}
    with dg.instance_for_test() as instance:
        result = replay_job.execute_in_process(
            run_config=config,
            instance=instance,
            resources={"price_source": PriceSource(), "working_area": working_area, "policy": PolicyResource()},
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_failure_data.error.message.strip().endswith(
        "Failure: replay: start '2026-13-01' is not a date (YYYY-MM-DD)"
    )
    assert not (tmp_path / "area" / "replays").exists() or not any((tmp_path / "area" / "replays").iterdir())


def test_holidays_in_real_data_do_not_hide_the_accuracy(tmp_path):
    """Real data has no price on a Chilean holiday: the targets skip it (the k-th Chilean business day after
    the origin), so paths that cross one are scored all the same, each step on the fixing of its own date
    (dropping every path that crosses a holiday left 90d with no score at all). A business day without a
    price (a gap in the series) leaves the paths that target it unscored."""
    holidays = chilean_holidays(DAYS[0], DAYS[-1])  # 8 Dec 2025 inside the replay
    gap = DAYS[-31]  # a business day without a price, in the paths of the first three origins
    prices = PRICES[~PRICES["date"].isin(holidays) & (PRICES["date"] != gap)].reset_index(drop=True)
    settings = _settings(start=DAYS[-34].date(), end=DAYS[-15].date(), injected_drifts=())
    result = run_replay(PriceProvider(prices, "with holidays"), settings, tmp_path)
    accuracy = build_report(result, prices[prices["date"] <= DAYS[-15]])["horizons"]["7d"]["accuracy"]
    paths = {d: target_business_days(d, 7) for d in result.days}
    matured = [d for d, targets in paths.items() if targets[-1] <= DAYS[-15] and gap not in targets]
    assert len(result.days) == 20 - 2 and accuracy["origins"] == len(matured) == 8
    crossing = [d for d in matured if any(d < h <= paths[d][-1] for h in holidays)]
    assert crossing  # these paths cross a holiday and are scored all the same
    assert accuracy["live"]["rmse_clp"] > 0
