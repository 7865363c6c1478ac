import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file
from scipy import stats

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.backtest.engine import run_backtest
from forex_assets.core.backtest.sample_bank import backtest_sampling_group
from forex_assets.core.backtest.windows import PriceSeries, independent_paths, latest_origins, split_windows
from forex_assets.core.forecasting.config import parse_config
from forex_assets.core.forecasting.quantiles import (
    InsufficientHistoryError,
    forecast_quantiles,
    sample_paths,
    to_model_space,
)
from forex_assets.core.models.loading import checkpoint_identity, load_pipeline, resolve_checkpoint
from forex_assets_tests.conftest import random_walk_prices

BUNDLED = "bundled:usdclp-chronos2-mini"


def _bundled(**fields):
    return parse_config({"horizon": "7d", "checkpoint": BUNDLED, "family": "chronos2", "context_length": 120} | fields)


def _t5(path, **fields):
    base = {
        "horizon": "7d",
        "checkpoint": str(path),
        "family": "chronos-t5",
        "context_length": 64,
        "num_samples": 20,
        "temperature": 1.0,
        "seed": 3,
    }
    return parse_config(base | fields)


@pytest.fixture(scope="module")
def series():
    return PriceSeries.from_frame(random_walk_prices(500, seed=11))


def test_windows_are_disjoint_and_validation_is_most_recent():
    w = split_windows(500, steps=7, search_origins=30, validation_origins=30)
    assert len(w.search) == len(w.validation) == 30
    assert w.validation[-1] == 500 - 1 - 7  # latest origin whose 7 targets are observed
    assert np.all(np.diff(w.validation) == 1) and np.all(np.diff(w.search) == 1)
    # every target the search scores is at or before the first validation origin
    assert w.search[-1] + 7 <= w.validation[0]
    assert set(w.search).isdisjoint(w.validation)


def test_window_needs_enough_history():
    with pytest.raises(InsufficientHistoryError, match="30 origins with 90-step targets need"):
        latest_origins(100, steps=90, count=30)


