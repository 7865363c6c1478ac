"""Candidate vs deployed configuration on the validation window (shadow mode) and the approval rules.

Both configurations are backtested on the same, most recent origins, disjoint from the search
window, in the same run. Their inference time is measured the way production forecasts: one forecast
of the latest origin, repeated and interleaved, the fastest run taken: load on a shared machine only ever
adds time, so the minimum is the steadiest estimate of what a configuration costs, and interleaving makes
a load spike hit both alike.

Percentage changes follow the decision record (docs/decisions.md):
``(candidate - deployed) / deployed * 100``, so a negative ``rmse_improvement`` means the candidate's RMSE is lower.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from forex_assets.core.backtest.engine import BacktestResult
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.quantiles import forecast_quantiles
from forex_assets.core.metrics import (
    DieboldMarianoResult,
    diebold_mariano,
    diebold_mariano_losses,
    per_origin_wql,
    window_metrics,
)
from forex_assets.core.recalibration.thresholds import (
    ApprovalThresholds as ApprovalThresholds,  # declared there, light to import
)

if TYPE_CHECKING:
    from chronos import BaseChronosPipeline  # untyped (Any)


@dataclass(frozen=True)
class ValidationMetrics:
    """The decision record's validation fields, plus random-walk skill of both configurations."""

    rmse_improvement: float  # % change, negative = candidate better
    mape_improvement: float
    mae_improvement: float
    ci95_coverage_new: float
    ci95_coverage_current: float
    bias_new: float  # CLP
    bias_current: float
    inference_time_new: float  # seconds per forecast
    inference_time_current: float
    stability_score: float  # error std candidate / deployed (1.10 = 10 % more dispersion)
    rmse_new: float
    rmse_current: float
    mape_new: float
    mape_current: float
    error_std_new: float
    error_std_current: float
    skill_vs_random_walk_new: float  # RMSE / random-walk RMSE
    skill_vs_random_walk_current: float
    rmse_random_walk: float
    # one-sided Diebold-Mariano p-value that the candidate's path loss is lower (None in reports written
    # before the significance criterion existed)
    improvement_p_value: float | None = None
    # the distribution (None in reports written before issue 23: they cannot pass its path)
    wql_new: float | None = None  # weighted quantile loss of the five quantiles, steps pooled
    wql_current: float | None = None
    wql_improvement: float | None = None  # % change, negative = candidate better
    wql_p_value: float | None = None  # one-sided Diebold-Mariano on per-origin WQL: the candidate's is lower
    interval_score_95_new: float | None = None  # CLP, lower is better
    interval_score_95_current: float | None = None
    coverage_80_new: float | None = None
    coverage_80_current: float | None = None
    width_95_pct_new: float | None = None  # mean width of the 95 % band, % of the price
    width_95_pct_current: float | None = None
    # the RiskMetrics baseline (random walk + EWMA band) on the same origins: what a band has to beat
    wql_ewma_band: float | None = None
    interval_score_95_ewma_band: float | None = None
    coverage_95_ewma_band: float | None = None


#: the two approval paths: the decision record's (the median's accuracy) and the distribution's (issue 23)
MEDIAN_PATH = "median"
DISTRIBUTION_PATH = "distribution"
BOTH_PATHS = "both"


@dataclass(frozen=True)
class Criterion:
    name: str  # the asset check's name
    passed: bool
    observed: float
    threshold: float
    description: str
    path: str = BOTH_PATHS  # which approval path needs it: "median", "distribution" or "both"


CRITERIA_NAMES = (
    "accuracy_improves",
    "error_std_stable",
    "inference_time_bounded",
    "coverage_95_sufficient",
    "bias_bounded",
    "improvement_significant",
    "wql_improves",
    "wql_improvement_significant",
    "rmse_not_worse",
    "coverage_95_calibrated",
)

#: which path each criterion belongs to (the others are needed by both)
CRITERION_PATHS = {
    "accuracy_improves": MEDIAN_PATH,
    "improvement_significant": MEDIAN_PATH,
    "coverage_95_sufficient": MEDIAN_PATH,
    "wql_improves": DISTRIBUTION_PATH,
    "wql_improvement_significant": DISTRIBUTION_PATH,
    "rmse_not_worse": DISTRIBUTION_PATH,
    "coverage_95_calibrated": DISTRIBUTION_PATH,
}


