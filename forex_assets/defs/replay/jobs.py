"""replay_job: `forex-assets replay` inside Dagster (progress in the run log, the report as metadata)."""

import tempfile
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from forex_assets.core.horizons import HORIZONS
from forex_assets.core.prices.schema import PriceValidationError
from forex_assets.core.prices.sources import PriceSourceError
from forex_assets.core.prices.synthetic import RegimeChange
from forex_assets.core.replay.engine import PriceProvider, ReplayError, ReplaySettings, run_replay
from forex_assets.core.replay.report import build_report, format_table, write_report
from forex_assets.defs.metadata import table_metadata
from forex_assets.defs.resources import PriceSource, WorkingArea


class ReplayConfig(dg.Config):
    start: str = Field(default="", description="first replay day, YYYY-MM-DD (default: 6 months before end)")
    end: str = Field(default="", description="last replay day, YYYY-MM-DD (default: the last price)")
    horizons: list[str] = Field(default_factory=lambda: list(HORIZONS))
    log_every_days: int = Field(default=20, ge=1, description="a progress line every this many replay days")


def _summary_rows(report: dict) -> pd.DataFrame:
    rows = []
    for h, r in report["horizons"].items():
        accuracy = r["accuracy"]
        rows.append(
            {
                "horizon": h,
                "optimizations": r["optimizations"],
                "approvals": r["approvals"],
                "deploys": r["deploys"],
                "rollbacks": r["rollbacks"],
                "automation_rate": r["automation_rate"],
                "false_positive_rate_rmse": r["false_positive_rate_rmse"],
                "rmse_live_clp": accuracy.get("live", {}).get("rmse_clp"),
                "rmse_static_clp": accuracy.get("static", {}).get("rmse_clp"),
                "rmse_random_walk_clp": accuracy.get("random_walk", {}).get("rmse_clp"),
            }
        )
    return pd.DataFrame(rows)


@dg.op(description="Replays the recalibration policy over the configured range, day by day without look-ahead, "
       "in a temporary working area; writes the report (JSON, HTML) and records it as replay_report.")  # fmt: skip
def replay_history(
    context: dg.OpExecutionContext, config: ReplayConfig, price_source: PriceSource, working_area: WorkingArea
) -> None:
    try:
        prices = price_source.load()
    except (PriceValidationError, PriceSourceError) as error:
        raise dg.Failure(description=f"replay: the price source failed: {error}") from None
    provider = PriceProvider(prices, price_source.describe())
    onsets = ()
    if price_source.source == "synthetic":
        onsets = (pd.Timestamp(prices["date"].iloc[-RegimeChange().observations_before_end]),)
    end = date.fromisoformat(config.end) if config.end else provider.span()[1].date()
    start = date.fromisoformat(config.start) if config.start else (pd.Timestamp(end) - pd.DateOffset(months=6)).date()
    settings = ReplaySettings(start=start, end=end, horizons=tuple(config.horizons), injected_drifts=onsets)

    def progress(done: int, total: int, day) -> None:
        if done % config.log_every_days == 0 or done == total:
            context.log.info(f"replay: {done}/{total} days ({day.date()})")

    with tempfile.TemporaryDirectory(prefix="forex_replay_") as state:
        try:
            result = run_replay(provider, settings, Path(state), progress)
        except ReplayError as error:
            raise dg.Failure(description=f"replay: {error}") from None
        known = provider.visible(result.days[-1]) if result.days else prices.iloc[:0]
        report = build_report(result, known)
    out = working_area.root / "replays" / context.run_id[:8]
    json_path, html_path = write_report(report, known, out)
    table = format_table(report)
    context.log.info(table)
    context.log_event(
        dg.AssetMaterialization(
            asset_key="replay_report",
            description=f"replay of {provider.description}, {start}..{end}",
            metadata={
                "days_replayed": len(result.days),
                "days_planned": result.planned_days,
                "partial": result.partial,
                "seconds": round(result.seconds, 1),
                "summary": table_metadata(_summary_rows(report)),
                "table": dg.MetadataValue.md(f"```\n{table}\n```"),
                "html_report": dg.MetadataValue.path(str(html_path)),
                "json_report": dg.MetadataValue.path(str(json_path)),
            },
        )
    )
    if result.partial:
        raise dg.Failure(description=f"replay PARTIAL: {result.partial_reason}; partial report at {html_path}")


@dg.job(
    description="What would the policy have done over a range of history? Run config: "
    "ops.replay_history.config.{start, end, horizons}; prices from the price_source resource.",
    tags={"forex/kind": "replay"},
)
def replay_job():
    replay_history()
