"""The replay's report against ADR-001's success metrics: a table, JSON and a self-contained HTML page
(``templates/replay_report.html.j2``: headline figures per horizon, timeline, one section of tables per
horizon) (pure, no Dagster).

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
  severity MEDIUM or HIGH, and to the first drift-triggered optimization; not measurable (None, with
  the reason) for an onset before the first replayed day or after the last one;
* accuracy: every live forecast whose whole path matured by the last replay day, against the static
  initial configuration and the random walk on the same origins: RMSE, MAPE, 95 % coverage, and
  Diebold-Mariano (HLN) on the squared error over the path. Step k targets the k-th Chilean business
  day after the origin (no fixing on a Chilean holiday) and is scored against that date's price, never
  another day's; a path with a target date without a price (a gap in the series) is not matured;
* RMSE ratios live / static and live / random walk with 95 % circular-block bootstrap intervals over the
  matured origins (blocks of h origins, as consecutive origins share h - 1 targets; 1,000 resamples,
  seeded: :func:`forex_assets.core.metrics.block_bootstrap_ratio_ci`), when there are at least two blocks;
* realised win rate: each deploy is followed on its first JUDGED_ORIGINS origins (fewer when it was rolled
  back or replaced first) together with the configuration it replaced, forecast in shadow on the same
  origins; it wins when the RMSE of its median over the origins whose paths matured by the last replay
  day (steps 1..h, only targets with a price) is lower than the replaced configuration's (an equal RMSE is
  a tie, not a win). Wins over the deploys judged; a deploy with no matured origin is not judged (and
  counted as such);
* rollbacks per deploy: automatic rollbacks over deploys; optimizations per year: optimizations over
  horizon-years replayed (business days replayed / 252).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.forecasting.production import target_business_days
from forex_assets.core.forecasting.quantiles import MEDIAN_INDEX
from forex_assets.core.horizons import horizon_steps
from forex_assets.core.metrics import block_bootstrap_ratio_ci, diebold_mariano, rmse
from forex_assets.core.monitoring.live_scoring import live_window_arrays
from forex_assets.core.monitoring.triggers import TriggerPolicy
from forex_assets.core.plots import figure_png_base64
from forex_assets.core.replay.engine import JUDGED_ORIGINS, DeployJudgement, HorizonTrace, ReplayResult
from forex_assets.core.templates import render

KINDS = ("performance", "drift", "schedule")
TARGETS = {
    "automation_rate": (">=", 0.80),
    "improvement_share": (">=", 0.60),
    "false_positive_rate_rmse": ("<=", 0.10),
    "median_detection_latency_days": ("<=", 7),
    "realised_win_rate": (">=", 0.60),
    "rollbacks_per_deploy": ("<=", 0.20),
}
BUSINESS_DAYS_PER_YEAR = 252
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _paths(history: ForecastHistory, horizon: str, days: list[pd.Timestamp], prices: pd.DataFrame, static: dict):
    """Arrays over the replay days' origins that have a static forecast and whose every target date has a
    price (:func:`~forex_assets.core.monitoring.live_scoring.live_window_arrays`, the monitoring's own
    scoring): (live quantiles, static quantiles, last prices, actuals, origin dates), or None."""
    steps = history.steps(horizon)
    steps = steps[steps["origin_date"].isin(set(days) & set(static))]
    observed = prices.set_index("date")["usdclp"]
    dates = pd.DatetimeIndex(steps["origin_date"].unique())
    runs = pd.DataFrame({"origin_date": dates, "last_price": observed.reindex(dates).to_numpy()})
    origins, live, actuals, lasts = live_window_arrays(steps, runs, prices, days=100_000)
    if not origins:
        return None
    width = live.shape[1]
    return live, np.array([static[o][:width] for o in origins]), lasts, actuals, pd.DatetimeIndex(origins)


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
    live, static, lasts, actuals, origins = arrays
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
    for name, other in (("vs_static", static[..., 2]), ("vs_random_walk", walk)):
        out[f"rmse_ratio_{name}"] = rmse_ratio_interval(live[..., 2] - actuals, other - actuals, h)
    # after each injected drift: what the policy's configurations cost or bought once the regime changed
    out["after_onsets"] = [
        after_onset(onset, origins, live[..., 2] - actuals, static[..., 2] - actuals, h)
        for onset in result.settings.injected_drifts
    ]
    return out


def after_onset(onset, origins: pd.DatetimeIndex, errors_live: np.ndarray, errors_static: np.ndarray, h: int) -> dict:
    """Live RMSE / static RMSE on the matured origins from ``onset`` on, with its bootstrap interval."""
    since = np.asarray(origins >= pd.Timestamp(onset))
    return {
        "onset": str(pd.Timestamp(onset).date()),
        "origins": int(since.sum()),
        "rmse_ratio_vs_static": rmse_ratio_interval(errors_live[since], errors_static[since], h)
        if since.any()
        else {"ratio": None, "note": "no matured origin after the onset"},
    }


def rmse_ratio_interval(errors_live: np.ndarray, errors_other: np.ndarray, h: int) -> dict:
    """RMSE(live) / RMSE(other) on the same origins with its 95 % circular-block bootstrap interval (blocks of
    ``h`` origins); without an interval (a note instead) when there are fewer than two blocks of origins."""
    origins = len(errors_live)
    other = rmse(errors_other)
    ratio = rmse(errors_live) / other if other > 0 else None
    if origins < 2 * h or ratio is None:
        reason = "the other forecast has no error" if ratio is None else f"fewer than two blocks of {h}"
        return {"ratio": ratio, "note": f"no interval on {origins} origins: {reason}"}
    ci = block_bootstrap_ratio_ci(errors_live, errors_other, h, n=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
    return {"ratio": ci.ratio, "ci_low": ci.low, "ci_high": ci.high, "block": ci.block, "resamples": ci.resamples}


def judge_deploy(judgement: DeployJudgement, prices: pd.DataFrame, horizon: str) -> dict:
    """One deploy against the configuration it replaced on its collected origins whose paths matured by the
    last day of ``prices`` (steps 1..h, only targets with a price): a win when its median's RMSE is lower."""
    steps = horizon_steps(horizon)
    observed = prices.set_index("date")["usdclp"]
    last = observed.index[-1] if len(observed) else None
    errors_deploy, errors_replaced = [], []
    for origin in sorted(set(judgement.live) & set(judgement.shadow)):
        targets = pd.DatetimeIndex(target_business_days(pd.Timestamp(origin), steps))
        if last is None or targets[-1] > last:
            continue  # not matured
        known = targets.isin(observed.index)
        if not known.any():
            continue
        actual = observed[targets[known]].to_numpy()
        errors_deploy.append(np.asarray(judgement.live[origin])[known, MEDIAN_INDEX] - actual)
        errors_replaced.append(np.asarray(judgement.shadow[origin])[known, MEDIAN_INDEX] - actual)
    matured = len(errors_deploy)
    rmse_deploy = rmse(np.concatenate(errors_deploy)) if matured else None
    rmse_replaced = rmse(np.concatenate(errors_replaced)) if matured else None
    if not matured:
        verdict = "not judged"
    elif np.isclose(rmse_deploy, rmse_replaced, rtol=1e-12, atol=0.0):
        verdict = "tie"  # the same medians (e.g. a deploy that changed only the intervals): not a win
    else:
        verdict = "win" if rmse_deploy < rmse_replaced else "loss"
    return {
        "version": judgement.version,
        "deployed_on": str(pd.Timestamp(judgement.day).date()),
        "replaced": judgement.replaced_version,
        "origins": len(judgement.live),
        "matured": matured,
        "followed_until": judgement.end_reason or "replay ended",
        "rmse_deploy_clp": rmse_deploy,
        "rmse_replaced_clp": rmse_replaced,
        "verdict": verdict,
    }


