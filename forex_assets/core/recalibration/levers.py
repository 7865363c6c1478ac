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

With a ``prior`` (the horizon's seed configuration, whose levers are calibrated on stationary random
walks: ``bench/calibrate_seed.py``), both estimates are shrunk towards the prior's values instead, with
the same weight ``n_eff / (n_eff + prior_paths)``: a 30-origin window is a handful of independent paths,
and a least-squares weight fitted on them is mostly noise.

Both are fitted on the candidate's search-window backtest (model output from the forecast cache, so
fitting costs no model call); the validation window then judges the fitted candidate out of sample.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from forex_assets.core.backtest.engine import BacktestResult
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.quantiles import adjust_quantiles
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


def with_levers(raw: BacktestResult, shrinkage: float, interval_scale: float) -> BacktestResult:
    """``raw`` (a backtest of a configuration with the levers at 0 and 1) as the same configuration with
    these levers would have forecast: same model output, no model call."""
    if raw.config.shrinkage != 0.0 or raw.config.interval_scale != 1.0:
        raise ValueError("levers are fitted on a backtest of the configuration with shrinkage 0 and interval_scale 1")
    config = raw.config.model_copy(update={"shrinkage": shrinkage, "interval_scale": interval_scale})
    quantiles = adjust_quantiles(raw.quantiles, raw.last_prices, shrinkage, interval_scale, raw.levels)
    return replace(raw, config=config, quantiles=quantiles)


def fit_levers(
    raw: BacktestResult, settings: LeverSettings = LeverSettings(), prior: ChronosConfig | None = None
) -> BacktestResult:
    """The search-window backtest ``raw`` with the levers fitted: shrinkage first, then the interval
    scale on the shrunk forecasts (values rounded to 3 decimals, as stored). With a ``prior``
    configuration, both are shrunk towards its levers; a lever not fitted takes the prior's value (or the
    neutral 0 / 1 without a prior)."""
    prior_shrinkage = prior.shrinkage if prior is not None else 0.0
    prior_scale = prior.interval_scale if prior is not None else 1.0
    shrinkage = prior_shrinkage
    if settings.fit_shrinkage:
        shrinkage = fitted_shrinkage(raw)
        if prior is not None:
            weight = data_weight(raw, settings.prior_paths)
            shrinkage = weight * shrinkage + (1 - weight) * prior_shrinkage
    shrinkage = round(shrinkage, 3)
    if not settings.fit_interval_scale:
        return with_levers(raw, shrinkage, prior_scale)
    shrunk = with_levers(raw, shrinkage, 1.0)
    scale = fitted_interval_scale(
        shrunk, settings.coverage_target, settings.min_scale, settings.max_scale, settings.prior_paths, prior_scale
    )
    return with_levers(raw, shrinkage, round(scale, 3))
