"""Rolling-origin windows over a price series: origins whose targets are all observed, and the
disjoint search and validation windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from forex_assets.core.forecasting.quantiles import (
    InsufficientHistoryError,
)

#: origins of a backtest: indices into a :class:`PriceSeries` (:func:`latest_origins` gives an array of them)
Origins: TypeAlias = Sequence[int] | npt.NDArray[np.integer]


@dataclass(frozen=True)
class Windows:
    """Origin indices of the search window and of the (later, disjoint) validation window."""

    search: npt.NDArray[np.int64]
    validation: npt.NDArray[np.int64]
    steps: int
    spacing: int = 1  # business days between consecutive origins

    @property
    def overlap(self) -> int:
        """Consecutive origins whose paths share targets: the Diebold-Mariano horizon in origin units."""
        return overlapping_origins(self.steps, self.spacing)


def overlapping_origins(steps: int, spacing: int) -> int:
    """How many consecutive origins ``spacing`` business days apart share a target of their ``steps``-step
    paths (1 = none): the loss differential's autocorrelation reaches ``overlapping_origins - 1`` lags."""
    return max(1, -(-steps // max(1, spacing)))


def independent_paths(origins: int, steps: int, spacing: int = 1) -> float:
    """Non-overlapping ``steps``-step paths that ``origins`` origins ``spacing`` days apart span."""
    return ((origins - 1) * spacing + steps) / steps


def latest_origins(
    n_observations: int, steps: int, count: int, last_origin: int | None = None, spacing: int = 1
) -> npt.NDArray[np.int64]:
    """The ``count`` origins ``spacing`` business days apart ending at ``last_origin`` (default: the latest
    with all targets)."""
    last = n_observations - 1 - steps if last_origin is None else last_origin
    first = last - (count - 1) * spacing
    if count < 1 or spacing < 1 or first < 1:
        apart = f" {spacing} business days apart" if spacing > 1 else ""
        raise InsufficientHistoryError(
            f"{count} origins{apart} with {steps}-step targets need at least "
            f"{(count - 1) * spacing + steps + 2} observations before the window's end; only {last + steps + 1} "
            "are available"
        )
    return np.arange(first, last + 1, spacing)


def split_windows(
    n_observations: int, steps: int, search_origins: int = 30, validation_origins: int = 30, spacing: int = 1
) -> Windows:
    """Validation = the most recent origins with observed targets; search = the origins before them; both
    with origins ``spacing`` business days apart.

    The search window ends ``steps`` business days before the first validation origin, so every
    target the search scores is observed no later than the first validation origin: the candidate is
    never chosen on any price the validation forecasts.
    """
    validation = latest_origins(n_observations, steps, validation_origins, spacing=spacing)
    search = latest_origins(
        n_observations, steps, search_origins, last_origin=int(validation[0]) - steps, spacing=spacing
    )
    return Windows(search=search, validation=validation, steps=steps, spacing=spacing)


@dataclass(frozen=True)
class PriceSeries:
    """Business-day prices as arrays (oldest first) for the engine."""

    dates: np.ndarray  # datetime64[ns]
    values: np.ndarray  # float64 CLP

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> PriceSeries:
        return cls(frame["date"].to_numpy(dtype="datetime64[ns]"), frame["usdclp"].to_numpy(dtype=np.float64))

    def date_text(self, index: int) -> str:
        return str(self.dates[index])[:10]