def approval_path(criteria: list[Criterion], thresholds: ApprovalThresholds = ApprovalThresholds()) -> str | None:
    """The path that approves: "median" (the decision record's) when its criteria and the shared ones all
    pass, else "distribution" when its own and the shared ones do (and the policy allows that path); None:
    rejected."""
    passed = {c.name: c.passed for c in criteria}
    shared = all(ok for name, ok in passed.items() if CRITERION_PATHS.get(name, BOTH_PATHS) == BOTH_PATHS)
    if not shared:
        return None
    paths = [MEDIAN_PATH] + ([DISTRIBUTION_PATH] if thresholds.distribution_path else [])
    for path in paths:
        own = [ok for name, ok in passed.items() if CRITERION_PATHS.get(name) == path]
        if own and all(own):
            return path
    return None


def check_outcome(criterion: Criterion, path: str | None) -> tuple[bool, str]:
    """The blocking check's verdict on ``criterion`` when the report was approved by ``path`` (None:
    rejected): a criterion of the other path does not block an approved report ("not needed"); every other
    criterion blocks when it failed. Returns (passed, description)."""
    if criterion.passed or path is None or criterion.path in (BOTH_PATHS, path):
        return criterion.passed, criterion.description
    return True, f"not needed: approved by the {path} path; {criterion.description}"


def _change_pct(new: float, current: float) -> float:
    return (new - current) / current * 100.0 if current else float("inf")


def validation_metrics(
    candidate: BacktestResult,
    deployed: BacktestResult,
    seconds_new: float,
    seconds_current: float,
    overlap: int | None = None,
    baseline_band: np.ndarray | None = None,
) -> ValidationMetrics:
    """``overlap``: how many consecutive validation origins share targets (``Windows.overlap``; default the
    horizon's steps, i.e. origins one business day apart); ``baseline_band``: the EWMA band's quantiles on the
    same origins (its scores go in the report beside the two configurations')."""
    if [str(d) for d in candidate.origin_dates] != [str(d) for d in deployed.origin_dates]:
        raise ValueError("candidate and deployed were not backtested on the same origins")
    new, cur = candidate.metrics(), deployed.metrics()
    return ValidationMetrics(
        rmse_improvement=_change_pct(new.rmse_clp, cur.rmse_clp),
        mape_improvement=_change_pct(new.mape_pct, cur.mape_pct),
        mae_improvement=_change_pct(new.mae_clp, cur.mae_clp),
        ci95_coverage_new=new.coverage_95,
        ci95_coverage_current=cur.coverage_95,
        bias_new=new.bias_clp,
        bias_current=cur.bias_clp,
        inference_time_new=seconds_new,
        inference_time_current=seconds_current,
        stability_score=new.error_std_clp / cur.error_std_clp if cur.error_std_clp else float("inf"),
        rmse_new=new.rmse_clp,
        rmse_current=cur.rmse_clp,
        mape_new=new.mape_pct,
        mape_current=cur.mape_pct,
        error_std_new=new.error_std_clp,
        error_std_current=cur.error_std_clp,
        skill_vs_random_walk_new=new.skill_vs_random_walk,
        skill_vs_random_walk_current=cur.skill_vs_random_walk,
        rmse_random_walk=new.rmse_random_walk_clp,
        improvement_p_value=one_sided_improvement_p(candidate, deployed, overlap),
        **distribution_fields(candidate, deployed, overlap, baseline_band),
    )


def distribution_fields(
    candidate: BacktestResult,
    deployed: BacktestResult,
    overlap: int | None = None,
    baseline_band: np.ndarray | None = None,
) -> dict[str, float | None]:
    """The distribution's fields of :class:`ValidationMetrics`: WQL, interval score, 80 % coverage and width of
    both configurations, the one-sided Diebold-Mariano p on per-origin WQL, and the EWMA band's scores on the
    same origins when ``baseline_band`` (its (n, steps, levels) quantiles) is given."""
    new, cur = candidate.metrics(), deployed.metrics()
    overlap = candidate.actuals.shape[1] if overlap is None else overlap
    fields: dict[str, float | None] = {
        "wql_new": new.weighted_quantile_loss,
        "wql_current": cur.weighted_quantile_loss,
        "wql_improvement": _change_pct(new.weighted_quantile_loss, cur.weighted_quantile_loss),
        "wql_p_value": one_sided_p(
            per_origin_wql(candidate.quantiles, candidate.actuals, candidate.levels),
            per_origin_wql(deployed.quantiles, deployed.actuals, deployed.levels),
            overlap,
        ),
        "interval_score_95_new": new.interval_score_95_clp,
        "interval_score_95_current": cur.interval_score_95_clp,
        "coverage_80_new": new.coverage_80,
        "coverage_80_current": cur.coverage_80,
        "width_95_pct_new": new.width_95_pct,
        "width_95_pct_current": cur.width_95_pct,
    }
    if baseline_band is not None:
        ewma = window_metrics(
            baseline_band, candidate.actuals, candidate.last_prices, candidate.scales, candidate.levels, 0.0
        )
        fields |= {
            "wql_ewma_band": ewma.weighted_quantile_loss,
            "interval_score_95_ewma_band": ewma.interval_score_95_clp,
            "coverage_95_ewma_band": ewma.coverage_95,
        }
    return fields


