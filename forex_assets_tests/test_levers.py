"""The FX levers: shrinkage of the median path towards the last price and the interval scale, applied to
the model's quantiles and fitted on a search window."""

import numpy as np
import pandas as pd
import pytest

from forex_assets.core.backtest.engine import BacktestResult
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES, adjust_quantiles, single_context_members
from forex_assets.core.recalibration.levers import (
    LeverSettings,
    fit_levers,
    fitted_interval_scale,
    fitted_shrinkage,
    with_levers,
)

CONFIG = ChronosConfig(horizon="7d", checkpoint="bundled:x", family="chronos2", context_length=90)


def _result(medians, actuals, lasts, half_width=1.0):
    """A backtest whose 95 % interval is median ± half_width and 80 % interval median ± half_width / 2."""
    medians, actuals = np.asarray(medians, float), np.asarray(actuals, float)
    offsets = np.array([-1.0, -0.5, 0.0, 0.5, 1.0]) * half_width
    quantiles = medians[..., None] + offsets
    n, steps = medians.shape
    return BacktestResult(
        config=CONFIG,
        origin_dates=list(pd.bdate_range("2024-01-01", periods=n)),
        quantiles=quantiles,
        actuals=actuals,
        last_prices=np.asarray(lasts, float),
        scales=np.ones(n),
        seconds_per_forecast=0.01,
        computed=n,
        cached=0,
        model_seconds=0.0,
    )


def test_adjust_quantiles_moves_the_median_and_scales_the_offsets():
    q = np.array([[[8.0, 9.0, 10.0, 11.0, 12.0]]])  # one origin, one step
    out = adjust_quantiles(q, np.array([20.0]), shrinkage=0.25, interval_scale=2.0)
    # median 10 -> 10 + 0.25 * (20 - 10) = 12.5; offsets -2, -1, 0, 1, 2 doubled
    assert out[0, 0].tolist() == [8.5, 10.5, 12.5, 14.5, 16.5]
    assert adjust_quantiles(q, np.array([20.0]), 1.0, 1.0)[0, 0, 2] == 20.0  # the random walk's median
    assert adjust_quantiles(q, np.array([20.0]), 0.0, 1.0) is q  # levers off: untouched


def test_members_are_raw_model_calls_whatever_the_levers():
    config = CONFIG.model_copy(update={"ensemble_context_lengths": (180,), "shrinkage": 0.5, "interval_scale": 2.0})
    members = single_context_members(config)
    assert [(m.context_length, m.shrinkage, m.interval_scale) for m in members] == [(90, 0.0, 1.0), (180, 0.0, 1.0)]


def test_shrinkage_fit_is_one_when_the_model_only_adds_noise_and_zero_when_it_is_exact():
    rng = np.random.default_rng(0)
    lasts = np.full(200, 100.0)
    actuals = 100.0 + rng.normal(0, 1, (200, 7))  # a random walk around the last price
    noisy = 100.0 + rng.normal(0, 1, (200, 7))  # a model whose median is independent noise
    assert fitted_shrinkage(_result(noisy, actuals, lasts)) == pytest.approx(1.0, abs=0.1)
    assert fitted_shrinkage(_result(actuals, actuals, lasts)) == 0.0
    half = 100.0 + (actuals - 100.0) * 2  # the model doubles every move: halfway is best
    assert fitted_shrinkage(_result(half, actuals, lasts)) == pytest.approx(0.5, abs=1e-9)


def test_interval_scale_fit_reaches_the_coverage_target_on_the_window():
    rng = np.random.default_rng(1)
    medians = np.full((300, 7), 100.0)
    actuals = 100.0 + rng.normal(0, 2.0, (300, 7))  # the model's ±1 interval is far too narrow
    raw = _result(medians, actuals, np.full(300, 100.0))
    assert raw.metrics().coverage_95 < 0.5
    assert fitted_interval_scale(raw) == pytest.approx(3.0)  # 1.96 x 2 would be needed: clipped at max_scale
    fitted = fit_levers(raw, LeverSettings(fit_shrinkage=False, max_scale=10.0, prior_paths=0.0))
    assert fitted.config.interval_scale == pytest.approx(3.92, rel=0.1)
    assert fitted.metrics().coverage_95 == pytest.approx(0.95, abs=0.01)
    assert fitted.config.shrinkage == 0.0


