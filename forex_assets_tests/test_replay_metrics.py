"""What the replay report measures beyond the ADR's first metrics: the block-bootstrap interval of an RMSE
ratio (coverage on simulated errors), each deploy judged against the configuration it replaced (shadow
forecasts in the replay engine, the realised win rate in the report), rollbacks per deploy and
optimizations per year. Inputs are built by hand: no model runs here."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from forex_assets.core.band_scores import (
    breaches,
    christoffersen_independence,
    coverage,
    interval_score,
    kupiec_pof,
    mean_width_pct,
)
from forex_assets.core.calendar import BusinessCalendar
from forex_assets.core.cycle import PolicyDay
from forex_assets.core.forecasting.baselines import baseline_quantiles, random_walk_ewma_quantiles
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.history import ForecastHistory, ForecastRecord
from forex_assets.core.forecasting.production import target_business_days
from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES, MEDIAN_INDEX
from forex_assets.core.horizons import horizon_steps
from forex_assets.core.metrics import block_bootstrap_ratio_ci, weighted_quantile_loss
from forex_assets.core.monitoring.triggers import TriggerDecision
from forex_assets.core.policy import Recalibration
from forex_assets.core.replay import engine, report_stats
from forex_assets.core.replay.engine import (
    JUDGED_ORIGINS,
    DeployJudgement,
    HorizonTrace,
    Optimization,
    Replay,
    ReplayResult,
    ReplaySettings,
)
from forex_assets.core.replay.report import build_report, format_table, render_html
from forex_assets.core.replay.report_stats import (
    TARGETS,
    after_onset,
    coverage_interval,
    deploy_outcomes,
    judge_deploy,
    rmse_ratio_interval,
)
from forex_assets.core.replay.report_text import coverage_text, ratio_text
from forex_assets.core.working_area import WorkingAreaLayout

# --- after an injected drift ------------------------------------------------------------------------------


def test_the_ratio_after_an_onset_uses_only_the_origins_from_the_onset_on():
    origins = pd.bdate_range("2025-01-01", periods=100)
    static = np.ones((100, 5))
    live = np.ones((100, 5))
    live[60:] = 1.2  # the live configuration costs 20 % from the 61st origin on, nothing before
    row = after_onset(origins[60], origins, live, static, 5)
    assert row["onset"] == str(origins[60].date()) and row["origins"] == 40
    assert row["rmse_ratio_vs_static"]["ratio"] == pytest.approx(1.2)
    assert row["rmse_ratio_vs_static"]["ci_low"] == pytest.approx(1.2)  # constant errors: no spread
    late = after_onset(origins[-1] + pd.Timedelta(days=1), origins, live, static, 5)
    assert late["origins"] == 0 and late["rmse_ratio_vs_static"]["ratio"] is None


# --- the block bootstrap ----------------------------------------------------------------------------------


def test_iid_errors_with_equal_rmse_cover_one_in_about_95_percent_of_windows():
    rng = np.random.default_rng(1)
    hits = 0
    for window in range(200):
        a, b = rng.normal(size=120), rng.normal(size=120)  # equal RMSE: the true ratio is 1
        ci = block_bootstrap_ratio_ci(a, b, block=1, seed=window)
        assert ci.low <= ci.ratio <= ci.high and ci.resamples == 1000 and ci.origins == 120
        hits += ci.low <= 1.0 <= ci.high
    assert 0.90 <= hits / 200 <= 0.99


def _overlapping_paths(rng, origins: int, h: int) -> np.ndarray:
    """Errors of h-step paths from consecutive origins: cumulative sums of shared one-step shocks, so
    consecutive origins share h - 1 targets (like the replay's matured forecasts)."""
    shocks = rng.normal(size=origins + h)
    return np.array([np.cumsum(shocks[i + 1 : i + 1 + h]) for i in range(origins)])


def test_overlapping_paths_need_blocks_of_h_origins():
    rng = np.random.default_rng(2)
    h, widths, hits = 10, {1: [], 10: []}, {1: 0, 10: 0}
    for window in range(100):
        a, b = _overlapping_paths(rng, 150, h), _overlapping_paths(rng, 150, h)
        for block in (1, h):
            ci = block_bootstrap_ratio_ci(a, b, block=block, seed=window)
            widths[block].append(ci.high - ci.low)
            hits[block] += ci.low <= 1.0 <= ci.high
    assert np.mean(widths[h]) > 1.5 * np.mean(widths[1])  # dependence widens the interval ...
    assert hits[h] > hits[1] + 20  # ... and i.i.d. resampling of dependent origins under-covers badly


def test_the_bootstrap_is_seeded_and_checks_its_inputs():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 7)), 2 * rng.normal(size=(40, 7))
    first, again = block_bootstrap_ratio_ci(a, b, 7), block_bootstrap_ratio_ci(a, b, 7)
    assert first == again and first.block == 7
    assert first.ratio == pytest.approx(np.sqrt(np.mean(a**2) / np.mean(b**2)))
    assert block_bootstrap_ratio_ci(a, b, 7, seed=1) != first
    assert block_bootstrap_ratio_ci(a, b, 100).block == 40  # capped at the origins
    with pytest.raises(ValueError, match="same shape"):
        block_bootstrap_ratio_ci(a, b[:-1], 7)
    with pytest.raises(ValueError, match="at least two origins"):
        block_bootstrap_ratio_ci(a[:1], b[:1], 1)