def one_sided_p(loss_new: np.ndarray, loss_current: np.ndarray, overlap: int) -> float:
    """p-value of "the new per-origin loss is lower" (Diebold-Mariano, HLN-corrected, HAC lags overlap - 1):
    half the two-sided p when it is lower, 1 - half of it otherwise; 1 when the window has fewer than
    3 x ``overlap`` origins (see :func:`one_sided_improvement_p`)."""
    if len(loss_new) < 3 * overlap:
        return 1.0
    test = diebold_mariano_losses(loss_new, loss_current, overlap)
    return test.p_value / 2 if test.statistic < 0 else 1.0 - test.p_value / 2


def one_sided_improvement_p(candidate: BacktestResult, deployed: BacktestResult, overlap: int | None = None) -> float:
    """p-value of "the candidate's squared path error is lower" (Diebold-Mariano, HLN-corrected, HAC lags
    ``overlap - 1``): half the two-sided p when the candidate's loss is lower, 1 - half of it otherwise.

    A window of fewer than 3 x ``overlap`` origins cannot estimate the HAC variance those lags need (the
    test would be capped and pass noise), so it gives p = 1: it cannot show an improvement. The search
    spaces' windows (docs/decisions.md) hold 60 origins spaced so that ``overlap`` is 7 or 8."""
    overlap = candidate.actuals.shape[1] if overlap is None else overlap
    squared = [np.mean(np.square(r.median - r.actuals), axis=1) for r in (candidate, deployed)]
    return one_sided_p(squared[0], squared[1], overlap)


def criterion_rule(name: str, thresholds: ApprovalThresholds = ApprovalThresholds()) -> str:
    """What approval criterion ``name`` requires, in words, with the values of ``thresholds``: the asset
    check's description in the UI and the second half of each evaluated criterion's description."""
    t = thresholds
    rules = {
        "accuracy_improves": f"RMSE at least {t.min_rmse_improvement_pct:g} % lower or MAPE at least "
        f"{t.min_mape_improvement_pct:g} % lower than the deployed config's",
        "error_std_stable": f"error std (stability) at most {t.max_error_std_growth_pct:g} % above the deployed "
        f"config's (ratio at most {1 + t.max_error_std_growth_pct / 100:.2f})",
        "inference_time_bounded": f"inference time at most {t.max_inference_time_ratio:g}x the deployed config's, "
        f"or at most {t.max_inference_excess_seconds:g} s slower",
        "coverage_95_sufficient": f"95 % interval coverage at least {t.min_coverage_95:.2f}",
        "bias_bounded": f"|bias| below {t.max_abs_bias_clp:g} CLP, or at most "
        f"{1 + t.max_bias_growth_pct / 100:.2f}x the deployed config's",
        "improvement_significant": "a significant RMSE improvement: one-sided Diebold-Mariano p at most "
        f"{t.max_improvement_p_value:g} that the candidate's error is lower",
        "wql_improves": f"weighted quantile loss at least {t.min_wql_improvement_pct:g} % lower than the deployed "
        "config's",
        "wql_improvement_significant": "a significant WQL improvement: one-sided Diebold-Mariano p at most "
        f"{t.max_improvement_p_value:g} on the per-origin weighted quantile losses",
        "rmse_not_worse": f"RMSE at most {t.max_rmse_growth_pct:g} % above the deployed config's",
        "coverage_95_calibrated": f"95 % interval coverage between {t.min_coverage_95_calibrated:.2f} and "
        f"{t.max_coverage_95_calibrated:.2f}",
    }
    path = CRITERION_PATHS.get(name, BOTH_PATHS)
    needed_by = {
        MEDIAN_PATH: " (the decision record's path)",
        DISTRIBUTION_PATH: " (the distribution's path)",
        BOTH_PATHS: " (both paths)",
    }[path]
    return rules[name] + needed_by


