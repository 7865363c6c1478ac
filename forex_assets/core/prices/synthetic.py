"""Synthetic exchange-rate-like series.

Two users:

* the default price source (:func:`usdclp_like_series`): one deterministic USD/CLP-like business-day
  series with volatility regimes, jumps and a regime change near its end, so that the drift and
  degradation triggers have something real to find;
* the bundled model's training script (:func:`training_corpus`): many short series from several
  generators (random walks, GBM with volatility regimes, jumps, mean reversion, and the stylised facts of
  daily FX returns: GARCH(1,1) and GJR-GARCH with Student-t innovations, log-normal stochastic volatility,
  managed-float episodes).

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


def _garch_returns(
    rng: np.random.Generator,
    n: int,
    daily_vol: float,
    persistence: float,
    alpha: float,
    nu: float,
    gamma: float = 0.0,
    leverage_sign: float = 1.0,
    burn_in: int = 250,
) -> np.ndarray:
    """n log returns of a zero-mean GJR-GARCH(1,1) with unit-variance Student-t(nu) innovations.

    ``s2[t+1] = omega + (alpha + gamma * [leverage_sign * r[t] > 0]) * r[t]**2 + beta * s2[t]`` with
    ``beta = persistence - alpha - gamma / 2`` (so ``persistence`` is alpha + beta + gamma / 2, the
    variance's persistence under symmetric innovations) and ``omega`` setting the unconditional standard
    deviation to ``daily_vol``; ``gamma = 0`` is GARCH(1,1). The first ``burn_in`` returns are dropped so
    the variance starts from a draw of its own distribution, not from its mean.
    """
    beta = persistence - alpha - gamma / 2.0
    if not (0.0 < persistence < 1.0 and alpha >= 0.0 and gamma >= 0.0 and beta >= 0.0):
        raise ValueError(f"not a stationary GARCH: persistence {persistence}, alpha {alpha}, gamma {gamma}")
    omega = daily_vol**2 * (1.0 - persistence)
    shocks = _student_t_shocks(rng, n + burn_in, nu)
    returns = np.empty(n + burn_in)
    variance = daily_vol**2
    for t in range(n + burn_in):
        r = np.sqrt(variance) * shocks[t]
        returns[t] = r
        news = alpha + (gamma if leverage_sign * r > 0.0 else 0.0)
        variance = omega + news * r * r + beta * variance
    out: np.ndarray = returns[burn_in:]
    return out


def garch_t(
    rng: np.random.Generator,
    n: int,
    level: float,
    base_vol: float,
    persistence: float | None = None,
    alpha: float | None = None,
    nu: float | None = None,
) -> np.ndarray:
    """GARCH(1,1) with Student-t innovations: volatility clustering, the forecastable fact of daily FX.

    Unconditional daily volatility ``base_vol``; unless given, persistence alpha + beta is drawn in
    0.93..0.995, alpha (the reaction to yesterday's squared return) in 0.02..0.10 and the degrees of
    freedom nu in 4..10 (daily FX GARCH fits: alpha ~0.05, beta ~0.93, nu 5-8).
    """
    persistence = float(rng.uniform(0.93, 0.995)) if persistence is None else persistence
    alpha = float(rng.uniform(0.02, 0.10)) if alpha is None else alpha
    nu = float(rng.uniform(4.0, 10.0)) if nu is None else nu
    returns = _garch_returns(rng, n, base_vol, persistence, alpha, nu)
    path: np.ndarray = level * np.exp(np.cumsum(returns))
    return path


def gjr_garch_t(
    rng: np.random.Generator,
    n: int,
    level: float,
    base_vol: float,
    persistence: float | None = None,
    nu: float | None = None,
    alpha: float | None = None,
    gamma: float | None = None,
    leverage_sign: float | None = None,
) -> np.ndarray:
    """GJR-GARCH(1,1) with Student-t innovations: GARCH whose variance reacts more to moves of one sign.

    For an emerging-market currency quoted per dollar the larger reaction is usually to rises (the
    currency weakening in a sell-off): ``leverage_sign`` +1 (rises) is drawn with probability 3/4, -1
    (falls) otherwise, so the corpus has both. Persistence alpha + beta + gamma / 2 in 0.93..0.995, alpha
    in 0.0..0.06, the asymmetry gamma in 0.02..0.12, nu in 4..10, unless given.
    """
    persistence = float(rng.uniform(0.93, 0.995)) if persistence is None else persistence
    alpha = float(rng.uniform(0.0, 0.06)) if alpha is None else alpha
    gamma = float(rng.uniform(0.02, 0.12)) if gamma is None else gamma
    nu = float(rng.uniform(4.0, 10.0)) if nu is None else nu
    if leverage_sign is None:
        leverage_sign = 1.0 if rng.random() < 0.75 else -1.0
    returns = _garch_returns(rng, n, base_vol, persistence, alpha, nu, gamma=gamma, leverage_sign=leverage_sign)
    path: np.ndarray = level * np.exp(np.cumsum(returns))
    return path


def stochastic_volatility(
    rng: np.random.Generator,
    n: int,
    level: float,
    base_vol: float,
    persistence: float | None = None,
    log_var_std: float | None = None,
) -> np.ndarray:
    """Log-normal stochastic volatility: ``r[t] = exp(h[t] / 2) * e[t]``, ``h`` an AR(1) (Taylor 1986).

    ``h[t] = mu + phi * (h[t-1] - mu) + eta[t]``, Gaussian ``e`` and ``eta``; unless given, phi is drawn
    in 0.95..0.995 and the stationary standard deviation of the log variance in 0.3..0.8 (daily FX
    estimates: phi ~0.98, sd ~0.6), ``mu`` setting the unconditional daily volatility to ``base_vol``.
    ``h`` starts from its stationary distribution.
    """
    phi = float(rng.uniform(0.95, 0.995)) if persistence is None else persistence
    sd = float(rng.uniform(0.3, 0.8)) if log_var_std is None else log_var_std
    mu = 2.0 * np.log(base_vol) - sd**2 / 2.0  # E[exp(h)] = exp(mu + sd^2 / 2) = base_vol^2
    innovations = rng.normal(0.0, sd * np.sqrt(1.0 - phi**2), n)
    log_var = np.empty(n)
    log_var[0] = mu + rng.normal(0.0, sd)
    for t in range(1, n):
        log_var[t] = mu + phi * (log_var[t - 1] - mu) + innovations[t]
    returns = np.exp(log_var / 2.0) * rng.normal(0.0, 1.0, n)
    path: np.ndarray = level * np.exp(np.cumsum(returns))
    return path


def managed_float(
    rng: np.random.Generator,
    n: int,
    level: float,
    base_vol: float,
    float_start: int | None = None,
) -> np.ndarray:
    """A managed-float episode: a crawling band with rare devaluations, then a free float.

    Until ``float_start`` (drawn in 30..70 % of the series unless given) the log price is a central
    parity that crawls up (0..0.02 % a business day, the pre-announced depreciation) plus a deviation
    that reverts to it (2..10 % a day) with a quiet volatility (0.2..0.6 of ``base_vol``) inside a band
    of +-0.5..5 %; the parity steps up by 2..10 % at rare devaluations (about one every 1-3 years). At
    ``float_start`` the band is dropped, often with a last jump (0..5 %), and returns follow a GARCH(1,1)-t
    with unconditional volatility ``base_vol`` (Chile: a crawling band until September 1999, then a float).
    """
    start = int(rng.uniform(0.3, 0.7) * n) if float_start is None else float_start
    start = min(max(start, 1), n)
    crawl = float(rng.uniform(0.0, 0.0002))
    half_band = float(rng.uniform(0.005, 0.05))
    reversion = float(rng.uniform(0.02, 0.10))
    quiet_vol = base_vol * float(rng.uniform(0.2, 0.6))
    devaluation_rate = float(rng.uniform(1 / 750, 1 / 250))
    devaluations = np.where(rng.random(start) < devaluation_rate, rng.uniform(0.02, 0.10, start), 0.0)
    parity = np.cumsum(crawl + devaluations)
    shocks = rng.normal(0.0, quiet_vol, start)
    deviation = np.empty(start)
    x = 0.0
    for t in range(start):
        x = float(np.clip(x * (1.0 - reversion) + shocks[t], -half_band, half_band))
        deviation[t] = x
    log_price = np.empty(n)
    log_price[:start] = parity + deviation
    if start < n:
        exit_jump = float(rng.uniform(0.0, 0.05)) if rng.random() < 0.5 else 0.0
        floating = _garch_returns(
            rng,
            n - start,
            base_vol,
            persistence=float(rng.uniform(0.93, 0.995)),
            alpha=float(rng.uniform(0.02, 0.10)),
            nu=float(rng.uniform(4.0, 10.0)),
        )
        floating[0] += exit_jump
        log_price[start:] = log_price[start - 1] + np.cumsum(floating)
    path: np.ndarray = level * np.exp(log_price)
    return path


GENERATORS = {
    "random_walk": lambda rng, n, level, vol: random_walk(rng, n, level, vol),
    "gbm_regimes": gbm_with_regimes,
    "jump_diffusion": jump_diffusion,
    "mean_reverting": mean_reverting,
    "garch_t": garch_t,
    "gjr_garch_t": gjr_garch_t,
    "stochastic_vol": stochastic_volatility,
    "managed_float": managed_float,
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
