"""Synthetic exchange-rate-like series.

Two users:

* the default price source (:func:`usdclp_like_series`): one deterministic USD/CLP-like business-day
  series with volatility regimes, jumps and a regime change near its end, so that the drift and
  degradation triggers have something real to find;
* the bundled model's training script (:func:`training_corpus`): many short series from several
  generators (random walks, GBM with volatility regimes, jumps, mean reversion).

Everything here is pure numpy and seeded; nothing reads real prices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Annualisation is never used: every volatility here is per business day, as a log-return std.
CALM_DAILY_VOL = 0.0035
NORMAL_DAILY_VOL = 0.0050
VOLATILE_DAILY_VOL = 0.0080


@dataclass(frozen=True)
class RegimeChange:
    """The regime change placed inside the last observations of the default series."""

    observations_before_end: int = 30
    daily_vol_after: float = 0.0110
    daily_drift_after: float = 0.0010  # log-return per business day (a depreciation of the peso)
    jump_log_return: float = 0.035
    calm_observations_before: int = 150  # a calm stretch first, so the change is unmistakable


def _student_t_shocks(rng: np.random.Generator, n: int, dof: float = 5.0) -> np.ndarray:
    """Unit-variance Student-t shocks: fat tails like daily FX returns."""
    shocks: np.ndarray = rng.standard_t(dof, size=n) / np.sqrt(dof / (dof - 2.0))
    return shocks


def _regime_path(
    rng: np.random.Generator,
    n: int,
    vols: tuple[float, ...],
    mean_duration_days: float,
) -> np.ndarray:
    """Daily volatility following a Markov chain that stays ~mean_duration_days in each regime."""
    switch_probability = 1.0 / mean_duration_days
    path = np.empty(n)
    state = int(rng.integers(len(vols)))
    switches = rng.random(n) < switch_probability
    choices = rng.integers(len(vols), size=n)
    for t in range(n):
        if switches[t]:
            state = int(choices[t])
        path[t] = vols[state]
    return path


def usdclp_like_series(
    seed: int = 20260101,
    start: str = "2014-01-01",
    end: str = "2026-10-30",
    regime_change: RegimeChange | None = RegimeChange(),
) -> pd.DataFrame:
    """A deterministic USD/CLP-like business-day series.

    Log price follows a mean-reverting walk around an anchor that drifts from log(560) to log(800),
    with Student-t shocks, volatility regimes (0.35 % / 0.50 % / 0.80 % daily) and rare jumps. Inside
    the last ``regime_change.observations_before_end`` observations the volatility doubles, a trend
    appears and a jump occurs: the regime change the drift and performance triggers must find.

    Returns a frame with columns ``date`` (datetime64, business days) and ``usdclp`` (CLP per USD).
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start=start, end=end)
    n = len(dates)
    if n < 260:
        raise ValueError(f"synthetic series needs at least 260 business days, {start}..{end} has {n}")

    anchor = np.linspace(np.log(560.0), np.log(800.0), n)
    vol = _regime_path(rng, n, (CALM_DAILY_VOL, NORMAL_DAILY_VOL, VOLATILE_DAILY_VOL), 120.0)
    shocks = _student_t_shocks(rng, n) * vol
    jumps = np.where(rng.random(n) < 1.0 / 250.0, rng.normal(0.0, 0.02, n), 0.0)
    drift = np.zeros(n)

    if regime_change is not None:
        k = n - regime_change.observations_before_end
        calm_start = max(0, k - regime_change.calm_observations_before)
        shocks[calm_start:k] = _student_t_shocks(rng, k - calm_start) * CALM_DAILY_VOL
        shocks[k:] = _student_t_shocks(rng, n - k) * regime_change.daily_vol_after
        drift[k:] = regime_change.daily_drift_after
        jumps[k] = regime_change.jump_log_return

    reversion_per_day = 0.006
    log_price = np.empty(n)
    log_price[0] = anchor[0]
    for t in range(1, n):
        pull = reversion_per_day * (anchor[t - 1] - log_price[t - 1])
        log_price[t] = log_price[t - 1] + pull + drift[t] + shocks[t] + jumps[t]

    prices = np.round(np.exp(log_price), 2)
    return pd.DataFrame({"date": dates.as_unit("ns"), "usdclp": prices})


