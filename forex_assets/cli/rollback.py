"""`forex-assets rollback --horizon H [--to VERSION]`: roll one horizon's configuration back from a terminal.

Runs ``rollback_job`` in process on the instance of $DAGSTER_HOME (what `forex-assets run` does when the
rollback watch fires), so the run is recorded there, shows in the UI and carries this process's owner tags
(killed, it is marked failed, not left STARTED), with the job's own guards (the configuration already
deployed, an unknown version, a horizon without a previous version, no prices the forecast refresh can use,
a state database out of reach: refused, nothing changed) and its alert (run log, e-mail
when SMTP is set, the alert log `forex-assets status` reads). Prints the versions (rolled back from ->
restored, and the new commit that records it) and the refreshed forecast.

Exit status: 0 rolled back and forecast again; 1 rolled back but the forecast refresh failed (the rollback
stands; the next forecast run uses the restored configuration); 2 refused, one line on stderr.
"""

from __future__ import annotations

import click

from forex_assets.cli.main import (
    CONTEXT_SETTINGS,
    CliError,
    GreedyCommand,
    check_price_source,
    pair_option,
    price_source_options,
)
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.working_area import pair_label

DEFAULT_REASON = "manual rollback (forex-assets rollback)"
VERSIONS_LISTED = 10  # an unknown --to is answered with the horizon's newest versions, at most this many


def known_versions(horizon: str, to_version: str, pair: str = "USDCLP") -> str | None:
    """None when ``to_version`` is one of the horizon's versions in the config store (its id or a commit
    prefix), else the text that lists the versions there are, newest first (read-only: nothing is written)."""
    from forex_assets.cli.operator import read_only_store
    from forex_assets.core.deployment.history import commit_of

    versions = read_only_store(pair).history(horizon)
    wanted = commit_of(to_version).lower()
    if any(v.id == to_version or (len(wanted) >= 4 and v.commit.startswith(wanted)) for v in versions):
        return None
    if not versions:
        return f"{horizon} has no version in the config store"
    listed = ", ".join(v.id for v in versions[:VERSIONS_LISTED])
    older = len(versions) - VERSIONS_LISTED
    more = f" and {older} older (forex-assets history --horizon {horizon})" if older > 0 else ""
    return f"the versions of {horizon}, newest first: {listed}{more}"


def failure(result) -> str:
    """The error of the job's failed step, in one line."""
    from forex_assets.cli.replay import one_line
    from forex_assets.cli.run import _failure_message

    return one_line(RuntimeError(_failure_message(result)))


def recorded(result, asset_name: str) -> dict:
    """The metadata of the job's materialization of ``asset_name`` ({} when none)."""
    from forex_assets.cli.run import _materialization_metadata

    return _materialization_metadata(result, asset_name)


def refusal(result, horizon: str, to_version: str, pair: str = "USDCLP") -> str:
    """The job's reason for refusing, in one line; for a version the horizon never had, the ones it had (when
    the store can be read: else the job's reason says why it cannot, once)."""
    from forex_assets.cli.operator import OperatorError

    message = failure(result)
    if to_version != "previous":
        try:
            versions = known_versions(horizon, to_version, pair)
        except OperatorError as error:  # the store cannot be read: said once (the job's step failed on it too)
            problem = str(error).removeprefix("config store ")
            return message if problem in message else f"{message}; {error}"
        if versions is not None:
            message += f"; {versions}"
    return message


def run_rollback(horizon: str, to_version: str, reason: str, price_options: dict, pair: str = "USDCLP"):
    """rollback_job on the instance of $DAGSTER_HOME with every resource of the code location (the price
    source from the options: the forecast refresh's fallback when no stored prices can be read), tagged with
    this process as owner; the job's result, failures not raised. No expected_version: a manual rollback rolls
    back whatever is deployed."""
    import dagster as dg

    from forex_assets.cli.run import QUIET
    from forex_assets.cli.run_guard import own_tags
    from forex_assets.defs.deployment.jobs import rollback_job
    from forex_assets.defs.resources import PriceSource, WorkingArea, code_location_resources

    restore = {"pair": pair, "horizon": horizon, "to_version": to_version, "reason": reason}
    tags = {
        "forex/pair": pair,
        "forex/horizon": horizon,
        "forex/rollback_reason": reason[:200],
        "forex/launched_by": "forex-assets rollback",
        **own_tags(),  # this process owns the run: killed, it is marked failed (dead_runs), not left STARTED
    }
    with dg.DagsterInstance.get() as instance:
        return rollback_job.execute_in_process(
            run_config={"ops": {"restore_config": {"config": restore}}} | QUIET,
            instance=instance,
            resources=code_location_resources(WorkingArea(), PriceSource(pair=pair, **price_options)),
            tags=tags,
            raise_on_error=False,
        )


