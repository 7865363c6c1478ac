"""The replay's report against ADR-001's success metrics: a table, JSON and a self-contained HTML page
(pure, no Dagster).

Definitions (per horizon, over the replayed days):

* triggers: decisions in which a kind fired (and was not held back by the guard), by kind;
* automation rate: optimizations that reached a verdict (approved or rejected) without an error, over
  optimizations started (an error is what would call a person);
* improvement share: optimizations whose candidate had lower RMSE or MAPE than the deployed
  configuration on the validation window, over optimizations that reached a verdict;
* false-positive rate: optimizations started while the deployed configuration had not degraded beyond
  the performance threshold, measured on RMSE and on skill (RMSE / random-walk RMSE), over the
  optimizations where a baseline existed to measure against (before the first deploy there is none);
* zero downtime: deploys whose configuration's first forecast (the next replay day) succeeded;
* trigger to deploy: replay days between the decision and the deploy it led to, and the machine time;
* detection latency: business days from an injected drift's onset to the first drift report of
  severity MEDIUM or HIGH, and to the first drift-triggered optimization;
* accuracy: every live forecast whose whole path matured by the last replay day, against the static
  initial configuration and the random walk on the same origins: RMSE, MAPE, 95 % coverage, and
  Diebold-Mariano (HLN) on the squared error over the path. A target business day without a price
  (a holiday in real data: no fixing that day) is scored against the previous day's price.
"""

from __future__ import annotations

import html
import json
import statistics
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.horizons import horizon_steps
from forex_assets.core.metrics import diebold_mariano
from forex_assets.core.monitoring.triggers import TriggerPolicy
from forex_assets.core.plots import figure_png_base64
from forex_assets.core.replay.engine import HorizonTrace, ReplayResult

KINDS = ("performance", "drift", "schedule")
TARGETS = {
    "automation_rate": (">=", 0.80),
    "improvement_share": (">=", 0.60),
    "false_positive_rate_rmse": ("<=", 0.10),
    "median_detection_latency_days": ("<=", 7),
}


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _paths(history: ForecastHistory, horizon: str, days: list[pd.Timestamp], prices: pd.DataFrame, static: dict):
    """Arrays over the origins whose every target is on or before the last known day: (live quantiles,
    static quantiles, last prices, actuals)."""
    steps = history.steps(horizon)
    if steps.empty:
        return None
    observed = prices.set_index("date")["usdclp"]
    # a target business day without a price (a holiday: no fixing) takes the previous day's price
    by_date = observed.reindex(pd.bdate_range(observed.index[0], observed.index[-1])).ffill()
    columns = [c for c in steps.columns if c.startswith("q")]
    live, stat, lasts, actuals = [], [], [], []
    wanted = set(days)
    for origin, group in steps.groupby("origin_date"):
        origin = pd.Timestamp(origin)
        if origin not in wanted or origin not in static:
            continue
        targets = pd.DatetimeIndex(group.sort_values("step")["target_date"])
        if not targets.isin(by_date.index).all():
            continue  # not matured by the last replay day
        live.append(group.sort_values("step")[columns].to_numpy())
        stat.append(static[origin])
        lasts.append(float(observed[origin]))
        actuals.append(by_date[targets].to_numpy())
    if not live:
        return None
    return np.array(live), np.array(stat), np.array(lasts), np.array(actuals)


def _accuracy(quantiles_or_point, actuals) -> dict:
    if quantiles_or_point.ndim == 3:
        median, low, high = quantiles_or_point[..., 2], quantiles_or_point[..., 0], quantiles_or_point[..., -1]
    else:
        median, low, high = quantiles_or_point, None, None
    error = median - actuals
    out = {
        "rmse_clp": float(np.sqrt(np.mean(error**2))),
        "mape_pct": float(np.mean(np.abs(error) / actuals) * 100),
        "coverage_95": float(np.mean((actuals >= low) & (actuals <= high))) if low is not None else None,
    }
    return out