def random_walk(rng: np.random.Generator, n: int, level: float, daily_vol: float) -> np.ndarray:
    """Geometric random walk with Gaussian shocks."""
    return level * np.exp(np.cumsum(rng.normal(0.0, daily_vol, n)))


def gbm_with_regimes(rng: np.random.Generator, n: int, level: float, base_vol: float) -> np.ndarray:
    """GBM whose volatility switches between three regimes, Student-t shocks."""
    vols = (base_vol * 0.6, base_vol, base_vol * 1.8)
    vol = _regime_path(rng, n, vols, mean_duration_days=float(rng.uniform(40, 250)))
    path: np.ndarray = level * np.exp(np.cumsum(_student_t_shocks(rng, n) * vol))
    return path


def jump_diffusion(rng: np.random.Generator, n: int, level: float, base_vol: float) -> np.ndarray:
    """GBM plus Poisson jumps (Merton)."""
    jump_rate = rng.uniform(1 / 500, 1 / 60)
    jumps = np.where(rng.random(n) < jump_rate, rng.normal(0.0, 4 * base_vol, n), 0.0)
    return level * np.exp(np.cumsum(rng.normal(0.0, base_vol, n) + jumps))


def mean_reverting(rng: np.random.Generator, n: int, level: float, base_vol: float) -> np.ndarray:
    """Ornstein-Uhlenbeck on the log price (slow reversion, as in managed currencies)."""
    kappa = rng.uniform(0.002, 0.05)
    x = np.empty(n)
    x[0] = rng.normal(0.0, base_vol / np.sqrt(2 * kappa))
    eps = rng.normal(0.0, base_vol, n)
    for t in range(1, n):
        x[t] = x[t - 1] * (1 - kappa) + eps[t]
    return level * np.exp(x)


GENERATORS = {
    "random_walk": lambda rng, n, level, vol: random_walk(rng, n, level, vol),
    "gbm_regimes": gbm_with_regimes,
    "jump_diffusion": jump_diffusion,
    "mean_reverting": mean_reverting,
}


def training_corpus(seed: int, n_series: int, length: int) -> list[np.ndarray]:
    """Series for training the bundled model, cycling through every generator.

    Levels are log-uniform between 0.5 and 2000 and daily volatility between 0.2 % and 2 %, so the
    model learns scale-free dynamics rather than memorising USD/CLP levels.
    """
    rng = np.random.default_rng(seed)
    names = list(GENERATORS)
    corpus = []
    for i in range(n_series):
        level = float(np.exp(rng.uniform(np.log(0.5), np.log(2000.0))))
        vol = float(np.exp(rng.uniform(np.log(0.002), np.log(0.02))))
        series = GENERATORS[names[i % len(names)]](rng, length, level, vol)
        corpus.append(series.astype(np.float32))
    return corpus


@dataclass(frozen=True)
class InjectedDrift:
    """A known change of regime placed into a series, for measuring detection latency."""

    onset: pd.Timestamp  # first business day of the new regime
    vol_multiplier: float = 3.0  # daily log-return volatility times this from the onset
    duration_days: int = 60  # business days the regime lasts
    daily_drift: float = 0.0  # added log-return per business day (a trend)


def inject_drifts(prices: pd.DataFrame, drifts: list[InjectedDrift]) -> pd.DataFrame:
    """``prices`` with each drift's regime applied to its log returns (the levels before each onset are
    unchanged; after it the path follows the modified returns)."""
    returns = np.diff(np.log(prices["usdclp"].to_numpy()))
    dates = pd.DatetimeIndex(prices["date"])
    for drift in drifts:
        start = int(dates.searchsorted(pd.Timestamp(drift.onset)))
        if start == 0 or start >= len(dates):
            raise ValueError(f"drift onset {pd.Timestamp(drift.onset).date()} is not inside the series")
        window = slice(start - 1, min(start - 1 + drift.duration_days, len(returns)))
        returns[window] = returns[window] * drift.vol_multiplier + drift.daily_drift
    log_price = np.log(prices["usdclp"].iloc[0]) + np.concatenate([[0.0], np.cumsum(returns)])
    return pd.DataFrame({"date": prices["date"].to_numpy(), "usdclp": np.round(np.exp(log_price), 2)})
