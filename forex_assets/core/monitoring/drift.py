"""Drift of the USD/CLP log returns: baseline window vs test window, plus a fast streaming detector.

Statistics, on daily log returns (defaults: baseline = the 90 returns before the test window,
test = the latest 30):

* two-sample Kolmogorov-Smirnov (scipy): statistic and p-value;
* PSI with ``psi_bins`` bins cut at the baseline's quantiles, bias-corrected: with n observations a
  PSI estimate is biased upward by about (bins - 1) / n per sample (it is a chi-square-like
  statistic), so ``psi_corrected = psi - (bins - 1) * (1 / n_baseline + 1 / n_test)``;
* volatility ratio: std(test) / std(baseline);
* fast detector: river's Page-Hinkley test (Page 1954; Hinkley 1971) on squared standardized returns
  ``(r / std(baseline))**2`` streamed from the start of the baseline window. A volatility jump or a
  level shift (one outsized return) raises that stream's mean at once, long before 30-observation
  statistics move; an alarm counts when it rings within the last ``fast_recent`` observations.

Severity rule (every threshold a field of :class:`DriftThresholds`):

* HIGH: KS p < 0.01 and KS statistic > 0.3; or volatility ratio > 2.0 or < 0.5;
* MEDIUM: KS p < 0.05 and KS statistic > 0.2 (the decision record's rule); or corrected PSI > 0.25; or volatility
  ratio > 1.5 or < 0.67; or a fast-detector alarm;
* LOW: KS p < 0.10; or corrected PSI > 0.10; or volatility ratio > 1.25 or < 0.8;
* NONE otherwise.

MEDIUM and HIGH trigger a recalibration (docs/decisions.md, Drift).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from river.drift import PageHinkley
from scipy import stats

from forex_assets.core.monitoring.severity import Severity
from forex_assets.core.monitoring.thresholds import (
    DriftThresholds as DriftThresholds,  # declared there, light to import
)


@dataclass(frozen=True)
class DriftReport:
    ks_statistic: float
    ks_p_value: float
    psi: float
    psi_corrected: float
    volatility_ratio: float
    fast_alarm: bool
    fast_alarm_age: int | None  # observations since the latest alarm within the recent window
    severity: Severity
    reasons: tuple[str, ...]  # the rule(s) that decided the severity
    baseline_std: float
    test_std: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.name
        d["reasons"] = list(self.reasons)
        return d

    @property
    def triggers(self) -> bool:
        return self.severity >= Severity.MEDIUM


class InsufficientDataError(ValueError):
    pass


def population_stability_index(baseline: np.ndarray, test: np.ndarray, bins: int) -> float:
    edges = np.quantile(baseline, np.linspace(0, 1, bins + 1))[1:-1]
    expected = np.bincount(np.searchsorted(edges, baseline, side="right"), minlength=bins) / len(baseline)
    actual = np.bincount(np.searchsorted(edges, test, side="right"), minlength=bins) / len(test)
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def page_hinkley_alarms(values: np.ndarray, threshold: float, delta: float) -> list[int]:
    """Indices at which river's Page-Hinkley (upward mode) signals an increase of the mean."""
    detector = PageHinkley(min_instances=30, delta=delta, threshold=threshold, alpha=1.0, mode="up")
    alarms = []
    for i, value in enumerate(values):
        detector.update(float(value))  # type: ignore[no-untyped-call]  # river leaves update() unannotated
        if detector.drift_detected:
            alarms.append(i)
    return alarms


def detect_drift(prices: np.ndarray, thresholds: DriftThresholds = DriftThresholds()) -> DriftReport:
    """Drift report for the latest ``test_window`` log returns of ``prices`` (oldest first)."""
    t = thresholds
    returns = np.diff(np.log(np.asarray(prices, dtype=float)))
    needed = t.baseline_window + t.test_window
    if len(returns) < needed:
        raise InsufficientDataError(f"drift needs {needed + 1} prices ({needed} returns); got {len(prices)}")
    window = returns[-needed:]
    baseline, test = window[: t.baseline_window], window[t.baseline_window :]
    ks = stats.ks_2samp(baseline, test)
    psi = population_stability_index(baseline, test, t.psi_bins)
    psi_corrected = psi - (t.psi_bins - 1) * (1 / len(baseline) + 1 / len(test))
    baseline_std, test_std = float(np.std(baseline, ddof=1)), float(np.std(test, ddof=1))
    ratio = test_std / baseline_std if baseline_std > 0 else float("inf")
    alarms = page_hinkley_alarms((window / baseline_std) ** 2, t.fast_threshold, t.fast_delta)
    recent = [needed - 1 - i for i in alarms if i >= needed - t.fast_recent]
    fast_age = min(recent) if recent else None

    reasons: list[str] = []
    severity = Severity.NONE
    if ks.pvalue < t.high_ks_p and ks.statistic > t.high_ks_statistic:
        reasons.append(
            f"KS {ks.statistic:.3f} with p {ks.pvalue:.4f} (HIGH: p < {t.high_ks_p}, KS > {t.high_ks_statistic})"
        )
    if ratio > t.high_vol_ratio or ratio < 1 / t.high_vol_ratio:
        reasons.append(
            f"volatility ratio {ratio:.2f} (HIGH: above {t.high_vol_ratio} or below {1 / t.high_vol_ratio:.2f})"
        )
    if reasons:
        severity = Severity.HIGH
    else:
        if ks.pvalue < t.medium_ks_p and ks.statistic > t.medium_ks_statistic:
            reasons.append(
                f"KS {ks.statistic:.3f} with p {ks.pvalue:.4f} "
                f"(MEDIUM: p < {t.medium_ks_p}, KS > {t.medium_ks_statistic})"
            )
        if psi_corrected > t.medium_psi:
            reasons.append(f"corrected PSI {psi_corrected:.3f} (MEDIUM: above {t.medium_psi})")
        if ratio > t.medium_vol_ratio or ratio < 1 / t.medium_vol_ratio:
            reasons.append(
                f"volatility ratio {ratio:.2f} "
                f"(MEDIUM: above {t.medium_vol_ratio} or below {1 / t.medium_vol_ratio:.2f})"
            )
        if fast_age is not None:
            reasons.append(f"Page-Hinkley alarm on squared standardized returns {fast_age} observations ago (MEDIUM)")
        if reasons:
            severity = Severity.MEDIUM
        else:
            if ks.pvalue < t.low_ks_p:
                reasons.append(f"KS p {ks.pvalue:.3f} (LOW: below {t.low_ks_p})")
            if psi_corrected > t.low_psi:
                reasons.append(f"corrected PSI {psi_corrected:.3f} (LOW: above {t.low_psi})")
            if ratio > t.low_vol_ratio or ratio < 1 / t.low_vol_ratio:
                reasons.append(
                    f"volatility ratio {ratio:.2f} (LOW: above {t.low_vol_ratio} or below {1 / t.low_vol_ratio:.2f})"
                )
            severity = Severity.LOW if reasons else Severity.NONE
    if not reasons:
        reasons.append("no rule fired: KS, PSI, volatility ratio and the fast detector are all within bounds")
    return DriftReport(
        ks_statistic=float(ks.statistic),
        ks_p_value=float(ks.pvalue),
        psi=psi,
        psi_corrected=psi_corrected,
        volatility_ratio=ratio,
        fast_alarm=fast_age is not None,
        fast_alarm_age=fast_age,
        severity=severity,
        reasons=tuple(reasons),
        baseline_std=baseline_std,
        test_std=test_std,
    )
