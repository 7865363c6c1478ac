"""The replay report's figures against ADR-001's success metrics, computed from a replay's trace: the report
dict that the JSON holds and the text table (``report_text``) and the HTML page (``report_html``) show
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

import statistics
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from forex_assets.core.calendar import DateScalar
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.forecasting.production import target_business_days
from forex_assets.core.forecasting.quantiles import MEDIAN_INDEX
from forex_assets.core.horizons import horizon_steps
from forex_assets.core.metrics import block_bootstrap_ratio_ci, diebold_mariano, rmse
from forex_assets.core.monitoring.live_scoring import live_window_arrays
from forex_assets.core.monitoring.triggers import TriggerPolicy
from forex_assets.core.replay.engine import JUDGED_ORIGINS, DeployJudgement, HorizonTrace, ReplayResult
from forex_assets.core.working_area import WorkingAreaLayout

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


def _paths(
    history: ForecastHistory, horizon: str, days: list[pd.Timestamp], prices: pd.DataFrame, static: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pd.DatetimeIndex] | None:
    """Arrays over the replay days' origins that have a static forecast and whose every target date has a
    price (:func:`~forex_assets.core.monitoring.live_scoring.live_window_arrays`, the monitoring's own
    scoring): (live quantiles, static quantiles, last prices, actuals, origin dates), or None."""
    steps = history.steps(horizon)
    steps = steps[steps["origin_date"].isin(set(days) & set(static))]
    observed = prices.set_index("date")["usdclp"]
    dates = pd.DatetimeIndex(steps["origin_date"].unique())
    runs = pd.DataFrame({"origin_date": dates, "last_price": observed.reindex(dates).to_numpy()})
    origins, live, actuals, lasts = live_window_arrays(steps, runs, prices, days=100_000)
    if not origins or live is None or actuals is None or lasts is None:
        return None
    width = live.shape[1]
    return live, np.array([static[o][:width] for o in origins]), lasts, actuals, pd.DatetimeIndex(origins)


def _accuracy(quantiles_or_point: np.ndarray, actuals: np.ndarray) -> dict[str, Any]:
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


def accuracy_comparison(result: ReplayResult, trace: HorizonTrace, prices: pd.DataFrame) -> dict[str, Any]:
    history = ForecastHistory(WorkingAreaLayout.in_directory(result.workdir).forecast_history)
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


def after_onset(
    onset: DateScalar, origins: pd.DatetimeIndex, errors_live: np.ndarray, errors_static: np.ndarray, h: int
) -> dict[str, Any]:
    """Live RMSE / static RMSE on the matured origins from ``onset`` on, with its bootstrap interval."""
    since = np.asarray(origins >= pd.Timestamp(onset))
    return {
        "onset": str(pd.Timestamp(onset).date()),
        "origins": int(since.sum()),
        "rmse_ratio_vs_static": rmse_ratio_interval(errors_live[since], errors_static[since], h)
        if since.any()
        else {"ratio": None, "note": "no matured origin after the onset"},
    }


def rmse_ratio_interval(errors_live: np.ndarray, errors_other: np.ndarray, h: int) -> dict[str, Any]:
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


def judge_deploy(judgement: DeployJudgement, prices: pd.DataFrame, horizon: str) -> dict[str, Any]:
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
    if rmse_deploy is None or rmse_replaced is None:  # no origin matured
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


def deploy_outcomes(trace: HorizonTrace, prices: pd.DataFrame) -> dict[str, Any]:
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


def _latencies(trace: HorizonTrace, days: list[pd.Timestamp], onsets: Iterable[DateScalar]) -> list[dict[str, Any]]:
    """One row per injected drift: when it was first reported (severity MEDIUM or HIGH) and first led to a
    drift-triggered optimization, in business days from its onset; both None with the reason in
    ``not_measurable`` when the onset is outside the replayed days."""
    rows = []
    index = {d: i for i, d in enumerate(days)}
    for onset in onsets:
        onset = pd.Timestamp(onset)
        row: dict[str, Any] = {
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


def horizon_report(
    result: ReplayResult, trace: HorizonTrace, prices: pd.DataFrame, policy: TriggerPolicy
) -> dict[str, Any]:
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
    served = [o for o in deployed if o.deployed_version and (trace.forecast_ok.get(o.deployed_version) or [False])[0]]
    unserved_yet = [o for o in deployed if not (o.deployed_version and trace.forecast_ok.get(o.deployed_version))]
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


def build_report(result: ReplayResult, prices: pd.DataFrame, policy: TriggerPolicy | None = None) -> dict[str, Any]:
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