def test_the_report_ratio_has_an_interval_only_with_two_blocks_of_origins():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(30, 7)), rng.normal(size=(30, 7))
    ratio = rmse_ratio_interval(a, b, 7)
    assert ratio["block"] == 7 and ratio["resamples"] == 1000
    assert ratio["ci_low"] <= ratio["ratio"] <= ratio["ci_high"]
    short = rmse_ratio_interval(a[:13], b[:13], 7)
    assert short["ratio"] == pytest.approx(np.sqrt(np.mean(a[:13] ** 2) / np.mean(b[:13] ** 2)))
    assert "ci_low" not in short and short["note"] == "no interval on 13 origins: fewer than two blocks of 7"


# --- deploys judged in the report -------------------------------------------------------------------------

DATES = pd.bdate_range("2025-01-01", periods=60)
PRICES = pd.DataFrame({"date": DATES, "usdclp": 900.0 + np.arange(60.0)})
STEPS = 7  # the 7d horizon
SPREAD = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])


def _quantiles(origin: pd.Timestamp, offset: float, prices: pd.DataFrame = PRICES) -> np.ndarray:
    """A forecast whose median misses each target's price by ``offset`` (targets without a price: 0)."""
    observed = prices.set_index("date")["usdclp"]
    targets = target_business_days(origin, STEPS)
    median = np.array([observed.get(t, 0.0) + offset for t in targets])
    return median[:, None] + SPREAD


def _judgement(version: str, origins, live_offset: float, shadow_offset: float, end_reason="collected", **kw):
    config = ChronosConfig(
        horizon="7d", checkpoint="bundled:usdclp-chronos2-mini", family="chronos2", context_length=64
    )
    judgement = DeployJudgement(version, f"before-{version}", origins[0], config, end_reason=end_reason)
    for origin in origins:
        judgement.live[origin] = _quantiles(origin, live_offset, **kw)
        judgement.shadow[origin] = _quantiles(origin, shadow_offset, **kw)
    return judgement


def _trace_with(*judgements: DeployJudgement) -> HorizonTrace:
    trace = HorizonTrace("7d")
    for j in judgements:
        trace.optimizations.append(Optimization("7d", j.day, ("drift",), {}, "approved", deployed_version=j.version))
        trace.deploy_judgements[j.version] = j
    return trace


def test_a_deploy_exactly_better_on_its_matured_origins_wins():
    judgement = _judgement("v1", list(DATES[10:30]), live_offset=1.0, shadow_offset=3.0)
    row = judge_deploy(judgement, PRICES, "7d")
    assert row["matured"] == 20 and row["origins"] == 20 and row["verdict"] == "win"
    assert row["rmse_deploy_clp"] == pytest.approx(1.0) and row["rmse_replaced_clp"] == pytest.approx(3.0)
    outcome = deploy_outcomes(_trace_with(judgement), PRICES)
    assert outcome["realised_win_rate"] == 1.0 and outcome["deploys_judged"] == 1 and outcome["deploy_wins"] == 1


def test_a_deploy_worse_than_the_configuration_it_replaced_loses():
    judgement = _judgement("v1", list(DATES[10:30]), live_offset=-2.5, shadow_offset=0.5)
    outcome = deploy_outcomes(_trace_with(judgement), PRICES)
    assert outcome["realised_win_rate"] == 0.0 and outcome["deploy_judgements"][0]["verdict"] == "loss"