def accuracy_comparison(result: ReplayResult, trace: HorizonTrace, prices: pd.DataFrame) -> dict:
    history = ForecastHistory(result.workdir / "forecast_history.sqlite")
    arrays = _paths(history, trace.horizon, result.days, prices, trace.static_forecasts)
    if arrays is None:
        return {"origins": 0, "note": "no forecast matured within the replayed range"}
    live, static, lasts, actuals = arrays
    walk = np.repeat(lasts[:, None], actuals.shape[1], axis=1)
    out = {
        "origins": int(len(lasts)),
        "live": _accuracy(live, actuals),
        "static": _accuracy(static, actuals),
        "random_walk": _accuracy(walk, actuals),
    }
    h = horizon_steps(trace.horizon)
    for name, other in (("vs_static", static[..., 2]), ("vs_random_walk", walk)):
        try:
            dm = diebold_mariano(actuals, live[..., 2], other, h)
            out[f"diebold_mariano_{name}"] = {"statistic": dm.statistic, "p_value": dm.p_value}
        except (ValueError, ZeroDivisionError, np.linalg.LinAlgError, FloatingPointError) as error:
            out[f"diebold_mariano_{name}"] = {"note": f"not computable on {len(lasts)} origins ({error})"}
    return out


def _latencies(trace: HorizonTrace, days: list[pd.Timestamp], onsets) -> list[dict]:
    rows = []
    index = {d: i for i, d in enumerate(days)}
    for onset in onsets:
        onset = pd.Timestamp(onset)
        later = [d for d in days if d >= onset]
        if not later:
            continue
        detected = next((d for d in later if trace.drift_severity.get(d) in ("MEDIUM", "HIGH")), None)
        optimized = next((o.day for o in trace.optimizations if o.day >= onset and "drift" in o.fired), None)
        first = index[later[0]]
        rows.append(
            {
                "onset": str(onset.date()),
                "detected": str(detected.date()) if detected is not None else None,
                "detection_latency_days": index[detected] - first if detected is not None else None,
                "optimized": str(optimized.date()) if optimized is not None else None,
                "optimization_latency_days": index[optimized] - first if optimized is not None else None,
            }
        )
    return rows


def horizon_report(result: ReplayResult, trace: HorizonTrace, prices: pd.DataFrame, policy: TriggerPolicy) -> dict:
    fired = Counter(kind for d in trace.decisions for kind in d.fired)
    blocked = Counter(kind for d in trace.decisions for kind in d.blocked)
    optimizations = trace.optimizations
    completed = [o for o in optimizations if o.verdict != "error"]
    improved = [o for o in completed if (o.rmse_improvement_pct or 0) < 0 or (o.mape_improvement_pct or 0) < 0]
    false_positive = {}
    for metric in ("rmse", "skill"):
        measurable = [o for o in optimizations if metric in o.degradation_pct]
        not_degraded = [o for o in measurable if o.degradation_pct[metric] <= policy.performance_threshold_pct]
        false_positive[metric] = {
            "rate": _share(len(not_degraded), len(measurable)),
            "optimizations_measured": len(measurable),
            "without_baseline": len(optimizations) - len(measurable),
        }
    deployed = [o for o in optimizations if o.deployed_version]
    # zero downtime: the deployed configuration's first forecast (the next replay day) succeeded
    served = [o for o in deployed if (trace.forecast_ok.get(o.deployed_version) or [False])[0]]
    unserved_yet = [o for o in deployed if not trace.forecast_ok.get(o.deployed_version)]
    latencies = _latencies(trace, result.days, result.settings.injected_drifts)
    detection = [r["detection_latency_days"] for r in latencies if r["detection_latency_days"] is not None]
    return {
        "horizon": trace.horizon,
        "triggers": {kind: fired.get(kind, 0) for kind in KINDS},
        "held_back_by_guard": {kind: blocked.get(kind, 0) for kind in KINDS},
        "decisions": len(trace.decisions),
        "optimizations": len(optimizations),
        "optimization_errors": [f"{o.day.date()}: {o.error}" for o in optimizations if o.verdict == "error"],
        "approvals": sum(o.verdict == "approved" for o in optimizations),
        "rejections": sum(o.verdict == "rejected" for o in optimizations),
        "deploys": len(deployed),
        "zero_downtime_share": _share(len(served), len(deployed) - len(unserved_yet)),
        "rollbacks": len(trace.rollbacks),
        "rollback_reasons": [f"{day.date()}: {reason}" for day, _, reason in trace.rollbacks],
        "forecast_failures": len(trace.forecast_failures),
        "automation_rate": _share(len(completed), len(optimizations)),
        "improvement_share": _share(len(improved), len(completed)),
        "false_positive_rate_rmse": false_positive["rmse"]["rate"],
        "false_positive_rate_skill": false_positive["skill"]["rate"],
        "false_positive_detail": false_positive,
        "trigger_to_deploy_days": 0 if deployed else None,  # decided and deployed on the same replay day
        "median_optimization_seconds": statistics.median([o.seconds for o in optimizations]) if optimizations else None,
        "drift_latencies": latencies,
        "median_detection_latency_days": statistics.median(detection) if detection else None,
        "accuracy": accuracy_comparison(result, trace, prices),
        "events": [
            {
                "day": str(o.day.date()),
                "fired": list(o.fired),
                "verdict": o.verdict,
                "rmse_change_pct": o.rmse_improvement_pct,
                "deployed": o.deployed_version,
            }
            for o in optimizations
        ],  # fmt: skip
    }


