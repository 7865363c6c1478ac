"""Forecast accuracy metrics over a window of rolling origins (pure numpy / statsmodels).

Inputs share one layout: ``n`` origins, ``h`` steps, ``q`` quantile levels.

* ``quantiles``: (n, h, q) forecast quantiles in CLP, levels in ``levels``;
* ``actuals``: (n, h) observed prices in CLP;
* ``last_prices``: (n,) the price at each origin (the random walk's forecast for every step);
* ``scales``: (n,) the MASE scale of each origin: mean absolute one-step change of its history (m = 1).

Errors are forecast minus actual (a positive bias means the model forecast too many CLP per USD).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from forex_assets.core.band_scores import coverage, interval_score, mean_width_pct
from forex_assets.core.loss_ratio import circular_block_indices, per_origin_quantile_loss


@dataclass(frozen=True)
class WindowMetrics:
    origins: int
    rmse_clp: float
    mae_clp: float
    mape_pct: float
    bias_clp: float
    error_std_clp: float
    coverage_95: float
    interval_width_95_clp: float
    weighted_quantile_loss: float
    mase: float
    rmse_random_walk_clp: float
    skill_vs_random_walk: float  # rmse / random-walk rmse: below 1 beats the random walk
    seconds_per_forecast: float
    # the band (issue 23): the 95 % interval (Winkler) score in CLP (lower is better: width plus 40x each miss),
    # the 80 % interval's coverage and the 95 % interval's mean width in % of the price
    interval_score_95_clp: float = float("nan")
    coverage_80: float = float("nan")
    width_95_pct: float = float("nan")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _level_index(levels: Sequence[float], level: float) -> int:
    for i, value in enumerate(levels):
        if abs(value - level) < 1e-9:
            return i
    raise ValueError(f"quantile level {level} is not among the forecast levels {list(levels)}")


def rmse(errors: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(errors))))


def weighted_quantile_loss(quantiles: np.ndarray, actuals: np.ndarray, levels: Sequence[float]) -> float:
    """Mean over levels of 2 * sum(pinball loss) / sum(|actual|) (the GluonTS / Chronos wQL)."""
    losses = []
    for i, tau in enumerate(levels):
        diff = actuals - quantiles[..., i]
        pinball = np.maximum(tau * diff, (tau - 1.0) * diff)
        losses.append(2.0 * pinball.sum() / np.abs(actuals).sum())
    return float(np.mean(losses))


def per_origin_wql(quantiles: np.ndarray, actuals: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """(n,) the weighted quantile loss of each origin's path (its steps pooled, as
    :func:`weighted_quantile_loss` pools a window): the loss series a Diebold-Mariano test on the
    distribution compares, origin by origin."""
    actuals = np.asarray(actuals, dtype=float)
    pinball = per_origin_quantile_loss(quantiles, actuals, levels)  # summed over steps and levels
    losses: np.ndarray = 2.0 * pinball / (len(levels) * np.abs(actuals).sum(axis=1))
    return losses


def mase_scales(histories: Sequence[np.ndarray], lookback: int | None = None) -> np.ndarray:
    """Per-origin MASE scale: mean |y_t - y_{t-1}| over the history (or its last ``lookback`` values)."""
    scales = []
    for history in histories:
        values = np.asarray(history, dtype=float)
        if lookback is not None:
            values = values[-(lookback + 1) :]
        scales.append(np.mean(np.abs(np.diff(values))))
    return np.asarray(scales)


def window_metrics(
    quantiles: np.ndarray,
    actuals: np.ndarray,
    last_prices: np.ndarray,
    scales: np.ndarray,
    levels: Sequence[float],
    seconds_per_forecast: float,
) -> WindowMetrics:
    quantiles = np.asarray(quantiles, dtype=float)
    actuals = np.asarray(actuals, dtype=float)
    if quantiles.shape[:2] != actuals.shape:
        raise ValueError(f"quantiles {quantiles.shape} and actuals {actuals.shape} disagree on origins x steps")
    median = quantiles[..., _level_index(levels, 0.5)]
    low = quantiles[..., _level_index(levels, 0.025)]
    high = quantiles[..., _level_index(levels, 0.975)]
    has_80 = any(abs(level - 0.1) < 1e-9 for level in levels) and any(abs(level - 0.9) < 1e-9 for level in levels)
    errors = median - actuals
    random_walk_errors = np.asarray(last_prices, dtype=float)[:, None] - actuals
    model_rmse = rmse(errors)
    random_walk_rmse = rmse(random_walk_errors)
    per_origin_mae = np.mean(np.abs(errors), axis=1)
    return WindowMetrics(
        origins=int(actuals.shape[0]),
        rmse_clp=model_rmse,
        mae_clp=float(np.mean(np.abs(errors))),
        mape_pct=float(np.mean(np.abs(errors) / np.abs(actuals)) * 100.0),
        bias_clp=float(np.mean(errors)),
        error_std_clp=float(np.std(errors, ddof=1)) if errors.size > 1 else 0.0,
        coverage_95=coverage(low, high, actuals),
        interval_width_95_clp=float(np.mean(high - low)),
        weighted_quantile_loss=weighted_quantile_loss(quantiles, actuals, levels),
        mase=float(np.mean(per_origin_mae / np.asarray(scales, dtype=float))),
        rmse_random_walk_clp=random_walk_rmse,
        skill_vs_random_walk=model_rmse / random_walk_rmse if random_walk_rmse > 0 else float("nan"),
        seconds_per_forecast=float(seconds_per_forecast),
        interval_score_95_clp=interval_score(low, high, actuals, alpha=0.05),
        coverage_80=(
            coverage(quantiles[..., _level_index(levels, 0.1)], quantiles[..., _level_index(levels, 0.9)], actuals)
            if has_80
            else float("nan")
        ),
        width_95_pct=mean_width_pct(low, high, actuals),
    )


@dataclass(frozen=True)
class DieboldMarianoResult:
    statistic: float
    p_value: float
    lags: int
    origins: int
    mean_loss_differential: float  # mean of (loss a - loss b): negative favours forecast a

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def diebold_mariano(
    actuals: np.ndarray, forecast_a: np.ndarray, forecast_b: np.ndarray, horizon: int
) -> DieboldMarianoResult:
    """Two-sided Diebold-Mariano test of equal squared-error accuracy, Harvey-Leybourne-Newbold corrected.

    ``actuals`` and the forecasts are (n, h) paths from rolling origins. Each origin contributes one loss:
    the mean squared error over its path, so the loss differential is a series over origins; with origins
    one business day apart consecutive ones share h - 1 targets, hence ``horizon`` h and h - 1 HAC lags;
    with origins s days apart pass ``horizon`` = ceil(h / s) (``windows.overlapping_origins``). See the
    cap below. Delegates to ``statsmodels.tsa.stattools.diebold_mariano_test``.
    """
    actuals = np.asarray(actuals, dtype=float)
    loss_a = np.mean(np.square(np.asarray(forecast_a) - actuals), axis=1)
    loss_b = np.mean(np.square(np.asarray(forecast_b) - actuals), axis=1)
    return diebold_mariano_losses(loss_a, loss_b, horizon)


def diebold_mariano_losses(loss_a: np.ndarray, loss_b: np.ndarray, horizon: int) -> DieboldMarianoResult:
    """:func:`diebold_mariano` on per-origin losses of any kind (squared path errors, a path's weighted
    quantile loss: :func:`per_origin_wql`), with the same HAC lags (``horizon`` - 1, capped at n // 3) and the
    same Harvey-Leybourne-Newbold correction."""
    from statsmodels.tsa.stattools import diebold_mariano_test

    loss_a = np.asarray(loss_a, dtype=float)
    loss_b = np.asarray(loss_b, dtype=float)
    if loss_a.shape != loss_b.shape or loss_a.ndim != 1:
        raise ValueError(f"per-origin losses must be two (n,) arrays, got {loss_a.shape} and {loss_b.shape}")
    if np.any(loss_a < 0) or np.any(loss_b < 0):
        raise ValueError("losses must be non-negative")
    n = len(loss_a)
    # A window of n overlapping origins cannot support h - 1 HAC lags when h is large (90d with 30
    # origins); the effective horizon is capped at n // 3, and the lags used are reported.
    effective_horizon = max(1, min(horizon, n // 3))
    lags = effective_horizon - 1
    differential = loss_a - loss_b
    if n < 3 or np.allclose(differential, 0.0):
        return DieboldMarianoResult(0.0, 1.0, lags, n, float(np.mean(differential)) if n else 0.0)
    # statsmodels scores (y, forecast) pointwise: pass the per-origin root losses against zero so that
    # its squared-error criterion reproduces exactly our per-origin path losses.
    result = diebold_mariano_test(
        np.zeros(n),
        np.sqrt(loss_a),
        np.sqrt(loss_b),
        lags=lags,
        criterion="mse",
        harvey_adj=True,
        horizon=effective_horizon,
    )
    return DieboldMarianoResult(float(result.statistic), float(result.pvalue), lags, n, float(np.mean(differential)))


@dataclass(frozen=True)
class BootstrapInterval:
    ratio: float  # RMSE a / RMSE b on the sample itself
    low: float
    high: float
    level: float
    block: int  # block length used (origins)
    resamples: int
    origins: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def block_bootstrap_ratio_ci(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    block: int,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapInterval:
    """Circular-block bootstrap percentile interval for the ratio RMSE(a) / RMSE(b) over the same origins.

    Parameters
    ----------
    errors_a, errors_b : numpy.ndarray
        Forecast errors (forecast minus actual) of two forecasts on the same origins, shape ``(origins,)``
        or ``(origins, steps)``; the origins are consecutive (one business day apart). A cell that is not
        finite in either array (a target without a price) is left out of both RMSEs.
    block : int
        Block length in origins. Consecutive origins of an ``h``-step path share ``h - 1`` targets, so
        their errors are dependent: use ``block >= h``. Capped at the number of origins.
    n : int, default 1000
        Bootstrap resamples.
    seed : int, default 0
        Seed of the generator (``numpy.random.default_rng``): the same inputs give the same interval.
    level : float, default 0.95
        Confidence level of the two-sided percentile interval.

    Returns
    -------
    BootstrapInterval
        The ratio on the sample, the interval's ends, and the block, resamples and origins used.

    Raises
    ------
    ValueError
        Different shapes, fewer than two origins, a block below 1, or no finite error in ``errors_b``.

    Notes
    -----
    Each resample draws ``ceil(origins / block)`` block starts uniformly over the origins, takes
    ``block`` consecutive origins from each (wrapping around the end: circular blocks, so every origin is
    equally likely to be drawn), keeps the first ``origins`` of them, and computes the ratio of the pooled
    RMSEs over every step of the drawn origins. The interval is the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of the resampled ratios.
    """
    a = np.asarray(errors_a, dtype=float)
    b = np.asarray(errors_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"errors_a {a.shape} and errors_b {b.shape} must have the same shape")
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    origins = a.shape[0]
    if origins < 2:
        raise ValueError(f"a block bootstrap needs at least two origins, got {origins}")
    if block < 1:
        raise ValueError(f"block length must be at least 1, got {block}")
    block = min(int(block), origins)
    finite = np.isfinite(a) & np.isfinite(b)
    squares_a = np.where(finite, a, 0.0) ** 2
    squares_b = np.where(finite, b, 0.0) ** 2
    sum_a, sum_b = squares_a.sum(axis=1), squares_b.sum(axis=1)  # per origin; counts cancel in the ratio
    if sum_b.sum() <= 0:
        raise ValueError("errors_b has no non-zero finite error: the ratio is undefined")
    ratio = float(np.sqrt(sum_a.sum() / sum_b.sum()))
    index = circular_block_indices(origins, block, n, np.random.default_rng(seed))
    drawn_b = sum_b[index].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.sqrt(sum_a[index].sum(axis=1) / drawn_b)
    ratios = ratios[np.isfinite(ratios)]
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail]) if len(ratios) else (float("nan"), float("nan"))
    return BootstrapInterval(ratio, float(low), float(high), level, block, n, origins)