def deploy_outcomes(trace: HorizonTrace, prices: pd.DataFrame) -> dict:
    """The realised win rate of the horizon's deploys, with one judgement per deploy (in deploy order)."""
    rows = []
    for o in trace.optimizations:
        if not o.deployed_version:
            continue
        judgement = trace.deploy_judgements.get(o.deployed_version)
        if judgement is None:  # not followed (e.g. the deploy wrote the configuration already deployed)
            rows.append({"version": o.deployed_version, "deployed_on": str(o.day.date()), "origins": 0,
                         "matured": 0, "followed_until": "not followed", "verdict": "not judged"})  # fmt: skip
        else:
            rows.append(judge_deploy(judgement, prices, trace.horizon))
    judged = [r for r in rows if r["verdict"] != "not judged"]
    wins = sum(r["verdict"] == "win" for r in judged)
    return {
        "realised_win_rate": _share(wins, len(judged)),
        "deploy_wins": wins,
        "deploys_judged": len(judged),
        "deploys_not_judged": len(rows) - len(judged),
        "deploy_judgements": rows,
    }


def latency_not_measurable(onset: pd.Timestamp, days: list[pd.Timestamp]) -> str | None:
    """Why the detection latency of the drift starting on ``onset`` cannot be measured on the replayed
    ``days`` (None when it can): its onset must be on or after the first replayed day (before it, the days
    the drift went undetected were not replayed: counting from the first replay day would report 0 for a
    drift found at once only because it was old) and on or before the last one."""
    if not days:
        return "no day was replayed"
    if onset < days[0]:
        return (
            f"the onset is before the first replay day {days[0].date()}: the days from the onset to it were "
            "not replayed, so how long the drift went undetected is unknown"
        )
    if onset > days[-1]:
        return f"the onset is after the last replayed day {days[-1].date()}"
    return None


