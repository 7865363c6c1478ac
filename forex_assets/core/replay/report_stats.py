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
  initial configuration, the random walk and three baseline bands on the same origins (``ewma_band``,
  ``garch_band``, ``historical_band``: :func:`forex_assets.core.forecasting.baselines.baseline_quantiles`, the
  random walk's median with a band from the volatility of the prices up to the origin; the GARCH band on at
  most :data:`GARCH_MAX_ORIGINS` of the origins, every s-th replay day, ``origin_spacing_days`` s); per
  forecaster: RMSE and MAPE of the median, weighted quantile loss (WQL) of the five quantiles, the 95 %
  interval score, 95 % and 80 % coverage and the 95 % band's mean width as a percentage of the actual (the
  random walk has no band: its band figures are None); Diebold-Mariano (HLN) on the squared error over the
  path. Step k targets the k-th Chilean business day after the origin (no fixing on a Chilean holiday) and is
  scored against that date's price, never another day's; a path with a target date without a price (a gap in
  the series) is not matured;
* RMSE ratios live / static and live / random walk with 95 % circular-block bootstrap intervals over the
  matured origins (blocks of h origins, as consecutive origins share h - 1 targets; 1,000 resamples,
  seeded: :func:`forex_assets.core.metrics.block_bootstrap_ratio_ci`), when there are at least two blocks;
  WQL ratios live / ewma_band, live / garch_band and live / static the same way on per-origin pinball losses
  (:func:`forex_assets.core.loss_ratio.block_bootstrap_loss_ratio_ci`; on the GARCH band's origins, s replay
  days apart, blocks of ceil(h / s) origins: h business days again);
* 95 % coverage of the live band with its 95 % circular-block bootstrap interval (blocks of h origins: the
  targets covered over the targets scored, resampled by origin as the WQL ratios are), so a coverage read
  against a target range (0.93-0.97) carries its sampling error;
* breach tests of the live 95 % band: Kupiec's proportion of failures and Christoffersen's independence
  p-values on the step-1 breaches of the matured origins in date order;
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

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forex_assets.core.band_scores import (
    breaches,
    christoffersen_independence,
    coverage,
    interval_score,
    kupiec_pof,
    mean_width_pct,
)
from forex_assets.core.calendar import CHILE, BusinessCalendar, DateScalar
from forex_assets.core.forecasting.baselines import baseline_quantiles
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.forecasting.production import target_business_days
from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES, MEDIAN_INDEX
from forex_assets.core.horizons import HORIZONS, horizon_steps
from forex_assets.core.loss_ratio import block_bootstrap_loss_ratio_ci, per_origin_quantile_loss
from forex_assets.core.metrics import block_bootstrap_ratio_ci, diebold_mariano, rmse, weighted_quantile_loss
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
    "realised_win_rate_wql": (">=", 0.60),
    "rollbacks_per_deploy": ("<=", 0.20),
}
BUSINESS_DAYS_PER_YEAR = 252
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
#: the baselines' bands scored beside the live forecasts (forecasting.baselines.BASELINES)
BASELINE_BANDS = ("ewma_band", "garch_band", "historical_band")
#: the forecasters the live one's WQL is divided by, with a bootstrap interval
WQL_RATIOS_AGAINST = ("ewma_band", "garch_band", "static")
#: GARCH(1,1)-t costs about 0.19 s an origin at 90 steps (a maximum-likelihood fit and 10,000 simulated paths),
#: 280 s on the 1,492 days of a 6-year replay, beyond its 20-minute budget (16.5 min without): it is fitted on
#: at most this many replay days (every s-th, s = ceil(days / GARCH_MAX_ORIGINS): 3 on 6 years, 495 fits); the
#: other baselines cost milliseconds an origin and score every origin. Measured on a 6-year x 4-horizon history
#: of real prices: the report took 135.8 s instead of 2.3 s (2-core machine, shared)
GARCH_MAX_ORIGINS = 500
LOW_95, HIGH_95 = FORECAST_QUANTILES.index(0.025), FORECAST_QUANTILES.index(0.975)
LOW_80, HIGH_80 = FORECAST_QUANTILES.index(0.1), FORECAST_QUANTILES.index(0.9)
BAND_FIGURES = ("wql", "interval_score_95", "coverage_95", "coverage_80", "width_95_pct")


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


