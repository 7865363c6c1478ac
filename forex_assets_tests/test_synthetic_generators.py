"""The training corpus's generators have the stylised facts of daily FX returns they claim (issue 23).

Volatility clustering shows as a positive autocorrelation of squared returns (near 0 for a random walk),
fat tails as a positive excess kurtosis; every series is positive, finite, of the asked length and
reproducible from its seed. Thresholds leave a wide margin under the values measured over 20 seeds of
3,000 business days (noted beside each).
"""

from __future__ import annotations

import numpy as np
import pytest

from forex_assets.core.prices.synthetic import (
    GENERATORS,
    garch_t,
    gjr_garch_t,
    managed_float,
    random_walk,
    stochastic_volatility,
    training_corpus,
)

N = 3000
LEVEL = 100.0
VOL = 0.006
SEEDS = range(20)


def _returns(prices: np.ndarray) -> np.ndarray:
    return np.diff(np.log(prices))


def _acf_squared(returns: np.ndarray, lag: int = 1) -> float:
    x = returns**2 - np.mean(returns**2)
    return float(np.sum(x[lag:] * x[:-lag]) / np.sum(x * x))


def _excess_kurtosis(returns: np.ndarray) -> float:
    z = returns - returns.mean()
    return float(np.mean(z**4) / np.mean(z**2) ** 2 - 3.0)


def _many(generator, **kwargs) -> list[np.ndarray]:
    return [_returns(generator(np.random.default_rng(seed), N, LEVEL, VOL, **kwargs)) for seed in SEEDS]


def test_corpus_cycles_through_every_generator_including_the_stylised_ones():
    assert list(GENERATORS) == [
        "random_walk",
        "gbm_regimes",
        "jump_diffusion",
        "mean_reverting",
        "garch_t",
        "gjr_garch_t",
        "stochastic_vol",
        "managed_float",
    ]
    corpus = training_corpus(seed=3, n_series=2 * len(GENERATORS), length=400)
    assert len(corpus) == 16
    for series in corpus:
        assert series.dtype == np.float32 and series.shape == (400,)
        assert np.all(np.isfinite(series)) and np.all(series > 0)
    again = training_corpus(seed=3, n_series=16, length=400)
    assert all(np.array_equal(a, b) for a, b in zip(corpus, again, strict=True))
    other = training_corpus(seed=4, n_series=16, length=400)
    assert not any(np.array_equal(a, b) for a, b in zip(corpus, other, strict=True))


@pytest.mark.parametrize("name", list(GENERATORS))
def test_every_generator_is_seeded_positive_and_finite(name):
    generator = GENERATORS[name]
    first = generator(np.random.default_rng(11), 1500, 650.0, 0.02)  # the corpus's highest volatility
    assert first.shape == (1500,)
    assert np.all(np.isfinite(first)) and np.all(first > 0)
    assert np.array_equal(first, generator(np.random.default_rng(11), 1500, 650.0, 0.02))
    assert not np.array_equal(first, generator(np.random.default_rng(12), 1500, 650.0, 0.02))


def test_random_walk_has_no_volatility_clustering_and_thin_tails():
    returns = [_returns(random_walk(np.random.default_rng(seed), N, LEVEL, VOL)) for seed in SEEDS]
    acf = [_acf_squared(r) for r in returns]
    assert max(abs(a) for a in acf) < 0.08  # measured: -0.041..0.034
    assert abs(float(np.median(acf))) < 0.03
    assert abs(float(np.median([_excess_kurtosis(r) for r in returns]))) < 0.25  # measured: -0.04


def test_garch_t_clusters_volatility_with_fat_tails():
    # fixed parameters with a finite fourth moment: every series shows it
    fixed = _many(garch_t, persistence=0.97, alpha=0.08, nu=8.0)
    assert min(_acf_squared(r) for r in fixed) > 0.06  # measured: min 0.116, median 0.144
    assert min(_excess_kurtosis(r) for r in fixed) > 0.5  # measured: min 1.28
    # clustering lasts: the autocorrelation at lag 10 is still clearly positive (persistence 0.97)
    assert float(np.median([_acf_squared(r, lag=10) for r in fixed])) > 0.04
    # drawn parameters (as in the corpus): the median series
    drawn = _many(garch_t)
    assert float(np.median([_acf_squared(r) for r in drawn])) > 0.06  # measured: 0.115
    assert float(np.median([_excess_kurtosis(r) for r in drawn])) > 1.0  # measured: 2.83
    # the unconditional daily volatility is the one asked for
    assert float(np.median([r.std() for r in drawn])) == pytest.approx(VOL, rel=0.15)


