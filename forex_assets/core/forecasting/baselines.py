"""Strong simple baselines for a forecast's band: the random walk's median (the last price) with a band from
the history's volatility. Every one has the random walk's median, so against them a forecast is judged on its
band (its median is judged against the random walk already).

* ``ewma_band``: RiskMetrics (J.P. Morgan, 1996): the daily variance of log returns is an exponentially
  weighted moving average, ``s2[t+1] = lam * s2[t] + (1 - lam) * r[t] ** 2`` with ``lam = 0.94``; the k-step
  log return is Gaussian with standard deviation ``s * sqrt(k)``: quantiles ``last * exp(z_q * s * sqrt(k))``.
* ``garch_band``: GARCH(1,1) with Student-t innovations fitted by maximum likelihood (the ``arch`` package) on
  the last :data:`GARCH_WINDOW` log returns; the k-step log return's quantiles are those of the model's
  simulated paths (seeded: the same history gives the same band; symmetrised), centred on the last price.
* ``historical_band``: historical simulation: the empirical quantiles of the overlapping k-day log returns of
  the last :data:`HISTORICAL_WINDOW` business days, centred on their median.

:func:`baseline_quantiles` forecasts any of them for many origins of one series, as a backtest does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter
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
    start = float(np.var(returns[:MIN_RETURNS]))
    later = returns[MIN_RETURNS:]
    if len(later) == 0:
        return float(np.sqrt(start))
    # variance[t] = lam * variance[t - 1] + (1 - lam) * r[t]^2, started from ``start``: a first-order linear
    # filter, run in C by scipy (a Python loop over 4,000 returns took 0.8 ms an origin)
    variance, _ = lfilter([1.0 - lam], [1.0, -lam], later**2, zi=[lam * start])
    return float(np.sqrt(variance[-1]))


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


#: GARCH(1,1)-t is fitted on at most this many of the latest log returns (four years of business days) ...
GARCH_WINDOW = 1000
#: ... and at least this many (one year): fewer cannot pin down the persistence alpha + beta
GARCH_MIN_RETURNS = 250
GARCH_SIMULATIONS = 10_000  # paths simulated for the k-step quantiles (seeded): ends within about 1 %
#: historical simulation's window: the last 500 business days (about two years), the industry's usual choice
HISTORICAL_WINDOW = 500


def _log_returns(prices: npt.ArrayLike, needed: int, what: str) -> npt.NDArray[np.float64]:
    values = np.asarray(prices, dtype=float)
    if np.any(~np.isfinite(values)) or np.any(values <= 0):
        raise ValueError("prices must be positive and finite")
    if len(values) < needed + 1:
        raise ValueError(f"the {what} needs at least {needed + 1} prices, got {len(values)}")
    return np.asarray(np.diff(np.log(values)), dtype=np.float64)


def _centred_on_last(last: float, log_quantiles: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(last * np.exp(log_quantiles), dtype=np.float64)


def garch_t_quantiles(
    prices: npt.ArrayLike, steps: int, levels: Sequence[float], seed: int = 0
) -> npt.NDArray[np.float64]:
    """(steps, len(levels)) quantiles in CLP: the last price times the exp of the k-step log return's quantiles
    under a zero-mean GARCH(1,1) with standardised Student-t innovations, fitted on the last
    :data:`GARCH_WINDOW` returns (percent returns, as ``arch`` recommends for its optimiser), from
    :data:`GARCH_SIMULATIONS` seeded paths. The median is the last price (a random walk's)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    from arch.univariate import GARCH, StudentsT, ZeroMean

    returns = _log_returns(prices, GARCH_MIN_RETURNS, "GARCH band")[-GARCH_WINDOW:]
    # the innovations' generator is the distribution's: seeded, the same history gives the same band
    innovations = StudentsT(seed=np.random.default_rng(seed))
    model = ZeroMean(returns * 100.0, volatility=GARCH(p=1, q=1), distribution=innovations, rescale=False)
    fitted = model.fit(disp="off", show_warning=False)
    simulated = fitted.forecast(horizon=steps, method="simulation", simulations=GARCH_SIMULATIONS, reindex=False)
    paths = np.asarray(simulated.simulations.values, dtype=float)[-1]  # (simulations, steps) percent log returns
    cumulative = np.cumsum(paths, axis=1) / 100.0
    # the model is symmetric (zero mean, symmetric innovations): a level's quantile and its mirror's are
    # averaged, which halves the simulation noise of the band's ends and puts the median at 0 exactly
    levels_array = np.asarray(levels, dtype=float)
    upper = np.quantile(cumulative, levels_array, axis=0).T  # (steps, levels)
    mirrored = np.quantile(cumulative, 1.0 - levels_array, axis=0).T
    log_q = (upper - mirrored) / 2.0
    return _centred_on_last(float(np.asarray(prices, dtype=float)[-1]), log_q)


def historical_quantiles(prices: npt.ArrayLike, steps: int, levels: Sequence[float]) -> npt.NDArray[np.float64]:
    """(steps, len(levels)) quantiles in CLP by historical simulation: at step k the empirical quantiles of the
    overlapping k-day log returns of the last :data:`HISTORICAL_WINDOW` business days, centred on their
    median, applied to the last price."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    needed = max(2 * steps, MIN_RETURNS)  # at least two non-overlapping k-day returns at the last step
    returns = _log_returns(prices, needed, "historical band")[-HISTORICAL_WINDOW:]
    cumulative = np.concatenate([[0.0], np.cumsum(returns)])
    out = np.empty((steps, len(levels)))
    for k in range(1, steps + 1):
        k_day = cumulative[k:] - cumulative[:-k]
        out[k - 1] = np.quantile(k_day, levels) - np.median(k_day)
    return _centred_on_last(float(np.asarray(prices, dtype=float)[-1]), out)


BaselineName = Literal["ewma_band", "garch_band", "historical_band"]
BASELINES: dict[str, Callable[[npt.ArrayLike, int, Sequence[float]], npt.NDArray[np.float64]]] = {
    "ewma_band": random_walk_ewma_quantiles,
    "garch_band": garch_t_quantiles,
    "historical_band": historical_quantiles,
}


def baseline_quantiles(
    name: str,
    values: npt.ArrayLike,
    origins: Sequence[int] | npt.NDArray[np.int64],
    steps: int,
    levels: Sequence[float],
) -> npt.NDArray[np.float64]:
    """(origins, steps, levels) quantiles in CLP of baseline ``name`` for each origin of ``values`` (the price
    series, oldest first; an origin is the index of the last price its forecast may see)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; the baselines: {', '.join(BASELINES)}")
    forecast = BASELINES[name]
    series = np.asarray(values, dtype=float)
    return np.stack([forecast(series[: int(o) + 1], steps, levels) for o in origins])
