"""How much better than the RiskMetrics EWMA band can any band be? The ceiling, on simulated GARCH series.

On a GARCH(1,1)-t series whose parameters and variance state are known, the true conditional distribution of
the k-step price is known too (simulated forward from the state): no forecaster can have a lower expected
weighted quantile loss. Its WQL over the EWMA band's (RiskMetrics, lambda 0.94, Gaussian, sqrt(k)) is the
best ratio a perfect model could reach on such a series; the fitted GARCH(1,1)-t band (``arch``, the last
1000 returns) shows how much of that ceiling a correctly specified, estimated model gets. Every forecaster's
median here is the last price (zero-mean, symmetric returns), so the ratios measure the band alone, as the
issue's "live WQL / EWMA-band WQL" does for configurations whose median is the random walk.

Series: GARCH(1,1)-t with the parameters of daily FX fits (persistence alpha + beta 0.95-0.99, alpha
0.03-0.08, Student-t nu 5-8; unconditional daily volatility log-uniform 0.3-1.2 %), seeds 95000-, none used in
training; origins one horizon apart (independent paths) after 1000 returns. The ratio's 95 % interval is a
bootstrap over paths. It prints the table and writes it into bench/results.md (section ``band-ceiling``).
Usage::

    .venv/bin/python bench/band_ceiling.py [--series 24] [--paths 40] [--simulations 4000]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from bench_common import machine, replace_section  # noqa: E402

from forex_assets.core.forecasting.baselines import garch_t_quantiles, random_walk_ewma_quantiles  # noqa: E402
from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES  # noqa: E402
from forex_assets.core.horizons import HORIZONS, horizon_steps  # noqa: E402
from forex_assets.core.metrics import per_origin_wql  # noqa: E402

START, END = "<!-- band-ceiling:start -->", "<!-- band-ceiling:end -->"
WARM_UP = 1000  # returns before the first origin: the GARCH band's fitting window
LEVEL = 700.0


def t_shocks(rng: np.random.Generator, shape: tuple[int, ...] | int, nu: float) -> np.ndarray:
    """Student-t(nu) draws scaled to unit variance."""
    draws: np.ndarray = rng.standard_t(nu, shape) * np.sqrt((nu - 2.0) / nu)
    return draws


class KnownGarch:
    """A GARCH(1,1)-t path with its parameters and its variance state at every day."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.persistence = float(rng.uniform(0.95, 0.99))
        self.alpha = float(rng.uniform(0.03, 0.08))
        self.beta = self.persistence - self.alpha
        self.nu = float(rng.uniform(5.0, 8.0))
        daily_vol = float(np.exp(rng.uniform(np.log(0.003), np.log(0.012))))
        self.omega = daily_vol**2 * (1.0 - self.persistence)
        shocks = t_shocks(rng, n + 250, self.nu)
        variance = np.empty(n + 251)
        returns = np.empty(n + 250)
        variance[0] = daily_vol**2
        for t in range(n + 250):
            returns[t] = np.sqrt(variance[t]) * shocks[t]
            variance[t + 1] = self.omega + self.alpha * returns[t] ** 2 + self.beta * variance[t]
        self.returns = returns[250:]
        self.next_variance = variance[251:]  # next_variance[t]: the variance of return t + 1, known at day t
        self.prices = LEVEL * np.exp(np.concatenate([[0.0], np.cumsum(self.returns)]))  # prices[t + 1] after return t

    def oracle_quantiles(self, origin: int, steps: int, simulations: int, rng: np.random.Generator) -> np.ndarray:
        """(steps, levels) quantiles of the price path after price index ``origin``, from the true model."""
        variance = np.full(simulations, self.next_variance[origin - 1])
        cumulative = np.zeros(simulations)
        out = np.empty((steps, len(FORECAST_QUANTILES)))
        for k in range(steps):
            r = np.sqrt(variance) * t_shocks(rng, simulations, self.nu)
            cumulative = cumulative + r
            variance = self.omega + self.alpha * r**2 + self.beta * variance
            upper = np.quantile(cumulative, FORECAST_QUANTILES)
            mirrored = np.quantile(cumulative, 1.0 - np.asarray(FORECAST_QUANTILES))
            out[k] = self.prices[origin] * np.exp((upper - mirrored) / 2.0)  # symmetric: halves the noise
        return out


