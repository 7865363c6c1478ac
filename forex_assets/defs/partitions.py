"""The code location's partitions: the price asset by currency pair, every per-horizon asset by pair x horizon.

The pairs are the pairs file's (``configs/pairs.json``, or ``$FOREX_PAIRS_FILE``), read when the code location
loads: a pair is added by a line in the file and a reload of the code location (the UI's "Reload", or a restart
of `make dev`), no code change. A pair removed from the file keeps its state (config store, history) but gets
no partition: nothing runs for it.
"""

from __future__ import annotations

from functools import cache

import dagster as dg

from forex_assets.core.calendar import BusinessCalendar
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.pairs import load_pair, load_pairs
from forex_assets.core.working_area import PRIMARY_PAIR, pair_label

PAIR, HORIZON = "pair", "horizon"  # the dimensions' names (Dagster orders a key's parts by them: "7d|USDCLP")

pair_partitions = dg.StaticPartitionsDefinition(list(load_pairs().codes))
horizon_partitions = dg.StaticPartitionsDefinition(list(HORIZONS))
pair_horizon_partitions = dg.MultiPartitionsDefinition({PAIR: pair_partitions, HORIZON: horizon_partitions})


def series_key(horizon: str, pair: str = PRIMARY_PAIR) -> dg.MultiPartitionKey:
    """The partition of one pair's horizon (``series_key("7d", "EURCLP")``, shown as ``7d|EURCLP``)."""
    return dg.MultiPartitionKey({PAIR: pair, HORIZON: horizon})


def pair_and_horizon(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(pair, horizon) of a partition key of :data:`pair_horizon_partitions` (its string form too)."""
    if not isinstance(key, dg.MultiPartitionKey):
        key = pair_horizon_partitions.get_partition_key_from_str(key)
    dimensions = key.keys_by_dimension
    return dimensions[PAIR], dimensions[HORIZON]


def context_series(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> tuple[str, str]:
    """(pair, horizon) of the partition a step materializes."""
    return pair_and_horizon(context.partition_key)


def series_label(pair: str, horizon: str) -> str:
    """How logs and messages name one series: ``7d`` for USD/CLP (as they always did), ``EUR/CLP 7d`` else."""
    return horizon if pair == PRIMARY_PAIR else f"{pair_label(pair)} {horizon}"


def series_tag(pair: str, horizon: str) -> str:
    """The value of run tags that name one series (``forex/optimizer``): the horizon for USD/CLP, as in a
    single-pair instance, ``EURCLP:7d`` for another pair."""
    return horizon if pair == PRIMARY_PAIR else f"{pair}:{horizon}"


@cache
def pair_calendar(pair: str) -> BusinessCalendar:
    """The business calendar of a pair of the pairs file (its forecasts' target dates)."""
    return load_pair(pair).business_calendar


def partition_label(partition: str | None) -> str | None:
    """How messages name a run's partition (its ``dagster/partition`` tag): a pair's horizon as
    :func:`series_label` does (``7d``, ``EUR/CLP 7d``), a pair alone by its code (``EURCLP``), USD/CLP's prices
    not at all (None): what a single-pair instance said."""
    if partition and "|" in partition:
        return series_label(*pair_and_horizon(partition))
    return None if partition == PRIMARY_PAIR else partition