def forecast_accuracy(forecast: np.ndarray, actuals: np.ndarray) -> dict[str, Any]:
    """One forecaster's figures on (n, h) ``actuals``: ``forecast`` (n, h, q) quantiles at
    ``FORECAST_QUANTILES`` or (n, h) a point forecast (no band: its band figures are None)."""
    band = forecast.ndim == 3
    median = forecast[..., MEDIAN_INDEX] if band else forecast
    error = median - actuals
    out: dict[str, Any] = {
        "origins_scored": int(actuals.shape[0]),
        "rmse_clp": float(np.sqrt(np.mean(error**2))),
        "mape_pct": float(np.mean(np.abs(error) / actuals) * 100),
        **dict.fromkeys(BAND_FIGURES),
    }
    if band:
        low, high = forecast[..., LOW_95], forecast[..., HIGH_95]
        out |= {
            "wql": weighted_quantile_loss(forecast, actuals, FORECAST_QUANTILES),
            "interval_score_95": interval_score(low, high, actuals, alpha=0.05),
            "coverage_95": coverage(low, high, actuals),
            "coverage_80": coverage(forecast[..., LOW_80], forecast[..., HIGH_80], actuals),
            "width_95_pct": mean_width_pct(low, high, actuals),
        }
    return out


class BaselineBands:
    """The baselines' quantiles (:data:`BASELINE_BANDS`) at replay origins, from the prices up to each origin
    (the last price on or before it: what its forecast could see), shared by the horizons of one report.

    Each is computed once per origin for ``steps``, the longest horizon's, and sliced for shorter ones: a
    baseline's k-step quantiles do not depend on the horizon asked (the GARCH band's simulated ones up to
    their simulation noise, under 0.1 %: its paths are drawn for the steps asked). The GARCH band is computed
    only on every ``spacing["garch_band"]``-th of ``days`` (:data:`GARCH_MAX_ORIGINS`). An origin where a
    baseline cannot be computed (too little history before it) is left out of that baseline's figures, with
    the reason."""

    def __init__(self, prices: pd.DataFrame, days: Sequence[pd.Timestamp], steps: int) -> None:
        ordered = prices.sort_values("date")
        self.dates = pd.DatetimeIndex(ordered["date"])
        self.values = ordered["usdclp"].to_numpy(dtype=float)
        self.steps = steps
        self.spacing = {name: 1 for name in BASELINE_BANDS}
        self.spacing["garch_band"] = max(1, math.ceil(len(days) / GARCH_MAX_ORIGINS))
        self._origins = {name: set(list(days)[::spacing]) for name, spacing in self.spacing.items()}
        self._cache: dict[tuple[str, int], np.ndarray | None] = {}
        self.errors: dict[str, str] = {}  # baseline -> the first reason it could not be computed

    def _at(self, name: str, origin: pd.Timestamp) -> np.ndarray | None:
        index = int(self.dates.searchsorted(origin, side="right")) - 1
        if (name, index) not in self._cache:
            try:
                if index < 0:
                    raise ValueError(f"no price on or before {origin.date()}")
                quantiles = baseline_quantiles(name, self.values, [index], self.steps, FORECAST_QUANTILES)[0]
                self._cache[(name, index)] = quantiles
            except Exception as error:  # noqa: BLE001 - a baseline that cannot be fitted there skips the origin
                self._cache[(name, index)] = None
                self.errors.setdefault(name, f"{type(error).__name__}: {error}")
        return self._cache[(name, index)]

    def eligible(self, name: str, origins: pd.DatetimeIndex) -> np.ndarray:
        """Which of ``origins`` the baseline is computed on (all but the GARCH band's skipped days)."""
        return np.array([o in self._origins[name] for o in origins], dtype=bool)

    def quantiles(self, name: str, origins: pd.DatetimeIndex, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(scored, quantiles): which of ``origins`` the baseline scores (a boolean mask: eligible and
        computable) and its (scored, width, q) quantiles there, steps 1..width."""
        if width > self.steps:
            raise ValueError(f"{width} steps asked of baselines computed for {self.steps}")
        eligible = self.eligible(name, origins)
        computed = [self._at(name, o) if e else None for o, e in zip(origins, eligible, strict=True)]
        scored = np.array([q is not None for q in computed], dtype=bool)
        stacked = [q[:width] for q in computed if q is not None]
        empty = np.empty((0, width, len(FORECAST_QUANTILES)))
        return scored, np.stack(stacked) if stacked else empty


def wql_ratio_interval(live: np.ndarray, other: np.ndarray, actuals: np.ndarray, block: int) -> dict[str, Any]:
    """WQL(live) / WQL(other) on the same origins and actuals (the ratio of their summed pinball losses) with
    its 95 % circular-block bootstrap interval over the origins (blocks of ``block`` origins); without an
    interval (a note instead) when there are fewer than two blocks of origins."""
    origins = int(actuals.shape[0])
    if origins == 0:
        return {"ratio": None, "origins": 0, "note": "no origin scored by both"}
    losses_live = per_origin_quantile_loss(live, actuals, FORECAST_QUANTILES)
    losses_other = per_origin_quantile_loss(other, actuals, FORECAST_QUANTILES)
    total_other = float(losses_other.sum())
    ratio = float(losses_live.sum()) / total_other if total_other > 0 else None
    if origins < 2 * block or ratio is None:
        reason = "the other forecast has no loss" if ratio is None else f"fewer than two blocks of {block}"
        return {"ratio": ratio, "origins": origins, "note": f"no interval on {origins} origins: {reason}"}
    ci = block_bootstrap_loss_ratio_ci(losses_live, losses_other, block, n=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
    return {
        "ratio": ci.ratio,
        "ci_low": ci.low,
        "ci_high": ci.high,
        "block": ci.block,
        "resamples": ci.resamples,
        "origins": ci.origins,
    }


def coverage_interval(quantiles: np.ndarray, actuals: np.ndarray, block: int) -> dict[str, Any]:
    """The 95 % band's coverage of (n, h) ``actuals`` with its 95 % circular-block bootstrap interval over the
    origins (blocks of ``block`` consecutive origins): per origin the targets inside the band over its targets,
    the ratio of their sums being the pooled coverage (:func:`block_bootstrap_loss_ratio_ci`); without an
    interval (a note instead) on fewer than two blocks of origins."""
    inside = (quantiles[..., LOW_95] <= actuals) & (actuals <= quantiles[..., HIGH_95])
    covered = inside.sum(axis=1).astype(float)
    targets = np.full(len(covered), float(actuals.shape[1]))
    origins = int(len(covered))
    if origins < 2 * block:
        share = float(covered.sum() / targets.sum()) if origins else None
        return {
            "coverage": share,
            "origins": origins,
            "note": f"no interval on {origins} origins: fewer than two blocks of {block}",
        }
    ci = block_bootstrap_loss_ratio_ci(covered, targets, block, n=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
    return {"coverage": ci.ratio, "ci_low": ci.low, "ci_high": ci.high, "block": ci.block, "origins": ci.origins}


def breach_tests(quantiles: np.ndarray, actuals: np.ndarray) -> dict[str, Any]:
    """Kupiec's proportion-of-failures and Christoffersen's independence tests of a forecast's 95 % band on
    the step-1 breaches of its origins in date order."""
    # Step 1 only: the step-1 targets of consecutive origins (consecutive replay days) are distinct days (each
    # origin's next business day), so under a correct band their breaches are independent Bernoulli(0.05)
    # draws, what both tests assume. Later steps of consecutive origins share targets (origin t's step 2 is
    # origin t+1's step 1) and breach together even under a correct band, which the independence test would
    # flag.
    flags = breaches(quantiles[:, 0, LOW_95], quantiles[:, 0, HIGH_95], actuals[:, 0])
    kupiec = kupiec_pof(flags, expected_rate=0.05)
    return {
        "step": 1,
        "observations": kupiec.observations,
        "breaches": kupiec.breaches,
        "breach_rate": kupiec.observed_rate,
        "kupiec_pof_p_value": kupiec.p_value,
        "christoffersen_independence_p_value": christoffersen_independence(flags).p_value if len(flags) > 1 else None,
    }


def _baseline_accuracy(
    bands: BaselineBands, name: str, origins: pd.DatetimeIndex, scored: np.ndarray, quantiles: np.ndarray,
    actuals: np.ndarray,
) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any]
    if scored.any():
        out = forecast_accuracy(quantiles, actuals[scored])
    else:
        out = {"origins_scored": 0, "rmse_clp": None, "mape_pct": None, **dict.fromkeys(BAND_FIGURES)}
    out["origin_spacing_days"] = bands.spacing[name]
    eligible = bands.eligible(name, origins)
    failed = int((eligible & ~scored).sum())
    if failed:
        out["note"] = f"not computable on {failed} of {int(eligible.sum())} origins ({bands.errors.get(name)})"
    return out


def accuracy_comparison(
    result: ReplayResult, trace: HorizonTrace, prices: pd.DataFrame, bands: BaselineBands | None = None
) -> dict[str, Any]:
    """The horizon's accuracy block (the module's docstring). ``bands``: the baselines' bands, shared by the
    horizons of a report (computed here, for this horizon's steps, when None)."""
    history = ForecastHistory(WorkingAreaLayout.in_directory(result.workdir).forecast_history)
    arrays = _paths(history, trace.horizon, result.days, prices, trace.static_forecasts)
    if arrays is None:
        return {"origins": 0, "note": "no forecast matured within the replayed range"}
    live, static, lasts, actuals, origins = arrays
    walk = np.repeat(lasts[:, None], actuals.shape[1], axis=1)
    h = horizon_steps(trace.horizon)
    bands = bands or BaselineBands(prices, result.days, actuals.shape[1])
    out: dict[str, Any] = {
        "origins": int(len(lasts)),
        "live": forecast_accuracy(live, actuals),
        "static": forecast_accuracy(static, actuals),
        "random_walk": forecast_accuracy(walk, actuals),
    }
    others = {"static": (np.ones(len(origins), dtype=bool), static)}
    for name in BASELINE_BANDS:
        scored, quantiles = bands.quantiles(name, origins, actuals.shape[1])
        out[name] = _baseline_accuracy(bands, name, origins, scored, quantiles, actuals)
        others[name] = (scored, quantiles)
    for name in WQL_RATIOS_AGAINST:
        scored, quantiles = others[name]
        # the GARCH band's origins are s replay days apart: blocks of ceil(h / s) of them span at least h business
        # days, the reach of the dependence between overlapping paths (s = 1 for the others: blocks of h)
        block = math.ceil(h / bands.spacing.get(name, 1))
        out[f"wql_ratio_vs_{name}"] = wql_ratio_interval(live[scored], quantiles, actuals[scored], block)
    out["coverage_95_live_interval"] = coverage_interval(live, actuals, h)
    out["breach_tests_95_live"] = breach_tests(live, actuals)
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


def judge_deploy(
    judgement: DeployJudgement, prices: pd.DataFrame, horizon: str, calendar: BusinessCalendar = CHILE
) -> dict[str, Any]:
    """One deploy against the configuration it replaced on its collected origins whose paths matured by the
    last day of ``prices`` (steps 1..h, only targets with a price): a win when its median's RMSE is lower."""
    steps = horizon_steps(horizon)
    observed = prices.set_index("date")["usdclp"]
    last = observed.index[-1] if len(observed) else None
    errors_deploy, errors_replaced = [], []
    bands_deploy, bands_replaced, actuals = [], [], []
    for origin in sorted(set(judgement.live) & set(judgement.shadow)):
        targets = pd.DatetimeIndex(target_business_days(pd.Timestamp(origin), steps, calendar))
        if last is None or targets[-1] > last:
            continue  # not matured
        known = targets.isin(observed.index)
        if not known.any():
            continue
        actual = observed[targets[known]].to_numpy()
        errors_deploy.append(np.asarray(judgement.live[origin])[known, MEDIAN_INDEX] - actual)
        errors_replaced.append(np.asarray(judgement.shadow[origin])[known, MEDIAN_INDEX] - actual)
        bands_deploy.append(np.asarray(judgement.live[origin])[known])
        bands_replaced.append(np.asarray(judgement.shadow[origin])[known])
        actuals.append(actual)
    matured = len(errors_deploy)
    rmse_deploy = rmse(np.concatenate(errors_deploy)) if matured else None
    rmse_replaced = rmse(np.concatenate(errors_replaced)) if matured else None
    if rmse_deploy is None or rmse_replaced is None:  # no origin matured
        verdict = "not judged"
    elif np.isclose(rmse_deploy, rmse_replaced, rtol=1e-12, atol=0.0):
        verdict = "tie"  # the same medians (e.g. a deploy that changed only the intervals): not a win
    else:
        verdict = "win" if rmse_deploy < rmse_replaced else "loss"
    # the whole distribution: the weighted quantile loss of the deploy's and the replaced configuration's
    # forecasts on the same targets (a deploy approved for its band wins or loses here)
    wql_deploy = wql_replaced = None
    verdict_wql = "not judged"
    if matured:
        y = np.concatenate(actuals)[None, :]
        wql_deploy = weighted_quantile_loss(np.concatenate(bands_deploy)[None], y, FORECAST_QUANTILES)
        wql_replaced = weighted_quantile_loss(np.concatenate(bands_replaced)[None], y, FORECAST_QUANTILES)
        if np.isclose(wql_deploy, wql_replaced, rtol=1e-12, atol=0.0):
            verdict_wql = "tie"
        else:
            verdict_wql = "win" if wql_deploy < wql_replaced else "loss"
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
        "wql_deploy": wql_deploy,
        "wql_replaced": wql_replaced,
        "verdict_wql": verdict_wql,
    }


