import dagster as dg

from forex_assets.core.alerting.messages import config_deployed
from forex_assets.core.deployment.config_store import ConfigStoreError
from forex_assets.core.deployment.deploy import before_after, before_after_frame, deploy_from_report
from forex_assets.defs.deployment.approval import failed_approval_checks
from forex_assets.defs.deployment.refusal import refusal
from forex_assets.defs.deployment.repairs import alert_repairs
from forex_assets.defs.metadata import table_metadata
from forex_assets.defs.partitions import context_series, pair_horizon_partitions, series_label
from forex_assets.defs.resources import PolicyResource, WorkingArea
from forex_assets.defs.resources.alerts import AlertNotifier


@dg.asset(
    partitions_def=pair_horizon_partitions,
    group_name="deployment",
    kinds={"git"},
    description="Deploys the validated candidate to the versioned config store (backup, atomic write, git "
    "commit) only when every blocking approval check of the latest validation_report passed and the deployed "
    "version is still the one the candidate was validated against; refuses otherwise, naming why.",
)
def deployed_config(
    context: dg.AssetExecutionContext,
    validation_report: dict,
    working_area: WorkingArea,
    alerts: AlertNotifier,
    policy: PolicyResource,
) -> dg.MaterializeResult:
    pair, horizon = context_series(context)
    series = series_label(pair, horizon)
    failed = failed_approval_checks(context.instance, context.partition_key)
    store = working_area.config_store(pair)
    alert_repairs(store, alerts, context.log, working_area, pair)
    if failed:
        raise dg.Failure(
            description=f"deployed_config {series}: refused, the latest validation_report did not pass "
            f"{', '.join(failed)}; {horizon} stays on {store.current_version(horizon).id}",
            metadata={"failed_criteria": ", ".join(failed)},
        )
    policy_label = policy.label()  # read before the commit: nothing after it may fail the step
    try:
        previous, version, config = deploy_from_report(store, validation_report)
    except ConfigStoreError as error:  # StaleValidationError: the deployed version moved since the validation
        stays = f"nothing was changed, {horizon} stays on {store.current_version(horizon).id}"
        raise dg.Failure(description=refusal("deployed_config", series, error, stays)) from None
    changed = version.commit != previous.commit
    baseline = config.baseline
    assert baseline is not None  # deploy_from_report deploys the candidate with its validation baseline
    context.log.info(f"{series}: {'deployed' if changed else 'already deployed'} {version.id}")
    diff = store.diff(horizon, previous.id, version.id) if changed else "(no change)"
    if changed:
        alert = config_deployed(horizon, version.id, previous.id, validation_report, version.summary)
        # the alert log is opened inside send's never-raise guard
        alerts.send(alert, context.log, lambda: working_area.alert_log(pair), pair=pair)
    return dg.MaterializeResult(
        metadata={
            "pair": pair,
            "version": version.id,
            "previous_version": previous.id,
            "changed": changed,
            "reason": version.summary,
            "policy": policy_label,
            "diff": dg.MetadataValue.md(f"```diff\n{diff}\n```"),
            "before_after": table_metadata(before_after_frame(before_after(validation_report))),
            "baseline_rmse_clp": round(baseline.rmse_clp, 4),
            "baseline_inference_seconds": round(baseline.inference_seconds, 5),
            "baseline_coverage_95": round(baseline.coverage_95 or 0.0, 4),
            "config_store": dg.MetadataValue.path(str(store.root)),
        }
    )