def test_batched_backtest_equals_the_per_origin_loop(series):
    pipeline = load_pipeline(BUNDLED)
    origins = latest_origins(len(series.values), 7, 12)
    config = _bundled(ensemble_context_lengths=[60])
    batched = run_backtest(pipeline, config, series, origins, 7)
    for k, origin in enumerate(origins):
        alone = forecast_quantiles(pipeline, config, [series.values[: origin + 1]], 7)[0]
        np.testing.assert_allclose(batched.quantiles[k], alone, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(batched.actuals[k], series.values[origin + 1 : origin + 8])
    assert batched.last_prices.tolist() == series.values[origins].tolist()


def test_cache_hits_misses_and_new_origins(series, tmp_path):
    pipeline = load_pipeline(BUNDLED)
    cache = ForecastCache(tmp_path / "cache.sqlite")
    identity = checkpoint_identity(BUNDLED)
    config = _bundled()
    origins = latest_origins(len(series.values), 7, 20, last_origin=len(series.values) - 1 - 7 - 5)
    first = run_backtest(pipeline, config, series, origins, 7, cache, identity)
    assert (first.computed, first.cached) == (20, 0)
    again = run_backtest(pipeline, config, series, origins, 7, cache, identity)
    assert (again.computed, again.cached) == (0, 20)
    np.testing.assert_array_equal(first.quantiles, again.quantiles)
    # five business days later: only the five new origins are computed
    later = run_backtest(pipeline, config, series, origins + 5, 7, cache, identity)
    assert (later.computed, later.cached) == (5, 15)
    # an ensemble of already backtested context lengths costs no model call
    run_backtest(pipeline, _bundled(context_length=60), series, origins, 7, cache, identity)
    ensemble = run_backtest(pipeline, _bundled(ensemble_context_lengths=[60]), series, origins, 7, cache, identity)
    assert ensemble.computed == 0
    # a different configuration misses
    assert run_backtest(pipeline, _bundled(preprocessing="log"), series, origins, 7, cache, identity).computed == 20


def test_cache_is_invalidated_when_the_checkpoint_changes(series, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(resolve_checkpoint(BUNDLED).location, copy)
    before = checkpoint_identity(str(copy))
    cache = ForecastCache(tmp_path / "cache.sqlite")
    config = _bundled(checkpoint=str(copy))
    origins = latest_origins(len(series.values), 7, 5)
    run_backtest(load_pipeline(str(copy)), config, series, origins, 7, cache, before)
    weights = load_file(copy / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] * 1.01
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    after = checkpoint_identity(str(copy))
    assert after != before
    assert run_backtest(load_pipeline(str(copy)), config, series, origins, 7, cache, after).computed == 5
    assert run_backtest(load_pipeline(str(copy)), config, series, origins, 7, cache, before).computed == 0


def test_context_longer_than_history_is_refused(series):
    origins = latest_origins(len(series.values), 7, 5)
    with pytest.raises(InsufficientHistoryError, match="context length 600 is longer than the history"):
        run_backtest(load_pipeline(BUNDLED), _bundled(context_length=600), series, origins, 7)


def test_sampling_group_is_deterministic_and_cached(series, tiny_t5_dir, tmp_path):
    pipeline = load_pipeline(str(tiny_t5_dir))
    configs = [_t5(tiny_t5_dir, num_samples=n) for n in (5, 10, 20)]
    origins = latest_origins(len(series.values), 7, 6)
    first = backtest_sampling_group(pipeline, configs, series, origins, 7)
    second = backtest_sampling_group(pipeline, configs, series, origins, 7)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.quantiles, b.quantiles)
    cache = ForecastCache(tmp_path / "cache.sqlite")
    backtest_sampling_group(pipeline, configs, series, origins, 7, cache, "t5")
    assert [r.computed for r in backtest_sampling_group(pipeline, configs, series, origins, 7, cache, "t5")] == [
        0,
        0,
        0,
    ]
    with pytest.raises(ValueError, match="may differ only in num_samples"):
        backtest_sampling_group(pipeline, [configs[0], _t5(tiny_t5_dir, temperature=0.5)], series, origins, 7)


def test_subset_of_the_largest_draw_has_the_distribution_of_a_direct_draw(tiny_t5_dir, series):
    """The first n of 400 draws and an independent draw of n paths come from the same distribution."""
    pipeline = load_pipeline(str(tiny_t5_dir))
    context = to_model_space([series.values[-64:]], "none")
    largest = sample_paths(pipeline, context, 3, num_samples=400, temperature=1.0, seed=1)[0]
    direct = sample_paths(pipeline, context, 3, num_samples=150, temperature=1.0, seed=2)[0]
    subset = largest[:150]
    for step in range(3):
        assert stats.ks_2samp(subset[:, step], direct[:, step]).pvalue > 0.01
    # and the subset is not a copy of the direct draw (different seeds really differ)
    assert not np.allclose(np.sort(subset[:, 0]), np.sort(direct[:, 0]))


def test_activation_budget_shrinks_to_the_headroom_under_a_memory_limit(monkeypatch):
    from forex_assets.core.backtest.memory import activation_budget_mb, memory_limit_mb

    assert activation_budget_mb(256, None, 900) == 256  # no limit: the requested budget
    assert activation_budget_mb(256, 4096, 500) == 256  # plenty of headroom
    assert activation_budget_mb(256, 1024, 700) == pytest.approx((1024 * 0.9 - 700) / 2)  # 110.8 MB
    assert activation_budget_mb(256, 1024, 1000) == 16  # no headroom left: the floor
    monkeypatch.setenv("FOREX_MEMORY_LIMIT_MB", "1024")
    assert memory_limit_mb() == 1024


def test_batches_get_smaller_when_the_limit_is_near(monkeypatch):
    from forex_assets.core.backtest.memory import batch_size_for
    from forex_assets.core.forecasting.config import ChronosConfig
    from forex_assets.core.models.loading import load_pipeline

    pipeline = load_pipeline("bundled:usdclp-chronos2-mini")
    config = ChronosConfig(horizon="30d", checkpoint="bundled:usdclp-chronos2-mini", family="chronos2",
                           context_length=540)  # fmt: skip
    monkeypatch.delenv("FOREX_MEMORY_LIMIT_MB", raising=False)
    monkeypatch.setattr("forex_assets.core.backtest.memory.memory_limit_mb", lambda: None)
    free = batch_size_for(pipeline, config)
    monkeypatch.setattr("forex_assets.core.backtest.memory.memory_limit_mb", lambda: 1024.0)
    monkeypatch.setattr("forex_assets.core.backtest.memory.resident_mb", lambda: 880.0)
    tight = batch_size_for(pipeline, config)
    budget = (1024 * 0.9 - 880.0) / 2  # 20.8 MB of the 256 MB that the free batch may use
    assert tight < free and tight <= max(1, free * budget / 256 + 1)


def test_spaced_windows_span_more_history_and_stay_disjoint():
    windows = split_windows(2000, 90, search_origins=30, validation_origins=60, spacing=12)
    assert list(np.diff(windows.validation)) == [12] * 59
    assert list(np.diff(windows.search)) == [12] * 29
    assert windows.validation[-1] == 2000 - 1 - 90  # the latest origin whose 90 targets are observed
    assert windows.search[-1] + 90 <= windows.validation[0]  # every searched target precedes validation
    assert windows.overlap == 8  # ceil(90 / 12) origins share targets
    assert independent_paths(60, 90, 12) == pytest.approx((59 * 12 + 90) / 90)
    with pytest.raises(InsufficientHistoryError, match="60 origins 12 business days apart with 90-step targets"):
        split_windows(700, 90, search_origins=30, validation_origins=60, spacing=12)
