"""How many series one model call may take: the activation budget under the process memory limit
(cgroup or $FOREX_MEMORY_LIMIT_MB) and the batch size it allows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from forex_assets.core.forecasting.config import SAMPLING_FAMILY, ChronosConfig

if TYPE_CHECKING:
    from chronos import BaseChronosPipeline  # untyped (Any)

#: Memory the model's activations may take in one batched call (MB); $FOREX_BACKTEST_MEMORY_MB overrides.
DEFAULT_MEMORY_BUDGET_MB = float(os.environ.get("FOREX_BACKTEST_MEMORY_MB") or 256)


#: Bytes of activations per (token x hidden unit x layer) in a forward pass: a deliberately generous
#: estimate (attention scores, feed-forward intermediates, the autograd-free copies torch keeps).
_ACTIVATION_BYTES_PER_UNIT = 48


#: Smallest activation budget whatever the headroom: one series per call is the floor anyway.
MIN_MEMORY_BUDGET_MB = 16.0


#: Share of the process memory limit the engine plans to use; the rest is left to the allocator.
LIMIT_FILL = 0.9


def memory_limit_mb() -> float | None:
    """The process's memory limit: $FOREX_MEMORY_LIMIT_MB, else the container's cgroup limit, else None."""
    if os.environ.get("FOREX_MEMORY_LIMIT_MB"):
        return float(os.environ["FOREX_MEMORY_LIMIT_MB"])
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # cgroup v1 writes a huge number for "no limit"
            return int(text) / 2**20
    return None


def resident_mb() -> float:
    """This process's resident memory now (MB)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def activation_budget_mb(requested_mb: float, limit_mb: float | None, resident: float) -> float:
    """The activation budget of one call: the requested one, cut to half the headroom left under the
    memory limit (a 1 GB run container holding a 48M-parameter model has little to spare)."""
    if limit_mb is None:
        return requested_mb
    headroom = limit_mb * LIMIT_FILL - resident
    return max(MIN_MEMORY_BUDGET_MB, min(requested_mb, headroom / 2))


def batch_size_for(
    pipeline: BaseChronosPipeline, config: ChronosConfig, memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB
) -> int:
    """Series per model call so that the activations of one call stay within the memory budget.

    Quantile families: tokens (patches of 16) x hidden size x layers x a generous 48 bytes. Sampling
    family: generation keeps, for every sampled path, the decoder's cache over the context and the
    forecast steps, about 16 bytes per token x hidden unit x decoder layer (measured: 137 MB for 200
    paths over 365 days with the tiny T5, against 161 MB estimated).
    """
    model_config = pipeline.model.config if hasattr(pipeline.model, "config") else pipeline.model.model.config
    hidden = getattr(model_config, "d_model", 512)
    if config.family == SAMPLING_FAMILY:
        decoder_layers: int | None = getattr(model_config, "num_decoder_layers", None)
        decoder_layers = decoder_layers or int(getattr(model_config, "num_layers", 6))
        per_series: float = (config.num_samples or 1) * (config.longest_context + 64) * hidden * decoder_layers * 16
    else:
        layers = getattr(model_config, "num_layers", 6)
        tokens = config.longest_context / 16 + 64
        per_series = tokens * hidden * layers * _ACTIVATION_BYTES_PER_UNIT
    budget = activation_budget_mb(memory_budget_mb, memory_limit_mb(), resident_mb())
    return int(max(1, min(256, budget * 1e6 // per_series)))