def _latencies(trace: HorizonTrace, days: list[pd.Timestamp], onsets) -> list[dict]:
    """One row per injected drift: when it was first reported (severity MEDIUM or HIGH) and first led to a
    drift-triggered optimization, in business days from its onset; both None with the reason in
    ``not_measurable`` when the onset is outside the replayed days."""
    rows = []
    index = {d: i for i, d in enumerate(days)}
    for onset in onsets:
        onset = pd.Timestamp(onset)
        row = {
            "onset": str(onset.date()),
            "detected": None,
            "detection_latency_days": None,
            "optimized": None,
            "optimization_latency_days": None,
            "not_measurable": latency_not_measurable(onset, days),
        }
        if row["not_measurable"] is None:
            later = [d for d in days if d >= onset]
            detected = next((d for d in later if trace.drift_severity.get(d) in ("MEDIUM", "HIGH")), None)
            optimized = next((o.day for o in trace.optimizations if o.day >= onset and "drift" in o.fired), None)
            first = index[later[0]]
            if detected is not None:
                row["detected"], row["detection_latency_days"] = str(detected.date()), index[detected] - first
            if optimized is not None:
                row["optimized"], row["optimization_latency_days"] = str(optimized.date()), index[optimized] - first
        rows.append(row)
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
    years = len(result.days) / BUSINESS_DAYS_PER_YEAR
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
        **deploy_outcomes(trace, prices),
        "rollbacks_per_deploy": _share(len(trace.rollbacks), len(deployed)),
        "optimizations_per_year": len(optimizations) / years if years else None,
        "events": [
            {
                "day": str(o.day.date()),
                "fired": list(o.fired),
                "verdict": o.verdict,
                "rmse_change_pct": o.rmse_improvement_pct,
                "p_value": o.improvement_p_value,
                "failed_criteria": list(o.failed_criteria),
                "deployed": o.deployed_version,
            }
            for o in optimizations
        ],  # fmt: skip
    }


def build_report(result: ReplayResult, prices: pd.DataFrame, policy: TriggerPolicy | None = None) -> dict:
    """``prices``: the prices known on the last replayed day (accuracy uses nothing later); ``policy``: the
    trigger policy of the replay (its performance threshold decides what counts as degraded)."""
    policy = policy or result.settings.policy.triggers
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
        "judged_origins_per_deploy": JUDGED_ORIGINS,
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
    lines += latency_notes(report)
    header = (
        f"{'horizon':<8}{'depl':>5}{'judged':>7}{'not':>5}{'win rate':>9}{'rollb/depl':>11}{'opt/yr':>8}"
        f"{'live/static [95 % CI]':>24}{'live/RW [95 % CI]':>24}"
    )
    lines += ["", header, "-" * len(header)]
    for h, r in report["horizons"].items():
        acc = r["accuracy"]
        lines.append(
            f"{h:<8}{r['deploys']:>5}{_fmt(r.get('deploys_judged')):>7}{_fmt(r.get('deploys_not_judged')):>5}"
            f"{_fmt(r.get('realised_win_rate'), pct=True):>9}{_fmt(r.get('rollbacks_per_deploy')):>11}"
            f"{_fmt(r.get('optimizations_per_year'), 1):>8}"
            f"{ratio_text(acc.get('rmse_ratio_vs_static')):>24}{ratio_text(acc.get('rmse_ratio_vs_random_walk')):>24}"
        )
    judged = report.get("judged_origins_per_deploy", JUDGED_ORIGINS)
    lines += [
        f"win rate: deploys whose RMSE beat the replaced configuration's on their first {judged} origins (those "
        "matured); not: deploys with no matured origin. CI: circular-block bootstrap, blocks of h origins.",
        "",
        "targets (ADR-001): " + ", ".join(f"{k} {v}" for k, v in report["targets"].items()),
    ]
    return "\n".join(lines)


