"""The ratio of two forecasts' summed per-origin losses with its circular-block bootstrap interval
(core/loss_ratio.py): hand-computed cases, the identity with the RMSE bootstrap of core/metrics.py, the
weighted quantile loss as a sum of per-origin pinball losses, coverage and width on simulated losses."""

import numpy as np
import pytest

from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES
from forex_assets.core.loss_ratio import (
    block_bootstrap_loss_ratio_ci,
    circular_block_indices,
    per_origin_quantile_loss,
)
from forex_assets.core.metrics import block_bootstrap_ratio_ci, weighted_quantile_loss


def test_pinball_losses_by_hand():
    quantiles = np.array([[[90.0, 100.0, 110.0]], [[90.0, 100.0, 110.0]]])  # two origins, one step
    actuals = np.array([[120.0], [95.0]])
    # 120: 0.1 * 30 + 0.5 * 20 + 0.9 * 10 = 22; 95: 0.1 * 5 + 0.5 * 5 + 0.1 * 15 = 4.5
    assert per_origin_quantile_loss(quantiles, actuals, (0.1, 0.5, 0.9)) == pytest.approx([22.0, 4.5])
    with pytest.raises(ValueError, match="origins, steps, levels"):
        per_origin_quantile_loss(quantiles, actuals[:1], (0.1, 0.5, 0.9))


def test_the_weighted_quantile_loss_is_the_per_origin_losses_summed():
    rng = np.random.default_rng(0)
    actuals = 900 + rng.normal(0, 10, size=(30, 7))
    quantiles = np.sort(900 + rng.normal(0, 10, size=(30, 7, 5)), axis=-1)
    losses = per_origin_quantile_loss(quantiles, actuals, FORECAST_QUANTILES)
    expected = 2 * losses.sum() / (len(FORECAST_QUANTILES) * np.abs(actuals).sum())
    assert weighted_quantile_loss(quantiles, actuals, FORECAST_QUANTILES) == pytest.approx(expected, rel=1e-12)
    # so on the same actuals the ratio of two WQLs is the ratio of the summed losses
    other = quantiles + 3.0
    ratio = block_bootstrap_loss_ratio_ci(losses, per_origin_quantile_loss(other, actuals, FORECAST_QUANTILES), 7)
    wqls = [weighted_quantile_loss(q, actuals, FORECAST_QUANTILES) for q in (quantiles, other)]
    assert ratio.ratio == pytest.approx(wqls[0] / wqls[1], rel=1e-12)


def test_one_block_of_every_origin_draws_the_sample_itself_every_time():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 2.0, 2.0])
    ci = block_bootstrap_loss_ratio_ci(a, b, block=4)
    # a circular block as long as the sample holds every origin once, wherever it starts
    assert (ci.ratio, ci.low, ci.high) == (1.25, 1.25, 1.25)
    assert (ci.block, ci.origins, ci.resamples, ci.level) == (4, 4, 1000, 0.95)
    assert block_bootstrap_loss_ratio_ci(a, b, block=100).block == 4  # capped at the origins


def test_circular_blocks_wrap_around_the_end():
    index = circular_block_indices(5, 3, 200, np.random.default_rng(1))
    assert index.shape == (200, 5)
    # each resample: two blocks of three consecutive origins modulo 5, the first five kept
    for row in index:
        assert (row[1] - row[0]) % 5 == 1 and (row[2] - row[1]) % 5 == 1 and (row[4] - row[3]) % 5 == 1
    assert set(index[:, 0]) == set(range(5))  # every start drawn


def test_squared_errors_reproduce_the_rmse_bootstrap():
    """With per-origin sums of squared errors as losses the resamples are the RMSE bootstrap's: the same
    draws of the same seeded generator, the ratio and the interval's ends squared (up to the percentile's
    interpolation between two resampled ratios)."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(60, 7)), 1.2 * rng.normal(size=(60, 7))
    for block, seed in ((1, 0), (7, 3)):
        rmse_ci = block_bootstrap_ratio_ci(a, b, block, seed=seed)
        loss_ci = block_bootstrap_loss_ratio_ci(a**2, b**2, block, seed=seed)
        assert loss_ci.ratio == pytest.approx(rmse_ci.ratio**2, rel=1e-12)
        assert loss_ci.low == pytest.approx(rmse_ci.low**2, rel=1e-5)
        assert loss_ci.high == pytest.approx(rmse_ci.high**2, rel=1e-5)


def _overlapping_losses(rng, origins: int, h: int) -> np.ndarray:
    """Squared errors of h-step paths from consecutive origins (cumulative sums of shared one-step shocks:
    consecutive origins share h - 1 targets), summed per origin."""
    shocks = rng.normal(size=origins + h)
    return np.array([np.sum(np.cumsum(shocks[i + 1 : i + 1 + h]) ** 2) for i in range(origins)])


def test_the_interval_holds_the_sample_ratio_and_narrows_with_more_origins():
    rng = np.random.default_rng(4)
    h, widths = 7, {100: [], 800: []}
    for origins in widths:
        for window in range(20):
            a, b = _overlapping_losses(rng, origins, h), _overlapping_losses(rng, origins, h)
            ci = block_bootstrap_loss_ratio_ci(a, b, h, seed=window)
            assert ci.low <= ci.ratio <= ci.high
            widths[origins].append(ci.high - ci.low)
    # eight times the origins: about sqrt(8) = 2.8 times narrower
    assert 2.0 < np.mean(widths[100]) / np.mean(widths[800]) < 4.0


def test_blocks_of_h_cover_the_true_ratio_and_single_origins_do_not():
    rng = np.random.default_rng(5)
    h, hits = 10, {1: 0, 10: 0}
    for window in range(100):
        a, b = _overlapping_losses(rng, 150, h), _overlapping_losses(rng, 150, h)  # the same loss: ratio 1
        for block in hits:
            ci = block_bootstrap_loss_ratio_ci(a, b, block, seed=window)
            hits[block] += ci.low <= 1.0 <= ci.high
    assert hits[10] >= 85  # near the nominal 95 % with blocks of h origins ...
    assert hits[10] > hits[1] + 20  # ... while resampling dependent origins one by one under-covers badly


def test_the_bootstrap_is_seeded_and_checks_its_inputs():
    rng = np.random.default_rng(6)
    a, b = rng.exponential(size=40), rng.exponential(size=40)
    assert block_bootstrap_loss_ratio_ci(a, b, 5) == block_bootstrap_loss_ratio_ci(a, b, 5)
    assert block_bootstrap_loss_ratio_ci(a, b, 5, seed=1) != block_bootstrap_loss_ratio_ci(a, b, 5)
    assert block_bootstrap_loss_ratio_ci(a[:, None] * [1, 2], b[:, None] * [1, 2], 5).ratio == pytest.approx(
        a.sum() / b.sum()
    )  # losses (origins, ...) are summed per origin
    with pytest.raises(ValueError, match="same shape"):
        block_bootstrap_loss_ratio_ci(a, b[:-1], 5)
    with pytest.raises(ValueError, match="at least two origins"):
        block_bootstrap_loss_ratio_ci(a[:1], b[:1], 1)
    with pytest.raises(ValueError, match="block length"):
        block_bootstrap_loss_ratio_ci(a, b, 0)
    with pytest.raises(ValueError, match="finite and non-negative"):
        block_bootstrap_loss_ratio_ci(-a, b, 5)
    with pytest.raises(ValueError, match="sum to 0"):
        block_bootstrap_loss_ratio_ci(a, np.zeros(40), 5)
