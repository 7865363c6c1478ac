"""Score the bundled checkpoint on held-out series against the random walk and two volatility bands.

Held-out sets (never seen in training; the training corpus uses seed 17):

* ``usdclp_like``: 20 USD/CLP-like series (``forex_assets.core.prices.synthetic.usdclp_like_series``, seeds
  1000-1019, no end-of-series regime change), a generator the model was not trained on;
* ``training_generators``: 200 series of the training generators with an unseen seed;
* ``garch_t``: 100 GARCH(1,1)-t series (``synthetic.garch_t``, volatility clustering) with an unseen seed;
* ``real_usdclp_2003_2018`` (only with ``--real-csv PATH``): a real USD/CLP series, for evaluation only: the
  file is read from where it lies, never copied into the repository, never used for training.

For each set and horizon (7 and 30 business days) it forecasts from rolling origins (every ``--every``
business days; ``--real-every`` on the real series) with the default context length of that horizon and
reports:

* the median-forecast RMSE divided by the random walk's (last observed price), pooled over origins and
  steps 1..h in percent of the origin price, and the median of the per-series ratios;
* the band: the weighted quantile loss over the levels 0.025, 0.1, 0.5, 0.9, 0.975 and the 95 % interval
  (Winkler) score in % of the origin price (prices are divided by the origin price first, so every series
  weighs alike), and the 95 % coverage, of the model, of the random walk + RiskMetrics EWMA band
  (``baselines.baseline_quantiles("ewma_band", ...)``, every origin) and of the random walk + GARCH(1,1)-t
  band (``"garch_band"``, about 0.15 s an origin: only every ``--garch-stride``-th origin with the year of
  history it needs, every 20 business days on the real series; the model is scored on the same origins for
  that ratio), with the ratios model / EWMA and model / GARCH.

Writes ``evaluation.json`` and the scores block of the model card beside the weights. Several
``--checkpoint`` options score several checkpoints against the same baselines (computed once).

Usage::

    .venv/bin/python scripts/evaluate_bundled_model.py [--checkpoint DIR ...] [--real-csv PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from forex_assets.core.band_scores import coverage, interval_score
from forex_assets.core.forecasting.baselines import GARCH_MIN_RETURNS, baseline_quantiles
from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.quantiles import forecast_quantiles
from forex_assets.core.metrics import weighted_quantile_loss
from forex_assets.core.models.bundled_recipe import BUNDLED_MODEL_DIR
from forex_assets.core.models.loading import load_pipeline
from forex_assets.core.prices.sources import read_price_csv
from forex_assets.core.prices.synthetic import garch_t, training_corpus, usdclp_like_series

EVALUATED = {7: 180, 30: 365}  # horizon (business days) -> context length of its default config
LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)  # scored levels; the 95 % interval is the first and the last
MEDIAN, LOWER, UPPER = LEVELS.index(0.5), 0, len(LEVELS) - 1
HELD_OUT_SEED = 424242
GARCH_HELD_OUT_SEED = 515151
GARCH_MIN_HISTORY = GARCH_MIN_RETURNS + 1  # prices the GARCH band needs before an origin


@dataclass(frozen=True)
class HeldOutSet:
    series: list[np.ndarray]
    every: int  # business days between the rolling origins of the model and the EWMA band
    garch_stride: int  # the GARCH band forecasts at every garch_stride-th of those origins (it is slow)
    description: str


def garch_held_out(n_series: int = 100, length: int = 1200) -> list[np.ndarray]:
    """GARCH(1,1)-t series of the training corpus's generator, from an unseen seed, levels and volatilities
    drawn as in the corpus (log-uniform 0.5..2000 and 0.2 %..2 % a day)."""
    rng = np.random.default_rng(GARCH_HELD_OUT_SEED)
    out = []
    for _ in range(n_series):
        level = float(np.exp(rng.uniform(np.log(0.5), np.log(2000.0))))
        vol = float(np.exp(rng.uniform(np.log(0.002), np.log(0.02))))
        out.append(garch_t(rng, length, level, vol))
    return out


def held_out_sets(every: int, garch_stride: int, real_csv: Path | None, real_every: int) -> dict[str, HeldOutSet]:
    usdclp_like = [usdclp_like_series(seed=seed, regime_change=None)["usdclp"].to_numpy() for seed in range(1000, 1020)]
    generators = [s.astype(np.float64) for s in training_corpus(seed=HELD_OUT_SEED, n_series=200, length=900)]
    sets = {
        "usdclp_like": HeldOutSet(usdclp_like, every, garch_stride, "20 usdclp_like_series, seeds 1000-1019"),
        "training_generators": HeldOutSet(
            generators, every, garch_stride, f"training_corpus(seed={HELD_OUT_SEED}, n_series=200, length=900)"
        ),
        "garch_t": HeldOutSet(
            garch_held_out(), every, garch_stride, f"100 garch_t series of 1200 days, seed {GARCH_HELD_OUT_SEED}"
        ),
    }
    if real_csv is not None:
        prices = read_price_csv(real_csv)["usdclp"].to_numpy(dtype=np.float64)
        # one series: origins closer together (overlapping paths) for more of them, GARCH every 20 business days
        sets["real_usdclp_2003_2018"] = HeldOutSet(
            [prices], real_every, max(1, 20 // real_every), f"{real_csv.name}, {len(prices)} days (evaluation only)"
        )
    return sets


def origins_for(length: int, context: int, steps: int, every: int) -> range:
    return range(context, length - steps + 1, every)


@dataclass
class Forecasts:
    """Every origin of one set and horizon, prices divided by the origin's price (so each series weighs
    alike and the scores are in % of the origin price once multiplied by 100)."""

    model: np.ndarray  # (n, steps, levels)
    ewma: np.ndarray  # (n, steps, levels)
    actual: np.ndarray  # (n, steps)
    series_index: np.ndarray  # (n,) which series each origin belongs to
    garch_rows: np.ndarray  # rows of the GARCH subsample
    garch: np.ndarray  # (len(garch_rows), steps, levels)


def baseline_forecasts(held_out: HeldOutSet, steps: int, context: int) -> dict[str, np.ndarray]:
    """The EWMA band at every origin and the GARCH band at the subsample (relative to the origin price)."""
    ewma, actual, series_index, garch_rows, garch = [], [], [], [], []
    row = 0
    for i, series in enumerate(held_out.series):
        origins = list(origins_for(len(series), context, steps, held_out.every))
        if not origins:
            continue
        last = series[np.array(origins) - 1]
        # baseline_quantiles' origin is the index of the last price seen: the history series[:o] ends at o - 1
        ewma.append(
            baseline_quantiles("ewma_band", series, [o - 1 for o in origins], steps, LEVELS) / last[:, None, None]
        )
        picked = [k for k, o in enumerate(origins) if o >= GARCH_MIN_HISTORY][:: held_out.garch_stride]
        if picked:
            chosen = [origins[k] - 1 for k in picked]
            garch.append(baseline_quantiles("garch_band", series, chosen, steps, LEVELS) / last[picked, None, None])
            garch_rows.extend(row + k for k in picked)
        actual.append(np.stack([series[o : o + steps] for o in origins]) / last[:, None])
        series_index.append(np.full(len(origins), i))
        row += len(origins)
    return {
        "ewma": np.concatenate(ewma),
        "actual": np.concatenate(actual),
        "series_index": np.concatenate(series_index),
        "garch_rows": np.asarray(garch_rows, dtype=int),
        "garch": np.concatenate(garch) if garch else np.empty((0, steps, len(LEVELS))),
    }


def cached_baseline_forecasts(
    cache: Path | None, held_out: HeldOutSet, steps: int, context: int
) -> dict[str, np.ndarray]:
    """:func:`baseline_forecasts`, kept in ``cache`` (an .npz named by a digest of the series and the settings)."""
    if cache is None:
        return baseline_forecasts(held_out, steps, context)
    digest = hashlib.sha256(repr((steps, context, held_out.every, held_out.garch_stride, LEVELS)).encode())
    for series in held_out.series:
        digest.update(np.ascontiguousarray(series, dtype=np.float64).tobytes())
    path = cache / f"baselines-{digest.hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return {key: stored[key] for key in stored.files} | {"cached": np.array(True)}
    computed = baseline_forecasts(held_out, steps, context)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **computed)
    return computed


def model_forecasts(pipeline, checkpoint: str, held_out: HeldOutSet, steps: int, context: int) -> np.ndarray:
    config = ChronosConfig(
        horizon=f"{steps}d" if steps in (7, 15, 30, 90) else "7d",
        checkpoint=checkpoint,
        family="chronos2",
        context_length=context,
    )
    out = []
    for series in held_out.series:
        origins = list(origins_for(len(series), context, steps, held_out.every))
        if not origins:
            continue
        histories = [series[:o] for o in origins]
        last = np.array([h[-1] for h in histories])
        out.append(forecast_quantiles(pipeline, config, histories, steps, quantile_levels=LEVELS) / last[:, None, None])
    return np.concatenate(out)


def band_scores(quantiles: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """WQL over the five levels, the 95 % interval score in % of the origin price, and the 95 % coverage."""
    return {
        "wql": weighted_quantile_loss(quantiles, actual, LEVELS),
        "interval_score_pct": interval_score(quantiles[..., LOWER] * 100, quantiles[..., UPPER] * 100, actual * 100),
        "coverage_95": coverage(quantiles[..., LOWER], quantiles[..., UPPER], actual),
    }


def score(model: np.ndarray, baselines: dict[str, np.ndarray], steps: int, context: int) -> dict:
    actual = baselines["actual"]
    model_err = (model[..., MEDIAN] - actual) * 100  # % of the origin price
    rw_err = (1.0 - actual) * 100
    ratios = []
    for i in np.unique(baselines["series_index"]):
        rows = baselines["series_index"] == i
        ratios.append(np.sqrt(np.mean(model_err[rows] ** 2)) / np.sqrt(np.mean(rw_err[rows] ** 2)))
    mine, ewma = band_scores(model, actual), band_scores(baselines["ewma"], actual)
    rows = baselines["garch_rows"]
    result = {
        "horizon_steps": steps,
        "context_length": context,
        "forecasts": len(actual),
        "rmse_pct_model": round(float(np.sqrt(np.mean(model_err**2))), 4),
        "rmse_pct_random_walk": round(float(np.sqrt(np.mean(rw_err**2))), 4),
        "rmse_ratio_pooled": round(float(np.sqrt(np.sum(model_err**2) / np.sum(rw_err**2))), 4),
        "rmse_ratio_median_of_series": round(float(np.median(ratios)), 4),
        "coverage_95": round(mine["coverage_95"], 4),
        "wql_model": round(mine["wql"], 6),
        "wql_ewma": round(ewma["wql"], 6),
        "wql_ratio_ewma": round(mine["wql"] / ewma["wql"], 4),
        "interval_score_pct_model": round(mine["interval_score_pct"], 4),
        "interval_score_pct_ewma": round(ewma["interval_score_pct"], 4),
        "interval_score_ratio_ewma": round(mine["interval_score_pct"] / ewma["interval_score_pct"], 4),
        "coverage_95_ewma": round(ewma["coverage_95"], 4),
        "garch_forecasts": len(rows),
    }
    if len(rows):
        mine_sub, garch = band_scores(model[rows], actual[rows]), band_scores(baselines["garch"], actual[rows])
        result |= {
            "wql_model_garch_subsample": round(mine_sub["wql"], 6),
            "wql_garch": round(garch["wql"], 6),
            "wql_ratio_garch": round(mine_sub["wql"] / garch["wql"], 4),
            "interval_score_pct_model_garch_subsample": round(mine_sub["interval_score_pct"], 4),
            "interval_score_pct_garch": round(garch["interval_score_pct"], 4),
            "interval_score_ratio_garch": round(mine_sub["interval_score_pct"] / garch["interval_score_pct"], 4),
            "coverage_95_model_garch_subsample": round(mine_sub["coverage_95"], 4),
            "coverage_95_garch": round(garch["coverage_95"], 4),
        }
    return result


def scores_markdown(results: dict) -> str:
    lines = [
        "| held-out set | h (business days) | context | forecasts | RMSE / random walk (pooled) "
        "| median per-series ratio | 95 % coverage |",
        "|---|---|---|---|---|---|---|",
    ]
    for set_name, rows in results["sets"].items():
        for r in rows:
            lines.append(
                f"| {set_name} | {r['horizon_steps']} | {r['context_length']} | {r['forecasts']} | "
                f"{r['rmse_ratio_pooled']:.3f} | {r['rmse_ratio_median_of_series']:.3f} | {r['coverage_95']:.3f} |"
            )
    lines += [
        "",
        "The band against the random walk + RiskMetrics EWMA band (all origins) and the random walk + "
        "GARCH(1,1)-t band (a subsample of the origins, as `garch forecasts` says, the model scored on the same "
        "ones). WQL: weighted quantile loss over the levels 0.025, 0.1, 0.5, 0.9, 0.975 of prices divided by "
        "the origin price; IS: mean 95 % interval (Winkler) score in % of the origin price; cov: 95 % coverage. "
        "Lower WQL and IS are better; a ratio below 1 means the model's band beats the baseline's.",
        "",
        "| held-out set | h | WQL model | WQL EWMA | model / EWMA | IS model | IS EWMA | model / EWMA "
        "| cov model | cov EWMA | garch forecasts | WQL model / GARCH | IS model / GARCH | cov GARCH |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for set_name, rows in results["sets"].items():
        for r in rows:
            garch = (
                f"{r['garch_forecasts']} | {r['wql_ratio_garch']:.3f} | {r['interval_score_ratio_garch']:.3f} | "
                f"{r['coverage_95_garch']:.3f}"
                if r["garch_forecasts"]
                else "0 | | |"
            )
            lines.append(
                f"| {set_name} | {r['horizon_steps']} | {r['wql_model']:.5f} | {r['wql_ewma']:.5f} | "
                f"{r['wql_ratio_ewma']:.3f} | {r['interval_score_pct_model']:.3f} | "
                f"{r['interval_score_pct_ewma']:.3f} | {r['interval_score_ratio_ewma']:.3f} | "
                f"{r['coverage_95']:.3f} | {r['coverage_95_ewma']:.3f} | {garch} |"
            )
    lines.append("")
    took = f"in {results['wall_seconds']:.0f} s"
    if results.get("baselines_from_cache"):
        took += " (the baselines' forecasts read from `--baseline-cache`, computed by an earlier run)"
    else:
        took += f" ({results.get('baseline_seconds', 0):.0f} s of it the baselines' forecasts)"
    lines.append(f"Measured by `{results['command']}` {took}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        help="checkpoint directory; repeat to score several against the same baselines (default: the bundled one)",
    )
    parser.add_argument("--every", type=int, default=20, help="business days between rolling origins")
    parser.add_argument(
        "--garch-stride", type=int, default=20, help="the GARCH band at every n-th origin of a synthetic set"
    )
    parser.add_argument("--real-csv", type=Path, help="real USD/CLP CSV (date, usdclp), for evaluation only")
    parser.add_argument("--real-every", type=int, default=5, help="business days between origins on --real-csv")
    parser.add_argument(
        "--baseline-cache",
        type=Path,
        help="directory keeping the baselines' forecasts between runs (they depend on the series, not the model)",
    )
    parser.add_argument("--no-card", action="store_true", help="do not write evaluation.json nor the model card")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 on a busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoints: list[Path] = args.checkpoint or [BUNDLED_MODEL_DIR]

    started = time.perf_counter()
    sets = held_out_sets(args.every, args.garch_stride, args.real_csv, args.real_every)
    baselines = {}
    for name, held_out in sets.items():
        for steps, context in EVALUATED.items():
            began = time.perf_counter()
            baselines[name, steps] = cached_baseline_forecasts(args.baseline_cache, held_out, steps, context)
            print(
                f"baselines {name} h={steps}: {len(baselines[name, steps]['actual'])} origins, "
                f"{len(baselines[name, steps]['garch_rows'])} with GARCH, {time.perf_counter() - began:.0f} s",
                flush=True,
            )
    baseline_seconds = time.perf_counter() - started
    cached = any("cached" in forecasts for forecasts in baselines.values())
    command = "python scripts/evaluate_bundled_model.py"
    if args.every != 20:
        command += f" --every {args.every}"
    if args.garch_stride != 20:
        command += f" --garch-stride {args.garch_stride}"
    if args.real_csv is not None:
        command += f" --real-csv {args.real_csv}"
        if args.real_every != 5:
            command += f" --real-every {args.real_every}"
    for checkpoint_dir in checkpoints:
        began = time.perf_counter()
        checkpoint = str(checkpoint_dir.resolve())
        pipeline = load_pipeline(checkpoint)
        results: dict = {"sets": {}}
        for name, held_out in sets.items():
            results["sets"][name] = [
                score(
                    model_forecasts(pipeline, checkpoint, held_out, steps, context),
                    baselines[name, steps],
                    steps,
                    context,
                )
                for steps, context in EVALUATED.items()
            ]
        results["held_out_sets"] = {name: held_out.description for name, held_out in sets.items()}
        results["wall_seconds"] = round(time.perf_counter() - began + baseline_seconds, 1)
        results["baseline_seconds"] = round(baseline_seconds, 1)
        results["baselines_from_cache"] = cached
        results["command"] = command + (
            f" --checkpoint {checkpoint_dir}" if checkpoint_dir.resolve() != BUNDLED_MODEL_DIR.resolve() else ""
        )
        table = scores_markdown(results)
        print(f"\n## {checkpoint_dir}\n\n{table}\n", flush=True)
        if args.no_card:
            continue
        (checkpoint_dir / "evaluation.json").write_text(json.dumps(results, indent=2) + "\n")
        card = checkpoint_dir / "README.md"
        if card.is_file():
            text = card.read_text()
            block = f"<!-- scores:start -->\n{table}\n<!-- scores:end -->"
            text = re.sub(
                r"<!-- scores:start -->.*<!-- scores:end -->",
                lambda _, replacement=block: replacement,
                text,
                flags=re.S,
            )
            card.write_text(text)


if __name__ == "__main__":
    main()