def latency_notes(report: dict) -> list[str]:
    """One line per injected drift whose detection latency could not be measured, with the reason (the
    same for every horizon); nothing when every latency was measured."""
    reasons: dict[str, str] = {}
    for r in report["horizons"].values():
        for row in r.get("drift_latencies", []):
            if row.get("not_measurable"):
                reasons.setdefault(row["onset"], row["not_measurable"])
    return [f"latency of the drift from {onset}: not measurable ({reason})" for onset, reason in reasons.items()]


def ratio_text(ratio: dict | None) -> str:
    """``0.970 [0.912, 1.041]``: an RMSE ratio with its 95 % interval; the ratio alone without an interval."""
    if not ratio or ratio.get("ratio") is None:
        return "n/a"
    if ratio.get("ci_low") is None or ratio.get("ci_high") is None:
        return f"{ratio['ratio']:.3f}"
    return f"{ratio['ratio']:.3f} [{ratio['ci_low']:.3f}, {ratio['ci_high']:.3f}]"


# --- the HTML page (templates/replay_report.html.j2) and its figures ------------------------------------

EVENT_KINDS = ("approved", "rejected", "error", "rollback")
EVENT_STYLE = {  # marker, colour
    "approved": ("^", "tab:green"),
    "rejected": ("x", "tab:orange"),
    "error": ("s", "tab:red"),
    "rollback": ("v", "tab:purple"),
}
DRIFT_COLOUR = "tab:blue"
MARKERS_UP_TO_DAYS = 200  # a range up to this many calendar days shows one marker per event ...
MONTHS_UP_TO_DAYS = 3 * 366  # ... up to this many, events counted per month; beyond, per quarter


def timeline_frequency(start, end) -> str | None:
    """How the timeline shows a range: ``None`` one marker per event (short ranges), ``"M"`` or ``"Q"``
    events counted per month or per quarter (long ranges, where markers would merge into one band)."""
    span = (pd.Timestamp(end) - pd.Timestamp(start)).days
    if span <= MARKERS_UP_TO_DAYS:
        return None
    return "M" if span <= MONTHS_UP_TO_DAYS else "Q"


def timeline_events(horizon: dict) -> pd.DataFrame:
    """One horizon's events (columns day, kind): each optimization under its verdict, each rollback."""
    rows = [(pd.Timestamp(e["day"]), str(e["verdict"])) for e in horizon.get("events", [])]
    for reason in horizon.get("rollback_reasons", []):  # "YYYY-MM-DD: reason"
        day = pd.to_datetime(str(reason).split(":", 1)[0], errors="coerce")
        if not pd.isna(day):
            rows.append((day, "rollback"))
    return pd.DataFrame(rows, columns=["day", "kind"])


def event_counts(events: pd.DataFrame, start, end, freq: str) -> pd.DataFrame:
    """Events per period of ``freq`` over start..end: one row per period (indexed by its first day, empty
    periods included), one column per kind."""
    periods = pd.period_range(pd.Timestamp(start), pd.Timestamp(end), freq=freq)
    kinds = list(EVENT_KINDS) + sorted(set(events["kind"]) - set(EVENT_KINDS))
    period = events["day"].dt.to_period(freq) if not events.empty else pd.Series(dtype=f"period[{freq}]")
    counts = (
        pd.crosstab(period, events["kind"]).reindex(index=periods, columns=kinds, fill_value=0)
        if not events.empty
        else pd.DataFrame(0, index=periods, columns=kinds)
    )
    counts.index = periods.start_time
    return counts.astype(int)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _style(kind: str) -> tuple[str, str]:
    return EVENT_STYLE.get(kind, ("o", "tab:grey"))


