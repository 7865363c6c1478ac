"""HTML outputs rendered from the Jinja2 templates (forex_assets/templates/): values from data are escaped in
every renderer, the replay report reads as tables (headline first, no JSON in cells) and its timeline stays
legible over years. Inputs are built by hand: no model runs here."""

import base64
import io
import re
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle
from PIL import Image

from forex_assets.core.alerting.messages import rollback_executed, run_failed
from forex_assets.core.backtest.engine import BacktestResult
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.monitoring.triggers import TriggerDecision
from forex_assets.core.prices.synthetic import usdclp_like_series
from forex_assets.core.recalibration.report_html import render_validation_html
from forex_assets.core.recalibration.validation import build_report as build_validation_report
from forex_assets.core.replay.engine import HorizonTrace, Optimization, ReplayResult, ReplaySettings
from forex_assets.core.replay.report import build_report, render_html
from forex_assets.core.replay.report_plots import event_counts, timeline_events, timeline_figure, timeline_frequency
from forex_assets.core.templates import render

SCRIPT = "<script>alert('x')</script>"
PRICES = usdclp_like_series(regime_change=None, end="2025-12-31")


def _escaped(page: str) -> bool:
    return "<script" not in page.lower() and "&lt;script&gt;" in page


# --- fake inputs ----------------------------------------------------------------------------------------


