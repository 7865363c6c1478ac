import numpy as np
import pytest

from forex_assets.core.metrics import (
    diebold_mariano,
    diebold_mariano_losses,
    mase_scales,
    per_origin_wql,
    weighted_quantile_loss,
    window_metrics,
)

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)


def _case():
    # two origins, two steps; medians off by +2, -1 / +1, +2 CLP
    actuals = np.array([[100.0, 102.0], [101.0, 99.0]])
    median = np.array([[102.0, 101.0], [102.0, 101.0]])
    spread = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    quantiles = median[..., None] + spread
    return quantiles, actuals


def test_point_metrics_by_hand():
    quantiles, actuals = _case()
    m = window_metrics(
        quantiles,
        actuals,
        last_prices=np.array([100.0, 100.0]),
        scales=np.array([2.0, 1.0]),
        levels=LEVELS,
        seconds_per_forecast=0.25,
    )
    errors = np.array([2.0, -1.0, 1.0, 2.0])
    assert m.rmse_clp == pytest.approx(np.sqrt((4 + 1 + 1 + 4) / 4))
    assert m.mae_clp == pytest.approx(1.5)
    assert m.mape_pct == pytest.approx(np.mean([2 / 100, 1 / 102, 1 / 101, 2 / 99]) * 100)
    assert m.bias_clp == pytest.approx(1.0)
    assert m.error_std_clp == pytest.approx(np.std(errors, ddof=1))
    assert m.coverage_95 == pytest.approx(1.0)  # every error within +-3
    assert m.interval_width_95_clp == pytest.approx(6.0)
    # MASE: per-origin MAE (1.5, 1.5) over scales (2, 1)
    assert m.mase == pytest.approx((1.5 / 2 + 1.5 / 1) / 2)
    # random walk forecasts 100 for every step: errors 0, -2, -1, 1
    assert m.rmse_random_walk_clp == pytest.approx(np.sqrt((0 + 4 + 1 + 1) / 4))
    assert m.skill_vs_random_walk == pytest.approx(m.rmse_clp / m.rmse_random_walk_clp)
    assert m.seconds_per_forecast == 0.25
    # the band: every actual inside [median - 3, median + 3], so the interval score is the width, 6 CLP; the
    # 80 % band (+-1) holds the errors of 1 only (2 of 4)
    assert m.interval_score_95_clp == pytest.approx(6.0)
    assert m.coverage_80 == pytest.approx(0.5)
    assert m.width_95_pct == pytest.approx(np.mean([6 / 100, 6 / 102, 6 / 101, 6 / 99]) * 100)


def test_coverage_counts_targets_outside_the_interval():
    quantiles, actuals = _case()
    actuals = actuals.copy()
    actuals[0, 0] = 110.0  # far above the 97.5 % quantile (105)
    m = window_metrics(quantiles, actuals, np.array([100.0, 100.0]), np.ones(2), LEVELS, 0.0)
    assert m.coverage_95 == pytest.approx(0.75)


def test_weighted_quantile_loss_by_hand():
    quantiles = np.array([[[9.0, 10.0, 11.0]]])
    actuals = np.array([[10.5]])
    levels = (0.1, 0.5, 0.9)
    # pinball: 0.1*1.5=0.15, 0.5*0.5=0.25, (0.9-1)*(10.5-11)=0.05 ; each x2 / 10.5, averaged
    expected = np.mean([2 * 0.15 / 10.5, 2 * 0.25 / 10.5, 2 * 0.05 / 10.5])
    assert weighted_quantile_loss(quantiles, actuals, levels) == pytest.approx(expected)


def test_mase_scale_is_mean_absolute_one_step_change():
    assert mase_scales([np.array([1.0, 3.0, 2.0, 2.0])]).tolist() == [1.0]
    assert mase_scales([np.array([1.0, 3.0, 2.0, 2.0])], lookback=1).tolist() == [0.0]


def test_diebold_mariano_matches_the_published_worked_example():
    """dieboldmariano's README example: statistic -2.2229922805746782, one-sided p 0.04515565862099125
    (h = 1, squared error, Harvey correction). Our test is two-sided: p doubles."""
    actual = np.array([[10.0], [20.0], [30.0], [40.0], [50.0]])
    f = np.array([[11.0], [21.0], [29.0], [42.0], [53.0]])
    g = np.array([[13.0], [26.0], [24.0], [40.0], [59.0]])
    result = diebold_mariano(actual, f, g, horizon=1)
    assert result.statistic == pytest.approx(-2.2229922805746782, rel=1e-9)
    assert result.p_value == pytest.approx(2 * 0.04515565862099125, rel=1e-9)
    assert result.lags == 0 and result.mean_loss_differential < 0


def test_diebold_mariano_equal_forecasts_and_long_horizons():
    rng = np.random.default_rng(0)
    actual = rng.normal(size=(30, 90))
    same = diebold_mariano(actual, actual + 1, actual + 1, horizon=90)
    assert same.p_value == 1.0
    better = diebold_mariano(actual, actual + rng.normal(0, 0.1, actual.shape), actual + 2, horizon=90)
    assert better.lags == 9  # capped at n // 3 - 1 for 30 origins
    assert better.statistic < 0 and better.p_value < 0.01


def test_per_origin_wql_is_each_paths_own_window_wql():
    quantiles, actuals = _case()
    losses = per_origin_wql(quantiles, actuals, LEVELS)
    assert losses.shape == (2,)
    for i in range(2):
        assert losses[i] == pytest.approx(weighted_quantile_loss(quantiles[i : i + 1], actuals[i : i + 1], LEVELS))


def test_diebold_mariano_on_squared_losses_is_the_path_test():
    rng = np.random.default_rng(2)
    actuals = rng.normal(0, 1, (40, 5))
    a, b = actuals + rng.normal(0, 0.5, (40, 5)), actuals + rng.normal(0, 0.8, (40, 5))
    losses = [np.mean((f - actuals) ** 2, axis=1) for f in (a, b)]
    assert diebold_mariano_losses(*losses, 5) == diebold_mariano(actuals, a, b, 5)
    with pytest.raises(ValueError, match="two \\(n,\\) arrays"):
        diebold_mariano_losses(losses[0], losses[1][:-1], 5)