def test_a_deploy_with_the_same_medians_ties_and_a_tie_is_not_a_win():
    judgement = _judgement("v1", list(DATES[10:30]), live_offset=1.5, shadow_offset=1.5)
    outcome = deploy_outcomes(_trace_with(judgement), PRICES)
    assert outcome["deploy_judgements"][0]["verdict"] == "tie"
    assert outcome["realised_win_rate"] == 0.0 and outcome["deploys_judged"] == 1


def test_a_deploy_is_also_judged_on_the_whole_distribution():
    """Same medians, the deploy's band right where the replaced one's is three times too wide: a tie on RMSE,
    a win on the weighted quantile loss (what the distribution's approval path promised)."""
    judgement = _judgement("v1", list(DATES[10:30]), live_offset=0.0, shadow_offset=0.0)
    for origin in judgement.shadow:  # the replaced band: offsets from the median tripled
        shadow = judgement.shadow[origin]
        judgement.shadow[origin] = shadow[:, [2]] + 3.0 * (shadow - shadow[:, [2]])
    row = judge_deploy(judgement, PRICES, "7d")
    assert row["verdict"] == "tie" and row["verdict_wql"] == "win"
    y = np.concatenate([_quantiles(o, 0.0)[:, 2] for o in DATES[10:30]])
    live = np.concatenate([judgement.live[o] for o in DATES[10:30]])
    assert row["wql_deploy"] == pytest.approx(weighted_quantile_loss(live[None], y[None], FORECAST_QUANTILES))
    outcome = deploy_outcomes(_trace_with(judgement), PRICES)
    assert outcome["realised_win_rate"] == 0.0 and outcome["realised_win_rate_wql"] == 1.0


def test_only_matured_origins_count_and_the_share_is_over_deploys_judged():
    # v1: better on its 11 matured origins (the paths of DATES[42:53] end by DATES[59]), far worse on 6 not matured
    matured, unmatured = list(DATES[42:53]), list(DATES[53:59])
    v1 = _judgement("v1", matured, 1.0, 2.0)
    for origin in unmatured:
        v1.live[origin], v1.shadow[origin] = _quantiles(origin, 50.0), _quantiles(origin, 0.0)
    v2 = _judgement("v2", list(DATES[20:25]), 3.0, 2.0, end_reason="replaced")  # worse: a loss
    # v3: rolled back on its second day, before any of its origins matured: not judged
    v3 = _judgement("v3", list(DATES[57:59]), 0.0, 9.0, end_reason="rolled back")
    outcome = deploy_outcomes(_trace_with(v1, v2, v3), PRICES)
    rows = {r["version"]: r for r in outcome["deploy_judgements"]}
    assert rows["v1"]["matured"] == 11 and rows["v1"]["origins"] == 17 and rows["v1"]["verdict"] == "win"
    assert rows["v2"]["verdict"] == "loss" and rows["v2"]["followed_until"] == "replaced"
    assert rows["v3"] == {**rows["v3"], "matured": 0, "verdict": "not judged", "followed_until": "rolled back"}
    assert rows["v3"]["rmse_deploy_clp"] is None
    assert outcome["deploys_judged"] == 2 and outcome["deploys_not_judged"] == 1
    assert outcome["realised_win_rate"] == 0.5


def test_a_deploy_without_a_judgement_or_rolled_back_at_once_is_not_judged():
    rolled_back = _judgement("v1", [DATES[58]], 0.0, 5.0, end_reason="rolled back")
    trace = _trace_with(rolled_back)
    trace.optimizations.append(Optimization("7d", DATES[59], (), {}, "approved", deployed_version="v2"))
    outcome = deploy_outcomes(trace, PRICES)
    assert outcome["realised_win_rate"] is None and outcome["deploys_judged"] == 0
    assert outcome["deploys_not_judged"] == 2
    assert [r["followed_until"] for r in outcome["deploy_judgements"]] == ["rolled back", "not followed"]


def test_targets_without_a_price_are_left_out_of_the_judgement():
    holiday = DATES[15]
    prices = PRICES[PRICES["date"] != holiday].reset_index(drop=True)
    judgement = _judgement("v1", list(DATES[10:14]), 1.0, 2.0, prices=prices)
    for origin in judgement.live:  # the deploy is wildly off on the holiday, which has no price to score
        targets = target_business_days(origin, STEPS)
        judgement.live[origin][targets.index(holiday)] += 1000.0
    row = judge_deploy(judgement, prices, "7d")
    assert row["matured"] == 4 and row["verdict"] == "win"
    assert row["rmse_deploy_clp"] == pytest.approx(1.0) and row["rmse_replaced_clp"] == pytest.approx(2.0)


