"""A tiny randomly initialised Chronos-T5 (sampling family) checkpoint, for tests and benchmarks.

Its forecasts are meaningless but it exercises the real ``ChronosPipeline`` code path: tokenizer,
T5 encoder-decoder, sampling with num_samples / temperature / top_k / top_p.
"""

from __future__ import annotations

from pathlib import Path

import torch


def build_random_t5_checkpoint(
    directory: Path | str,
    seed: int = 0,
    d_model: int = 64,
    num_layers: int = 2,
    n_tokens: int = 1024,
    context_length: int = 512,
    prediction_length: int = 64,
) -> Path:
    from transformers import T5Config, T5ForConditionalGeneration

    directory = Path(directory)
    torch.manual_seed(seed)
    # decoder_start_token_id goes to PreTrainedConfig's keywords, which T5Config's typed fields do not list
    config = T5Config(  # type: ignore[call-arg]
        vocab_size=n_tokens,
        d_model=d_model,
        d_kv=d_model // 2,
        d_ff=2 * d_model,
        num_layers=num_layers,
        num_decoder_layers=num_layers,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    config.chronos_pipeline_class = "ChronosPipeline"
    config.chronos_config = {
        "tokenizer_class": "MeanScaleUniformBins",
        "tokenizer_kwargs": {"low_limit": -15.0, "high_limit": 15.0},
        "context_length": context_length,
        "prediction_length": prediction_length,
        "n_tokens": n_tokens,
        "n_special_tokens": 2,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "use_eos_token": True,
        "model_type": "seq2seq",
        "num_samples": 20,
        "temperature": 1.0,
        "top_k": 50,
        "top_p": 1.0,
    }
    model = T5ForConditionalGeneration(config)
    model.save_pretrained(directory)
    return directory