def _event_markers(ax, events: pd.DataFrame) -> None:
    kinds = list(EVENT_KINDS) + sorted(set(events["kind"]) - set(EVENT_KINDS))
    for lane, kind in enumerate(kinds):
        days = events.loc[events["kind"] == kind, "day"]
        if len(days):
            marker, colour = _style(kind)
            ax.scatter(days, [lane] * len(days), marker=marker, color=colour, s=28, zorder=3)
    ax.set_yticks(range(len(kinds)), kinds, fontsize=7)
    ax.set_ylim(len(kinds) - 0.4, -0.6)


def _event_bars(ax, counts: pd.DataFrame, freq: str) -> None:
    """Optimizations per period stacked above the line by verdict, rollbacks below it."""
    width = 0.8 * (25 if freq == "M" else 80)  # days
    bottom = np.zeros(len(counts))
    for kind in counts.columns:
        if kind == "rollback" or not counts[kind].any():
            continue
        ax.bar(counts.index, counts[kind], width=width, bottom=bottom, align="edge", color=_style(kind)[1])
        bottom += counts[kind].to_numpy()
    if "rollback" in counts and counts["rollback"].any():
        ax.bar(counts.index, -counts["rollback"], width=width, align="edge", color=_style("rollback")[1])
    ax.axhline(0, color="black", lw=0.6)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):g}"))
    ax.set_ylabel("per month" if freq == "M" else "per quarter", fontsize=8)