# --- the report's new figures -----------------------------------------------------------------------------


def _result(tmp_path) -> ReplayResult:
    days = list(DATES[:50])
    settings = ReplaySettings(start=days[0].date(), end=days[-1].date(), horizons=("7d",))
    trace = _trace_with(
        _judgement("v1", list(DATES[5:25]), 1.0, 2.0),
        _judgement("v2", list(DATES[30:40]), 1.0, 0.5, end_reason="rolled back"),
    )
    trace.optimizations.append(
        Optimization("7d", DATES[45], ("schedule",), {}, "rejected", failed_criteria=("accuracy_improves",))
    )
    trace.rollbacks.append((DATES[40], "v2", "RMSE above 1.5x the baseline"))
    trace.decisions = [TriggerDecision("7d", d.date(), False, (), (), {}, False) for d in days]
    return ReplayResult(settings, "hand-made", days, len(days), {"7d": trace}, tmp_path, seconds=1.0)


def test_rollbacks_per_deploy_optimizations_per_year_and_win_rate_reach_every_output(tmp_path):
    report = build_report(_result(tmp_path), PRICES[PRICES["date"] <= DATES[49]])
    r = report["horizons"]["7d"]
    assert r["deploys"] == 2 and r["rollbacks"] == 1 and r["rollbacks_per_deploy"] == 0.5
    assert r["optimizations_per_year"] == pytest.approx(3 / (50 / 252))
    assert r["realised_win_rate"] == 0.5 and r["deploys_judged"] == 2 and r["deploy_wins"] == 1
    assert report["judged_origins_per_deploy"] == JUDGED_ORIGINS == 20
    assert TARGETS["realised_win_rate"] == (">=", 0.60) and TARGETS["rollbacks_per_deploy"] == ("<=", 0.20)
    assert report["targets"]["realised_win_rate"] == ">= 0.6"
    assert r["events"][-1]["failed_criteria"] == ["accuracy_improves"]  # why each optimization was rejected
    for key in ("triggers", "automation_rate", "improvement_share", "false_positive_rate_rmse", "accuracy", "events"):
        assert key in r  # the keys other code reads are still there

    table = format_table(report)
    assert "win rate" in table and "rollb/depl" in table and "live/static [95 % CI]" in table
    [row] = [line for line in table.splitlines() if line.startswith("7d") and "50 %" in line]
    assert row.split()[:7] == ["7d", "2", "2", "0", "50", "%", "0.50"]

    page = render_html(report, PRICES)
    assert "Deploys against the configuration they replaced" in page and "realised win rate" in page
    headline = page[page.index('id="headline"') : page.index("</table>", page.index('id="headline"'))]
    assert "live / static [95 % CI]" in headline and '<td class="num pass">50 %' not in headline
    assert '<td class="num fail">50 %</td>' in headline  # win rate below the 60 % target
    assert '<td class="num fail">0.50</td>' in headline  # rollbacks per deploy above 0.20


# --- shadow forecasts in the replay engine ----------------------------------------------------------------


def _config(context: int) -> ChronosConfig:
    return ChronosConfig(
        horizon="7d", checkpoint="bundled:usdclp-chronos2-mini", family="chronos2", context_length=context
    )


CONFIGS = {"seed": _config(64), "P": _config(96), "N": _config(128), "N2": _config(160)}


class FakeStore:
    def __init__(self, current: str):
        self.current = current

    def read(self, horizon: str, version: str | None = None) -> ChronosConfig:
        return CONFIGS[version or self.current]

    def current_version(self, horizon: str):
        return SimpleNamespace(id=self.current)


def _record(day: pd.Timestamp, version: str, offset: float) -> ForecastRecord:
    config = CONFIGS[version if version in CONFIGS else "P"]
    return ForecastRecord("7d", day, 900.0, target_business_days(day, STEPS), _quantiles(day, offset), version,
                          config.checkpoint, config.model_dump(mode="json", exclude_none=True), 0.01)  # fmt: skip


