"""The monitoring's thresholds (drift windows and tests, performance scoring) as plain dataclasses: light to
import (no numpy, scipy or torch), so that reading a policy file (``core/policy_file.py``) stays fast."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DriftThresholds:
    baseline_window: int = 90  # log returns
    test_window: int = 30
    psi_bins: int = 4
    high_ks_p: float = 0.01
    high_ks_statistic: float = 0.3
    high_vol_ratio: float = 2.0
    medium_ks_p: float = 0.05
    medium_ks_statistic: float = 0.2
    medium_psi: float = 0.25
    medium_vol_ratio: float = 1.5
    low_ks_p: float = 0.10
    low_psi: float = 0.10
    low_vol_ratio: float = 1.25
    fast_threshold: float = 16.0  # Page-Hinkley lambda on squared standardized returns
    fast_delta: float = 1.0  # tolerated rise of their mean (1 = variance x2 before any accumulation)
    fast_recent: int = 10  # an alarm within the latest observations counts


@dataclass(frozen=True)
class PerformancePolicy:
    window_days: int = 14  # forecasts that matured in the last 14 calendar days (ADR)
    min_live_forecasts: int = 5  # below this, score a backtest of the deployed configuration instead
    backtest_origins: int = 10
    # the random-walk test: the latest matured forecasts of the deployed version against the random walk's
    random_walk_test_origins: int = 40
    random_walk_test_min_origins: int = 20  # fewer matured forecasts of the deployed version: no test yet
    # the band test on the same matured forecasts (issue 23): the deployed version's weighted quantile loss
    # against the RiskMetrics EWMA band's; "worse" means more than this margin worse (a band a few percent
    # behind EWMA's is no reason to search again: the distribution's approval path needs 2 % to deploy)
    band_test_margin_pct: float = 5.0
