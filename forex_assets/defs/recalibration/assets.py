import json
from datetime import date

import dagster as dg
import pandas as pd

from forex_assets.core.alerting.messages import optimization_triggered, validation_result
from forex_assets.core.files import write_text_atomically
from forex_assets.core.forecasting.config import ConfigError, config_path, load_config
from forex_assets.core.models.loading import ModelLoadError
from forex_assets.core.monitoring.triggers import manual_decision
from forex_assets.core.plots import leaderboard_figure, markdown_image
from forex_assets.core.policy import validation_verdict
from forex_assets.core.recalibration.report_html import error_by_step_figure
from forex_assets.core.recalibration.search import SearchError
from forex_assets.core.recalibration.search_space import candidate_label, load_search_space, search_space_path
from forex_assets.core.recalibration.workflow import (
    WindowOverlapError,
    candidate_document,
    candidate_json,
    find_candidate,
    report_value,
    validate_candidate,
)
from forex_assets.defs.alerting.set_aside import set_aside_reported
from forex_assets.defs.metadata import table_metadata
from forex_assets.defs.partitions import context_series, pair_horizon_partitions, series_label
from forex_assets.defs.resources import PolicyResource, WorkingArea
from forex_assets.defs.resources.alerts import AlertNotifier
from forex_assets.defs.step_retries import retry_transient_only

from .retries import OPTIMIZATION_RETRY_POLICY
from .verdicts import failure_verdict, record_verdict

ANNOUNCED = "optimization announced (decision recorded, alert sent)"


def _announced(context: dg.AssetExecutionContext) -> bool:
    """Whether an earlier attempt of this step in this run announced the optimization (its log line)."""
    return any(
        entry.user_message == ANNOUNCED and entry.step_key == context.op_def.name
        for entry in context.instance.all_logs(context.run.run_id, of_type=None)
        if entry.dagster_event is None
    )


def announce_optimization(
    context: dg.AssetExecutionContext, working_area: WorkingArea, alerts: AlertNotifier, as_of: date
):
    """Alert that the horizon's optimization started, with the triggers from the run's tags. A run without
    them was launched by hand: it is recorded in the decision log as a manual trigger, dated like the
    sensors' decisions on the day of the latest price (``as_of``)."""
    (pair, horizon), tags, run_id = context_series(context), context.run.tags, context.run.run_id
    fired = [kind for kind in tags.get("forex/triggers", "").split(",") if kind]
    try:
        reasons = json.loads(tags.get("forex/trigger_reasons") or "{}")
    except json.JSONDecodeError:
        reasons = {}
    if not fired:
        decision = manual_decision(horizon, as_of, run_id)
        working_area.decision_log(pair).record(decision)
        fired, reasons = list(decision.fired), decision.reasons
    alert = optimization_triggered(horizon, fired, reasons, run_id)
    alerts.send(alert, context.log, working_area.alert_log(pair), pair=pair)


@dg.asset(
    partitions_def=pair_horizon_partitions,
    group_name="recalibration",
    kinds={"optuna"},
    pool="optimizer",
    description="Best inference configuration of the horizon's search space on the search window "
    "(Optuna study, rolling-origin backtests), with the full leaderboard.",
    retry_policy=OPTIMIZATION_RETRY_POLICY,  # transient failures only: a config or search error is not retried
)
@retry_transient_only
def candidate_config(
    context: dg.AssetExecutionContext,
    pair_prices: pd.DataFrame,
    working_area: WorkingArea,
    alerts: AlertNotifier,
    policy: PolicyResource,
) -> dg.Output[dict]:
    (pair, horizon), as_of = context_series(context), pair_prices["date"].iloc[-1].date()
    # a retry of a transient failure is the same optimization: announced (decision recorded, alert sent) once,
    # by the first attempt that got that far
    if context.retry_number == 0 or not _announced(context):
        announce_optimization(context, working_area, alerts, as_of)
        context.log.info(ANNOUNCED)
    # a search that fails for good is the optimization's verdict ("failed"): the guard counts it
    with (
        failure_verdict(context, working_area, as_of),
        set_aside_reported(context, alerts, working_area) as set_aside,  # a corrupt cache or journal
    ):
        try:
            space = load_search_space(search_space_path(working_area.configs, horizon), expected_horizon=horizon)
            seed = load_config(config_path(working_area.configs, horizon), expected_horizon=horizon)
            outcome = find_candidate(
                space,
                pair_prices,
                working_area.backtest_cache(),
                working_area.optuna_storage,
                context.log.info,
                policy.settings().levers,  # None: the search-space file's levers
                prior=seed,
                database_url=working_area.state_database,  # the studies in the state database, when there is one
            )
        except (ConfigError, SearchError, ModelLoadError) as error:
            raise dg.Failure(description=f"candidate_config {series_label(pair, horizon)}: {error}") from None
    document = candidate_document(outcome, space)
    artifact = working_area.candidate_file(horizon, pair)
    write_text_atomically(artifact, candidate_json(document, outcome.leaderboard))
    board = outcome.leaderboard.drop(columns=["error"]).head(50)
    failed = outcome.leaderboard[outcome.leaderboard["state"] == "FAIL"][["trial", "label", "error"]]
    return dg.Output(
        document,
        metadata={
            "label": candidate_label(outcome.best),
            "best": outcome.best.model_dump_json(exclude_none=True),
            "search_rmse_clp": round(outcome.best_metrics["rmse_clp"], 4),
            "search_coverage_95": round(outcome.best_metrics["coverage_95"], 4),
            "search_wql": round(outcome.best_metrics["weighted_quantile_loss"], 6),
            "search_objective": space.objective,
            "search_window": " .. ".join(outcome.search_origin_dates),
            "sampler": outcome.sampler,
            "trials_complete": outcome.trials_complete,
            "trials_failed": outcome.trials_failed,
            "study": outcome.study_name,
            "leaderboard": table_metadata(board),
            "failed_trials": table_metadata(failed) if not failed.empty else "none",
            "leaderboard_plot": dg.MetadataValue.md(markdown_image(leaderboard_figure(board, horizon), "leaderboard")),
            "artifact": dg.MetadataValue.path(str(artifact)),
        }
        | set_aside,
    )


