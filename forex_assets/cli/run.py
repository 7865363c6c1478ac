"""`make run`: one cycle on the embedded default instance, then a per-horizon summary.

Runs the steps of the daily cycle in the order of ``core/cycle.py``'s ``CYCLE`` (prices, then per horizon:
forecast, watch, reports, decision, optimization) in the Dagster instance of ``$DAGSTER_HOME`` (a
project-local SQLite instance when unset): each step materializes its assets, exactly as the UI would, or asks
the helper its sensor asks (``rollback_request``, ``decide_from_instance``) and runs the job it would request.
``--no-recalibration``: through the forecast.

A failure is shown in full (every line of the error the project raised, e.g. each broken rule of the
data contract with its rows), unwrapped from Dagster's "Error occurred while executing op" and without
a traceback; an unexpected error (a bug) keeps its exception class and points to the run's event log.

Around the cycle, ``cli/run_guard.py``: runs left unfinished by a killed process are marked failed and
their pool slots freed (start-up, and while waiting for a pool); each step retry and each wait for a pool
slot is said in one line; Ctrl-C and SIGTERM stop the cycle, even while a step waits, with the run marked
canceled and its claims freed (exit status 130 / 143).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import dagster as dg

from forex_assets.cli.instance_storage import prepare_instance
from forex_assets.cli.main import (
    CONTEXT_SETTINGS,
    CliError,
    GreedyCommand,
    check_price_source,
    horizons_option,
    pair_option,
    price_source_options,
)
from forex_assets.cli.run_guard import RunGuard, Stopped, checkpoint, own_tags, wait_for_pools
from forex_assets.core.corrupt_files import collect_set_aside
from forex_assets.core.cycle import CYCLE, steps_through
from forex_assets.core.error_text import PROJECT_PACKAGE, describe_error
from forex_assets.core.error_text import user_error as _user_error  # noqa: F401 - moved to core, importable here
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.monitoring.triggers import TriggerDecision
from forex_assets.core.policy_file import POLICY_FILE_ENV, PolicyFileError, load_policy_in_force
from forex_assets.core.working_area import DAGSTER_HOME_ENV, PRIMARY_PAIR, PROJECT_ROOT, dagster_home, pair_label
from forex_assets.defs.deployment.assets import deployed_config
from forex_assets.defs.deployment.jobs import rollback_job
from forex_assets.defs.deployment.repairs import repair_summary
from forex_assets.defs.deployment.sensors import rollback_request
from forex_assets.defs.forecasting.assets import forecast
from forex_assets.defs.graph import ASSETS_AND_CHECKS
from forex_assets.defs.monitoring.assets import drift_report, performance_report
from forex_assets.defs.monitoring.automation import decide_from_instance, optimization_tags
from forex_assets.defs.monitoring.optimization_metrics import optimization_metrics
from forex_assets.defs.partitions import series_key
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.recalibration.assets import candidate_config, validation_report
from forex_assets.defs.resources import (
    PriceSource,
    WorkingArea,
    code_location_resources,
)

if TYPE_CHECKING:
    from forex_assets.core.prices.sources import PriceSourceName


def ensure_dagster_home() -> Path:
    """Use $DAGSTER_HOME, or the project-local .dagster_home seeded with the repo's dagster.yaml; its storage
    created under the instance's lock (``cli/instance_storage.py``: cycles started together on a fresh home
    would both create it, and one would die)."""
    home = dagster_home()
    os.environ[DAGSTER_HOME_ENV] = str(home)
    if home.exists() and not home.is_dir():
        raise CliError(f"DAGSTER_HOME={home} is a file, not a directory: point DAGSTER_HOME at a directory")
    try:
        prepare_instance(home, PROJECT_ROOT / "dagster.yaml")
    except OSError as error:
        raise CliError(
            f"DAGSTER_HOME={home}: cannot create the Dagster instance there ({error.strerror or error}): "
            "point DAGSTER_HOME at a directory this user can write"
        ) from None
    return home


def _materialization_metadata(result: dg.ExecuteInProcessResult, asset_name: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key == dg.AssetKey(asset_name):
            return {k: v.value for k, v in event.materialization.metadata.items()}
    return {}


def is_expected(error: BaseException) -> bool:
    """An error the project raises on purpose, with a message written for the operator (a ConfigError,
    ModelLoadError, PriceValidationError, CorruptFileError, ...), not a bug."""
    return any(cls.__module__.startswith(PROJECT_PACKAGE) for cls in type(error).__mro__)


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            return describe_error(event.step_failure_data.error, result.run_id)
    return "failed"


def _indent(text: str, prefix: str) -> str:
    """Lines after the first one indented by ``prefix`` (a multi-line error under its table row)."""
    first, *rest = text.splitlines() or [""]
    return "\n".join([first, *(prefix + line for line in rest)])


ALL_ASSETS = ASSETS_AND_CHECKS

# The summary reports failures itself; Dagster's console log would repeat them as tracebacks.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# What the terminal hears instead, from RunGuard: one line per step retry ("retry 1 of 3", from these) and
# one per wait for a pool slot.
STEP_MAX_RETRIES = {
    a.op.name: a.op.retry_policy.max_retries
    for a in ALL_ASSETS
    if isinstance(a, dg.AssetsDefinition) and a.is_executable and a.op.retry_policy is not None
}


#: --source mindicador asks this server instead of https://mindicador.cl when set (a mirror, a test server).
MINDICADOR_URL_ENV = "FOREX_MINDICADOR_URL"


def _pools(selection: list) -> list[str]:
    return sorted({a.op.pool for a in selection if isinstance(a, dg.AssetsDefinition) and a.op.pool})


def materialize_selection(
    instance: dg.DagsterInstance,
    resources: dict,
    selection: list,
    horizon: str,
    tags: dict | None = None,
    pair: str = PRIMARY_PAIR,
) -> dg.ExecuteInProcessResult:
    """Materialize ``selection`` for one pair's horizon partition, with every asset and check of the graph. The run
    carries this process's owner tags (a dead-run sweep can then tell it was killed); under
    ``forex-assets run`` it first waits, in the open, for a slot of the pools it needs (``cli/run_guard.py``)."""
    wait_for_pools(_pools(selection))
    result = dg.materialize(
        ALL_ASSETS,
        selection=selection,
        partition_key=series_key(horizon, pair),
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config=QUIET,
        tags={**(tags or {}), **own_tags()},
    )
    checkpoint()
    return result


def run_cycle(
    instance: dg.DagsterInstance,
    price_source: PriceSource,
    working_area: WorkingArea,
    horizons=HORIZONS,
    recalibrate: bool = True,
    pair: str = PRIMARY_PAIR,
    **resource_overrides,
) -> list[dict]:
    """One business day of the cycle against the instance, in the order of ``core/cycle.py``'s ``CYCLE``: the
    prices once, then for each horizon every step, each by its driver in :data:`CYCLE_DRIVERS` (the assets it
    materializes, the sensor helper it asks). Without ``recalibrate``: through the forecast. One summary row
    per horizon; ``resource_overrides`` replace resources of the code location (e.g. ``policy``). ``pair``: the
    currency pair whose partitions the cycle materializes (its prices, its horizons)."""
    resources = code_location_resources(working_area, price_source, **resource_overrides)
    steps = CYCLE if recalibrate else steps_through("forecast")
    for step in steps:
        if not step.per_horizon:  # once for every horizon
            CYCLE_DRIVERS[step.name](instance, resources, {"pair": pair})
    rows = []
    for horizon in horizons:
        row = {"pair": pair, "horizon": horizon}
        for step in steps:
            if step.per_horizon:
                CYCLE_DRIVERS[step.name](instance, resources, row)
        rows.append(row)
    if recalibrate:  # the operator's overview: optimizations, deploys, rollbacks per horizon
        dg.materialize(
            ALL_ASSETS,
            selection=[optimization_metrics],
            partition_key=pair,
            instance=instance,
            resources=resources,
            raise_on_error=False,
            run_config=QUIET,
            tags=own_tags(),
        )
        checkpoint()
    return rows


# ------------------------------------------------------------------------------ one driver per step of CYCLE
# Each takes (instance, resources, row) and writes what it did into the horizon's summary ``row``
# (``row["pair"]``, ``row["horizon"]``; a row with the pair alone for the steps done once for every horizon).


def _prices(instance: dg.DagsterInstance, resources: dict, row: dict) -> None:
    prices_run = dg.materialize(
        [pair_prices],
        partition_key=row["pair"],
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config=QUIET,
        tags=own_tags(),
    )
    checkpoint()
    if not prices_run.success:
        raise SystemExit(f"pair_prices failed: {_failure_message(prices_run)}")


def _forecast(instance: dg.DagsterInstance, resources: dict, row: dict) -> None:
    started = time.perf_counter()
    result = materialize_selection(instance, resources, [forecast], row["horizon"], pair=row["pair"])
    row["status"] = "ok" if result.success else "FAILED"
    row["run_seconds"] = time.perf_counter() - started
    row.update(_materialization_metadata(result, "forecast") if result.success else {"error": _failure_message(result)})


def _watch(instance: dg.DagsterInstance, resources: dict, row: dict) -> None:
    row["rollback"] = watch_deploy(instance, resources, row["horizon"], row["pair"])


def _reports(instance: dg.DagsterInstance, resources: dict, row: dict) -> None:
    make_reports(instance, resources, row["horizon"], row["pair"])


def _decision(instance: dg.DagsterInstance, resources: dict, row: dict) -> None:
    row["decision"] = decide(instance, resources, row["horizon"], row["pair"])


def _optimization(instance: dg.DagsterInstance, resources: dict, row: dict) -> None:
    decision = row["decision"]
    if decision.optimize:
        tags = optimization_tags(decision, row["pair"])
        row["recalibration"] = recalibrate_horizon(instance, resources, row["horizon"], tags, row["pair"])


#: step name (``core/cycle.py``) -> what `make run` does for it; a test checks it drives every step and no other
CYCLE_DRIVERS = {
    "prices": _prices,
    "forecast": _forecast,
    "watch": _watch,
    "reports": _reports,
    "decision": _decision,
    "optimization": _optimization,
}


def watch_deploy(instance: dg.DagsterInstance, resources: dict, horizon: str, pair: str = PRIMARY_PAIR) -> str | None:
    """The rollback sensor's rule for the pair's horizon's latest deploy; runs rollback_job when it fires and
    returns the reason (None when the deploy is healthy or the version is not a deploy)."""
    settings = resources["policy"].settings()
    working_area, price_source = resources["working_area"], resources["price_source"]
    request = rollback_request(instance, working_area, price_source, settings, horizon, pair=pair)
    if request is None:
        return None
    rollback_job.execute_in_process(
        run_config={**request.run_config, **QUIET},
        instance=instance,
        resources=resources,
        tags={**request.tags, **own_tags()},
        raise_on_error=False,
    )
    checkpoint()
    return request.tags["forex/rollback_reason"]


def make_reports(
    instance: dg.DagsterInstance, resources: dict, horizon: str, pair: str = PRIMARY_PAIR
) -> dg.ExecuteInProcessResult:
    """The horizon's drift and performance reports (what their eager conditions materialize after new prices)."""
    return materialize_selection(instance, resources, [drift_report, performance_report], horizon, pair=pair)


