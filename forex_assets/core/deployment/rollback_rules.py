"""When to roll a freshly deployed configuration back (docs/decisions.md, Rollback). Pure logic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from forex_assets.core.forecasting.config import ValidationBaseline


@dataclass(frozen=True)
class RollbackThresholds:
    consecutive_failures: int = 3  # failed forecast runs in a row since the deploy
    inference_time_ratio: float = 3.0  # seconds per forecast / baseline ...
    # ... and at least this many seconds above it: wall time at millisecond scale is noise on a shared
    # machine (one busy neighbour makes a 4 ms forecast take 200 ms), and must never roll back alone
    min_inference_excess_seconds: float = 1.0
    # ... on each of the latest this many forecasts (their fastest is judged): load comes and goes, a slow
    # configuration is slow every day; one forecast slowed by a busy neighbour must never roll back alone
    slow_forecasts: int = 3
    rmse_ratio: float = 1.5  # RMSE of matured forecasts / baseline RMSE
    min_matured_forecasts: int = 5  # forecasts whose every target is observed, before RMSE counts
    # what rmse_ratio compares: "skill", the matured forecasts' RMSE over the random walk's on the same targets
    # against the baseline's skill (a calm validation window followed by a volatile month raises every
    # forecaster's RMSE, the random walk's too: measured in skill it is no fault; 3 of 13 deploys in the
    # deploy bench were rolled back by the volatility alone, each beating the configuration it replaced), or
    # "rmse", the RMSE itself against the baseline RMSE (ADR-001's rule). "skill" needs the baseline's skill
    # and the random walk's RMSE; without either the RMSE itself is judged
    rmse_measure: Literal["skill", "rmse"] = "skill"


def rollback_rules_text(thresholds: RollbackThresholds = RollbackThresholds()) -> str:
    """The rollback rules in words, with the values of ``thresholds`` (the rollback sensor's description)."""
    t = thresholds
    return (
        f"{t.consecutive_failures} consecutive failed forecast runs, inference time above {t.inference_time_ratio:g}x "
        f"the validation baseline and more than {t.min_inference_excess_seconds:g} s above it on each of the latest "
        f"{t.slow_forecasts} forecasts, or "
        + ("RMSE relative to the random walk's" if t.rmse_measure == "skill" else "RMSE")
        + f" above {t.rmse_ratio:g}x the baseline's once {t.min_matured_forecasts} forecasts have matured"
    )


@dataclass(frozen=True)
class PostDeployHealth:
    """What happened to one horizon's forecasts since its latest deploy."""

    run_succeeded_newest_first: Sequence[bool]  # finished forecast runs since the deploy
    inference_seconds_newest_first: Sequence[float]  # of the version's recorded forecasts
    matured_forecasts: int
    matured_rmse_clp: float | None
    # the random walk's RMSE on the same matured targets (the last price of each origin)
    matured_random_walk_rmse_clp: float | None = None


def rollback_reason(
    health: PostDeployHealth, baseline: ValidationBaseline | None, thresholds: RollbackThresholds = RollbackThresholds()
) -> str | None:
    """The reason to roll back, or None when the deploy looks healthy."""
    failures = 0
    for succeeded in health.run_succeeded_newest_first:
        if succeeded:
            break
        failures += 1
    if failures >= thresholds.consecutive_failures:
        return f"{failures} consecutive failed forecast runs since the deploy"
    if baseline is None:
        return None
    recent = list(health.inference_seconds_newest_first[: thresholds.slow_forecasts])
    limit = max(
        thresholds.inference_time_ratio * baseline.inference_seconds,
        baseline.inference_seconds + thresholds.min_inference_excess_seconds,
    )
    if recent and len(recent) >= thresholds.slow_forecasts and min(recent) > limit:
        return (
            f"inference time {min(recent):.4f} s (the fastest of the latest {len(recent)} forecasts) is above "
            f"{thresholds.inference_time_ratio:g}x the baseline {baseline.inference_seconds:.4f} s and more than "
            f"{thresholds.min_inference_excess_seconds:g} s above it"
        )
    if health.matured_rmse_clp is None or health.matured_forecasts < thresholds.min_matured_forecasts:
        return None
    walk = health.matured_random_walk_rmse_clp
    if thresholds.rmse_measure == "skill" and baseline.skill_vs_random_walk is not None and walk:
        skill = health.matured_rmse_clp / walk
        if skill > thresholds.rmse_ratio * baseline.skill_vs_random_walk:
            return (
                f"RMSE / random-walk RMSE {skill:.3f} ({health.matured_rmse_clp:.3f} / {walk:.3f} CLP) over "
                f"{health.matured_forecasts} matured forecasts is above {thresholds.rmse_ratio:g}x the baseline's "
                f"{baseline.skill_vs_random_walk:.3f}"
            )
        return None
    if health.matured_rmse_clp > thresholds.rmse_ratio * baseline.rmse_clp:
        return (
            f"RMSE {health.matured_rmse_clp:.3f} CLP over {health.matured_forecasts} matured forecasts is above "
            f"{thresholds.rmse_ratio:g}x the baseline {baseline.rmse_clp:.3f} CLP"
        )
    return None