def test_the_interval_scale_moves_only_as_far_as_the_independent_paths_allow():
    rng = np.random.default_rng(2)
    wide = _result(np.full((30, 7), 100.0), 100.0 + rng.normal(0, 0.2, (30, 7)), np.full(30, 100.0))
    raw_fit = fitted_interval_scale(wide, prior_paths=0.0)  # the ±1 interval is 2.5x too wide
    assert raw_fit < 0.5 or raw_fit == 0.5
    # 30 origins of 7 steps: 36 / 7 = 5.1 non-overlapping paths against 10 pseudo-paths at scale 1
    shrunk = fitted_interval_scale(wide, prior_paths=10.0)
    assert shrunk == pytest.approx(np.exp(5.142857 / 15.142857 * np.log(raw_fit)), rel=1e-6)
    long = _result(np.full((30, 90), 100.0), 100.0 + rng.normal(0, 0.2, (30, 90)), np.full(30, 100.0))
    assert fitted_interval_scale(long, prior_paths=10.0) > 0.9  # 1.3 paths: barely moves


def test_levers_are_fitted_only_on_a_raw_backtest():
    raw = _result(np.full((5, 7), 100.0), np.full((5, 7), 100.0), np.full(5, 100.0))
    shrunk = with_levers(raw, 0.5, 1.0)
    with pytest.raises(ValueError, match="shrinkage 0, interval_scale 1 and no band_blend"):
        with_levers(shrunk, 0.5, 1.0)


def test_levers_round_trip_through_the_configuration_schema():
    config = CONFIG.model_copy(update={"shrinkage": 0.4, "interval_scale": 1.3})
    assert ChronosConfig.model_validate_json(config.to_json()) == config
    with pytest.raises(ValueError):
        ChronosConfig.model_validate(config.model_dump() | {"shrinkage": 1.5})
    assert FORECAST_QUANTILES.index(0.5) == 2


def test_a_prior_configuration_pulls_both_levers_towards_its_calibrated_values():
    rng = np.random.default_rng(5)
    origins, steps = 30, 7
    actuals = 100.0 + rng.normal(0, 1, (origins, steps))
    exact = _result(actuals, actuals, np.full(origins, 100.0), half_width=1.0)  # the model is exact: shrinkage 0
    assert fitted_shrinkage(exact) == 0.0
    prior = CONFIG.model_copy(update={"shrinkage": 1.0, "interval_scale": 0.8})
    settings = LeverSettings(prior_paths=10.0)
    paths = (origins + steps - 1) / steps
    weight = paths / (paths + 10.0)
    fitted = fit_levers(exact, settings, prior=prior).config
    assert fitted.shrinkage == pytest.approx(round((1 - weight) * 1.0, 3))  # between the data's 0 and the prior's 1
    # with no prior the old behaviour holds: the data's own shrinkage
    assert fit_levers(exact, settings).config.shrinkage == 0.0
    # a lever that is not fitted takes the prior's value
    kept = fit_levers(exact, LeverSettings(fit_shrinkage=False, fit_interval_scale=False), prior=prior).config
    assert (kept.shrinkage, kept.interval_scale) == (1.0, 0.8)


# ------------------------------------------------------------------------------------------ band_blend