def decide(instance: dg.DagsterInstance, resources: dict, horizon: str, pair: str = PRIMARY_PAIR) -> TriggerDecision:
    """The trigger manager's decision on the pair's horizon's latest reports, recorded (what optimization_sensor
    decides and records)."""
    settings = resources["policy"].settings()
    log = resources["working_area"].decision_log(pair)
    decision = decide_from_instance(instance, log, horizon, settings)
    log.record(decision)
    return decision


def recalibrate_horizon(
    instance: dg.DagsterInstance, resources: dict, horizon: str, tags: dict | None = None, pair: str = PRIMARY_PAIR
) -> dict:
    """candidate_config -> validation_report (blocking checks) -> deployed_config, for one horizon; when a
    new configuration was deployed, the horizon's forecast is made again with it."""
    started = time.perf_counter()
    selection = [candidate_config, validation_report, deployed_config]
    result = materialize_selection(instance, resources, selection, horizon, tags, pair)
    report = _materialization_metadata(result, "validation_report")
    candidate = _materialization_metadata(result, "candidate_config")
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    if not report:
        return {"verdict": "ERROR", "detail": _failure_message(result), "seconds": time.perf_counter() - started}
    failed = [name for name, passed in checks.items() if not passed]
    deployed = _materialization_metadata(result, "deployed_config")
    version = resources["working_area"].config_store(pair).current_version(horizon).id
    refreshed = None
    if deployed.get("changed"):
        refresh = materialize_selection(instance, resources, [forecast], horizon, pair=pair)
        refreshed = _materialization_metadata(refresh, "forecast").get("median_at_horizon_clp")
    return {
        "deployed": bool(deployed.get("changed")),
        "version": version,
        "refreshed_median": refreshed,
        "verdict": "approved" if not failed else "rejected",
        "failed_checks": failed,
        "candidate": candidate.get("label", ""),
        "rmse_improvement_pct": report.get("rmse_improvement_pct"),
        "wql_improvement_pct": report.get("wql_improvement_pct"),
        "approved_by": report.get("approved_by"),
        "html_report": report.get("html_report_path"),
        "seconds": time.perf_counter() - started,
    }


