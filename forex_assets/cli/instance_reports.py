"""The metadata of the latest drift and performance reports of each horizon, read from the Dagster instance of
`forex-assets status` without writing to it, and without loading Dagster where it can: ``import dagster``
alone takes about 1.2 s and 66 MiB, more than the whole of `status` otherwise (bench/bench_cli.py).

An embedded instance (``dagster.yaml`` without ``storage``, or with ``storage: sqlite``) mirrors every asset
materialization into its event log's index shard (``history/runs/index.db``). Here that one file is read with
Python's ``sqlite3``, read-only (:func:`~forex_assets.core.storage.read_only.sqlite_read_uri`, ``PRAGMA
query_only``: nothing created, initialized or migrated, a read-only copy reads as the instance), with the
query Dagster's ``fetch_materializations`` makes (the asset key and partition, the latest first, nothing from
before the asset's last wipe); the metadata comes from the stored event's JSON, Dagster's serialized
``EventLogEntry`` (``metadata_entries``: a label and an ``entry_data``, whose value field :data:`VALUE_FIELDS` names).
``forex_assets_tests/test_fast_cli.py`` checks that this reads what Dagster reads.

Any other storage (production's PostgreSQL, a custom class) and an event stored in a form not known here are
read through Dagster itself (``cli/dagster_reports.py``).
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

#: the assets whose latest metadata `status` shows (asset names of ``defs/monitoring/assets.py``)
DRIFT_REPORT, PERFORMANCE_REPORT = "drift_report", "performance_report"
INDEX_SHARD = "index.db"
MATERIALIZATION = "ASSET_MATERIALIZATION"
#: metadata kinds as Dagster stores them (serdes storage names) -> the field holding ``MetadataValue.value``
VALUE_FIELDS: dict[str, str | None] = {
    "TextMetadataEntryData": "text",
    "MarkdownMetadataEntryData": "md_str",
    "IntMetadataEntryData": "value",
    "FloatMetadataEntryData": "value",
    "BoolMetadataEntryData": "value",
    "TimestampMetadataValue": "value",
    "JsonMetadataEntryData": "data",
    "PathMetadataEntryData": "path",
    "UrlMetadataEntryData": "url",
    "NullMetadataEntryData": None,
}
#: how SQLAlchemy stores a DateTime in SQLite (Dagster's ``timestamp`` columns: naive UTC)
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
EVENT_LOG_MODULES = ("dagster._core.storage.event_log", "dagster.core.storage.event_log")


class UnknownEventFormat(ValueError):
    """A stored event or index shard in a form this reader does not know: Dagster reads it instead."""


REPORTS = (DRIFT_REPORT, PERFORMANCE_REPORT)


def _string_source(value: object) -> str | None:
    """A ``dagster.yaml`` string: itself, or ``{env: NAME}``'s variable; None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"env"}:
        return os.environ.get(value["env"])
    return None


def sqlite_event_log_dir(home: Path) -> Path | None:
    """The directory of the SQLite event log of the instance in ``home``, where Dagster's
    ``InstanceRef.from_dir`` puts it; None when ``dagster.yaml`` configures any other event log storage."""
    import yaml

    config_file = home / "dagster.yaml"
    config = (yaml.safe_load(config_file.read_text()) if config_file.is_file() else None) or {}
    if not isinstance(config, dict) or "instance_class" in config:
        return None
    legacy = config.get("event_log_storage")
    if legacy:  # the legacy form: one storage class per kind
        if legacy.get("module") not in EVENT_LOG_MODULES or legacy.get("class") != "SqliteEventLogStorage":
            return None
        base_dir = _string_source((legacy.get("config") or {}).get("base_dir"))
        return Path(base_dir) if base_dir else None
    storage = config.get("storage")
    if storage and not (config.get("run_storage") or config.get("schedule_storage")):
        if set(storage) != {"sqlite"}:
            return None
        base_dir = _string_source((storage["sqlite"] or {}).get("base_dir"))
        return Path(base_dir) / "history" / "runs" if base_dir else None
    return home / "history" / "runs"


