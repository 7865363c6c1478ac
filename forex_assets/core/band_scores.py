"""Scores of a forecast's band, the part of an FX forecast that carries information (issue 23, first part).

The median of a USD/CLP forecast is, at best, the random walk; what a forecast adds is its band. These are
the band's proper scores and the risk manager's own backtests of its breaches:

* :func:`interval_score`: the interval (Winkler) score of a central ``1 - alpha`` interval (Gneiting and
  Raftery 2007): its width plus ``2 / alpha`` times each miss, in CLP; lower is better, and it rewards a
  band that is as narrow as it can be while covering;
* :func:`coverage` and :func:`mean_width_pct`: the share of actuals inside the band, its mean width as a
  percentage of the actual;
* :func:`kupiec_pof`: Kupiec's (1995) proportion-of-failures likelihood-ratio test that breaches happen
  at the nominal rate (too many *or* too few);
* :func:`christoffersen_independence`: Christoffersen's (1998) likelihood-ratio test that a breach today
  does not make a breach tomorrow more (or less) likely: breaches that cluster mean a band that follows
  volatility too slowly.

Pure numpy and scipy; inputs are arrays of any shape, flattened in C order (for the breach tests, pass
one series of breaches in time order: one step of one horizon).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import chi2

FloatArray = npt.ArrayLike


def _as_arrays(*arrays: FloatArray) -> list[npt.NDArray[np.float64]]:
    values = [np.asarray(a, dtype=float).ravel() for a in arrays]
    if len({len(v) for v in values}) != 1:
        raise ValueError(f"the arrays differ in size: {[len(v) for v in values]}")
    if len(values[0]) == 0:
        raise ValueError("no forecasts to score (empty arrays)")
    return values


def interval_score(lower: FloatArray, upper: FloatArray, actual: FloatArray, alpha: float = 0.05) -> float:
    """Mean interval (Winkler) score of the central ``1 - alpha`` interval [lower, upper], in the actuals'
    unit: ``(upper - lower) + 2 / alpha * (lower - y)`` when y is below, ``+ 2 / alpha * (y - upper)``
    when above."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    lo, hi, y = _as_arrays(lower, upper, actual)
    if np.any(hi < lo):
        raise ValueError("an interval's upper bound is below its lower bound")
    below = np.clip(lo - y, 0.0, None)
    above = np.clip(y - hi, 0.0, None)
    return float(np.mean((hi - lo) + (2.0 / alpha) * (below + above)))


def coverage(lower: FloatArray, upper: FloatArray, actual: FloatArray) -> float:
    """Share of actuals inside [lower, upper] (bounds included)."""
    lo, hi, y = _as_arrays(lower, upper, actual)
    return float(np.mean((y >= lo) & (y <= hi)))


def mean_width_pct(lower: FloatArray, upper: FloatArray, actual: FloatArray) -> float:
    """Mean width of the band as a percentage of the actual price."""
    lo, hi, y = _as_arrays(lower, upper, actual)
    return float(np.mean((hi - lo) / np.abs(y)) * 100.0)


def breaches(lower: FloatArray, upper: FloatArray, actual: FloatArray) -> npt.NDArray[np.bool_]:
    """True where the actual fell outside [lower, upper], in the given order."""
    lo, hi, y = _as_arrays(lower, upper, actual)
    return (y < lo) | (y > hi)


def _xlogy(x: float, y: float) -> float:
    """x * log(y), 0 when x is 0 (the likelihood of an event never seen)."""
    return 0.0 if x == 0 else x * float(np.log(y))


@dataclass(frozen=True)
class KupiecResult:
    observations: int
    breaches: int
    expected_rate: float
    observed_rate: float
    statistic: float  # likelihood ratio, chi-squared with 1 degree of freedom under the null
    p_value: float  # small: the breach rate is not the nominal one (too many or too few)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def kupiec_pof(breach_flags: FloatArray, expected_rate: float = 0.05) -> KupiecResult:
    """Kupiec's proportion-of-failures test: are ``breach_flags`` (True = the actual left the band) as
    frequent as ``expected_rate`` (0.05 for a 95 % band)?"""
    if not 0 < expected_rate < 1:
        raise ValueError(f"expected_rate must be in (0, 1), got {expected_rate}")
    [flags] = _as_arrays(breach_flags)
    n, x = len(flags), int(np.count_nonzero(flags))
    observed = x / n
    null = _xlogy(n - x, 1 - expected_rate) + _xlogy(x, expected_rate)
    alternative = _xlogy(n - x, 1 - observed) + _xlogy(x, observed)
    statistic = max(0.0, -2.0 * (null - alternative))
    return KupiecResult(n, x, expected_rate, observed, statistic, float(chi2.sf(statistic, df=1)))


@dataclass(frozen=True)
class ChristoffersenResult:
    transitions: tuple[int, int, int, int]  # n00, n01, n10, n11: no breach / breach, then no breach / breach
    statistic: float  # likelihood ratio, chi-squared with 1 degree of freedom under independence
    p_value: float  # small: a breach changes the chance of a breach the next time

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def christoffersen_independence(breach_flags: FloatArray) -> ChristoffersenResult:
    """Christoffersen's independence test on a time-ordered series of breaches: a first-order Markov chain
    of breaches against an independent one. Without any breach (or without any non-breach) the chain
    cannot be told apart from independence: statistic 0, p-value 1."""
    [flags] = _as_arrays(breach_flags)
    b = flags.astype(bool)
    if len(b) < 2:
        raise ValueError("the independence test needs at least two observations")
    before, after = b[:-1], b[1:]
    n00 = int(np.count_nonzero(~before & ~after))
    n01 = int(np.count_nonzero(~before & after))
    n10 = int(np.count_nonzero(before & ~after))
    n11 = int(np.count_nonzero(before & after))
    counts = (n00, n01, n10, n11)
    total = n00 + n01 + n10 + n11
    pi = (n01 + n11) / total
    if pi in (0.0, 1.0):
        return ChristoffersenResult(counts, 0.0, 1.0)
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    independent = _xlogy(n00 + n10, 1 - pi) + _xlogy(n01 + n11, pi)
    markov = _xlogy(n00, 1 - pi0) + _xlogy(n01, pi0) + _xlogy(n10, 1 - pi1) + _xlogy(n11, pi1)
    statistic = max(0.0, -2.0 * (independent - markov))
    return ChristoffersenResult(counts, statistic, float(chi2.sf(statistic, df=1)))
