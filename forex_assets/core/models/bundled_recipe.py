"""Architecture of the bundled checkpoint (used by ``scripts/train_bundled_model.py``).

Kept in the package so that the tests can build the same architecture, untrained, in a temporary
directory, and so that the model card and the script cannot disagree on the numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from chronos import Chronos2Pipeline  # untyped (Any)

#: Where the trained checkpoint lives inside the package (shipped with the wheel).
BUNDLED_MODEL_DIR = Path(__file__).parent / "usdclp-chronos2-mini"

#: Longest context the model attends to, in business days (the 90d search space reaches 730).
TRAINING_CONTEXT_LENGTH = 768
#: Steps trained in one pass: 6 patches of 16, enough for the 90-business-day horizon.
TRAINING_PREDICTION_LENGTH = 96
PATCH_SIZE = 16

#: Trained quantile levels; 0.025 and 0.975 give the real 95 % interval.
QUANTILE_LEVELS = [0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975]


def new_chronos2_pipeline(seed: int = 0, d_model: int = 128, num_layers: int = 3) -> Chronos2Pipeline:
    """A randomly initialised Chronos-2 pipeline of the bundled architecture."""
    from chronos import Chronos2Pipeline
    from chronos.chronos2 import Chronos2CoreConfig, Chronos2Model

    torch.manual_seed(seed)
    config = Chronos2CoreConfig(
        d_model=d_model,
        d_kv=32,
        d_ff=2 * d_model,
        num_layers=num_layers,
        num_heads=4,
        dropout_rate=0.1,
        chronos_config={
            "context_length": TRAINING_CONTEXT_LENGTH,
            "input_patch_size": PATCH_SIZE,
            "input_patch_stride": PATCH_SIZE,
            "output_patch_size": PATCH_SIZE,
            "quantiles": QUANTILE_LEVELS,
            "use_reg_token": True,
            "use_arcsinh": True,
            "max_output_patches": TRAINING_PREDICTION_LENGTH // PATCH_SIZE,
        },
    )
    config.chronos_pipeline_class = "Chronos2Pipeline"
    config.architectures = ["Chronos2Model"]
    return Chronos2Pipeline(model=Chronos2Model(config))
