import numpy as np
import pytest

from forex_assets.core.forecasting.config import parse_config
from forex_assets.core.forecasting.quantiles import (
    FORECAST_QUANTILES,
    ForecastError,
    InsufficientHistoryError,
    forecast_quantiles,
)
from forex_assets.core.models.loading import load_pipeline
from forex_assets.core.prices.synthetic import random_walk

BUNDLED = {"checkpoint": "bundled:usdclp-chronos2-mini", "family": "chronos2"}


def _config(**fields):
    return parse_config({"horizon": "7d", "context_length": 180} | BUNDLED | fields)


def _walks(n_series=1, length=700, seed=0):
    rng = np.random.default_rng(seed)
    return [random_walk(rng, length, 800.0, 0.006) for _ in range(n_series)]


def test_shapes_and_quantile_order():
    pipeline = load_pipeline(BUNDLED["checkpoint"])
    quantiles = forecast_quantiles(pipeline, _config(), _walks(3), steps=30)
    assert quantiles.shape == (3, 30, len(FORECAST_QUANTILES))
    assert np.all(np.diff(quantiles, axis=-1) >= 0)
    assert np.all(quantiles > 0)


def test_coverage_on_a_synthetic_random_walk():
    """Rolling origins on unseen random walks: the 95 % interval covers about 95 % of outcomes."""
    pipeline = load_pipeline(BUNDLED["checkpoint"])
    rng = np.random.default_rng(7)
    steps, histories, actuals = 7, [], []
    for _ in range(12):
        path = random_walk(rng, 700, 800.0, 0.006)
        for origin in range(200, 700 - steps, 25):
            histories.append(path[:origin])
            actuals.append(path[origin : origin + steps])
    quantiles = forecast_quantiles(pipeline, _config(), histories, steps)
    actual = np.stack(actuals)
    coverage = np.mean((actual >= quantiles[..., 0]) & (actual <= quantiles[..., -1]))
    assert 0.88 <= coverage <= 0.99, coverage
    last = np.array([h[-1] for h in histories])[:, None]
    model_rmse = np.sqrt(np.mean((quantiles[..., 2] - actual) ** 2))
    random_walk_rmse = np.sqrt(np.mean((last - actual) ** 2))
    assert model_rmse <= 1.10 * random_walk_rmse


def test_log_preprocessing_and_ensemble_stay_close_to_plain():
    pipeline = load_pipeline(BUNDLED["checkpoint"])
    walks = _walks(2)
    plain = forecast_quantiles(pipeline, _config(), walks, 7)
    logged = forecast_quantiles(pipeline, _config(preprocessing="log"), walks, 7)
    ensemble = forecast_quantiles(pipeline, _config(ensemble_context_lengths=[90, 270]), walks, 7)
    for other in (logged, ensemble):
        assert np.allclose(other[..., 2], plain[..., 2], rtol=0.03)
    assert not np.allclose(ensemble, plain)


def test_batch_equals_one_by_one():
    pipeline = load_pipeline(BUNDLED["checkpoint"])
    walks = _walks(4, seed=3)
    batched = forecast_quantiles(pipeline, _config(), walks, 15, batch_size=3)
    single = np.concatenate([forecast_quantiles(pipeline, _config(), [w], 15) for w in walks])
    np.testing.assert_allclose(batched, single, rtol=1e-4)


def test_too_little_history_is_a_clear_error():
    pipeline = load_pipeline(BUNDLED["checkpoint"])
    with pytest.raises(InsufficientHistoryError, match="context length 365 needs at least that many observations"):
        forecast_quantiles(pipeline, _config(context_length=365), _walks(1, length=300), 7)


def test_family_mismatch_is_reported():
    pipeline = load_pipeline(BUNDLED["checkpoint"])
    config = _config(family="chronos-bolt")
    with pytest.raises(ForecastError, match="says family 'chronos-bolt' but checkpoint .* is a chronos2 model"):
        forecast_quantiles(pipeline, config, _walks(1), 7)


def test_sampling_family_is_seeded_and_honours_num_samples(tiny_t5_dir):
    pipeline = load_pipeline(str(tiny_t5_dir))
    config = parse_config(
        {
            "horizon": "7d",
            "checkpoint": str(tiny_t5_dir),
            "family": "chronos-t5",
            "context_length": 64,
            "num_samples": 20,
            "temperature": 1.0,
            "seed": 5,
        }
    )
    walks = _walks(2, length=100)
    first = forecast_quantiles(pipeline, config, walks, 7)
    assert first.shape == (2, 7, 5)
    np.testing.assert_array_equal(first, forecast_quantiles(pipeline, config, walks, 7))
    assert np.all(np.diff(first, axis=-1) >= 0)