def approval_criteria(
    metrics: ValidationMetrics, thresholds: ApprovalThresholds = ApprovalThresholds()
) -> list[Criterion]:
    """Each criterion evaluated on ``metrics``; its description says what was observed, then
    :func:`criterion_rule`."""
    t = thresholds
    inference_ratio = (
        metrics.inference_time_new / metrics.inference_time_current if metrics.inference_time_current else float("inf")
    )
    # reports written before the significance criterion carry no p-value: they cannot pass it
    p_value = 1.0 if metrics.improvement_p_value is None else metrics.improvement_p_value
    bias_limit = max(t.max_abs_bias_clp, abs(metrics.bias_current) * (1 + t.max_bias_growth_pct / 100))
    accuracy_passed = (
        metrics.rmse_improvement <= -t.min_rmse_improvement_pct
        or metrics.mape_improvement <= -t.min_mape_improvement_pct
    )
    evaluated = [
        (
            "accuracy_improves",
            accuracy_passed,
            metrics.rmse_improvement,
            -t.min_rmse_improvement_pct,
            f"RMSE change {metrics.rmse_improvement:+.2f} %, MAPE change {metrics.mape_improvement:+.2f} %",
        ),
        (
            "error_std_stable",
            metrics.stability_score <= 1.0 + t.max_error_std_growth_pct / 100.0,
            metrics.stability_score,
            1.0 + t.max_error_std_growth_pct / 100.0,
            f"error std {metrics.error_std_new:.2f} vs {metrics.error_std_current:.2f} CLP: ratio "
            f"{metrics.stability_score:.3f}",
        ),
        (
            "inference_time_bounded",
            inference_ratio <= t.max_inference_time_ratio
            or metrics.inference_time_new - metrics.inference_time_current <= t.max_inference_excess_seconds,
            inference_ratio,
            t.max_inference_time_ratio,
            f"inference {metrics.inference_time_new * 1000:.1f} ms vs {metrics.inference_time_current * 1000:.1f} ms "
            f"per forecast: {inference_ratio:.2f}x",
        ),
        (
            "coverage_95_sufficient",
            metrics.ci95_coverage_new >= t.min_coverage_95,
            metrics.ci95_coverage_new,
            t.min_coverage_95,
            f"95 % interval coverage {metrics.ci95_coverage_new:.3f}",
        ),
        (
            "bias_bounded",
            abs(metrics.bias_new) < bias_limit,
            metrics.bias_new,
            bias_limit,
            f"bias {metrics.bias_new:+.2f} CLP (the deployed config's {abs(metrics.bias_current):.2f} CLP)",
        ),
        (
            "improvement_significant",
            p_value <= t.max_improvement_p_value,
            p_value,
            t.max_improvement_p_value,
            f"one-sided Diebold-Mariano p {p_value:.3f}",
        ),
        *_distribution_criteria(metrics, t),
    ]
    return [
        Criterion(
            name,
            passed,
            observed,
            threshold,
            f"{seen}; needs {criterion_rule(name, t)}",
            CRITERION_PATHS.get(name, BOTH_PATHS),
        )
        for name, passed, observed, threshold, seen in evaluated
    ]


def _distribution_criteria(
    metrics: ValidationMetrics, t: ApprovalThresholds
) -> list[tuple[str, bool, float, float, str]]:
    """The distribution path's criteria; a report without the distribution's fields fails them all."""
    if metrics.wql_improvement is None or metrics.wql_p_value is None:
        missing = "the report has no weighted quantile loss (written before the distribution's path)"
        return [
            (name, False, float("nan"), float("nan"), missing)
            for name in ("wql_improves", "wql_improvement_significant", "rmse_not_worse", "coverage_95_calibrated")
        ]
    low, high = t.min_coverage_95_calibrated, t.max_coverage_95_calibrated
    coverage = metrics.ci95_coverage_new
    return [
        (
            "wql_improves",
            metrics.wql_improvement <= -t.min_wql_improvement_pct,
            metrics.wql_improvement,
            -t.min_wql_improvement_pct,
            f"WQL change {metrics.wql_improvement:+.2f} % ({metrics.wql_new:.5f} vs {metrics.wql_current:.5f})",
        ),
        (
            "wql_improvement_significant",
            metrics.wql_p_value <= t.max_improvement_p_value,
            metrics.wql_p_value,
            t.max_improvement_p_value,
            f"one-sided Diebold-Mariano p {metrics.wql_p_value:.3f} on per-origin WQL",
        ),
        (
            "rmse_not_worse",
            metrics.rmse_improvement <= t.max_rmse_growth_pct,
            metrics.rmse_improvement,
            t.max_rmse_growth_pct,
            f"RMSE change {metrics.rmse_improvement:+.2f} %",
        ),
        (
            "coverage_95_calibrated",
            low <= coverage <= high,
            coverage,
            low if coverage < low else high,
            f"95 % interval coverage {coverage:.3f}",
        ),
    ]


