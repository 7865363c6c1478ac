"""replay_job: `forex-assets replay` inside Dagster (progress in the run log, the report as metadata).

With policy files in the run config (``policies``), each policy is replayed on the same days and prices in
its own working area: one ``replay_report`` materialization per policy (``policy`` in its metadata) and, for
two or more, a ``replay_comparison`` materialization with the comparison (``core/replay/compare.py``).
"""

from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from forex_assets.core.horizons import HORIZONS
from forex_assets.core.policy_file import PolicyFileError
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.prices.schema import PriceValidationError
from forex_assets.core.prices.sources import PriceSourceError
from forex_assets.core.prices.synthetic import RegimeChange
from forex_assets.core.replay.compare import (
    DEFAULT_POLICY_NAME,
    PolicyReplay,
    compare_reports,
    format_comparison,
    load_policies,
    replay_policies,
    report_directories,
    write_comparison,
)
from forex_assets.core.replay.engine import PriceProvider, ReplayError, ReplaySettings, check_range
from forex_assets.core.replay.report import format_table, write_report
from forex_assets.defs.metadata import table_metadata
from forex_assets.defs.resources import PriceSource, WorkingArea


class ReplayConfig(dg.Config):
    start: str = Field(default="", description="first replay day, YYYY-MM-DD (default: 6 months before end)")
    end: str = Field(default="", description="last replay day, YYYY-MM-DD (default: the last price)")
    horizons: list[str] = Field(default_factory=lambda: list(HORIZONS), description="each replayed once")
    log_every_days: int = Field(default=20, ge=1, description="a progress line every this many replay days")
    policies: list[str] = Field(
        default_factory=list,
        description="policy files (JSON, policies/*.json) instead of the project's defaults; two or more are "
        "replayed on the same days and compared",
    )


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


def _comparison_rows(comparison: dict) -> pd.DataFrame:
    return pd.DataFrame([{"horizon": h, **row} for h, rows in comparison["horizons"].items() for row in rows])


def _record_report(context: dg.OpExecutionContext, replay: PolicyReplay, paths, description: str) -> str:
    json_path, html_path = paths
    table = format_table(replay.report)
    context.log.info(table if replay.name == DEFAULT_POLICY_NAME else f"policy {replay.name}:\n{table}")
    context.log_event(
        dg.AssetMaterialization(
            asset_key="replay_report",
            description=f"{description}, policy {replay.name}",
            metadata={
                "policy": replay.name,
                "days_replayed": len(replay.result.days),
                "days_planned": replay.result.planned_days,
                "partial": replay.result.partial,
                "seconds": round(replay.result.seconds, 1),
                "summary": table_metadata(_summary_rows(replay.report)),
                "table": dg.MetadataValue.md(f"```\n{table}\n```"),
                "html_report": dg.MetadataValue.path(str(html_path)),
                "json_report": dg.MetadataValue.path(str(json_path)),
            },
        )
    )
    return str(html_path)


@dg.op(description="Replays the recalibration policy (or each policy file of the run config, on the same days) "
       "over the configured range, day by day without look-ahead, in a temporary working area; writes the "
       "report (JSON, HTML) and records it as replay_report, and a comparison of several policies as "
       "replay_comparison.")  # fmt: skip
def replay_history(
    context: dg.OpExecutionContext, config: ReplayConfig, price_source: PriceSource, working_area: WorkingArea
) -> None:
    try:
        policies = load_policies(config.policies) if config.policies else {DEFAULT_POLICY_NAME: PolicySettings()}
    except PolicyFileError as error:
        raise dg.Failure(description=f"replay: {error}") from None
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
    out = working_area.root / "replays" / context.run_id[:8]
    try:
        check_range(provider, settings)
        report_dirs = report_directories(out, policies)
    except (ReplayError, OSError) as error:
        raise dg.Failure(description=f"replay: {getattr(error, 'strerror', None) or error}") from None
    compared = len(policies) > 1

    def progress(name: str):
        label = f"replay {name}" if compared else "replay"

        def step(done: int, total: int, day) -> None:
            if done % config.log_every_days == 0 or done == total:
                context.log.info(f"{label}: {done}/{total} days ({day.date()})")

        return step

    try:
        replays = replay_policies(provider, settings, policies, progress)
    except ReplayError as error:
        raise dg.Failure(description=f"replay: {error}") from None
    description = f"replay of {provider.description}, {start}..{end}"
    html = {
        name: _record_report(context, r, write_report(r.report, r.prices, report_dirs[name]), description)
        for name, r in replays.items()
    }
    where = html[next(iter(html))]
    if compared:
        comparison = compare_reports({name: r.report for name, r in replays.items()})
        json_path, html_path = write_comparison(comparison, out, {n: f"{n}/{Path(p).name}" for n, p in html.items()})
        where = str(html_path)
        table = format_comparison(comparison)
        context.log.info(table)
        context.log_event(
            dg.AssetMaterialization(
                asset_key="replay_comparison",
                description=f"{description}, policies {', '.join(policies)}",
                metadata={
                    "policies": ", ".join(policies),
                    "days_planned": comparison["days_planned"],
                    "same_days": comparison["same_days"],
                    "comparison": table_metadata(_comparison_rows(comparison)),
                    "table": dg.MetadataValue.md(f"```\n{table}\n```"),
                    "differences": dg.MetadataValue.json(comparison["differences"]),
                    "html_report": dg.MetadataValue.path(str(html_path)),
                    "json_report": dg.MetadataValue.path(str(json_path)),
                },
            )
        )
    partial = [(name, r.result.partial_reason) for name, r in replays.items() if r.result.partial]
    if partial:
        reasons = "; ".join(f"{name}: {reason}" if compared else reason for name, reason in partial)
        raise dg.Failure(description=f"replay PARTIAL: {reasons}; partial report at {where}")


@dg.job(
    description="What would the policy have done over a range of history? Run config: "
    "ops.replay_history.config.{start, end, horizons, policies}; prices from the price_source resource.",
    tags={"forex/kind": "replay"},
)
def replay_job():
    replay_history()
