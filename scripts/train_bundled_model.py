"""Train the bundled Chronos-2 checkpoint from random initialisation on synthetic series only.

Why Chronos-2 through ``Chronos2Pipeline.fit``: it is the library's own, maintained training path
(HF Trainer, the model's quantile loss, its own windowing and patching), so the bundled checkpoint is
an ordinary Chronos-2 checkpoint that loads through ``BaseChronosPipeline.from_pretrained`` like the
published ones; and Chronos-2 is a direct multi-quantile model, so 0.025 / 0.975 are trained outputs,
not extrapolations. A hand-written loop over ``ChronosBoltModelForForecasting`` would train faster
per step but duplicates what ``fit`` already does.

Usage::

    # from random initialisation (the first stage of the bundled checkpoint, on the corpus of the time)
    .venv/bin/python scripts/train_bundled_model.py [--steps 4000] [--out DIR]
    # the second stage (issue 23): fine-tune that checkpoint on the current corpus (the model card's recipe)
    .venv/bin/python scripts/train_bundled_model.py --init forex_assets/core/models/usdclp-chronos2-mini \
        --steps 1500 --learning-rate 5e-4 --threads 1

``--init`` starts from a checkpoint's weights (same architecture) and records its sha256 and its own
``training.json`` under ``initialised_from``. On a shared 2-core machine use ``--threads 1``: two torch
threads competing with other processes ran 5-10x slower per step than one. Train into a separate
``--out`` first and replace the bundled directory only when ``scripts/evaluate_bundled_model.py`` says
the new one is better.

Nothing here reads real prices: the corpus comes from ``forex_assets.core.prices.synthetic.training_corpus``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from forex_assets.core.models.bundled_recipe import (
    BUNDLED_MODEL_DIR,
    TRAINING_CONTEXT_LENGTH,
    TRAINING_PREDICTION_LENGTH,
    new_chronos2_pipeline,
)
from forex_assets.core.prices.synthetic import GENERATORS, training_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--n-series", type=int, default=4000)
    parser.add_argument("--series-length", type=int, default=1100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=BUNDLED_MODEL_DIR)
    parser.add_argument(
        "--init",
        type=Path,
        help="start from this Chronos-2 checkpoint's weights (same architecture) instead of a random initialisation",
    )
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)

    initialised_from = None
    if args.init is None:
        pipeline = new_chronos2_pipeline(seed=args.seed)
    else:
        from chronos import Chronos2Pipeline

        weights = args.init / "model.safetensors"
        initialised_from = {
            "checkpoint": str(args.init),
            "model_safetensors_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "its_training": json.loads((args.init / "training.json").read_text())
            if (args.init / "training.json").is_file()
            else None,
        }
        pipeline = Chronos2Pipeline.from_pretrained(str(args.init), device_map="cpu", dtype=torch.float32)
    n_params = sum(p.numel() for p in pipeline.model.parameters())
    corpus = training_corpus(seed=args.seed, n_series=args.n_series, length=args.series_length)
    print(f"training a {n_params:,}-parameter Chronos-2 on {len(corpus)} synthetic series, {args.steps} steps")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work_dir:
        trained = pipeline.fit(
            inputs=corpus,
            prediction_length=TRAINING_PREDICTION_LENGTH,
            context_length=TRAINING_CONTEXT_LENGTH,
            learning_rate=args.learning_rate,
            num_steps=args.steps,
            batch_size=args.batch_size,
            output_dir=work_dir,
            min_past=64,
            seed=args.seed,
            data_seed=args.seed,
            logging_steps=max(1, args.steps // 20),
            warmup_steps=min(200, args.steps // 10),
            weight_decay=0.01,
        )
        wall_seconds = time.perf_counter() - started
        staging = args.out.with_name(args.out.name + ".tmp")
        if staging.exists():
            shutil.rmtree(staging)
        trained.save_pretrained(staging)
        for name in ("README.md", "evaluation.json"):  # keep the card and scores if they exist
            if (args.out / name).exists():
                shutil.copy2(args.out / name, staging / name)
    training_record = {
        "architecture": "Chronos-2 (Chronos2Model)",
        "parameters": n_params,
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "training_context_length": TRAINING_CONTEXT_LENGTH,
        "training_prediction_length": TRAINING_PREDICTION_LENGTH,
        "corpus": {
            "n_series": args.n_series,
            "series_length": args.series_length,
            "seed": args.seed,
            "generators": list(GENERATORS),
        },
        "initialised_from": initialised_from or "random (seed)",
        "wall_seconds": round(wall_seconds, 1),
        "threads": args.threads,
        "machine": f"{platform.machine()} {platform.processor() or ''} ({torch.get_num_threads()} threads)".strip(),
        "torch": torch.__version__,
    }
    (staging / "training.json").write_text(json.dumps(training_record, indent=2) + "\n")
    if args.out.exists():
        shutil.rmtree(args.out)
    staging.rename(args.out)
    print(json.dumps(training_record, indent=2))


if __name__ == "__main__":
    main()