def ratio_ci(loss: np.ndarray, reference: np.ndarray, rng: np.random.Generator, resamples: int = 2000) -> tuple:
    draws = rng.integers(0, len(loss), (resamples, len(loss)))
    boot = loss[draws].sum(axis=1) / reference[draws].sum(axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    return float(loss.sum() / reference.sum()), float(low), float(high)


def ceiling(horizon: str, series: int, paths: int, simulations: int) -> dict:
    steps = horizon_steps(horizon)
    losses: dict[str, list[np.ndarray]] = {"oracle": [], "garch_band": [], "ewma_band": []}
    for i in range(series):
        rng = np.random.default_rng(95000 + i)
        path = KnownGarch(rng, WARM_UP + paths * steps + 1)
        origins = WARM_UP + steps * np.arange(paths)
        actuals = np.stack([path.prices[o + 1 : o + 1 + steps] for o in origins])
        bands = {
            "oracle": np.stack([path.oracle_quantiles(o, steps, simulations, rng) for o in origins]),
            "garch_band": np.stack(
                [garch_t_quantiles(path.prices[: o + 1], steps, FORECAST_QUANTILES) for o in origins]
            ),
            "ewma_band": np.stack(
                [random_walk_ewma_quantiles(path.prices[: o + 1], steps, FORECAST_QUANTILES) for o in origins]
            ),
        }
        for name, band in bands.items():
            losses[name].append(per_origin_wql(band, actuals, FORECAST_QUANTILES))
    pooled = {name: np.concatenate(parts) for name, parts in losses.items()}
    rng = np.random.default_rng(0)
    return {
        "horizon": horizon,
        "paths": len(pooled["oracle"]),
        "oracle_over_ewma": ratio_ci(pooled["oracle"], pooled["ewma_band"], rng),
        "garch_over_ewma": ratio_ci(pooled["garch_band"], pooled["ewma_band"], rng),
        "oracle_over_garch": ratio_ci(pooled["oracle"], pooled["garch_band"], rng),
    }


def table(rows: list[dict]) -> str:
    def cell(value: tuple) -> str:
        return f"{value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}]"

    header = f"{'h':<5}{'paths':>6}{'true model / EWMA':>26}{'fitted GARCH / EWMA':>26}{'true model / GARCH':>26}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['horizon']:<5}{r['paths']:>6}{cell(r['oracle_over_ewma']):>26}"
            f"{cell(r['garch_over_ewma']):>26}{cell(r['oracle_over_garch']):>26}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--horizons", nargs="+", default=list(HORIZONS))
    parser.add_argument("--series", type=int, default=24)
    parser.add_argument("--paths", type=int, default=40, help="non-overlapping paths per series")
    parser.add_argument("--simulations", type=int, default=4000, help="paths drawn from the true model per origin")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # arch's convergence chatter on a few fits
    started = time.perf_counter()
    rows = []
    for horizon in args.horizons:
        rows.append(ceiling(horizon, args.series, args.paths, args.simulations))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = table(rows)
    print(text)
    command = "python bench/band_ceiling.py " + " ".join(sys.argv[1:])
    replace_section(
        START,
        END,
        f"{START}\n## The band's ceiling: the true model against the EWMA band on GARCH series\n\n"
        f"`{command.strip()}` on {machine()}, {time.perf_counter() - started:.0f} s. {args.series} simulated "
        "GARCH(1,1)-t series with the parameters of daily FX fits (alpha + beta 0.95-0.99, alpha 0.03-0.08, "
        f"nu 5-8, daily volatility 0.3-1.2 %), {args.paths} non-overlapping paths each after {WARM_UP} returns. "
        "'true model': the conditional distribution from the known parameters and variance state "
        f"({args.simulations} simulated paths per origin), the lowest expected WQL any forecaster can have; "
        "'fitted GARCH': the garch_band baseline (arch, last 1000 returns). Every median is the last price, so "
        "the ratios are the band's alone. WQL ratios pooled over paths, 95 % bootstrap intervals over paths.\n\n"
        f"```\n{text}\n```\n{END}\n",
    )


if __name__ == "__main__":
    main()