def deploy_outcomes(trace: HorizonTrace, prices: pd.DataFrame, calendar: BusinessCalendar = CHILE) -> dict[str, Any]:
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
            rows.append(judge_deploy(judgement, prices, trace.horizon, calendar))
    judged = [r for r in rows if r["verdict"] != "not judged"]
    wins = sum(r["verdict"] == "win" for r in judged)
    wins_wql = sum(r.get("verdict_wql") == "win" for r in judged)
    return {
        "realised_win_rate": _share(wins, len(judged)),
        "realised_win_rate_wql": _share(wins_wql, len(judged)),
        "deploy_wins_wql": wins_wql,
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
    result: ReplayResult,
    trace: HorizonTrace,
    prices: pd.DataFrame,
    policy: TriggerPolicy,
    bands: BaselineBands | None = None,
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
        "accuracy": accuracy_comparison(result, trace, prices, bands),
        **deploy_outcomes(trace, prices, result.settings.calendar),
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
    # the baselines' bands: once per origin for the longest horizon, shared by the horizons
    longest = max((horizon_steps(h) for h in result.traces if h in HORIZONS), default=1)
    bands = BaselineBands(known, result.days, longest)
    return {
        "pair": result.settings.pair,
        "calendar": result.settings.calendar.name,
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
        "horizons": {h: horizon_report(result, t, known, policy, bands) for h, t in result.traces.items()},
    }