def format_summary(rows: list[dict]) -> str:
    quote = rows[0].get("pair", PRIMARY_PAIR)[3:] if rows else "CLP"
    header = (
        f"{'horizon':<8}{'origin':<12}{'last ' + quote:>10}{'median ' + quote:>12}{'95% interval ' + quote:>22}"
        f"{'infer s':>9}  {'config version':<26}status"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['horizon']:<8}FAILED: {_indent(r['error'], ' ' * 16)}")
            continue
        median = r["median_at_horizon_clp"]
        interval = f"[{r['interval_95_low_clp']:.1f}, {r['interval_95_high_clp']:.1f}]"
        lines.append(
            f"{r['horizon']:<8}{r['origin_date']:<12}{r['last_price_clp']:>10.2f}{median:>12.2f}"
            f"{interval:>22}{r['inference_seconds']:>9.3f}  "
            f"{r['config_version']:<26}ok"
        )
    decisions = [r for r in rows if "decision" in r]
    if decisions:
        lines += ["", "monitoring and trigger decisions:"]
        for r in decisions:
            d = r["decision"]
            verdict = f"OPTIMIZE ({', '.join(d.fired)})" if d.optimize else "no optimization"
            lines.append(f"  {r['horizon']:<5} {verdict}")
            if r.get("rollback"):
                lines.append(f"        {'ROLLBACK':<11} {r['rollback']}")
            for kind, reason in d.reasons.items():
                lines.append(f"        {kind:<11} {reason}")
    recalibrations = [r for r in rows if "recalibration" in r]
    if recalibrations:
        lines += ["", "recalibration (candidate search -> validation on the later, disjoint window):"]
        for r in recalibrations:
            rec = r["recalibration"]
            if rec["verdict"] == "ERROR":
                lines.append(f"  {r['horizon']:<5} ERROR: {_indent(rec['detail'], ' ' * 15)}")
                continue
            label = rec["verdict"].upper() if rec["verdict"] == "approved" else "rejected"
            failed = f"  failed: {', '.join(rec['failed_checks'])}" if rec["failed_checks"] else ""
            wql = rec.get("wql_improvement_pct")
            wql_text = f", WQL change {wql:+.2f} %" if isinstance(wql, int | float) else ""
            path = (
                f" by the {rec['approved_by']} path" if rec["verdict"] == "approved" and rec.get("approved_by") else ""
            )
            lines.append(
                f"  {r['horizon']:<5} {label:<9} RMSE change {rec['rmse_improvement_pct']:+.2f} %{wql_text}{path}  "
                f"({rec['seconds']:.1f} s){failed}"
            )
            lines.append(f"        candidate {rec['candidate']}")
            if rec["deployed"]:
                median = f"{rec['refreshed_median']} {quote}"
                lines.append(f"        DEPLOYED  {rec['version']}; new forecast median {median}")
            else:
                lines.append(f"        kept      {rec['version']}")
            lines.append(f"        report    {rec['html_report']}")
    return "\n".join(lines)


