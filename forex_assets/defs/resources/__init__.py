"""Dagster resources, one home: thin wrappers that turn run configuration into calls of the pure modules.

``code_location_resources`` is the one list of them, for the definitions, `make run`, the tests and the
benchmarks.
"""

from __future__ import annotations

from forex_assets.defs.resources.alerts import AlertNotifier
from forex_assets.defs.resources.policy import PolicyResource, policy_resource
from forex_assets.defs.resources.prices import PriceSource
from forex_assets.defs.resources.working_area import WorkingArea

__all__ = [
    "AlertNotifier",
    "PolicyResource",
    "PriceSource",
    "WorkingArea",
    "code_location_resources",
]


def code_location_resources(
    working_area: WorkingArea | None = None, price_source: PriceSource | None = None, **overrides
) -> dict:
    """Every resource of the code location, each at its defaults unless given: one list for the
    definitions, `make run`, the tests and the benchmarks."""
    return {
        "price_source": price_source or PriceSource(),
        "working_area": working_area or WorkingArea(),
        "policy": policy_resource(),  # the policy file: $FOREX_POLICY_FILE, else policies/default.json
        "alerts": AlertNotifier(),
    } | overrides