@dg.asset(
    partitions_def=pair_horizon_partitions,
    group_name="recalibration",
    pool="optimizer",
    description="Candidate vs deployed configuration on the most recent validation window, disjoint from "
    "the search window (shadow mode): the approval metrics (docs/decisions.md), random-walk skill, Diebold-Mariano. "
    "Gated by one blocking asset check per approval criterion.",
    retry_policy=OPTIMIZATION_RETRY_POLICY,  # transient failures only: a rejection is a verdict, not an error
)
@retry_transient_only
def validation_report(
    context: dg.AssetExecutionContext,
    pair_prices: pd.DataFrame,
    candidate_config: dict,
    working_area: WorkingArea,
    policy: PolicyResource,
    alerts: AlertNotifier,
) -> dg.Output[dict]:
    (pair, horizon), as_of = context_series(context), pair_prices["date"].iloc[-1].date()
    series = series_label(pair, horizon)
    with (
        failure_verdict(context, working_area, as_of),  # failed for good: the optimization's verdict
        set_aside_reported(context, alerts, working_area) as set_aside,  # a corrupt backtest cache
    ):
        try:
            deployed, version = working_area.deployed_config(horizon, pair)
            run = validate_candidate(
                candidate_config,
                deployed,
                version,
                pair_prices,
                working_area.backtest_cache(),
                working_area.reports_dir(horizon, pair),
                policy.settings().approval,
            )
        except (ConfigError, ModelLoadError, WindowOverlapError) as error:
            raise dg.Failure(description=f"validation_report {series}: {error}") from None
    report = run.report
    m = report.metrics
    verdict = validation_verdict(report)  # the same verdict as the replay's (core/policy.py)
    context.log.info(f"{series}: {verdict.text}")
    alerts.send(validation_result(report.to_dict()), context.log, working_area.alert_log(pair), pair=pair)
    # the optimization reached its verdict: from now on the guard counts it (a run killed before this does not)
    record_verdict(context, working_area, as_of, verdict.verdict, verdict.text)
    rows = pd.DataFrame([{"criterion": c.name, "passed": c.passed, "detail": c.description} for c in report.criteria])
    html_path = run.html_path
    assert html_path is not None  # validate_candidate renders the HTML report unless told not to
    return dg.Output(
        report_value(run),  # the candidate goes on to deployed_config as the ChronosConfig itself
        metadata={
            "verdict": verdict.text,
            "approved_by": report.approved_by or "(rejected)",
            "rmse_improvement_pct": round(m.rmse_improvement, 3),
            # the distribution: weighted quantile loss and 95 % interval score of both, and the EWMA band's
            "wql_improvement_pct": round(m.wql_improvement, 3) if m.wql_improvement is not None else "n/a",
            "wql_p_value": round(m.wql_p_value, 4) if m.wql_p_value is not None else "n/a",
            "wql_candidate": _rounded(m.wql_new, 6),
            "wql_deployed": _rounded(m.wql_current, 6),
            "wql_ewma_band": _rounded(m.wql_ewma_band, 6),
            "interval_score_95_candidate_clp": _rounded(m.interval_score_95_new, 4),
            "interval_score_95_deployed_clp": _rounded(m.interval_score_95_current, 4),
            "interval_score_95_ewma_band_clp": _rounded(m.interval_score_95_ewma_band, 4),
            "mape_improvement_pct": round(m.mape_improvement, 3),
            "rmse_candidate_clp": round(m.rmse_new, 4),
            "rmse_deployed_clp": round(m.rmse_current, 4),
            "coverage_95_candidate": round(m.ci95_coverage_new, 4),
            "bias_candidate_clp": round(m.bias_new, 4),
            "inference_seconds_candidate": round(m.inference_time_new, 5),
            "inference_seconds_deployed": round(m.inference_time_current, 5),
            "skill_vs_random_walk_candidate": round(m.skill_vs_random_walk_new, 4),
            "diebold_mariano_p_value": round(report.diebold_mariano.p_value, 4),
            "validation_window": " .. ".join(report.validation_window),
            "deployed_version": version,
            "policy": policy.label(),
            "criteria": table_metadata(rows),
            "error_by_step": dg.MetadataValue.md(
                markdown_image(error_by_step_figure(run.candidate, run.deployed), "RMSE by forecast step")
            ),
            "html_report": dg.MetadataValue.url(html_path.as_uri()),
            "html_report_path": dg.MetadataValue.path(str(html_path)),
            **set_aside,
        },
    )


def _rounded(value: float | None, digits: int) -> float | str:
    """A report figure for the UI: rounded, "n/a" in a report that has none."""
    return round(value, digits) if value is not None else "n/a"
