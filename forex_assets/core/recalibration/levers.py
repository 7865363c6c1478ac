"""The two FX levers of a configuration, fitted on the search window (never on the validation window).

* ``shrinkage`` (0..1): how far the median path moves towards the last observed price. On FX the
  random walk is hard to beat (Meese and Rogoff, 1983); the least-squares weight between the model's
  median ``m`` and the last price ``L`` over the window's origins and steps is
  ``s* = sum((m - L)(m - a)) / sum((m - L)^2)``, clipped to [0, 1]: 0 keeps the model, 1 is the random
  walk's median. A model with no skill over the random walk is thus shrunk towards it by the search.
* ``interval_scale``: the factor on the quantiles' offsets from the (shrunk) median that makes the
  95 % interval cover ``target`` of the window's targets: for each origin and step the scale needed
  to cover the actual value is ``|a - m| / offset`` of the side it falls on; the fitted scale is the
  ``target`` empirical quantile of those, clipped to ``[min_scale, max_scale]``. Overlapping paths hold few
  independent observations (about ``(origins + h - 1) / h`` non-overlapping paths), so the log of the
  fitted scale is shrunk towards 0 (scale 1) with weight ``n_eff / (n_eff + prior_paths)``: 30 origins
  move a 7d interval by a third of the fitted log-scale and a 90d interval by an eighth.

With a ``prior`` (the horizon's seed configuration, whose levers are calibrated on simulated series:
``bench/calibrate_seed.py``), the estimates are shrunk towards the prior's values instead, with
the same weight ``n_eff / (n_eff + prior_paths)``: a 30-origin window is a handful of independent paths,
and a least-squares weight fitted on them is mostly noise.

* ``band_blend`` (0..1): the weight of a volatility baseline's band (``band_blend_with``: the RiskMetrics
  EWMA band by default) averaged level by level with the model's, both centred on the shrunk median (the
  blend changes the band, never the median: ``shrinkage`` alone moves that): the grid weight
  (0, 0.05, ..., 1) with the lowest weighted quantile loss on the window, then shrunk towards the prior's
  weight like the other levers. Averaging quantiles of two calibrated forecasts keeps them calibrated and
  can only lower the pinball loss of a level up to the convexity gap (the loss is convex in the quantile):
  the seeds' weights (0.35 to 0.75) are calibrated on simulated series (``bench/calibrate_seed.py``).

All are fitted on the candidate's search-window backtest (model output from the forecast cache, so
fitting costs no model call); the validation window then judges the fitted candidate out of sample.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from forex_assets.core.backtest.engine import BacktestResult
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.quantiles import adjust_quantiles, blend_bands
from forex_assets.core.metrics import weighted_quantile_loss
from forex_assets.core.recalibration.thresholds import LeverSettings as LeverSettings  # declared there, light to import


def fitted_shrinkage(result: BacktestResult) -> float:
    """Least-squares weight on the last price (0..1) for the median path of ``result`` (shrinkage 0)."""
    median = result.median
    towards = median - result.last_prices[:, None]
    denominator = float(np.sum(towards**2))
    if denominator <= 0:
        return 0.0
    weight = float(np.sum(towards * (median - result.actuals))) / denominator
    return float(np.clip(weight, 0.0, 1.0))


def data_weight(result: BacktestResult, prior_paths: float) -> float:
    """``n_eff / (n_eff + prior_paths)``: the weight of a window's own estimate against a prior, ``n_eff``
    the non-overlapping paths the window's origins span."""
    origins, steps = result.actuals.shape
    paths = (origins + steps - 1) / steps
    return float(paths / (paths + prior_paths))


def fitted_interval_scale(
    result: BacktestResult,
    target: float = 0.95,
    min_scale: float = 0.5,
    max_scale: float = 3.0,
    prior_paths: float = 0.0,
    prior_scale: float = 1.0,
) -> float:
    """Scale of the 95 % interval's offsets that covers ``target`` of the window's targets, its log shrunk
    towards ``log(prior_scale)`` by ``prior_paths`` pseudo-observations (0: the raw empirical fit)."""
    levels = list(result.levels)
    median = result.median
    low = median - result.quantiles[..., levels.index(0.025)]
    high = result.quantiles[..., levels.index(0.975)] - median
    above = result.actuals >= median
    offset = np.where(above, high, low)
    needed = np.abs(result.actuals - median) / np.maximum(offset, 1e-9)
    raw = float(np.clip(np.quantile(needed, target), min_scale, max_scale))
    weight = data_weight(result, prior_paths)
    return float(np.exp(weight * np.log(raw) + (1 - weight) * np.log(prior_scale)))