@pytest.fixture
def replay(monkeypatch):
    made = []

    def fake_make_forecast(prices, config, version, calendar):
        assert calendar is replay.settings.calendar  # the shadow forecast targets the pair's business days
        made.append((pd.Timestamp(prices["date"].iloc[-1]), config.context_length, version))
        return _record(pd.Timestamp(prices["date"].iloc[-1]), version, 7.0)

    monkeypatch.setattr(engine, "make_forecast", fake_make_forecast)
    replay = object.__new__(Replay)  # only what the deploy judgement reads: the store, the seeds, the calendar
    replay.store, replay.seeds = FakeStore("P"), {"7d": CONFIGS["seed"]}
    replay.settings = ReplaySettings(start=DATES[0].date(), end=DATES[-1].date(), calendar=BusinessCalendar(("BR",)))
    replay.made = made
    return replay


def _day(replay, trace, day, forecast, refreshed=(), deployed=None, previous=None, rollback=None):
    outcome = PolicyDay("7d", day, forecast=forecast, rollback=rollback, refreshed_forecasts=list(refreshed))
    if deployed is not None:
        outcome.recalibration = Recalibration("7d", "approved", previous_version=previous,
                                              deployed_version=SimpleNamespace(id=deployed))  # fmt: skip
    replay._judge_deploys(trace, day, PRICES[PRICES["date"] <= day], outcome)


def test_a_deploy_is_followed_with_shadow_forecasts_until_it_is_rolled_back(replay):
    trace, d = HorizonTrace("7d"), DATES[30:35]
    before, after = _record(d[0], "P", 2.0), _record(d[0], "N", 1.0)
    replay.store.current = "N"  # deployed on d0: the day's forecast was P's, then N forecast again
    _day(replay, trace, d[0], before, [after], deployed="N", previous="P")
    [judgement] = trace.deploy_judgements.values()
    assert (judgement.version, judgement.replaced_version, judgement.day) == ("N", "P", d[0])
    assert judgement.live[d[0]] is after.quantiles and judgement.shadow[d[0]] is before.quantiles
    assert replay.made == []  # the day already had P's forecast: no shadow forecast made

    _day(replay, trace, d[1], _record(d[1], "N", 1.0))
    assert replay.made == [(d[1], 96, "shadow")]  # P's configuration in shadow, under version "shadow"
    assert trace.shadow_forecasts["N"][d[1]][:, 2] == pytest.approx(_quantiles(d[1], 7.0)[:, 2])

    replay.store.current = "R"  # rolled back on d2 after N's forecast; the restored P forecast again
    restored = _record(d[2], "R", 2.0)  # a new version id, P's configuration
    _day(replay, trace, d[2], _record(d[2], "N", 1.0), [restored], rollback=("N", "RMSE above 1.5x"))
    assert judgement.shadow[d[2]] is restored.quantiles and len(replay.made) == 1
    assert (judgement.end_reason, judgement.ended) == ("rolled back", d[2]) and sorted(judgement.live) == list(d[:3])

    _day(replay, trace, d[3], _record(d[3], "R", 2.0))
    assert len(replay.made) == 1 and len(judgement.live) == 3  # no shadow once the judgement is closed


def test_shadow_cost_is_bounded_and_a_later_deploy_closes_the_earlier(replay):
    trace, d = HorizonTrace("7d"), DATES[10:45]
    replay.store.current = "N"
    trace.static_forecasts = {day: _quantiles(day, 3.0) for day in d}
    _day(replay, trace, d[0], _record(d[0], "seed", 3.0), [_record(d[0], "N", 1.0)], deployed="N", previous="seed")
    for day in d[1 : JUDGED_ORIGINS + 3]:
        _day(replay, trace, day, _record(day, "N", 1.0))
    judgement = trace.deploy_judgements["N"]
    assert len(judgement.live) == len(judgement.shadow) == JUDGED_ORIGINS
    assert (judgement.end_reason, judgement.ended) == ("collected", d[JUDGED_ORIGINS - 1])
    assert replay.made == []  # the replaced configuration is the seed: the static reference is its forecast

    replay.store.current, day = "N2", d[30]  # N2 replaces N; N2 is followed against N
    _day(replay, trace, day, _record(day, "N", 1.0), [_record(day, "N2", 0.5)], deployed="N2", previous="N")
    _day(replay, trace, d[31], _record(d[31], "N2", 0.5))
    assert trace.deploy_judgements["N2"].replaced_version == "N" and replay.made == [(d[31], 128, "shadow")]

    open_ = DeployJudgement("X", "N", d[0], CONFIGS["N"])
    trace.deploy_judgements["X"] = open_  # a deploy still followed when another version takes over
    _day(replay, trace, d[32], _record(d[32], "N2", 0.5))
    assert (open_.end_reason, open_.ended, open_.live) == ("replaced", d[32], {})