def build_report(result: ReplayResult, prices: pd.DataFrame, policy: TriggerPolicy | None = None) -> dict:
    """``prices``: the prices known on the last replayed day (accuracy uses nothing later); ``policy``: the
    trigger policy of the replay (its performance threshold decides what counts as degraded)."""
    policy = policy or result.settings.trigger_policy
    last = result.days[-1] if result.days else None
    known = prices[prices["date"] <= last] if last is not None else prices.iloc[:0]
    return {
        "source": result.source,
        "range": [str(pd.Timestamp(result.settings.start).date()), str(pd.Timestamp(result.settings.end).date())],
        "days_replayed": len(result.days),
        "days_planned": result.planned_days,
        "partial": result.partial,
        "partial_reason": result.partial_reason,
        "seconds": result.seconds,
        "injected_drifts": [str(pd.Timestamp(d).date()) for d in result.settings.injected_drifts],
        "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
        "horizons": {h: horizon_report(result, t, known, policy) for h, t in result.traces.items()},
    }


def _fmt(value, digits=2, pct=False) -> str:
    if value is None:
        return "n/a"
    if pct:
        return f"{value * 100:.0f} %"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_table(report: dict) -> str:
    lines = []
    if report["partial"]:
        lines += [
            f"PARTIAL REPORT: {report['partial_reason']}",
            "Every figure below covers the replayed days only.",
            "",
        ]
    lines.append(
        f"replay of {report['source']}, {report['range'][0]}..{report['range'][1]}: "
        f"{report['days_replayed']} of {report['days_planned']} business days in {report['seconds']:.0f} s"
    )
    header = (
        f"{'horizon':<8}{'perf':>5}{'drift':>6}{'sched':>6}{'optim':>6}{'appr':>5}{'depl':>5}{'rollb':>6}"
        f"{'autom':>7}{'improv':>7}{'FP rmse':>8}{'FP skill':>9}{'latency':>8}"
        f"{'RMSE live':>10}{'static':>8}{'RW':>8}{'DM p (static)':>14}"
    )
    lines += ["", header, "-" * len(header)]
    for h, r in report["horizons"].items():
        acc = r["accuracy"]
        rmse = (
            [acc.get(k, {}).get("rmse_clp") for k in ("live", "static", "random_walk")]
            if acc["origins"]
            else [None] * 3
        )
        dm = acc.get("diebold_mariano_vs_static", {}).get("p_value")
        lines.append(
            f"{h:<8}{r['triggers']['performance']:>5}{r['triggers']['drift']:>6}{r['triggers']['schedule']:>6}"
            f"{r['optimizations']:>6}{r['approvals']:>5}{r['deploys']:>5}{r['rollbacks']:>6}"
            f"{_fmt(r['automation_rate'], pct=True):>7}{_fmt(r['improvement_share'], pct=True):>7}"
            f"{_fmt(r['false_positive_rate_rmse'], pct=True):>8}{_fmt(r['false_positive_rate_skill'], pct=True):>9}"
            f"{_fmt(r['median_detection_latency_days']):>8}"
            f"{_fmt(rmse[0]):>10}{_fmt(rmse[1]):>8}{_fmt(rmse[2]):>8}{_fmt(dm, 3):>14}"
        )
    lines += ["", "targets (ADR-001): " + ", ".join(f"{k} {v}" for k, v in report["targets"].items())]
    return "\n".join(lines)


