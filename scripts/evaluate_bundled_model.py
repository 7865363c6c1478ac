"""Score the bundled checkpoint on held-out synthetic series against the random walk.

Held-out sets (never seen in training; the training corpus uses seed 17):

* ``usdclp_like``: 20 USD/CLP-like series (``forex_assets.core.prices.synthetic.usdclp_like_series``, seeds
  1000-1019, no end-of-series regime change), a generator the model was not trained on;
* ``training_generators``: 200 series of the four training generators with an unseen seed.

For each set and horizon (7 and 30 business days) it forecasts from rolling origins with the default
context length of that horizon and reports the median-forecast RMSE divided by the random walk's
(last observed price), pooled over origins and steps 1..h in percent of the origin price, the median of
the per-series ratios, and the 95 % interval coverage. Writes ``evaluation.json`` and the scores block
of the model card beside the weights.

Usage::

    .venv/bin/python scripts/evaluate_bundled_model.py [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.forecasting.quantiles import forecast_quantiles
from forex_assets.core.models.bundled_recipe import BUNDLED_MODEL_DIR
from forex_assets.core.models.loading import load_pipeline
from forex_assets.core.prices.synthetic import training_corpus, usdclp_like_series

EVALUATED = {7: 180, 30: 365}  # horizon (business days) -> context length of its default config
LEVELS = (0.025, 0.5, 0.975)
HELD_OUT_SEED = 424242


def held_out_sets() -> dict[str, list[np.ndarray]]:
    usdclp_like = [usdclp_like_series(seed=seed, regime_change=None)["usdclp"].to_numpy() for seed in range(1000, 1020)]
    generators = [s.astype(np.float64) for s in training_corpus(seed=HELD_OUT_SEED, n_series=200, length=900)]
    return {"usdclp_like": usdclp_like, "training_generators": generators}


def origins_for(length: int, context: int, steps: int, every: int) -> range:
    return range(context, length - steps + 1, every)


def score(pipeline, checkpoint: str, series_set: list[np.ndarray], steps: int, context: int, every: int) -> dict:
    config = ChronosConfig(
        horizon=f"{steps}d" if steps in (7, 15, 30, 90) else "7d",
        checkpoint=checkpoint,
        family="chronos2",
        context_length=context,
    )
    model_sq, rw_sq, covered, count, ratios = 0.0, 0.0, 0, 0, []
    for series in series_set:
        origins = list(origins_for(len(series), context, steps, every))
        if not origins:
            continue
        histories = [series[:o] for o in origins]
        quantiles = forecast_quantiles(pipeline, config, histories, steps, quantile_levels=LEVELS)
        last = np.array([h[-1] for h in histories])[:, None]
        actual = np.stack([series[o : o + steps] for o in origins])
        model_err = (quantiles[..., 1] - actual) / last * 100
        rw_err = (last - actual) / last * 100
        model_sq += float(np.sum(model_err**2))
        rw_sq += float(np.sum(rw_err**2))
        covered += int(np.sum((actual >= quantiles[..., 0]) & (actual <= quantiles[..., 2])))
        count += actual.size
        ratios.append(np.sqrt(np.mean(model_err**2)) / np.sqrt(np.mean(rw_err**2)))
    return {
        "horizon_steps": steps,
        "context_length": context,
        "forecasts": count // steps,
        "rmse_pct_model": round(np.sqrt(model_sq / count), 4),
        "rmse_pct_random_walk": round(np.sqrt(rw_sq / count), 4),
        "rmse_ratio_pooled": round(np.sqrt(model_sq / rw_sq), 4),
        "rmse_ratio_median_of_series": round(float(np.median(ratios)), 4),
        "coverage_95": round(covered / count, 4),
    }


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
    lines.append("")
    lines.append(f"Measured by `{results['command']}` in {results['wall_seconds']:.0f} s.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=BUNDLED_MODEL_DIR)
    parser.add_argument("--every", type=int, default=20, help="business days between rolling origins")
    args = parser.parse_args()
    torch.set_num_threads(2)

    started = time.perf_counter()
    checkpoint = str(args.checkpoint.resolve())
    pipeline = load_pipeline(checkpoint)
    sets = held_out_sets()
    results = {"sets": {}}
    for name, series_set in sets.items():
        results["sets"][name] = [
            score(pipeline, checkpoint, series_set, steps, context, args.every) for steps, context in EVALUATED.items()
        ]
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["command"] = "python scripts/evaluate_bundled_model.py" + (
        f" --checkpoint {args.checkpoint}" if args.checkpoint != BUNDLED_MODEL_DIR else ""
    )
    (args.checkpoint / "evaluation.json").write_text(json.dumps(results, indent=2) + "\n")
    table = scores_markdown(results)
    print(table)
    card = args.checkpoint / "README.md"
    if card.is_file():
        text = card.read_text()
        block = f"<!-- scores:start -->\n{table}\n<!-- scores:end -->"
        text = re.sub(r"<!-- scores:start -->.*<!-- scores:end -->", lambda _: block, text, flags=re.S)
        card.write_text(text)


if __name__ == "__main__":
    main()