def metadata_values(event_json: str) -> dict:
    """label -> value of the metadata of a stored materialization event: what ``MetadataValue.value`` is for
    the kinds of :data:`VALUE_FIELDS`, the stored JSON object for any other kind."""
    try:
        event = json.loads(event_json)
        materialization = event["dagster_event"]["event_specific_data"]["materialization"]
        entries = materialization["metadata_entries"]
        values = {}
        for entry in entries:
            data = entry["entry_data"]
            kind = data["__class__"]
            if kind not in VALUE_FIELDS:  # a table, a schema, a reference to an asset or a run...
                values[entry["label"]] = data  # as stored: `status` shows none of them
                continue
            field = VALUE_FIELDS[kind]
            values[entry["label"]] = None if field is None else data[field]
    except (ValueError, KeyError, TypeError) as error:
        raise UnknownEventFormat(f"a materialization stored as Dagster does not any more ({error!r})") from None
    return values


def _wiped_before(connection: sqlite3.Connection, asset_key: str) -> str | None:
    """When the asset was last wiped, as stored in the event log's ``timestamp`` column; None if never."""
    row = connection.execute("SELECT asset_details FROM asset_keys WHERE asset_key = ?", (asset_key,)).fetchone()
    if row is None or row[0] is None:
        return None
    wiped = json.loads(row[0]).get("last_wipe_timestamp")
    return None if wiped is None else datetime.fromtimestamp(wiped, UTC).strftime(SQLITE_DATETIME)


def latest_metadata(connection: sqlite3.Connection, asset: str, partition: str) -> dict:
    """The metadata values of the latest materialization of ``asset[partition]``; {} when there is none."""
    asset_key = json.dumps([asset])  # Dagster's AssetKey.to_string()
    query = (
        "SELECT event FROM event_logs WHERE asset_key = ? AND partition = ? AND dagster_event_type = ?"
        " AND (? IS NULL OR timestamp > ?) ORDER BY id DESC LIMIT 1"
    )
    wiped = _wiped_before(connection, asset_key)
    row = connection.execute(query, (asset_key, partition, MATERIALIZATION, wiped, wiped)).fetchone()
    return {} if row is None else metadata_values(row[0])


def partition_of(horizon: str, pair: str) -> str:
    """The report's partition of one pair's horizon, as Dagster writes a multi-partition key (its dimensions
    ``horizon`` and ``pair`` in name order): ``7d|USDCLP``. forex_assets/defs/partitions.py makes them."""
    return f"{horizon}|{pair}"


def read_index_shard(
    directory: Path, horizons: tuple[str, ...], pairs: tuple[str, ...] = ("USDCLP",)
) -> dict[str, dict[str, tuple[dict, dict]]]:
    """pair -> horizon -> (drift, performance) metadata of the pair's horizon, from the SQLite event log in
    ``directory``, read-only, in one connection."""
    from forex_assets.core.storage.read_only import sqlite_read_uri

    index = directory / INDEX_SHARD
    if not index.is_file():  # nothing materialized yet
        return {pair: {h: ({}, {}) for h in horizons} for pair in pairs}
    connection = sqlite3.connect(sqlite_read_uri(index), uri=True)
    try:
        connection.execute("PRAGMA query_only = 1")
        try:
            return {
                pair: {
                    h: (
                        latest_metadata(connection, DRIFT_REPORT, partition_of(h, pair)),
                        latest_metadata(connection, PERFORMANCE_REPORT, partition_of(h, pair)),
                    )
                    for h in horizons
                }
                for pair in pairs
            }
        except sqlite3.OperationalError as error:
            if "no such" in str(error):  # a table or column of another Dagster version
                raise UnknownEventFormat(f"{index}: {error}") from None
            raise
    finally:
        connection.close()


def latest_reports(home: Path, horizons: tuple[str, ...], pair: str = "USDCLP") -> dict[str, tuple[dict, dict]]:
    """horizon -> (metadata of the pair's horizon's latest drift report, of its latest performance report); {}
    for none."""
    return latest_reports_of_pairs(home, horizons, (pair,))[pair]


def latest_reports_of_pairs(
    home: Path, horizons: tuple[str, ...], pairs: tuple[str, ...]
) -> dict[str, dict[str, tuple[dict, dict]]]:
    """pair -> :func:`latest_reports` of the pair, the instance opened once for all of them."""
    directory = sqlite_event_log_dir(home)
    if directory is not None:
        try:
            return read_index_shard(directory, horizons, pairs)
        except UnknownEventFormat:
            pass
    from forex_assets.cli.dagster_reports import latest_reports_through_dagster

    partitions = {(pair, h): partition_of(h, pair) for pair in pairs for h in horizons}
    found = latest_reports_through_dagster(home, partitions, REPORTS)
    return {pair: {h: found[pair, h] for h in horizons} for pair in pairs}