def timeline_figure(prices: pd.DataFrame, report: dict):
    """The prices over the replay on top, then one small panel per horizon with its optimizations (by
    verdict) and rollbacks: one marker per event on a short range, counts per month or quarter on a long
    one (:func:`timeline_frequency`). Axes: the price panel first, then the horizons in report order."""
    start, end = (pd.Timestamp(d) for d in report["range"])
    freq = timeline_frequency(start, end)
    horizons = list(report["horizons"])
    heights = [1.7] + [1.0] * len(horizons)
    fig, axes = plt.subplots(
        len(heights),
        1,
        figsize=(10, 0.4 + 1.15 * sum(heights)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    axes = list(axes[:, 0])
    first = start - pd.offsets.BDay(60) if freq is None else start
    shown = prices[(prices["date"] >= first) & (prices["date"] <= end)]
    axes[0].plot(shown["date"], shown["usdclp"], lw=1, color="black")
    axes[0].set_ylabel("CLP per USD", fontsize=8)
    title = "USD/CLP over the replay"
    if freq is None:
        axes[0].axvline(start, color="grey", lw=0.8)
        title += " (grey line: first replay day); below, each horizon's optimizations by verdict and rollbacks"
    else:
        period = "month" if freq == "M" else "quarter"
        title += f"; below, per horizon and {period}: optimizations by verdict above the line, rollbacks below"
    axes[0].set_title(title, fontsize=9, loc="left")
    for ax, h in zip(axes[1:], horizons, strict=True):
        events = timeline_events(report["horizons"][h])
        n = events["kind"].value_counts()
        optimizations = int(n.drop("rollback", errors="ignore").sum())
        ax.set_title(
            f"{h}: {_count(optimizations, 'optimization')} ({n.get('approved', 0)} approved, "
            f"{n.get('rejected', 0)} rejected, {_count(n.get('error', 0), 'error')}), "
            f"{_count(n.get('rollback', 0), 'rollback')}",
            fontsize=9,
            loc="left",
        )
        if freq is None:
            _event_markers(ax, events)
        else:
            _event_bars(ax, event_counts(events, start, end, freq), freq)
    for ax in axes:
        for onset in report["injected_drifts"]:
            ax.axvline(pd.Timestamp(onset), color=DRIFT_COLOUR, ls="--", lw=1)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[-1].set_xlim(first - pd.Timedelta(days=2), end + pd.Timedelta(days=2 if freq is None else 20))
    if freq is None:
        handles = [Line2D([], [], marker=_style(k)[0], color=_style(k)[1], ls="", label=k) for k in EVENT_KINDS]
    else:
        handles = [Patch(color=_style(k)[1], label=k) for k in EVENT_KINDS]
    handles.append(Line2D([], [], color=DRIFT_COLOUR, ls="--", lw=1, label="injected drift"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.035, 1, 1))
    return fig


def accuracy_figure(report: dict):
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
    ax.set_title("forecast RMSE over the replay (matured origins)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


@dataclass
class Cell:
    """One table cell: text, a short list, or a nested table (never a serialized structure)."""

    text: str = ""
    css: str = ""
    items: list[str] | None = None
    table: Table | None = None


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]]
    row_headers: bool = True  # the first cell of each row is a header


HORIZON_KEYS_SHOWN = {  # rendered by the sections below; anything else goes to "other figures"
    "horizon", "triggers", "held_back_by_guard", "decisions", "optimizations", "optimization_errors",
    "approvals", "rejections", "deploys", "zero_downtime_share", "rollbacks", "rollback_reasons",
    "forecast_failures", "automation_rate", "improvement_share", "false_positive_rate_rmse",
    "false_positive_rate_skill", "false_positive_detail", "trigger_to_deploy_days", "median_optimization_seconds",
    "drift_latencies", "median_detection_latency_days", "accuracy", "events", "realised_win_rate", "deploy_wins",
    "deploys_judged", "deploys_not_judged", "deploy_judgements", "rollbacks_per_deploy", "optimizations_per_year",
}  # fmt: skip


LABELS = {
    "rmse_clp": "RMSE (CLP)",
    "mape_pct": "MAPE",
    "coverage_95": "95 % coverage",
    "p_value": "p-value",
    "rmse": "on RMSE",
    "skill": "on skill (RMSE / random-walk RMSE)",
    "detection_latency_days": "detection latency (business days)",
    "optimization_latency_days": "optimization latency (business days)",
    "not_measurable": "latency not measurable because",
    "rmse_change_pct": "RMSE change",
    "rmse_deploy_clp": "RMSE deploy (CLP)",
    "rmse_replaced_clp": "RMSE replaced (CLP)",
    "deployed_on": "deployed on",
    "ci_low": "95 % CI low",
    "ci_high": "95 % CI high",
    "block": "block (origins)",
}


def _label(key: str) -> str:
    return LABELS.get(key, str(key).replace("_", " "))


def _is_share(key: str) -> bool:
    """Figures that are shares of a count (automation_rate, false_positive_rate_rmse, zero_downtime_share)."""
    words = key.split("_")
    return "rate" in words or "share" in words


def _scalar(value, key: str = "") -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if _is_share(key):
            return _fmt(value, pct=True)
        if key == "coverage_95":
            return f"{value * 100:.1f} %"
        if key.endswith("_pct"):
            return f"{value:+.2f} %" if "change" in key or "improvement" in key else f"{value:.3f} %"
        return f"{value:.3f}" if key in ("statistic", "p_value", "ratio", "ci_low", "ci_high") else f"{value:.2f}"
    return str(value)


def _meets(key: str, value) -> str:
    """CSS class for a figure with an ADR-001 target: met (pass), missed (fail), no target or no value."""
    if key not in TARGETS or value is None:
        return ""
    op, threshold = TARGETS[key]
    return "pass" if (value >= threshold if op == ">=" else value <= threshold) else "fail"


def _cell(value, key: str = "") -> Cell:
    """A value of the report as a cell: mappings and lists of mappings become nested tables, lists of
    scalars a list, scalars formatted text."""
    if isinstance(value, dict):
        return Cell(table=_mapping_table(value), css="nested")
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, dict) for v in value):
            return Cell(table=_records_table(value), css="nested")
        if not value:
            return Cell(text="none", css="muted")
        return Cell(items=[_scalar(v) for v in value])
    css = ("num " if isinstance(value, int | float) and not isinstance(value, bool) else "") + _meets(key, value)
    return Cell(text=_scalar(value, key), css=css.strip())