def _timeline_figure(prices: pd.DataFrame, report: dict, start: str):
    shown = prices[prices["date"] >= pd.Timestamp(start) - pd.offsets.BDay(60)]
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(shown["date"], shown["usdclp"], lw=1, color="black")
    markers = {"approved": ("^", "tab:green"), "rejected": ("x", "tab:orange"), "error": ("s", "tab:red")}
    by_date = prices.set_index("date")["usdclp"]
    for r in report["horizons"].values():
        for event in r["events"]:
            day = pd.Timestamp(event["day"])
            marker, color = markers[event["verdict"]]
            ax.scatter([day], [by_date.get(day, np.nan)], marker=marker, color=color, zorder=3)
    for onset in report["injected_drifts"]:
        ax.axvline(pd.Timestamp(onset), color="tab:purple", ls="--", lw=1)
    ax.axvline(pd.Timestamp(start), color="grey", lw=0.8)
    ax.set_title("prices; optimizations approved (^), rejected (x), errors (square); injected drifts (dashed)")
    ax.set_ylabel("CLP per USD")
    ax.grid(alpha=0.3)
    return fig


def _accuracy_figure(report: dict):
    horizons = [h for h, r in report["horizons"].items() if r["accuracy"]["origins"]]
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(horizons))
    for i, (key, label) in enumerate(
        (("live", "live policy"), ("static", "static initial"), ("random_walk", "random walk"))
    ):
        values = [report["horizons"][h]["accuracy"][key]["rmse_clp"] for h in horizons]
        ax.bar(x + (i - 1) * 0.27, values, width=0.27, label=label)
    ax.set_xticks(x, horizons)
    ax.set_ylabel("RMSE (CLP)")
    ax.set_title("forecast RMSE over the replay")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


def render_html(report: dict, prices: pd.DataFrame) -> str:
    banner = ""
    if report["partial"]:
        banner = (
            f"<p style='background:#fdd;border:2px solid #c00;padding:8px'><b>PARTIAL REPORT</b>: "
            f"{html.escape(report['partial_reason'])}. Every figure covers the replayed days only.</p>"
        )
    timeline = figure_png_base64(_timeline_figure(prices, report, report["range"][0]))
    images = [f"<img alt='timeline' src='data:image/png;base64,{timeline}'>"]
    if any(r["accuracy"]["origins"] for r in report["horizons"].values()):
        images.append(f"<img alt='accuracy' src='data:image/png;base64,{figure_png_base64(_accuracy_figure(report))}'>")
    sections = []
    for h, r in report["horizons"].items():
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td><pre>{html.escape(json.dumps(v, indent=1, default=str))}</pre></td></tr>"
            for k, v in r.items()
            if k not in ("events",)
        )
        sections.append(f"<h2>{h}</h2><table border='1' cellpadding='4'>{rows}</table>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>forex_assets replay</title></head>"
        "<body style='font-family:sans-serif;max-width:1100px;margin:auto'>"
        f"<h1>Replay of {html.escape(report['source'])}, {report['range'][0]} .. {report['range'][1]}</h1>{banner}"
        f"<pre>{html.escape(format_table(report))}</pre>{''.join(images)}{''.join(sections)}</body></html>"
    )


def write_report(report: dict, prices: pd.DataFrame, directory: Path) -> tuple[Path, Path]:
    from forex_assets.core.files import write_text_atomically

    directory.mkdir(parents=True, exist_ok=True)
    json_path, html_path = directory / "replay_report.json", directory / "replay_report.html"
    write_text_atomically(json_path, json.dumps(report, indent=2, default=str) + "\n")
    write_text_atomically(html_path, render_html(report, prices))
    return json_path, html_path
