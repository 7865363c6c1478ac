"""Corrupt caches and journals set aside while an asset ran: a warning in the run log, the asset's metadata and
one alert per file (``core/corrupt_files.py`` sets them aside and records them; this reports them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from forex_assets.core.alerting.messages import ALL_HORIZONS, file_set_aside
from forex_assets.core.corrupt_files import SetAside, collect_set_aside
from forex_assets.core.working_area import PRIMARY_PAIR
from forex_assets.defs.partitions import context_series, series_label
from forex_assets.defs.resources import WorkingArea
from forex_assets.defs.resources.alerts import AlertNotifier


def report_set_aside(
    context: dg.AssetExecutionContext, events: list[SetAside], alerts: AlertNotifier, working_area: WorkingArea
) -> dict[str, dg.MetadataValue]:
    """Warn, alert and return the output metadata for the files set aside (``collect_set_aside()``'s list);
    no metadata when there were none. Never raises for an alert (``AlertNotifier.send``)."""
    if not events:
        return {}
    partitioned = context.has_partition_key
    pair, horizon = context_series(context) if partitioned else (PRIMARY_PAIR, ALL_HORIZONS)
    asset = context.asset_key.to_user_string()
    run_id = context.run.run_id
    link = f"{alerts.ui_base_url.rstrip('/')}/runs/{run_id}"
    for event in events:
        context.log.warning(event.message())
        where = f"{asset}[{series_label(pair, horizon)}]" if partitioned else asset
        alert = file_set_aside(event, horizon, where, run_id, link)
        alerts.send(alert, context.log, working_area.alert_log(pair), pair=pair)
    return {
        "corrupt_files_set_aside": dg.MetadataValue.md("\n".join(f"- {event.message()}" for event in events)),
        "corrupt_files_kept_as": dg.MetadataValue.json(
            [{"file": str(e.path), "kept_as": str(e.kept_as), "problem": e.problem} for e in events]
        ),
    }


@contextmanager
def set_aside_reported(
    context: dg.AssetExecutionContext, alerts: AlertNotifier, working_area: WorkingArea
) -> Iterator[dict[str, dg.MetadataValue]]:
    """Around a call of the core that may set a corrupt cache or journal aside (``collect_set_aside()``):
    yields a dict that, when the block ends, holds the metadata for the output (empty when nothing was set
    aside). The warning and the alert go out also when the block raises (the step fails after the file was
    moved: the operator must still learn where it went)."""
    metadata: dict[str, dg.MetadataValue] = {}
    events: list[SetAside] = []
    try:
        with collect_set_aside() as events:
            yield metadata
    finally:
        metadata.update(report_set_aside(context, events, alerts, working_area))