# --- the whole distribution: baselines' bands, WQL ratios, breach tests (issue 23) ---------------------------

BAND_DATES = pd.bdate_range("2023-01-02", periods=345)  # weekdays: Chilean holidays have a price too
BAND_PRICES = pd.DataFrame(
    {"date": BAND_DATES, "usdclp": 900.0 * np.exp(np.cumsum(np.random.default_rng(7).normal(0, 0.006, 345)))}
)
BAND_DAYS = list(BAND_DATES[-45:])  # 45 replay days, 300 prices of history before the first
LEVELS = FORECAST_QUANTILES


def _scaled_band(origin_index: int, steps: int, scale: float) -> np.ndarray:
    """The EWMA band around the last price, its spread scaled by ``scale``, its median 2 CLP above."""
    band = random_walk_ewma_quantiles(BAND_PRICES["usdclp"].to_numpy()[: origin_index + 1], steps, LEVELS)
    median = band[:, MEDIAN_INDEX : MEDIAN_INDEX + 1]
    return median + 2.0 + scale * (band - median)


def _band_result(tmp_path) -> ReplayResult:
    """A replay of 7d and 15d whose live forecasts (recorded in the forecast history) are the EWMA band 1.5x
    as wide and whose static ones are 0.7x as wide, both 2 CLP high."""
    history = ForecastHistory(WorkingAreaLayout.in_directory(tmp_path).forecast_history)
    traces = {}
    for horizon in ("7d", "15d"):
        steps, trace = horizon_steps(horizon), HorizonTrace(horizon)
        for day in BAND_DAYS:
            i = int(BAND_DATES.get_loc(day))
            record = ForecastRecord(horizon, day, float(BAND_PRICES["usdclp"].iloc[i]),
                                    target_business_days(day, steps), _scaled_band(i, steps, 1.5), "v0", "test",
                                    {}, 0.01)  # fmt: skip
            history.record(record)
            trace.static_forecasts[day] = _scaled_band(i, steps, 0.7)
        traces[horizon] = trace
    settings = ReplaySettings(start=BAND_DAYS[0].date(), end=BAND_DAYS[-1].date(), horizons=("7d", "15d"))
    return ReplayResult(settings, "hand-made bands", BAND_DAYS, len(BAND_DAYS), traces, tmp_path, seconds=1.0)


def _matured(horizon: str) -> tuple[list[pd.Timestamp], np.ndarray]:
    """The origins whose every target is priced by the last replay day, and their (n, h) actuals."""
    steps, observed = horizon_steps(horizon), BAND_PRICES.set_index("date")["usdclp"]
    origins = [d for d in BAND_DAYS if target_business_days(d, steps)[-1] <= BAND_DAYS[-1]]
    actuals = np.array([observed[pd.DatetimeIndex(target_business_days(d, steps))].to_numpy() for d in origins])
    return origins, actuals


@pytest.fixture(scope="module")
def band_report(tmp_path_factory):
    """The report of the replay above, with the GARCH band on every third replay day (GARCH_MAX_ORIGINS 15),
    and every baseline call it made."""
    calls = []

    def counted(name, values, origins, steps, levels):
        calls.append((name, tuple(int(o) for o in origins), steps))
        return baseline_quantiles(name, values, origins, steps, levels)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report_stats, "GARCH_MAX_ORIGINS", 15)
        patch.setattr(report_stats, "baseline_quantiles", counted)
        result = _band_result(tmp_path_factory.mktemp("bands"))
        report = build_report(result, BAND_PRICES)
    return result, report, calls


def _expected_figures(quantiles: np.ndarray, actuals: np.ndarray) -> dict[str, float]:
    low, high = quantiles[..., 0], quantiles[..., -1]
    return {
        "origins_scored": len(actuals),
        "rmse_clp": float(np.sqrt(np.mean((quantiles[..., MEDIAN_INDEX] - actuals) ** 2))),
        "wql": weighted_quantile_loss(quantiles, actuals, LEVELS),
        "interval_score_95": interval_score(low, high, actuals, alpha=0.05),
        "coverage_95": coverage(low, high, actuals),
        "coverage_80": coverage(quantiles[..., 1], quantiles[..., 3], actuals),
        "width_95_pct": mean_width_pct(low, high, actuals),
    }