@click.command(name="run", cls=GreedyCommand, context_settings=CONTEXT_SETTINGS)
@price_source_options
@horizons_option
@pair_option
@click.option("--no-recalibration", is_flag=True, help="forecasts only")
@click.option(
    "--policy",
    "policy_file",
    metavar="FILE",
    help=f"the policy file (policies/*.json) to run with, e.g. one compared with `forex-assets replay --policy`; "
    f"default ${POLICY_FILE_ENV}, else policies/default.json",
)
@click.pass_context
def run_command(
    ctx: click.Context,
    source: PriceSourceName,
    csv_path: str | None,
    csv_date_column: str,
    csv_value_column: str | None,
    csv_delimiter: str,
    csv_decimal: str,
    csv_thousands: str,
    csv_date_format: str,
    csv_encoding: str,
    csv_skip_missing: bool,
    horizons: tuple[str, ...],
    pair: str,
    no_recalibration: bool,
    policy_file: str | None,
) -> None:
    """One cycle on the embedded instance, then a per-horizon summary (what `make run` does).

    The steps of the daily cycle, in the Dagster instance of $DAGSTER_HOME (a project-local SQLite instance
    when unset), exactly as the UI would materialize them: pair_prices, then per horizon the forecast, the
    rollback watch of the latest deploy, the drift and performance reports, the trigger decision and, when
    it says so, search, validation and deploy. Exit status 1 when a forecast or a recalibration failed."""
    check_price_source(source, csv_path)
    try:  # read and checked before anything runs; errors name the file and the key
        policy = load_policy_in_force(policy_file)
    except PolicyFileError as error:
        raise CliError(str(error)) from None
    os.environ[POLICY_FILE_ENV] = str(policy.path)  # what the policy resource of every run of the cycle reads
    home = ensure_dagster_home()
    started, began = time.perf_counter(), datetime.now(UTC)
    url = os.environ.get(MINDICADOR_URL_ENV)
    mindicador: dict[str, Any] = {"mindicador_base_url": url} if url else {}
    price_source = PriceSource(
        source=source,
        pair=pair,
        csv_path=csv_path,
        csv_date_column=csv_date_column,
        csv_value_column=csv_value_column,
        csv_delimiter=csv_delimiter,
        csv_decimal=csv_decimal,
        csv_thousands=csv_thousands,
        csv_date_format=csv_date_format,
        csv_encoding=csv_encoding,
        csv_skip_missing=csv_skip_missing,
        **mindicador,
    )
    try:
        with (
            collect_set_aside() as set_aside,
            dg.DagsterInstance.get() as instance,
            RunGuard(instance, STEP_MAX_RETRIES) as guard,
        ):
            guard.sweep()  # runs left unfinished by a killed process: marked failed, their pool claims freed
            try:
                rows = run_cycle(instance, price_source, WorkingArea(), horizons, not no_recalibration, pair)
            except Exception as error:  # outside a Dagster run (rollback watch, trigger decision, ...)
                if not is_expected(error):
                    raise  # a bug: keep the traceback
                click.echo(f"forex_assets cycle failed: {error}", err=True)
                ctx.exit(1)
    except Stopped as stop:  # Ctrl-C or SIGTERM
        click.echo(f"forex-assets run: stopped by {stop.name}{stop.detail}", err=True)
        ctx.exit(stop.exit_status)
    click.echo()
    shown = "" if pair == PRIMARY_PAIR else f"of {pair_label(pair)} "
    click.echo(f"forex_assets cycle {shown}on {price_source.describe()} (DAGSTER_HOME={home})")
    click.echo(f"policy {policy.label()}")
    click.echo(format_summary(rows))
    if set_aside:  # already logged as warnings; repeated here so that nobody misses them
        click.echo("\ncorrupt files set aside (the work went on without them):")
        for event in set_aside:
            click.echo(f"  {event.message()}")
    repaired = repair_summary(WorkingArea(), began, pair=pair)  # whoever repaired the store in the cycle; alerted once
    if repaired:
        click.echo("\n" + "\n".join(repaired))
    click.echo(f"\ncycle finished in {time.perf_counter() - started:.1f} s")
    errors = [r for r in rows if r["status"] != "ok" or r.get("recalibration", {}).get("verdict") == "ERROR"]
    ctx.exit(1 if errors else 0)


if __name__ == "__main__":  # `make run`: python -m forex_assets.cli.run [options]
    run_command(prog_name="forex-assets run")