def test_gjr_garch_reacts_more_to_moves_of_its_leverage_side():
    def next_variance_ratio(sign: float) -> float:
        """E[r(t+1)^2 | r(t) > 0] / E[r(t+1)^2 | r(t) < 0], pooled over the seeds."""
        up, down = [], []
        for r in _many(gjr_garch_t, persistence=0.97, nu=8.0, alpha=0.0, gamma=0.12, leverage_sign=sign):
            up.append(r[1:][r[:-1] > 0] ** 2)
            down.append(r[1:][r[:-1] < 0] ** 2)
        return float(np.mean(np.concatenate(up)) / np.mean(np.concatenate(down)))

    assert next_variance_ratio(1.0) > 1.05  # measured per seed: median 1.13
    assert next_variance_ratio(-1.0) < 1 / 1.05
    drawn = _many(gjr_garch_t)
    assert float(np.median([_acf_squared(r) for r in drawn])) > 0.06  # measured: 0.126
    assert float(np.median([_excess_kurtosis(r) for r in drawn])) > 1.0  # measured: 5.3


def test_stochastic_volatility_clusters_volatility_with_fat_tails():
    fixed = _many(stochastic_volatility, persistence=0.98, log_var_std=0.6)
    assert min(_acf_squared(r) for r in fixed) > 0.03  # measured: min 0.058, median 0.115
    assert float(np.median([_acf_squared(r) for r in fixed])) > 0.07
    assert min(_excess_kurtosis(r) for r in fixed) > 0.3  # measured: min 0.62
    drawn = _many(stochastic_volatility)
    assert float(np.median([_acf_squared(r) for r in drawn])) > 0.05  # measured: 0.098
    assert float(np.median([_excess_kurtosis(r) for r in drawn])) > 0.4  # measured: 0.91
    assert float(np.median([r.std() for r in drawn])) == pytest.approx(VOL, rel=0.15)


def test_managed_float_is_a_crawling_band_with_devaluations_then_a_float():
    start = 1500
    up_jumps, down_jumps = 0, 0
    for seed in SEEDS:
        log_price = np.log(managed_float(np.random.default_rng(seed), N, LEVEL, VOL, float_start=start))
        peg, floating = np.diff(log_price[:start]), np.diff(log_price[start:])
        # the parity only moves up (crawl, devaluations) and the price stays within +-5 % of it: the price
        # never falls more than the band's full width (10 %) below its running maximum
        drawdown = np.maximum.accumulate(log_price[:start]) - log_price[:start]
        assert drawdown.max() <= 0.1 + 1e-9
        # quiet inside the band (0.2..0.6 of the volatility) ...
        assert np.std(peg[np.abs(peg) < 0.015]) < 0.65 * VOL
        # ... louder once floating, with GARCH clustering
        assert np.std(floating) > np.std(peg[np.abs(peg) < 0.015])
        up_jumps += int(np.sum(peg > 0.015))
        down_jumps += int(np.sum(peg < -0.015))
    # devaluations are rare, large and one-sided (measured: 2..12 per 3,000 pegged days, none down)
    assert 20 <= up_jumps <= 400 and down_jumps == 0
    floats = [_returns(managed_float(np.random.default_rng(seed), N, LEVEL, VOL, float_start=0)[1:]) for seed in SEEDS]
    assert float(np.median([_acf_squared(r) for r in floats])) > 0.05
    assert float(np.median([_excess_kurtosis(r) for r in floats])) > 1.0


def test_managed_float_draws_its_switch_inside_the_series():
    for seed in range(5):
        returns = _returns(managed_float(np.random.default_rng(seed), N, LEVEL, VOL))
        # median absolute return of each 100-day window (robust to the devaluation days)
        rolling = np.array([np.median(np.abs(returns[i : i + 100])) for i in range(0, N - 100, 100)])
        # quiet first (pegged), then floating: the last windows are louder than the first ones
        assert np.median(rolling[-5:]) > 1.3 * np.median(rolling[:5])