@pytest.mark.parametrize("horizon", ["7d", "15d"])
def test_each_forecasters_block_is_the_band_scores_on_the_same_arrays(band_report, horizon):
    _, report, _ = band_report
    acc = report["horizons"][horizon]["accuracy"]
    steps = horizon_steps(horizon)
    origins, actuals = _matured(horizon)
    index = [int(BAND_DATES.get_loc(d)) for d in origins]
    live = np.stack([_scaled_band(i, steps, 1.5) for i in index])
    static = np.stack([_scaled_band(i, steps, 0.7) for i in index])
    values = BAND_PRICES["usdclp"].to_numpy()
    assert acc["origins"] == len(origins) == len(BAND_DAYS) - steps
    expected = {
        "live": _expected_figures(live, actuals),
        "static": _expected_figures(static, actuals),
        # the baselines' bands from the prices up to each origin (the 7d ones sliced from the 15 steps asked)
        "ewma_band": _expected_figures(baseline_quantiles("ewma_band", values, index, steps, LEVELS), actuals),
        "historical_band": _expected_figures(
            baseline_quantiles("historical_band", values, index, steps, LEVELS), actuals
        ),
    }
    for name, figures in expected.items():
        assert {k: acc[name][k] for k in figures} == pytest.approx(figures, rel=1e-12), name
    # the widened live band covers more and scores better than the narrowed static one on this random walk
    assert acc["live"]["coverage_95"] > acc["static"]["coverage_95"]
    walk = acc["random_walk"]
    errors = values[index][:, None] - actuals
    assert walk["rmse_clp"] == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-12)
    assert [walk[k] for k in ("wql", "interval_score_95", "coverage_95", "coverage_80", "width_95_pct")] == [None] * 5

    # WQL ratios: the ratio of the two WQLs on the same origins, its interval around it, blocks of h origins
    for name in ("ewma_band", "static"):
        other = static if name == "static" else baseline_quantiles(name, values, index, steps, LEVELS)
        ratio = acc[f"wql_ratio_vs_{name}"]
        wql_ratio = weighted_quantile_loss(live, actuals, LEVELS) / weighted_quantile_loss(other, actuals, LEVELS)
        assert ratio["ratio"] == pytest.approx(wql_ratio, rel=1e-12)
        assert ratio["ci_low"] <= ratio["ratio"] <= ratio["ci_high"] and ratio["ci_low"] < ratio["ci_high"]
        assert (ratio["block"], ratio["origins"], ratio["resamples"]) == (steps, len(origins), 1000)

    # the live 95 % band's breaches at step 1, origins in date order
    flags = breaches(live[:, 0, 0], live[:, 0, -1], actuals[:, 0])
    tests = acc["breach_tests_95_live"]
    assert (tests["observations"], tests["breaches"]) == (len(origins), int(flags.sum()))
    assert tests["kupiec_pof_p_value"] == kupiec_pof(flags, 0.05).p_value
    assert tests["christoffersen_independence_p_value"] == christoffersen_independence(flags).p_value

    # the live coverage with its block-bootstrap interval: the pooled coverage, an interval around it
    interval = acc["coverage_95_live_interval"]
    assert interval["coverage"] == pytest.approx(acc["live"]["coverage_95"], rel=1e-12)
    assert interval["ci_low"] <= interval["coverage"] <= interval["ci_high"]  # the widened band may cover all
    assert (interval["block"], interval["origins"]) == (steps, len(origins))


def test_the_coverage_interval_holds_the_true_coverage_of_a_known_band_and_narrows_with_more_origins():
    # a band built to cover 90 % of independent standard normal targets: the interval contains 0.90, and on
    # four times the origins it is about half as wide
    rng = np.random.default_rng(5)
    z = 1.6448536269514722  # the 95th percentile: [-z, z] holds 90 %
    widths = []
    for origins in (400, 1600):
        actuals = rng.normal(size=(origins, 5))
        quantiles = np.zeros((origins, 5, len(LEVELS)))
        quantiles[..., 0], quantiles[..., -1] = -z, z
        interval = coverage_interval(quantiles, actuals, block=5)
        assert interval["ci_low"] < 0.90 < interval["ci_high"]
        assert interval["coverage"] == pytest.approx(np.mean(np.abs(actuals) <= z), rel=1e-12)
        widths.append(interval["ci_high"] - interval["ci_low"])
    assert 0.35 < widths[1] / widths[0] < 0.7
    few = coverage_interval(quantiles[:9], actuals[:9], block=5)
    assert "ci_low" not in few and "fewer than two blocks of 5" in few["note"]
    assert few["coverage"] == pytest.approx(np.mean(np.abs(actuals[:9]) <= z), rel=1e-12)