def format_result(
    horizon: str, rolled: dict, forecast: dict, reason: str, run_id: str, home, pair: str = "USDCLP"
) -> str:
    series = horizon if pair == "USDCLP" else f"{pair_label(pair)} {horizon}"
    lines = [
        f"{series} rolled back: {rolled['previous_version']} -> {rolled['restored_version']} "
        f"(recorded as version {rolled['version']})",
        f"  reason    {reason}",
    ]
    if forecast:
        lines.append(
            f"  forecast  origin {forecast['origin_date']}: median {forecast['median_at_horizon_clp']:.2f} {pair[3:]}, "
            f"95 % [{forecast['interval_95_low_clp']:.2f}, {forecast['interval_95_high_clp']:.2f}] "
            f"with {forecast['config_version']}"
        )
    lines.append(f"  run       {run_id} (rollback_job, DAGSTER_HOME={home})")
    return "\n".join(lines)


@click.command(name="rollback", cls=GreedyCommand, context_settings=CONTEXT_SETTINGS)
@click.option("--horizon", required=True, metavar="H", help=", ".join(HORIZONS))
@click.option(
    "--to",
    "to_version",
    default="previous",
    show_default=True,
    metavar="VERSION",
    help="'previous' or a version id of the horizon (forex-assets history --horizon H lists them)",
)
@click.option("--reason", default=DEFAULT_REASON, show_default=True, help="recorded in the commit and the alert")
@pair_option
@price_source_options
@click.pass_context
def rollback_command(
    ctx: click.Context, horizon: str, to_version: str, reason: str, pair: str, **price_options
) -> None:
    """Roll one horizon's configuration back (default: to the previous version) and forecast it again.

    Runs rollback_job on the instance of $DAGSTER_HOME (default: the project's .dagster_home, what `make run`
    uses): the run shows in the UI, the rollback is a new commit of the config store, the alert is sent and
    logged, and `forex-assets status` shows the new version. The refreshed forecast uses the prices the
    instance stored (the latest pair_prices); the price source options, the ones the cycle runs with, only
    when there are none that can be read. Refused in one line, exit status 2, when the version
    is the one deployed, unknown, or the horizon has no previous version; exit status 1 when the rollback
    was made but the forecast refresh failed."""
    from forex_assets.cli.operator import OperatorError, instance_home

    if horizon not in HORIZONS:
        raise CliError(f"unknown horizon {horizon!r}; horizons are {', '.join(HORIZONS)}")
    check_price_source(price_options["source"], price_options["csv_path"])
    try:
        home = instance_home(pair)  # refused when nothing has run there: no store, no deployed version
    except OperatorError as error:
        raise CliError(str(error)) from None
    from forex_assets.cli.instance_storage import prepare_instance

    prepare_instance(home)  # under the instance's lock: a cycle starting beside it may be creating the storage
    result = run_rollback(horizon, to_version, reason, price_options, pair)
    if not result.is_node_success("restore_config"):
        raise CliError(refusal(result, horizon, to_version, pair))
    rolled, forecast = recorded(result, "deployed_config"), recorded(result, "forecast")
    click.echo(format_result(horizon, rolled, forecast, reason, result.run_id, home, pair))
    if not result.success:
        click.echo(
            f"{ctx.command_path}: the rollback stands, but the forecast refresh failed: {failure(result)}; the "
            "next forecast run uses the restored configuration",
            err=True,
        )
        ctx.exit(1)