def _trace(horizon: str, days: list[pd.Timestamp], every: int, reason: str, error: str) -> HorizonTrace:
    """An optimization every ``every`` replay days (every 5th approved and deployed, every 7th an error),
    a rollback every 250 days from the first third and a HIGH drift report from day 300."""
    trace = HorizonTrace(horizon)
    for i, day in enumerate(days):
        optimize = i % every == every - 1
        fired = ("schedule",) if optimize else ()
        trace.decisions.append(TriggerDecision(horizon, day.date(), optimize, fired, (), {}, False))
        if not optimize:
            continue
        n = len(trace.optimizations)
        verdict = "approved" if n % 5 == 4 else "error" if n % 7 == 6 else "rejected"
        version = f"v{day:%Y%m%d}-{horizon}" if verdict == "approved" else None
        trace.optimizations.append(
            Optimization(
                horizon,
                day,
                fired,
                {"rmse": 4.0 + n % 30, "skill": 2.0},
                verdict=verdict,
                error=error if verdict == "error" else "",
                rmse_improvement_pct=None if verdict == "error" else -3.0 + n % 9,
                mape_improvement_pct=None if verdict == "error" else 1.0,
                deployed_version=version,
                seconds=0.5,
            )
        )
        if version:
            trace.forecast_ok[version] = [True]
    trace.rollbacks = [(day, "v-previous", reason) for day in days[len(days) // 3 :: 250]]
    trace.drift_severity = {day: "HIGH" for day in days[300:310]}
    return trace


def _result(tmp_path, start, end, horizons=("7d", "30d"), every=12, source="synthetic test", reason="RMSE high"):
    days = list(pd.DatetimeIndex(PRICES["date"])[(PRICES["date"] >= start) & (PRICES["date"] <= end)])
    settings = ReplaySettings(
        start=pd.Timestamp(start).date(),
        end=pd.Timestamp(end).date(),
        horizons=tuple(horizons),
        injected_drifts=(days[min(300, len(days) - 1)],),
    )
    traces = {h: _trace(h, days, every, reason, error=f"SearchError: {reason}") for h in horizons}
    return ReplayResult(settings, source, days, len(days), traces, tmp_path, seconds=12.5)


def _report(tmp_path, start="2018-01-02", end="2024-12-31", **kwargs) -> dict:
    """A replay report through the real ``build_report`` (no forecast history: no matured origins)."""
    result = _result(tmp_path, start, end, **kwargs)
    return build_report(result, PRICES[PRICES["date"] <= pd.Timestamp(end)])


def _with_accuracy(report: dict, horizon: str) -> dict:
    """``horizon`` with the accuracy block a replay with matured forecasts has (nested dicts)."""
    report["horizons"][horizon]["accuracy"] = {
        "origins": 516,
        "live": {"rmse_clp": 10.127, "mape_pct": 0.899, "coverage_95": 0.959},
        "static": {"rmse_clp": 9.748, "mape_pct": 0.862, "coverage_95": 0.957},
        "random_walk": {"rmse_clp": 9.487, "mape_pct": 0.834, "coverage_95": None},
        "diebold_mariano_vs_static": {"statistic": 2.713, "p_value": 0.0069},
        "diebold_mariano_vs_random_walk": {"note": "not computable on 3 origins (singular)"},
    }
    return report


def _backtest(config: ChronosConfig, offset: float, n: int = 30, steps: int = 7) -> BacktestResult:
    rng = np.random.default_rng(7)
    actuals = 900 + np.cumsum(rng.normal(0, 3, (n, steps)), axis=1)
    median = actuals + rng.normal(offset, 4, (n, steps))
    quantiles = np.stack([median - 8, median - 4, median, median + 4, median + 8], axis=-1)
    return BacktestResult(
        config=config,
        origin_dates=list(pd.bdate_range("2025-01-01", periods=n)),
        quantiles=quantiles,
        actuals=actuals,
        last_prices=actuals[:, 0] - 1,
        scales=np.full(n, 3.0),
        seconds_per_forecast=0.01,
        computed=n,
        cached=0,
    )


class Cells(HTMLParser):
    """Text of every <td> (nested cells included in their parent's text) and the first cell of each row
    of the first table."""

    def __init__(self):
        super().__init__()
        self.open: list[list[str]] = []
        self.cells: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "td":
            self.open.append([])

    def handle_endtag(self, tag):
        if tag == "td" and self.open:
            text = "".join(self.open.pop())
            self.cells.append(text)
            if self.open:
                self.open[-1].append(text)

    def handle_data(self, data):
        if self.open:
            self.open[-1].append(data)


def _td_texts(page: str) -> list[str]:
    parser = Cells()
    parser.feed(page)
    return parser.cells


# --- autoescape in the three renderers -------------------------------------------------------------------


def test_the_environment_escapes_every_value():
    page = render("alert.html.j2", subject=SCRIPT, intro=SCRIPT, rows=[(SCRIPT, SCRIPT)], notes=[SCRIPT])
    assert _escaped(page) and page.count("&lt;script&gt;") == 6  # title, heading, intro, row twice, note


def test_the_validation_report_escapes_its_horizon_and_version():
    config = ChronosConfig(
        horizon="7d", checkpoint="bundled:usdclp-chronos2-mini", family="chronos2", context_length=64
    )
    candidate, deployed = _backtest(config, 0.5), _backtest(config, 2.0)
    report = build_validation_report("7d", candidate, deployed, "abc123", ("2024-01-02", "2024-12-02"), 0.01, 0.01)
    report = replace(report, horizon=SCRIPT, deployed_version=f"v1 {SCRIPT}")
    page = render_validation_html(report, candidate, deployed)
    assert _escaped(page) and page.count("&lt;script&gt;") == 3  # title, heading, deployed version
    assert "Approval criteria" in page and page.count('src="data:image/png;base64,') == 2
    for criterion in report.criteria:
        escaped = criterion.description.replace(">", "&gt;").replace("<", "&lt;").replace("'", "&#39;")
        assert escaped in page
    assert f"{report.candidate_window['rmse_clp']:.4g}" in page  # the metric table carries the numbers
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # self-contained


def test_alerts_escape_their_horizon_and_reason():
    alert = rollback_executed(SCRIPT, f"RMSE above 1.5x the baseline {SCRIPT}", "20260101", "20251201", "20260102")
    assert _escaped(alert.html)
    assert '<th style="text-align:left;padding-right:1em">reason</th>' in alert.html
    assert "v20251201" in alert.html and SCRIPT in alert.text  # the plain text is not HTML
    failed = run_failed("nightly", "0123456789abcdef", "7d", [f"KeyError: {SCRIPT}"], what="a -> b")
    assert _escaped(failed.html) and "a -&gt; b" in failed.html


def test_the_replay_report_escapes_source_horizon_and_reasons(tmp_path):
    report = _report(
        tmp_path, "2025-03-03", "2025-06-30", horizons=("7d", SCRIPT), source=f"csv {SCRIPT}", reason=SCRIPT
    )
    assert report["horizons"][SCRIPT]["rollback_reasons"]  # the reason reaches the report ...
    page = render_html(report, PRICES)
    assert _escaped(page)  # ... and is escaped like the source and the horizon


# --- the replay report reads as tables ------------------------------------------------------------------


def test_replay_html_has_tables_not_json_in_cells(tmp_path):
    report = _with_accuracy(_report(tmp_path, "2024-01-02", "2025-12-31"), "7d")
    page = render_html(report, PRICES)
    cells = _td_texts(page)
    assert cells
    for text in cells:
        assert not re.search(r"""[{\[]\s*["']""", text), text  # no '{"', "['", ... in a cell
    # the nested figures are cells of their own
    r = report["horizons"]["7d"]
    assert str(r["false_positive_detail"]["rmse"]["optimizations_measured"]) in cells
    assert "2.713" in cells and "0.007" in cells  # Diebold-Mariano statistic and p-value
    assert "not computable on 3 origins (singular)" in cells
    assert "95.9 %" in cells  # live 95 % coverage
    assert r["drift_latencies"][0]["onset"] in cells


def test_replay_headline_table_comes_first_with_every_horizon(tmp_path):
    report = _with_accuracy(_report(tmp_path, "2024-01-02", "2025-12-31", horizons=("7d", "15d", "90d")), "7d")
    page = render_html(report, PRICES)
    headline = page.index('id="headline"')
    sections = [page.index(f'id="horizon-{h}"') for h in ("7d", "15d", "90d")]
    assert headline < page.index("<img") < sections[0] < sections[1] < sections[2]
    table = page[headline : page.index("</table>", headline)]
    assert re.findall(r"<tr><th>([^<]+)</th>\s*<td", table) == ["7d", "15d", "90d"]
    row_7d = table[table.index("<th>7d</th>") : table.index("<th>15d</th>")]
    for figure in ("10.13", "9.75", "9.49", "+3.9 %", "95.9 %", "0.007"):  # live, static, random walk ...
        assert figure in row_7d
    r = report["horizons"]["7d"]
    assert f">{r['optimizations']}<" in row_7d and f">{r['rollbacks']}<" in row_7d
    assert f"{r['false_positive_rate_rmse'] * 100:.0f} %" in row_7d


# --- the timeline stays legible over years ---------------------------------------------------------------


@pytest.mark.parametrize(
    "start, end, frequency",
    [("2025-03-03", "2025-06-30", None), ("2024-01-02", "2025-12-31", "M"), ("2018-01-02", "2024-12-31", "Q")],
)
def test_timeline_frequency_follows_the_range(start, end, frequency):
    assert timeline_frequency(start, end) == frequency


def test_a_seven_year_timeline_counts_events_per_quarter_in_one_panel_per_horizon(tmp_path):
    horizons = ("7d", "15d", "30d", "90d")
    report = _report(tmp_path, "2018-01-02", "2024-12-31", horizons=horizons, every=8)
    events = timeline_events(report["horizons"]["7d"])
    optimizations = report["horizons"]["7d"]["optimizations"]
    assert optimizations > 200 and len(events) == optimizations + report["horizons"]["7d"]["rollbacks"]

    counts = event_counts(events, "2018-01-02", "2024-12-31", "Q")
    assert len(counts) == 28  # seven years of quarters ...
    assert counts.drop(columns="rollback").to_numpy().sum() == optimizations  # ... holding every optimization
    assert counts["approved"].sum() == report["horizons"]["7d"]["approvals"]

    fig = timeline_figure(PRICES, report)
    assert len(fig.axes) == 1 + len(horizons)  # prices, then one panel per horizon
    assert fig.get_size_inches()[1] >= 1.0 * len(fig.axes)
    for ax in fig.axes[1:]:
        assert not [c for c in ax.collections if isinstance(c, PathCollection)]  # no markers ...
        bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() != 0]
        assert {p.get_x() for p in bars} <= set(ax.convert_xunits(counts.index))  # ... bars per quarter
        assert len({p.get_x() for p in bars}) <= 28 < optimizations

    page = render_html(report, PRICES)
    png = re.search(r"alt=\"timeline\" src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"", page).group(1)
    width, height = Image.open(io.BytesIO(base64.b64decode(png))).size
    assert height > 0.5 * width  # five stacked panels, not one strip


def test_a_short_timeline_keeps_one_marker_per_event(tmp_path):
    report = _report(tmp_path, "2025-03-03", "2025-06-30", horizons=("7d", "30d"))
    fig = timeline_figure(PRICES, report)
    assert len(fig.axes) == 3
    for ax, h in zip(fig.axes[1:], ("7d", "30d"), strict=True):
        markers = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
        assert markers == report["horizons"][h]["optimizations"] + report["horizons"][h]["rollbacks"]
