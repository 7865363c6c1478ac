"""Drift detector: rules, and the ADR's measured targets on synthetic series with fixed seeds."""

from datetime import date, timedelta

import numpy as np
import pytest

from forex_assets.core.monitoring.drift import DriftThresholds, InsufficientDataError, Severity, detect_drift
from forex_assets.core.monitoring.triggers import TriggerInputs, TriggerPolicy, decide

DAILY_VOL = 0.006


def _walk(seed, n, vol=DAILY_VOL):
    return 800 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, vol, n)))


def test_stationary_series_is_not_drifting():
    report = detect_drift(_walk(3, 400))
    assert report.severity <= Severity.LOW
    assert 0.7 < report.volatility_ratio < 1.4


def test_volatility_tripling_is_high_with_the_rule_named():
    rng = np.random.default_rng(4)
    returns = rng.normal(0, DAILY_VOL, 300)
    returns[-30:] *= 3
    report = detect_drift(800 * np.exp(np.cumsum(returns)))
    assert report.severity == Severity.HIGH and report.triggers
    assert any(r.startswith("volatility ratio") and "HIGH" in r for r in report.reasons)


def test_psi_is_bias_corrected_by_the_number_of_bins():
    report = detect_drift(_walk(5, 400))
    bins = DriftThresholds().psi_bins
    assert report.psi_corrected == pytest.approx(report.psi - (bins - 1) * (1 / 90 + 1 / 30))


def test_too_short_a_series_is_a_clear_error():
    with pytest.raises(InsufficientDataError, match="drift needs 121 prices"):
        detect_drift(_walk(1, 100))


def _weekly_drift_optimizations(seed, years=2):
    """Weekly checks of a stationary random walk, drift trigger only, with the 14-day guard."""
    prices = _walk(seed, 121 + 260 * years)
    policy = TriggerPolicy(schedule_enabled=False)
    start, last, optimizations, checks = date(2024, 1, 1), None, 0, 0
    for week, end in enumerate(range(121, len(prices) + 1, 5)):
        today = start + timedelta(days=7 * week)
        report = detect_drift(prices[:end])
        decision = decide(TriggerInputs("30d", today, report.severity, last_optimization=last), policy)
        checks += 1
        if decision.optimize:
            optimizations += 1
            last = today
    return optimizations / checks


def test_false_positive_rate_on_a_stationary_random_walk_over_two_years():
    rates = [_weekly_drift_optimizations(seed) for seed in range(20)]
    print(
        f"\ndrift-triggered optimizations per weekly check, 20 seeds x 2 years: mean {np.mean(rates):.3f}, "
        f"max {np.max(rates):.3f} (ADR target <= 0.10)"
    )
    assert np.mean(rates) <= 0.10


def _latency(seed, kind):
    rng = np.random.default_rng(1000 + seed)
    change = 300
    returns = rng.normal(0, DAILY_VOL, change + 40)
    if kind == "volatility doubling":
        returns[change:] *= 2
    else:  # a level shift: the price jumps 4 % and stays there
        returns[change] += 0.04
    prices = 800 * np.exp(np.cumsum(returns))
    for days in range(40):
        if detect_drift(prices[: change + 1 + days]).triggers:  # prices up to the change day + days
            return days
    return 99


@pytest.mark.parametrize("kind", ["volatility doubling", "level shift"])
def test_detection_latency_within_seven_business_days(kind):
    latencies = [_latency(seed, kind) for seed in range(20)]
    print(
        f"\n{kind}: detection latency in business days over 20 seeds: median {np.median(latencies)}, "
        f"p90 {np.percentile(latencies, 90):.1f}, all {sorted(latencies)}"
    )
    assert np.median(latencies) <= 7
