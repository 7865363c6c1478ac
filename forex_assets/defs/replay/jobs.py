"""replay_job: `forex-assets replay` inside Dagster (progress in the run log, the report as metadata).

With policy files in the run config (``policies``), each policy is replayed on the same days and prices in
its own working area: one ``replay_report`` materialization per policy (``policy`` in its metadata) and, for
two or more, a ``replay_comparison`` materialization with the comparison (``core/replay/compare.py``). The
set-up (options to prices, settings, policies, report directories) and the run are those of the command
(``core/replay/setup.py``).
"""

from datetime import date

import dagster as dg
import pandas as pd
from pydantic import Field

from forex_assets.core.horizons import HORIZONS
from forex_assets.core.replay.compare import DEFAULT_POLICY_NAME, PolicyReplay, format_comparison
from forex_assets.core.replay.engine import ReplayError
from forex_assets.core.replay.report import format_table
from forex_assets.core.replay.setup import ReplayOptions, run_replays, set_up_replay
from forex_assets.defs.metadata import table_metadata
from forex_assets.defs.resources import PolicyResource, PriceSource, WorkingArea


class ReplayConfig(dg.Config):
    start: str = Field(default="", description="first replay day, YYYY-MM-DD (default: 6 months before end)")
    end: str = Field(default="", description="last replay day, YYYY-MM-DD (default: the last price)")
    horizons: list[str] = Field(default_factory=lambda: list(HORIZONS), description="each replayed once")
    log_every_days: int = Field(default=20, ge=1, description="a progress line every this many replay days")
    policies: list[str] = Field(
        default_factory=list,
        description="policy files (JSON, policies/*.json) instead of the policy resource's file; two or more are "
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
    context: dg.OpExecutionContext,
    config: ReplayConfig,
    price_source: PriceSource,
    working_area: WorkingArea,
    policy: PolicyResource,
) -> None:
    dates: dict[str, date | None] = {}
    for name, text in (("start", config.start), ("end", config.end)):
        try:
            dates[name] = date.fromisoformat(text) if text else None
        except ValueError:
            raise dg.Failure(description=f"replay: {name} {text!r} is not a date (YYYY-MM-DD)") from None
    options = ReplayOptions(
        start=dates["start"],
        end=dates["end"],
        horizons=tuple(config.horizons),
        policy_files=tuple(config.policies),
        pair=price_source.pair,
        pairs_file=price_source.pairs_file,
    )
    out = working_area.replay_dir(context.run_id[:8])
    try:  # the set-up of `forex-assets replay`; without policy files in the run config: the policy in force
        synthetic = price_source.source == "synthetic"
        setup = set_up_replay(options, price_source.load, price_source.describe(), synthetic, out, policy.policy_file)
    except ReplayError as error:
        raise dg.Failure(description=f"replay: {error}") from None
    compared = setup.compared

    def progress(name: str):
        label = f"replay {name}" if compared else "replay"

        def step(done: int, total: int, day) -> None:
            if done % config.log_every_days == 0 or done == total:
                context.log.info(f"{label}: {done}/{total} days ({day.date()})")

        return step

    try:
        run = run_replays(setup, progress)
    except ReplayError as error:
        raise dg.Failure(description=f"replay: {error}") from None
    settings = setup.settings
    description = f"replay of {setup.provider.description}, {settings.start}..{settings.end}"
    html = {name: _record_report(context, r, run.report_paths[name], description) for name, r in run.replays.items()}
    where = html[next(iter(html))]
    if compared:
        comparison = run.comparison
        assert comparison is not None and run.comparison_paths is not None  # two or more policies: compared
        json_path, html_path = run.comparison_paths
        where = str(html_path)
        table = format_comparison(comparison)
        context.log.info(table)
        context.log_event(
            dg.AssetMaterialization(
                asset_key="replay_comparison",
                description=f"{description}, policies {', '.join(setup.policies)}",
                metadata={
                    "policies": ", ".join(setup.policies),
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
    if run.partial:
        reasons = "; ".join(f"{name}: {reason}" if compared else reason for name, reason in run.partial)
        raise dg.Failure(description=f"replay PARTIAL: {reasons}; partial report at {where}")


@dg.job(
    description="What would the policy have done over a range of history? Run config: "
    "ops.replay_history.config.{start, end, horizons, policies}; prices from the price_source resource.",
    tags={"forex/kind": "replay"},
)
def replay_job():
    replay_history()