#: the band_blend weights tried
BLEND_GRID = tuple(round(0.05 * i, 2) for i in range(21))


def with_levers(
    raw: BacktestResult,
    shrinkage: float,
    interval_scale: float,
    band_blend: float = 0.0,
    band_blend_with: str | None = None,
) -> BacktestResult:
    """``raw`` (a backtest of a configuration with the levers at 0 and 1, no blend) as the same configuration
    with these levers would have forecast: same model output, no model call. A ``band_blend`` needs the
    baseline's quantiles in ``raw.baseline_band``."""
    if raw.config.shrinkage != 0.0 or raw.config.interval_scale != 1.0 or raw.config.blend_weight:
        raise ValueError(
            "levers are fitted on a backtest of the configuration with shrinkage 0, interval_scale 1 and no band_blend"
        )
    update: dict[str, object] = {"shrinkage": shrinkage, "interval_scale": interval_scale}
    if band_blend:
        update |= {"band_blend": band_blend, "band_blend_with": band_blend_with or "ewma_band"}
    config = raw.config.model_copy(update=update)
    quantiles = adjust_quantiles(
        raw.quantiles, raw.last_prices, shrinkage, interval_scale, raw.levels, band_blend, raw.baseline_band
    )
    return replace(raw, config=config, quantiles=quantiles)


def fitted_band_blend(result: BacktestResult) -> float:
    """The grid weight of ``result.baseline_band`` with the lowest weighted quantile loss of the blend with
    ``result``'s quantiles (the levers already applied, no blend; the lowest weight among ties)."""
    if result.baseline_band is None:
        raise ValueError("fitting band_blend needs the baseline's quantiles (baseline_band)")
    baseline = result.baseline_band
    losses = [
        weighted_quantile_loss(blend_bands(result.quantiles, baseline, w, result.levels), result.actuals, result.levels)
        for w in BLEND_GRID
    ]
    return float(BLEND_GRID[int(np.argmin(losses))])


def fit_levers(
    raw: BacktestResult, settings: LeverSettings = LeverSettings(), prior: ChronosConfig | None = None
) -> BacktestResult:
    """The search-window backtest ``raw`` with the levers fitted: shrinkage first, then the band_blend weight
    on the shrunk forecasts (when ``raw.baseline_band`` holds the baseline's quantiles), then the interval
    scale on the blended ones (values rounded to 3 decimals, as stored). With a ``prior`` configuration, each
    is shrunk towards its levers; a lever not fitted takes the prior's value (or the neutral 0 / 1 / no blend
    without a prior)."""
    prior_shrinkage = prior.shrinkage if prior is not None else 0.0
    prior_scale = prior.interval_scale if prior is not None else 1.0
    prior_blend = prior.blend_weight if prior is not None else 0.0
    weight = data_weight(raw, settings.prior_paths) if prior is not None else 1.0
    shrinkage = prior_shrinkage
    if settings.fit_shrinkage:
        shrinkage = weight * fitted_shrinkage(raw) + (1 - weight) * prior_shrinkage
    shrinkage = round(shrinkage, 3)
    blend_with: str | None = prior.band_blend_with if prior is not None else None
    blend = prior_blend
    if settings.fit_band_blend and raw.baseline_band is not None:
        blend = weight * fitted_band_blend(with_levers(raw, shrinkage, 1.0)) + (1 - weight) * prior_blend
        blend_with = settings.band_blend_with
    elif blend and raw.baseline_band is None:
        raise ValueError("the prior configuration blends its band: the window's baseline_band is needed")
    blend = round(blend, 3)
    if not settings.fit_interval_scale:
        return with_levers(raw, shrinkage, prior_scale, blend, blend_with)
    blended = with_levers(raw, shrinkage, 1.0, blend, blend_with)
    scale = fitted_interval_scale(
        blended, settings.coverage_target, settings.min_scale, settings.max_scale, settings.prior_paths, prior_scale
    )
    return with_levers(raw, shrinkage, round(scale, 3), blend, blend_with)
