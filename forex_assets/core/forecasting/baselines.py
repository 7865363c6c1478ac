"""Strong simple baselines for a forecast's band (issue 23, first part): the random walk's median with a
RiskMetrics EWMA band.

RiskMetrics (J.P. Morgan, 1996): the daily variance of log returns is an exponentially weighted moving
average, ``s2[t+1] = lam * s2[t] + (1 - lam) * r[t] ** 2`` with ``lam = 0.94``; the k-step log return is
Gaussian with standard deviation ``s * sqrt(k)``. Its quantiles in CLP are ``last * exp(z_q * s * sqrt(k))``.
Pure numpy and scipy: this is the formula an FX forecast's band has to beat.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

RISKMETRICS_LAMBDA = 0.94  # the daily decay of RiskMetrics (1996)
MIN_RETURNS = 20  # log returns needed to start the average (their sample variance seeds it)


def ewma_volatility(prices: npt.ArrayLike, lam: float = RISKMETRICS_LAMBDA) -> float:
    """The EWMA forecast of the next day's log-return standard deviation from ``prices`` (oldest first)."""
    if not 0 < lam < 1:
        raise ValueError(f"the EWMA decay lam must be in (0, 1), got {lam}")
    values = np.asarray(prices, dtype=float)
    if np.any(~np.isfinite(values)) or np.any(values <= 0):
        raise ValueError("prices must be positive and finite")
    returns = np.diff(np.log(values))
    if len(returns) < MIN_RETURNS:
        raise ValueError(f"the EWMA band needs at least {MIN_RETURNS + 1} prices, got {len(values)}")
    variance = float(np.var(returns[:MIN_RETURNS]))
    for r in returns[MIN_RETURNS:]:
        variance = lam * variance + (1 - lam) * float(r) ** 2
    return float(np.sqrt(variance))


def random_walk_ewma_quantiles(
    prices: npt.ArrayLike, steps: int, levels: Sequence[float], lam: float = RISKMETRICS_LAMBDA
) -> npt.NDArray[np.float64]:
    """(steps, len(levels)) quantiles in CLP of the random walk with a RiskMetrics band, from the history
    ``prices`` (oldest first): median the last price, step k's level q at ``last * exp(z_q * s * sqrt(k))``."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    sigma = ewma_volatility(prices, lam)
    last = float(np.asarray(prices, dtype=float)[-1])
    z = norm.ppf(np.asarray(levels, dtype=float))
    k = np.arange(1, steps + 1, dtype=float)[:, None]
    return np.asarray(last * np.exp(z[None, :] * sigma * np.sqrt(k)), dtype=np.float64)
