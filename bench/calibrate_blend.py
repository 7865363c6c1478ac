"""The seed configurations blended with the EWMA band (band_blend), on held-out synthetic series with volatility
clustering: the evidence for a seed's band_blend, calibrated on simulated series (not on any real one).

Twelve series per horizon, alternately GARCH(1,1)-t and log-normal stochastic volatility
(``forex_assets.core.prices.synthetic``; seeds 90000-90011, never used in training), daily volatility
log-uniform in 0.3-1.2 %; each seed configuration is backtested at non-overlapping origins (one horizon apart,
independent paths) with band_blend 0, 0.25, 0.5, 0.75 and 1 (1 = the EWMA band alone); the table is the WQL
over the seed's (band_blend 0), with a 95 % bootstrap interval over paths. It prints the table; the figures
are copied into bench/results.md ("Seed band_blend on simulated clustered volatility"). Usage::

    .venv/bin/python bench/calibrate_blend.py 7d 30d
"""

import sys
import warnings

import numpy as np
import pandas as pd
import torch

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
from forex_assets.core.backtest.engine import run_backtest  # noqa: E402
from forex_assets.core.backtest.windows import PriceSeries  # noqa: E402
from forex_assets.core.forecasting.config import load_seed  # noqa: E402
from forex_assets.core.horizons import horizon_steps  # noqa: E402
from forex_assets.core.metrics import per_origin_wql  # noqa: E402
from forex_assets.core.models.loading import load_pipeline  # noqa: E402
from forex_assets.core.prices.sources import price_frame  # noqa: E402
from forex_assets.core.prices.synthetic import garch_t, stochastic_volatility  # noqa: E402
from forex_assets.core.working_area import SEED_CONFIGS_DIR  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
SERIES = 12
RESAMPLES = 500


def blend_losses(horizon: str) -> dict[float, np.ndarray]:
    """band_blend weight -> per-path WQL of the horizon's seed configuration blended with the EWMA band."""
    steps = horizon_steps(horizon)
    seed = load_seed(SEED_CONFIGS_DIR / f"chronos_{horizon}.json", horizon)
    pipeline = load_pipeline(seed.checkpoint)
    losses: dict[float, list[np.ndarray]] = {w: [] for w in WEIGHTS}
    for i in range(SERIES):
        rng = np.random.default_rng(90000 + i)
        generator = garch_t if i % 2 == 0 else stochastic_volatility
        daily_vol = float(np.exp(rng.uniform(np.log(0.003), np.log(0.012))))
        n = seed.longest_context + 1100
        prices = price_frame(pd.bdate_range("2000-01-03", periods=n), np.round(generator(rng, n, 700.0, daily_vol), 4))
        origins = np.arange(seed.longest_context + 40, n - steps, steps)  # non-overlapping paths
        for w in WEIGHTS:
            config = seed.model_copy(update={"band_blend": w or None, "band_blend_with": "ewma_band" if w else None})
            result = run_backtest(pipeline, config, PriceSeries.from_frame(prices), origins, steps)
            losses[w].append(per_origin_wql(result.quantiles, result.actuals, result.levels))
    return {w: np.concatenate(parts) for w, parts in losses.items()}


def main() -> None:
    for horizon in sys.argv[1:] or ["7d", "30d"]:
        losses = blend_losses(horizon)
        seed_loss = losses[0.0]
        rng = np.random.default_rng(0)
        for w, loss in losses.items():
            draws = (rng.integers(0, len(loss), len(loss)) for _ in range(RESAMPLES))
            boot = [loss[index].sum() / seed_loss[index].sum() for index in draws]
            low, high = np.quantile(boot, [0.025, 0.975])
            print(
                f"{horizon} weight {w:.2f}: WQL / seed WQL {loss.sum() / seed_loss.sum():.4f} "
                f"[{low:.4f}, {high:.4f}] ({len(loss)} paths)",
                flush=True,
            )


if __name__ == "__main__":
    main()
