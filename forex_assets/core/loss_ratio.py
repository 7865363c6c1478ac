"""The ratio of two forecasts' summed losses over the same origins, with a circular-block bootstrap interval
(issue 23: scoring the whole distribution). Pure numpy.

Two forecasts scored on the same origins and the same actuals by a loss that adds up over origins (the
pinball loss of a quantile forecast, the squared error of a point forecast) compare by the ratio of their
summed losses: below 1, forecast a lost less. The weighted quantile loss of GluonTS / Chronos
(:func:`forex_assets.core.metrics.weighted_quantile_loss`) is such a sum divided by a denominator that
depends on the actuals only, so on the same actuals the ratio of two WQLs is the ratio of their summed
pinball losses (:func:`per_origin_quantile_loss`).

Method (:func:`block_bootstrap_loss_ratio_ci`), the one of
:func:`forex_assets.core.metrics.block_bootstrap_ratio_ci` for an RMSE ratio, applied to per-origin loss
sums: consecutive origins of ``h``-step paths share ``h - 1`` targets, so their losses are dependent and
are resampled in blocks of ``block >= h`` consecutive origins. Each resample draws ``ceil(origins / block)``
block starts uniformly over the origins, takes ``block`` consecutive origins from each (wrapping around the
end: circular blocks, so every origin is equally likely to be drawn), keeps the first ``origins`` of them,
and computes sum(losses a) / sum(losses b) over the drawn origins. The interval is the ``(1 - level) / 2``
and ``(1 + level) / 2`` quantiles of the resampled ratios. The generator is seeded and draws exactly as the
RMSE bootstrap does: with per-origin sums of squared errors as losses, the resampled ratios are the squares
of that function's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class LossRatioInterval:
    ratio: float  # sum(losses a) / sum(losses b) on the sample itself
    low: float
    high: float
    level: float
    block: int  # block length used (origins)
    resamples: int
    origins: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def per_origin_quantile_loss(
    quantiles: npt.ArrayLike, actuals: npt.ArrayLike, levels: Sequence[float]
) -> npt.NDArray[np.float64]:
    """(origins,) pinball loss of each origin's quantile forecast, summed over its steps and levels, in CLP.

    ``quantiles``: (origins, steps, levels); ``actuals``: (origins, steps). The pinball loss of level tau is
    ``max(tau * (y - q), (tau - 1) * (y - q))``. Over the same actuals,
    ``weighted_quantile_loss = 2 * losses.sum() / (len(levels) * sum(|actuals|))``."""
    q = np.asarray(quantiles, dtype=float)
    y = np.asarray(actuals, dtype=float)
    if q.ndim != 3 or q.shape[:2] != y.shape or q.shape[2] != len(levels):
        raise ValueError(
            f"quantiles {q.shape} must be (origins, steps, levels) over actuals {y.shape} and {len(levels)} levels"
        )
    tau = np.asarray(levels, dtype=float)
    diff = y[..., None] - q
    pinball = np.maximum(tau * diff, (tau - 1.0) * diff)
    return np.asarray(pinball.sum(axis=(1, 2)), dtype=np.float64)


def circular_block_indices(origins: int, block: int, resamples: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """(resamples, origins) indices of circular-block bootstrap resamples: ``ceil(origins / block)`` uniform
    block starts per resample, ``block`` consecutive origins from each (modulo ``origins``), the first
    ``origins`` kept."""
    blocks = -(-origins // block)
    starts = rng.integers(0, origins, size=(resamples, blocks))
    index = ((starts[:, :, None] + np.arange(block)) % origins).reshape(resamples, blocks * block)[:, :origins]
    return np.asarray(index, dtype=np.int64)


def block_bootstrap_loss_ratio_ci(
    losses_a: npt.ArrayLike,
    losses_b: npt.ArrayLike,
    block: int,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> LossRatioInterval:
    """Circular-block bootstrap percentile interval for sum(losses a) / sum(losses b) over the same origins.

    ``losses_a``, ``losses_b``: the two forecasts' losses, shape ``(origins,)`` or ``(origins, ...)`` (summed
    over every axis after the first: one loss per origin), origins consecutive and in time order, finite and
    non-negative. ``block``: block length in origins (``>= h`` for ``h``-step paths from consecutive origins;
    capped at the number of origins). ``n`` resamples from ``numpy.random.default_rng(seed)``; ``level``: the
    two-sided interval's confidence. See the module's docstring for the method.

    Raises ValueError for different shapes, fewer than two origins, a block below 1, a loss not finite or
    negative, or ``losses_b`` summing to 0 (the ratio is undefined)."""
    a = np.asarray(losses_a, dtype=float)
    b = np.asarray(losses_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"losses_a {a.shape} and losses_b {b.shape} must have the same shape")
    if a.ndim == 0 or a.shape[0] < 2:
        raise ValueError(f"a block bootstrap needs at least two origins, got {a.shape[0] if a.ndim else 0}")
    if block < 1:
        raise ValueError(f"block length must be at least 1, got {block}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or (a < 0).any() or (b < 0).any():
        raise ValueError("losses must be finite and non-negative")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    origins = a.shape[0]
    sum_a = a.reshape(origins, -1).sum(axis=1)
    sum_b = b.reshape(origins, -1).sum(axis=1)
    if sum_b.sum() <= 0:
        raise ValueError("losses_b sum to 0: the ratio is undefined")
    block = min(int(block), origins)
    ratio = float(sum_a.sum() / sum_b.sum())
    index = circular_block_indices(origins, block, n, np.random.default_rng(seed))
    drawn_b = sum_b[index].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = sum_a[index].sum(axis=1) / drawn_b
    ratios = ratios[np.isfinite(ratios)]  # a resample that drew only origins where b lost nothing
    tail = (1.0 - level) / 2.0
    low, high = (float(v) for v in np.quantile(ratios, [tail, 1.0 - tail])) if len(ratios) else (np.nan, np.nan)
    return LossRatioInterval(ratio, float(low), float(high), level, block, n, origins)
