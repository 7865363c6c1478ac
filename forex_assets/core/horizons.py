"""The four forecast horizons. A horizon is that many business-day steps ahead of the origin."""

from __future__ import annotations

HORIZON_STEPS: dict[str, int] = {"7d": 7, "15d": 15, "30d": 30, "90d": 90}
HORIZONS: tuple[str, ...] = tuple(HORIZON_STEPS)


def horizon_steps(horizon: str) -> int:
    """Business-day steps of ``horizon`` ('7d' -> 7); a clear error for anything else."""
    try:
        return HORIZON_STEPS[horizon]
    except KeyError:
        raise ValueError(f"unknown horizon {horizon!r}; horizons are {', '.join(HORIZONS)}") from None
