"""The latest report metadata of `forex-assets status` read through Dagster itself, for what
``cli/instance_reports.py`` does not read on its own: an instance whose event log is not the embedded SQLite one
(production's PostgreSQL, a custom storage class), or an event stored in a form it does not know.

``DagsterInstance.get()`` opens (and may create or stamp) every SQLite database of an embedded instance: on a
read-only copy it fails ("unable to open database file", SQLite cannot make the ``-shm`` file of the WAL-mode
``runs.db``). So on SQLite storage only the event log's index shard is opened, through Dagster's own event log
class with read-only connections and no initialization, migration or creation of shards; any other storage is
opened as Dagster opens it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import dagster as dg
import yaml
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from forex_assets.core.storage.read_only import sqlite_read_uri

K = TypeVar("K")

INDEX_SHARD = "index"


class ReadOnlySqliteEventLog(SqliteEventLogStorage):
    """Dagster's SQLite event log, each shard opened read-only and never created or migrated."""

    def conn_string_for_shard(self, shard_name: str) -> str:
        return f"sqlite:///{sqlite_read_uri(Path(self.path_for_shard(shard_name)))}&uri=true"

    def _initdb(self, engine, for_index_shard=False) -> None:
        """Creates and stamps a missing shard in Dagster's class: here a read does not write."""


def _sqlite_event_log_dir(ref: InstanceRef) -> Path | None:
    """The directory of the instance's SQLite event log; None when the instance stores it elsewhere."""
    data = ref.event_storage_data
    if (
        data is None
        or data.class_name != "SqliteEventLogStorage"
        or data.module_name != "dagster._core.storage.event_log"
    ):
        return None
    base_dir = yaml.safe_load(data.config_yaml)["base_dir"]
    if isinstance(base_dir, dict):  # dagster.yaml's {env: NAME}
        base_dir = os.environ[base_dir["env"]]
    return Path(base_dir)


@contextmanager
def _materializations(home: Path) -> Iterator[object | None]:
    """What answers ``fetch_materializations`` (DagsterInstance's signature) for the instance at ``home``;
    None when its SQLite event log has no index yet (nothing materialized)."""
    ref = InstanceRef.from_dir(str(home))
    directory = _sqlite_event_log_dir(ref)
    if directory is None:
        with dg.DagsterInstance.from_ref(ref) as instance:
            yield instance
        return
    if not (directory / f"{INDEX_SHARD}.db").is_file():
        yield None
        return
    event_log = ReadOnlySqliteEventLog(str(directory))
    try:
        yield event_log
    finally:
        event_log.dispose()


def latest_metadata(source, asset: str, partition: str) -> dict:
    """Metadata values of the latest materialization of ``asset[partition]``; {} when it never materialized."""
    records = source.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return {}
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def latest_reports_through_dagster(
    home: Path, partitions: Mapping[K, str], assets: tuple[str, str]
) -> dict[K, tuple[dict, dict]]:
    """key -> the metadata of the latest materialization of each of ``assets`` (drift, performance) in the
    key's partition (``partitions[(pair, horizon)]``: ``7d|USDCLP``)."""
    drift, performance = assets
    with _materializations(home) as source:
        if source is None:
            return {h: ({}, {}) for h in partitions}
        return {
            h: (latest_metadata(source, drift, p), latest_metadata(source, performance, p))
            for h, p in partitions.items()
        }