def _mapping_table(mapping: dict) -> Table:
    """Rows of (key, value); a mapping of mappings becomes one row per key with the inner keys as columns."""
    if mapping and all(isinstance(v, dict) for v in mapping.values()):
        columns = list(dict.fromkeys(k for v in mapping.values() for k in v))
        rows = [[Cell(_label(k))] + [_cell(v.get(c), c) for c in columns] for k, v in mapping.items()]
        return Table(["", *map(_label, columns)], rows)
    return Table([], [[Cell(_label(k)), _cell(v, k)] for k, v in mapping.items()])


def _records_table(records: list[dict]) -> Table:
    columns = list(dict.fromkeys(k for r in records for k in r))
    rows = [[_cell(r.get(c), c) for c in columns] for r in records]
    return Table([_label(c) for c in columns], rows, row_headers=False)


def _headline(report: dict) -> Table:
    """One row per horizon: accuracy against the static configuration and the random walk, then what the
    policy did, with the ADR-001 targets marked."""
    headers = [
        "horizon", "matured origins", "RMSE live (CLP)", "RMSE static", "RMSE random walk", "live vs static",
        "95 % coverage (live)", "DM p vs static", "optimizations", "deploys", "rollbacks", "automation",
        "improvement", "false positives (RMSE)", "detection latency (days)", "live / static [95 % CI]",
        "live / random walk [95 % CI]", "deploys judged", "realised win rate", "rollbacks per deploy",
        "optimizations per year",
    ]  # fmt: skip
    rows = []
    for h, r in report["horizons"].items():
        acc = r["accuracy"]
        rmse = [
            (acc.get(k) or {}).get("rmse_clp") if acc["origins"] else None for k in ("live", "static", "random_walk")
        ]
        change = (rmse[0] - rmse[1]) / rmse[1] if None not in rmse[:2] and rmse[1] else None
        coverage = (acc.get("live") or {}).get("coverage_95") if acc["origins"] else None
        rows.append(
            [
                Cell(h),
                _cell(acc["origins"]),
                *(_cell(v, "rmse_clp") for v in rmse),
                Cell("n/a" if change is None else f"{change * 100:+.1f} %", "num"),
                _cell(coverage, "coverage_95"),
                _cell((acc.get("diebold_mariano_vs_static") or {}).get("p_value"), "p_value"),
                _cell(r["optimizations"]),
                _cell(r["deploys"]),
                _cell(r["rollbacks"]),
                _cell(r["automation_rate"], "automation_rate"),
                _cell(r["improvement_share"], "improvement_share"),
                _cell(r["false_positive_rate_rmse"], "false_positive_rate_rmse"),
                _cell(r["median_detection_latency_days"], "median_detection_latency_days"),
                Cell(ratio_text(acc.get("rmse_ratio_vs_static")), "num"),
                Cell(ratio_text(acc.get("rmse_ratio_vs_random_walk")), "num"),
                _cell(r.get("deploys_judged")),
                _cell(r.get("realised_win_rate"), "realised_win_rate"),
                _cell(r.get("rollbacks_per_deploy"), "rollbacks_per_deploy"),
                _cell(r.get("optimizations_per_year")),
            ]
        )
    return Table(headers, rows)


def _activity(r: dict) -> Table:
    facts = [
        ("trigger decisions", "decisions"),
        ("optimizations started", "optimizations"),
        ("approved", "approvals"),
        ("rejected", "rejections"),
        ("deploys", "deploys"),
        ("zero-downtime share of deploys", "zero_downtime_share"),
        ("rollbacks", "rollbacks"),
        ("rollbacks per deploy", "rollbacks_per_deploy"),
        ("optimizations per year (business days replayed / 252)", "optimizations_per_year"),
        ("deploys judged against the configuration they replaced", "deploys_judged"),
        ("deploys not judged (no matured origin)", "deploys_not_judged"),
        ("deploys that beat the configuration they replaced", "deploy_wins"),
        ("realised win rate", "realised_win_rate"),
        ("forecast failures", "forecast_failures"),
        ("automation rate", "automation_rate"),
        ("improvement share", "improvement_share"),
        ("false-positive rate (RMSE)", "false_positive_rate_rmse"),
        ("false-positive rate (skill)", "false_positive_rate_skill"),
        ("trigger to deploy (replay days)", "trigger_to_deploy_days"),
        ("median optimization time (s)", "median_optimization_seconds"),
        ("median detection latency (business days)", "median_detection_latency_days"),
    ]
    return Table([], [[Cell(label), _cell(r.get(key), key)] for label, key in facts if key in r])


