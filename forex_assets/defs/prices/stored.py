"""The prices the instance has: the latest stored value of pair_prices, read back through its I/O manager.

For code that runs outside an asset's step and must judge what the forecasts used (the rollback sensor,
`make run`'s watch of a deploy): reading the stored value costs a file read, where the price source would be
fetched and validated again (an HTTP round trip for mindicador.cl) on every sensor tick.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pandas as pd

from forex_assets.core.working_area import PRIMARY_PAIR
from forex_assets.defs.prices.assets import pair_prices

PAIR_PRICES = dg.AssetKey("pair_prices")


def stored_prices(
    instance: dg.DagsterInstance, repository_def: dg.RepositoryDefinition | None = None, pair: str = PRIMARY_PAIR
) -> pd.DataFrame | None:
    """The value of the latest materialization of pair_prices[pair] in ``instance``; None when it was never
    materialized there. Loaded by the asset's I/O manager: the code location's when ``repository_def`` is
    given (a sensor's ``context.repository_def``), else the default one (files in the instance's storage
    directory, what the code location uses). A stored value that cannot be read raises the I/O manager's
    error (a file removed by hand: FileNotFoundError)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=PAIR_PRICES, asset_partitions=[pair]), limit=1
    ).records
    if not records:
        return None
    if repository_def is not None:
        loader = repository_def.get_asset_value_loader(instance)
    else:
        loader = dg.AssetValueLoader({PAIR_PRICES: pair_prices}, instance=instance)
    with loader, _without_debug_lines():
        return loader.load_asset_value(PAIR_PRICES, partition_key=pair)


@contextmanager
def _without_debug_lines() -> Iterator[None]:
    """The I/O manager's "Loading file from ..." goes to a console logger of its own at DEBUG (the loader has
    no run config to quiet it): outside a step it would be printed on the terminal of `forex-assets rollback`
    and `make run`'s rollback watch. Debug records are dropped for the read (a file read, milliseconds)."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.DEBUG))
    try:
        yield
    finally:
        logging.disable(previous)
