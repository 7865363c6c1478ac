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
from forex_assets.core.metrics import DieboldMarianoResult, diebold_mariano
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


@dataclass(frozen=True)
class Criterion:
    name: str  # the asset check's name
    passed: bool
    observed: float
    threshold: float
    description: str


CRITERIA_NAMES = (
    "accuracy_improves",
    "error_std_stable",
    "inference_time_bounded",
    "coverage_95_sufficient",
    "bias_bounded",
    "improvement_significant",
)


def _change_pct(new: float, current: float) -> float:
    return (new - current) / current * 100.0 if current else float("inf")


def validation_metrics(
    candidate: BacktestResult,
    deployed: BacktestResult,
    seconds_new: float,
    seconds_current: float,
    overlap: int | None = None,
) -> ValidationMetrics:
    """``overlap``: how many consecutive validation origins share targets (``Windows.overlap``; default the
    horizon's steps, i.e. origins one business day apart)."""
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
    )


def one_sided_improvement_p(candidate: BacktestResult, deployed: BacktestResult, overlap: int | None = None) -> float:
    """p-value of "the candidate's squared path error is lower" (Diebold-Mariano, HLN-corrected, HAC lags
    ``overlap - 1``): half the two-sided p when the candidate's loss is lower, 1 - half of it otherwise.

    A window of fewer than 3 x ``overlap`` origins cannot estimate the HAC variance those lags need (the
    test would be capped and pass noise), so it gives p = 1: it cannot show an improvement. The search
    spaces' windows (docs/decisions.md) hold 60 origins spaced so that ``overlap`` is 7 or 8."""
    overlap = candidate.actuals.shape[1] if overlap is None else overlap
    if len(candidate.actuals) < 3 * overlap:
        return 1.0
    test = diebold_mariano(candidate.actuals, candidate.median, deployed.median, overlap)
    return test.p_value / 2 if test.statistic < 0 else 1.0 - test.p_value / 2


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
    }
    return rules[name]


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
    ]
    return [
        Criterion(name, passed, observed, threshold, f"{seen}; needs {criterion_rule(name, t)}")
        for name, passed, observed, threshold, seen in evaluated
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

    @property
    def approved(self) -> bool:
        return all(c.passed for c in self.criteria)

    @property
    def failed_criteria(self) -> list[str]:
        return [c.name for c in self.criteria if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "approved": self.approved,
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
) -> ValidationReport:
    metrics = validation_metrics(candidate, deployed, seconds_new, seconds_current, overlap)
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
    )
