"""A randomly initialised Chronos-Bolt checkpoint of a chosen size, for memory and speed benchmarks.

With the defaults it has the shape of amazon/chronos-bolt-small (T5 stack d_model 512, d_ff 2048, 6+6
layers, 8 heads: about 48M parameters) without downloading it; its forecasts are meaningless but it
exercises the real ``ChronosBoltPipeline`` code path and its memory.
"""

from __future__ import annotations

from pathlib import Path

import torch

BOLT_QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def build_random_bolt_checkpoint(
    directory: Path | str,
    seed: int = 0,
    d_model: int = 512,
    d_ff: int = 2048,
    num_layers: int = 6,
    num_heads: int = 8,
    context_length: int = 2048,
    prediction_length: int = 64,
) -> Path:
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    directory = Path(directory)
    torch.manual_seed(seed)
    # decoder_start_token_id goes to PreTrainedConfig's keywords, which T5Config's typed fields do not list
    config = T5Config(  # type: ignore[call-arg]
        d_model=d_model,
        d_kv=d_model // num_heads,
        d_ff=d_ff,
        num_layers=num_layers,
        num_decoder_layers=num_layers,
        num_heads=num_heads,
        feed_forward_proj="relu",
        decoder_start_token_id=0,
        pad_token_id=0,
    )
    config.architectures = ["ChronosBoltModelForForecasting"]
    config.chronos_pipeline_class = "ChronosBoltPipeline"
    config.chronos_config = {
        "context_length": context_length,
        "prediction_length": prediction_length,
        "input_patch_size": 16,
        "input_patch_stride": 16,
        "quantiles": BOLT_QUANTILES,
        "use_reg_token": True,
    }
    model = ChronosBoltModelForForecasting(config)
    model.save_pretrained(directory)
    return directory


def parameter_count(directory: Path | str) -> int:
    from chronos.chronos_bolt import ChronosBoltModelForForecasting

    return sum(p.numel() for p in ChronosBoltModelForForecasting.from_pretrained(directory).parameters())