def test_the_garch_band_is_fitted_once_per_origin_on_every_third_day_for_the_longest_horizon(band_report):
    _, report, calls = band_report
    values = BAND_PRICES["usdclp"].to_numpy()
    every_third = set(BAND_DAYS[::3])  # 45 days over GARCH_MAX_ORIGINS 15
    garch = [c for c in calls if c[0] == "garch_band"]
    matured_7d, _ = _matured("7d")  # 15d's matured origins are among 7d's
    assert sorted(o for _, (o,), _ in garch) == sorted(BAND_DATES.get_loc(d) for d in matured_7d if d in every_third)
    assert {steps for *_, steps in calls} == {15}  # computed once for 15d, sliced for 7d
    assert len({c[:2] for c in calls}) == len(calls)  # never twice for the same origin
    for horizon in ("7d", "15d"):
        steps = horizon_steps(horizon)
        acc = report["horizons"][horizon]["accuracy"]
        origins, actuals = _matured(horizon)
        scored = np.array([d in every_third for d in origins])
        index = [int(BAND_DATES.get_loc(d)) for d, s in zip(origins, scored, strict=True) if s]
        quantiles = baseline_quantiles("garch_band", values, index, 15, LEVELS)[:, :steps]
        figures = _expected_figures(quantiles, actuals[scored])
        assert {k: acc["garch_band"][k] for k in figures} == pytest.approx(figures, rel=1e-12)
        assert acc["garch_band"]["origin_spacing_days"] == 3 and acc["ewma_band"]["origin_spacing_days"] == 1
        ratio = acc["wql_ratio_vs_garch_band"]
        live = np.stack([_scaled_band(i, steps, 1.5) for i in index])
        wql_ratio = weighted_quantile_loss(live, actuals[scored], LEVELS) / figures["wql"]
        assert ratio["ratio"] == pytest.approx(wql_ratio, rel=1e-12) and ratio["origins"] == scored.sum()
        assert ratio["block"] == -(-steps // 3)  # origins 3 days apart: blocks spanning h business days


def test_the_text_and_html_reports_show_the_distribution_table(band_report):
    _, report, _ = band_report
    acc = report["horizons"]["7d"]["accuracy"]
    table = format_table(report)
    section = table[table.index("7d: the whole distribution") : table.index("15d: the whole distribution")]
    rows = {line[:17].strip(): line[17:].split() for line in section.splitlines()[3:9]}
    live = acc["live"]
    assert rows["live policy"][:4] == [
        str(acc["origins"]), f"{live['rmse_clp']:.2f}", f"{live['wql']:.5f}", f"{live['interval_score_95']:.2f}"
    ]  # fmt: skip
    assert rows["random walk"][2:] == ["n/a"] * 5
    assert rows["GARCH band"][0] == str(acc["garch_band"]["origins_scored"])
    assert f"live / EWMA band {ratio_text(acc['wql_ratio_vs_ewma_band'])}" in section
    tests = acc["breach_tests_95_live"]
    assert f"Kupiec POF p {tests['kupiec_pof_p_value']:.3f}" in section
    interval = acc["coverage_95_live_interval"]
    assert (
        f"live 95 % coverage {coverage_text(interval['coverage'])} [{coverage_text(interval['ci_low'])}, "
        f"{coverage_text(interval['ci_high'])}]" in section
    )
    assert "GARCH band: one origin every 3 replay days" in section

    page = render_html(report, BAND_PRICES)
    section = page[page.index('id="horizon-7d"') : page.index('id="horizon-15d"')]
    assert "<th>EWMA band</th>" in section and "<th>historical band</th>" in section
    assert f'<td class="num">{live["wql"]:.5f}</td>' in section
    assert f'<td class="num">{ratio_text(acc["wql_ratio_vs_garch_band"])}</td>' in section
    assert f"{acc['garch_band']['origins_scored']} (every 3 days)" in section
    assert "wql ratio vs" not in section  # no block left to the catch-all table
