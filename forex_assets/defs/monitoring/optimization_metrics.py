"""optimization_metrics: the operator's month at a glance, per horizon, with trends in the UI's asset plots."""

import dagster as dg

from forex_assets.core.horizons import HORIZONS
from forex_assets.core.monitoring.optimization_history import (
    TRIGGER_KINDS,
    HorizonMetrics,
    deploys_frame,
    horizon_events,
    horizon_metrics,
    summary_frame,
)
from forex_assets.core.plots import markdown_image, optimization_metrics_figure
from forex_assets.defs.metadata import table_metadata
from forex_assets.defs.partitions import pair_partitions
from forex_assets.defs.resources import WorkingArea

TIMEZONE = "America/Santiago"


def _trend_metadata(m: HorizonMetrics) -> dict:
    """Flat numeric values, one key per horizon and figure, so the UI's asset plots show their trends."""
    h = m.horizon
    values = {
        f"{h}_optimizations": m.optimizations,
        f"{h}_deploys": len(m.deploys),
        f"{h}_rollbacks": m.rollbacks,
        f"{h}_validations": m.validations,
        f"{h}_validation_success_rate": m.validation_success_rate,
        f"{h}_median_hours_trigger_to_deploy": m.median_hours_trigger_to_deploy,
        f"{h}_last_deploy_rmse_before_clp": m.deploys[-1].rmse_before_clp if m.deploys else None,
        f"{h}_last_deploy_rmse_after_clp": m.deploys[-1].rmse_after_clp if m.deploys else None,
    }
    return {k: round(float(v), 4) if isinstance(v, float) else v for k, v in values.items() if v is not None}


@dg.asset(
    partitions_def=pair_partitions,
    group_name="monitoring",
    deps=[dg.AssetDep("deployed_config")],
    automation_condition=(
        dg.AutomationCondition.cron_tick_passed("0 21 * * *", TIMEZONE) | dg.AutomationCondition.any_deps_updated()
    )
    & ~dg.AutomationCondition.in_progress(),
    description="Per horizon of one pair: optimizations by trigger kind, validation success rate, deploys "
    "with RMSE before and after, rollbacks and time from trigger to deploy; from the pair's config store "
    "history, trigger decision log and validation reports. Refreshed daily at 21:00 America/Santiago and "
    "after every deploy.",
)
def optimization_metrics(context: dg.AssetExecutionContext, working_area: WorkingArea) -> dg.Output[dict]:
    pair = context.partition_key
    store, log = working_area.config_store(pair), working_area.decision_log(pair)
    metrics = [horizon_metrics(horizon_events(store, log, working_area.reports_dir(h, pair), h), h) for h in HORIZONS]
    summary, deploys = summary_frame(metrics), deploys_frame(metrics)
    context.log.info(
        "; ".join(f"{m.horizon}: {m.optimizations} optimizations, {len(m.deploys)} deploys" for m in metrics)
    )
    metadata: dict = {
        "summary": table_metadata(summary),
        "deploys": table_metadata(deploys.tail(50)) if not deploys.empty else "no deploy yet",
        "plot": dg.MetadataValue.md(
            markdown_image(optimization_metrics_figure(metrics, TRIGGER_KINDS), "optimization metrics")
        ),
    }
    for m in metrics:
        metadata |= _trend_metadata(m)
    return dg.Output({"summary": summary.to_dict("records"), "deploys": deploys.to_dict("records")}, metadata=metadata)
