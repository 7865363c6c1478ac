"""Quantile forecasts from a Chronos pipeline for one inference configuration.

Shapes: a batch of ``n`` contexts (1-d price arrays, oldest first) gives quantiles of shape
``(n, steps, len(quantile_levels))`` in CLP. The same function serves the production forecast (one
context) and the backtests (all origins of a window in batched calls).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch

from forex_assets.core.forecasting.config import SAMPLING_FAMILY, ChronosConfig

if TYPE_CHECKING:
    from chronos import BaseChronosPipeline  # untyped (Any): what every Chronos pipeline class derives from

#: Quantile levels every forecast carries: the 95 % and 80 % intervals and the median.
FORECAST_QUANTILES: tuple[float, ...] = (0.025, 0.1, 0.5, 0.9, 0.975)
MEDIAN_INDEX = FORECAST_QUANTILES.index(0.5)

_PIPELINE_FAMILIES = {
    "Chronos2Pipeline": "chronos2",
    "ChronosBoltPipeline": "chronos-bolt",
    "ChronosPipeline": SAMPLING_FAMILY,
}


class ForecastError(RuntimeError):
    """The forecast could not be made; the message says why."""


class InsufficientHistoryError(ForecastError):
    pass


def pipeline_family(pipeline: BaseChronosPipeline) -> str:
    name = type(pipeline).__name__
    try:
        return _PIPELINE_FAMILIES[name]
    except KeyError:
        raise ForecastError(f"unsupported Chronos pipeline class {name}") from None


def check_family(pipeline: BaseChronosPipeline, config: ChronosConfig) -> None:
    actual = pipeline_family(pipeline)
    if actual != config.family:
        raise ForecastError(
            f"configuration for {config.horizon} says family {config.family!r} but checkpoint "
            f"{config.checkpoint!r} is a {actual} model"
        )


def to_model_space(contexts: list[np.ndarray], preprocessing: str) -> list[torch.Tensor]:
    if preprocessing == "log":
        return [torch.tensor(np.log(c), dtype=torch.float32) for c in contexts]
    return [torch.tensor(c, dtype=torch.float32) for c in contexts]


def from_model_space(values: np.ndarray, preprocessing: str) -> np.ndarray:
    # exp is monotone, so quantiles of log prices map to quantiles of prices.
    return np.exp(values) if preprocessing == "log" else values


def sample_paths(
    pipeline: BaseChronosPipeline,
    contexts: list[torch.Tensor],
    steps: int,
    num_samples: int,
    temperature: float,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Sampled paths of the sampling family (Chronos-T5): shape (n, num_samples, steps)."""
    torch.manual_seed(seed)
    kwargs: dict[str, Any] = {"num_samples": num_samples, "temperature": temperature}
    if top_k is not None:
        kwargs["top_k"] = top_k
    if top_p is not None:
        kwargs["top_p"] = top_p
    with torch.inference_mode():
        samples = pipeline.predict(contexts, prediction_length=steps, **kwargs)
    paths: np.ndarray = samples.numpy()
    return paths


def _quantiles_one_context_length(
    pipeline: BaseChronosPipeline, config: ChronosConfig, contexts: list[torch.Tensor], steps: int, levels: list[float]
) -> np.ndarray:
    if config.family == SAMPLING_FAMILY:
        samples = sample_paths(
            pipeline,
            contexts,
            steps,
            num_samples=config.sampling_num_samples,
            temperature=config.sampling_temperature,
            top_k=config.top_k,
            top_p=config.top_p,
            seed=config.seed,
        )
        return np.moveaxis(np.quantile(samples, levels, axis=1), 0, -1)
    with torch.inference_mode():
        quantiles, _ = pipeline.predict_quantiles(contexts, prediction_length=steps, quantile_levels=levels)
    if isinstance(quantiles, list):  # Chronos-2: one (n_variates, steps, q) tensor per series
        return np.stack([q[0].numpy() for q in quantiles])
    as_array: np.ndarray = quantiles.numpy()
    return as_array


def single_context_members(config: ChronosConfig) -> list[ChronosConfig]:
    """One configuration per context length of ``config``: the model calls its forecast is made of (the
    levers apply to the combined forecast, not to the members)."""
    raw = {
        "ensemble_context_lengths": (),
        "shrinkage": 0.0,
        "interval_scale": 1.0,
        "band_blend": None,
        "band_blend_with": None,
    }
    return [config.model_copy(update={"context_length": length} | raw) for length in config.context_lengths]


def blend_bands(
    quantiles: np.ndarray, baseline_band: np.ndarray, weight: float, quantile_levels: Sequence[float]
) -> np.ndarray:
    """``(n, steps, q)`` quantiles whose median is ``quantiles``' and whose offsets from it are the level-by-level
    average of ``quantiles``' offsets (weight ``1 - weight``) and ``baseline_band``'s offsets from its own
    median (weight ``weight``): the two bands averaged with both centred on ``quantiles``' median, so blending
    changes the band only, never the median. Sorted offsets average to sorted offsets."""
    at_median = list(quantile_levels).index(0.5)
    median = quantiles[..., at_median : at_median + 1]
    baseline_offsets = baseline_band - baseline_band[..., at_median : at_median + 1]
    blended: np.ndarray = median + (1.0 - weight) * (quantiles - median) + weight * baseline_offsets
    return blended