def test_adjust_quantiles_blends_after_shrinkage_and_scales_the_blend():
    q = np.array([[[8.0, 9.0, 10.0, 11.0, 12.0]]])
    baseline = np.array([[[16.0, 18.0, 20.0, 22.0, 24.0]]])  # centred on the last price 20
    # shrinkage 1: the model's band moves to 20 (18, 19, 20, 21, 22); a 50/50 average with the baseline's
    # gives 17, 18.5, 20, 21.5, 23; then its offsets are doubled
    out = adjust_quantiles(q, np.array([20.0]), 1.0, 2.0, band_blend=0.5, baseline_band=baseline)
    assert out[0, 0].tolist() == [14.0, 17.0, 20.0, 23.0, 26.0]
    # the blend changes the band, never the median: the baseline's offsets around the model's median 10
    alone = adjust_quantiles(q, np.array([20.0]), 0.0, 1.0, band_blend=1.0, baseline_band=baseline)
    assert alone[0, 0].tolist() == [6.0, 8.0, 10.0, 12.0, 14.0]
    # shrinkage 0.5 puts the median at 15; a 50/50 blend of the offsets (-2, -1, 0, 1, 2) and (-4, -2, 0, 2, 4)
    half = adjust_quantiles(q, np.array([20.0]), 0.5, 1.0, band_blend=0.5, baseline_band=baseline)
    assert half[0, 0].tolist() == [12.0, 13.5, 15.0, 16.5, 18.0]
    with pytest.raises(ValueError, match="band_blend needs the baseline's quantiles"):
        adjust_quantiles(q, np.array([20.0]), 0.0, 1.0, band_blend=0.5)
    # no blend: the levers as before, to the bit
    assert np.array_equal(
        adjust_quantiles(q, np.array([20.0]), 0.25, 2.0, band_blend=0.0, baseline_band=baseline),
        adjust_quantiles(q, np.array([20.0]), 0.25, 2.0),
    )


def _band_result(width_model, width_baseline, seed=0, n=200):
    """A Gaussian random walk's 7-step paths from 100; the model's and the baseline's bands are Gaussian
    (sqrt(k) growth) of the given widths relative to the truth, both centred on the last price."""
    rng = np.random.default_rng(seed)
    actuals = 100.0 + np.cumsum(rng.normal(0, 1, (n, 7)), axis=1)
    z = np.array([-1.96, -1.2816, 0.0, 1.2816, 1.96])
    spread = np.sqrt(np.arange(1, 8))[None, :, None] * z
    result = _result(np.full((n, 7), 100.0), actuals, np.full(n, 100.0))
    from dataclasses import replace

    return replace(result, quantiles=100.0 + width_model * spread, baseline_band=100.0 + width_baseline * spread)


def test_the_blend_weight_follows_the_better_band():
    from forex_assets.core.recalibration.levers import fitted_band_blend

    assert fitted_band_blend(_band_result(3.0, 1.0)) >= 0.8  # the model's band three times too wide
    assert fitted_band_blend(_band_result(1.0, 3.0)) <= 0.2  # the baseline's is
    # two bands too wide and too narrow by the same factor: a blend is better than either
    assert 0.2 <= fitted_band_blend(_band_result(1.6, 0.6)) <= 0.8


def test_fit_levers_fits_the_blend_and_shrinks_it_towards_the_prior():
    raw = _band_result(3.0, 1.0)
    fitted = fit_levers(raw, LeverSettings(fit_shrinkage=False, fit_interval_scale=False)).config
    assert fitted.band_blend >= 0.8 and fitted.band_blend_with == "ewma_band"
    # a prior without a blend, 200 origins of 7 steps ~ 29 paths against 10 prior paths: 29/39 of the fit
    prior = CONFIG.model_copy(update={"shrinkage": 0.0})
    shrunk = fit_levers(raw, LeverSettings(fit_shrinkage=False, fit_interval_scale=False), prior=prior).config
    paths = (200 + 6) / 7
    assert shrunk.band_blend == pytest.approx(round(paths / (paths + 10) * fitted.band_blend, 3), abs=0.002)
    # not fitted: the prior's blend is kept (here none) and the model's band is served as it is
    kept = fit_levers(raw, LeverSettings(fit_shrinkage=False, fit_interval_scale=False, fit_band_blend=False))
    assert kept.config.blend_weight == 0.0 and np.array_equal(kept.quantiles, raw.quantiles)
    # the interval scale is fitted on the blend: a blend of calibrated bands needs no stretching
    both = fit_levers(raw, LeverSettings(fit_shrinkage=False, prior_paths=0.0)).config
    assert 0.85 <= both.interval_scale <= 1.15