def _triggers(r: dict) -> Table:
    fired, held = r.get("triggers", {}), r.get("held_back_by_guard", {})
    kinds = list(dict.fromkeys([*fired, *held]))
    return Table(
        ["kind", "fired", "held back by the guard"], [[Cell(k), _cell(fired.get(k)), _cell(held.get(k))] for k in kinds]
    )


def _accuracy_tables(acc: dict) -> dict:
    models = {"live": "live policy", "static": "static initial", "random_walk": "random walk"}
    tests = {k: v for k, v in acc.items() if k.startswith("diebold_mariano_")}
    ratios = {k: v for k, v in acc.items() if k.startswith("rmse_ratio_")}
    shown = {"origins", "note", *models, *tests, *ratios}
    return {
        "origins": acc["origins"],
        "note": acc.get("note"),
        "models": _mapping_table({label: acc[k] for k, label in models.items() if k in acc})
        if acc["origins"]
        else None,
        "tests": _mapping_table({_label(k.removeprefix("diebold_mariano_")): v for k, v in tests.items()})
        if tests
        else None,
        "ratios": _mapping_table({_label(k.removeprefix("rmse_ratio_")): v for k, v in ratios.items()})
        if ratios
        else None,
        "other": _mapping_table({k: v for k, v in acc.items() if k not in shown}),
    }


def _events(r: dict) -> Table:
    rows = []
    for e in r.get("events", []):
        verdict = str(e.get("verdict"))
        css = {"approved": "pass", "error": "fail"}.get(verdict, "")
        rows.append(
            [
                Cell(str(e.get("day"))),
                Cell(", ".join(e.get("fired") or []) or "manual"),
                Cell(verdict, css),
                _cell(e.get("rmse_change_pct"), "rmse_change_pct"),
                Cell(e.get("deployed") or "", "muted" if not e.get("deployed") else ""),
            ]
        )
    return Table(["day", "triggers fired", "verdict", "RMSE change", "deployed version"], rows, row_headers=False)


def _section(h: str, r: dict) -> dict:
    return {
        "horizon": h,
        "activity": _activity(r),
        "triggers": _triggers(r),
        "accuracy": _accuracy_tables(r["accuracy"]),
        "false_positives": _mapping_table(r["false_positive_detail"]) if r.get("false_positive_detail") else None,
        "latencies": _records_table(
            [{**row, "not_measurable": row.get("not_measurable") or ""} for row in r["drift_latencies"]]
        )
        if r.get("drift_latencies")
        else None,
        "errors": list(r.get("optimization_errors", [])),
        "rollback_reasons": list(r.get("rollback_reasons", [])),
        "judgements": _records_table(r["deploy_judgements"]) if r.get("deploy_judgements") else None,
        "events": _events(r),
        "other": _mapping_table({k: v for k, v in r.items() if k not in HORIZON_KEYS_SHOWN}),
    }


def render_html(report: dict, prices: pd.DataFrame) -> str:
    """The page from ``templates/replay_report.html.j2``: headline figures per horizon first, then the
    timeline and accuracy plots, then one section of tables per horizon (every value autoescaped)."""
    images = [("timeline", figure_png_base64(timeline_figure(prices, report)))]
    if any(r["accuracy"]["origins"] for r in report["horizons"].values()):
        images.append(("accuracy", figure_png_base64(accuracy_figure(report))))
    return render(
        "replay_report.html.j2",
        report=report,
        headline=_headline(report),
        images=images,
        sections=[_section(h, r) for h, r in report["horizons"].items()],
    )


def write_report(report: dict, prices: pd.DataFrame, directory: Path) -> tuple[Path, Path]:
    from forex_assets.core.files import write_text_atomically

    directory.mkdir(parents=True, exist_ok=True)
    json_path, html_path = directory / "replay_report.json", directory / "replay_report.html"
    write_text_atomically(json_path, json.dumps(report, indent=2, default=str) + "\n")
    write_text_atomically(html_path, render_html(report, prices))
    return json_path, html_path