def adjust_quantiles(
    quantiles: np.ndarray,
    last_prices: np.ndarray,
    shrinkage: float,
    interval_scale: float,
    quantile_levels: Sequence[float] = FORECAST_QUANTILES,
    band_blend: float = 0.0,
    baseline_band: np.ndarray | None = None,
) -> np.ndarray:
    """The configuration's levers on ``(n, steps, q)`` quantiles (CLP), in this order: the median path moves
    ``shrinkage`` of the way to the last observed price of each series (``(n,)``), every quantile keeping its
    offset from the median; then the band's offsets from that median are averaged level by level with those
    of ``baseline_band`` (``(n, steps, q)``, a volatility baseline's quantiles) with weight ``band_blend``
    (:func:`blend_bands`: the median stays where shrinkage put it); then every quantile's offset from the
    median is multiplied by ``interval_scale``. Order is preserved."""
    if band_blend:
        if baseline_band is None:
            raise ValueError("band_blend needs the baseline's quantiles (baseline_band)")
        if baseline_band.shape != quantiles.shape:
            raise ValueError(f"baseline_band {baseline_band.shape} and quantiles {quantiles.shape} disagree")
    elif shrinkage == 0.0 and interval_scale == 1.0:
        return quantiles
    at_median = list(quantile_levels).index(0.5)
    median = quantiles[..., at_median]
    moved = median + shrinkage * (np.asarray(last_prices, dtype=np.float64)[:, None] - median)
    shifted = moved[..., None] + (quantiles - median[..., None])
    if band_blend:
        assert baseline_band is not None
        shifted = blend_bands(shifted, baseline_band, band_blend, quantile_levels)
    scaled: np.ndarray = moved[..., None] + interval_scale * (shifted - moved[..., None])
    return scaled


def blend_baseline_band(
    config: ChronosConfig, histories: Sequence[np.ndarray], steps: int, quantile_levels: Sequence[float]
) -> np.ndarray | None:
    """The ``(n, steps, q)`` band of ``config``'s band_blend baseline for each history; None when the
    configuration blends nothing (the baseline is not computed: a GARCH fit costs about 0.15 s)."""
    if not config.blend_weight:
        return None
    from forex_assets.core.forecasting.baselines import BASELINES

    forecast = BASELINES[config.blend_baseline]
    return np.stack([forecast(np.asarray(h, dtype=np.float64), steps, quantile_levels) for h in histories])


def combine_members(member_quantiles: Sequence[np.ndarray]) -> np.ndarray:
    """Quantile averaging of ensemble members; each member is sorted, so the mean is ordered too."""
    mean: np.ndarray = np.mean(np.stack(member_quantiles), axis=0)
    return mean


def forecast_quantiles(
    pipeline: BaseChronosPipeline,
    config: ChronosConfig,
    histories: Sequence[np.ndarray],
    steps: int,
    quantile_levels: Sequence[float] = FORECAST_QUANTILES,
    batch_size: int = 256,
) -> np.ndarray:
    """Quantile forecasts (CLP) for each history, ``steps`` business days ahead.

    Each history is truncated to each of the configuration's context lengths; the quantiles of the
    ensemble members are averaged level by level (quantile averaging). A model may emit crossing
    quantiles: each member is sorted per step first (rearrangement), so the result is ordered.
    """
    check_family(pipeline, config)
    histories = [np.asarray(h, dtype=np.float64) for h in histories]
    shortest = min(len(h) for h in histories)
    if shortest < config.longest_context:
        raise InsufficientHistoryError(
            f"context length {config.longest_context} needs at least that many observations; "
            f"a history has only {shortest}"
        )
    levels = [float(q) for q in quantile_levels]
    members = []
    for member in single_context_members(config):
        length = member.context_length
        batches = []
        for start in range(0, len(histories), batch_size):
            chunk = [h[-length:] for h in histories[start : start + batch_size]]
            model_input = to_model_space(chunk, config.preprocessing)
            out = _quantiles_one_context_length(pipeline, member, model_input, steps, levels)
            batches.append(from_model_space(out, config.preprocessing))
        members.append(np.sort(np.concatenate(batches), axis=-1))
    lasts = np.array([h[-1] for h in histories])
    result = adjust_quantiles(
        combine_members(members),
        lasts,
        config.shrinkage,
        config.interval_scale,
        levels,
        config.blend_weight,
        blend_baseline_band(config, histories, steps, levels),
    )
    if not np.all(np.isfinite(result)):
        raise ForecastError(f"the model returned non-finite forecasts for {config.horizon}")
    return result


@dataclass(frozen=True)
class TimedForecast:
    quantiles: np.ndarray  # (n, steps, q) CLP
    seconds_per_forecast: float


def timed_forecast_quantiles(
    pipeline: BaseChronosPipeline,
    config: ChronosConfig,
    histories: Sequence[npt.NDArray[np.float64]],
    steps: int,
    **kwargs: Any,
) -> TimedForecast:
    started = time.perf_counter()
    quantiles = forecast_quantiles(pipeline, config, histories, steps, **kwargs)
    elapsed = time.perf_counter() - started
    return TimedForecast(quantiles, elapsed / len(histories))