def single_forecast_seconds(
    pipeline_for: Callable[[str], BaseChronosPipeline],
    configs: list[ChronosConfig],
    history: np.ndarray,
    steps: int,
    repeats: int = 7,
) -> list[float]:
    """Fastest wall time of one production-style forecast per configuration over ``repeats`` interleaved runs
    (after a warm-up): the minimum, because load from other processes only ever adds time (with the
    median of 5, 3 of 30 equal-cost pairs failed the 1.5x / 50 ms rule on a loaded 2-core machine)."""
    timings: list[list[float]] = [[] for _ in configs]
    for config in configs:  # warm-up: first calls pay for lazy initialisation
        forecast_quantiles(pipeline_for(config.checkpoint), config, [history], steps)
    for _ in range(repeats):
        for i, config in enumerate(configs):
            started = time.perf_counter()
            forecast_quantiles(pipeline_for(config.checkpoint), config, [history], steps)
            timings[i].append(time.perf_counter() - started)
    return [min(t) for t in timings]


@dataclass
class ValidationReport:
    horizon: str
    candidate: ChronosConfig
    deployed: ChronosConfig
    deployed_version: str
    search_window: tuple[str, str]
    validation_window: tuple[str, str]
    metrics: ValidationMetrics
    diebold_mariano: DieboldMarianoResult
    criteria: list[Criterion]
    candidate_window: dict[str, Any] = field(default_factory=dict)  # WindowMetrics of the candidate
    deployed_window: dict[str, Any] = field(default_factory=dict)
    thresholds: ApprovalThresholds = field(default_factory=ApprovalThresholds)

    @property
    def approved_by(self) -> str | None:
        """The approval path ("median" or "distribution"), None when rejected."""
        return approval_path(self.criteria, self.thresholds)

    @property
    def approved(self) -> bool:
        return self.approved_by is not None

    @property
    def failed_criteria(self) -> list[str]:
        """The criteria that block the report: none when a path approved it, every failed one otherwise."""
        return [] if self.approved else [c.name for c in self.criteria if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "approved": self.approved,
            "approved_by": self.approved_by,
            "failed_criteria": self.failed_criteria,
            "candidate": self.candidate.model_dump(mode="json", exclude_none=True),
            "deployed": self.deployed.model_dump(mode="json", exclude_none=True),
            "deployed_version": self.deployed_version,
            "search_window": list(self.search_window),
            "validation_window": list(self.validation_window),
            "metrics": asdict(self.metrics),
            "diebold_mariano": self.diebold_mariano.as_dict(),
            "criteria": [asdict(c) for c in self.criteria],
            "candidate_window_metrics": self.candidate_window,
            "deployed_window_metrics": self.deployed_window,
        }


def build_report(
    horizon: str,
    candidate: BacktestResult,
    deployed: BacktestResult,
    deployed_version: str,
    search_window: tuple[str, str],
    seconds_new: float,
    seconds_current: float,
    thresholds: ApprovalThresholds = ApprovalThresholds(),
    overlap: int | None = None,
    baseline_band: np.ndarray | None = None,
) -> ValidationReport:
    metrics = validation_metrics(candidate, deployed, seconds_new, seconds_current, overlap, baseline_band)
    overlap = candidate.actuals.shape[1] if overlap is None else overlap
    return ValidationReport(
        horizon=horizon,
        candidate=candidate.config,
        deployed=deployed.config,
        deployed_version=deployed_version,
        search_window=search_window,
        validation_window=(str(candidate.origin_dates[0].date()), str(candidate.origin_dates[-1].date())),
        metrics=metrics,
        diebold_mariano=diebold_mariano(candidate.actuals, candidate.median, deployed.median, overlap),
        criteria=approval_criteria(metrics, thresholds),
        candidate_window=candidate.metrics().as_dict(),
        deployed_window=deployed.metrics().as_dict(),
        thresholds=thresholds,
    )
