"""`forex-assets status` and `forex-assets history --horizon H`: the operator's questions, answered from the
instance ($DAGSTER_HOME, else the project's .dagster_home that `make run` uses) without opening the UI.

Both only read: the config store is opened read-only (no lock, no repair; what a writer's open would repair
is listed under the answer), and a decision or alert log that does not exist is not created."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import click

from forex_assets.cli.main import CONTEXT_SETTINGS, CliError, GreedyCommand, GreedyOption, ISODate
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.working_area import PROJECT_ROOT, default_working_area

HISTORY_KINDS = ("deploy", "rollback", "decision", "validation", "seed", "repair")


class OperatorError(RuntimeError):
    """Said to the operator in one line, exit status 2."""


def instance_home() -> Path:
    """The instance directory; a clear error when nothing has run there."""
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home").expanduser()
    hint = "run `make run` first, or set DAGSTER_HOME to the directory of the instance"
    if not home.is_dir():
        raise OperatorError(f"no Dagster instance at {home}: {hint}")
    if not any((home / name).exists() for name in ("dagster.yaml", "storage", "history")):
        raise OperatorError(f"{home} is not a Dagster instance (no dagster.yaml, no storage): {hint}")
    os.environ["DAGSTER_HOME"] = str(home)
    store = config_store_path()
    if not store.is_dir():
        raise OperatorError(f"no forex_assets config store at {store} (nothing has run on {home}): {hint}")
    return home


def config_store_path() -> Path:
    """Where the working area's config store is (what ``WorkingArea().config_store()`` opens)."""
    configured = os.environ.get("FOREX_CONFIG_STORE_DIR")
    return Path(configured).expanduser() if configured else default_working_area() / "config_store"


def read_only_store():
    """The config store, opened read-only: nothing is written, and what a writer would repair is in ``damage``."""
    from forex_assets.core.deployment.config_store import ConfigStore, ConfigStoreError

    remote = os.environ.get("FOREX_CONFIG_STORE_REMOTE") or None  # production: reads fetch the remote's head
    try:
        return ConfigStore(config_store_path(), read_only=True, remote=remote)
    except ConfigStoreError as error:
        raise OperatorError(f"config store {error}") from None


def _existing_logs():
    """The decision log and the alert log of the working area, each None when it does not exist (not created);
    in production ($FOREX_STATE_DATABASE_URL) the ones in the state database."""
    from forex_assets.core.alerting.delivery import AlertLog
    from forex_assets.core.monitoring.decision_log import DecisionLog
    from forex_assets.core.storage.engine import configured_url

    area = default_working_area()
    url = configured_url()
    if url:
        # readers: never adopt a local file's rows into the production database
        decisions = DecisionLog(area / "trigger_decisions.sqlite", database_url=url, adopt_file=False)
        return decisions, AlertLog(area / "alerts.sqlite", database_url=url, adopt_file=False)
    decisions, alerts = area / "trigger_decisions.sqlite", area / "alerts.sqlite"
    return (DecisionLog(decisions) if decisions.is_file() else None), (AlertLog(alerts) if alerts.is_file() else None)


def status(now: datetime | None = None) -> str:
    import dagster as dg

    from forex_assets.cli.views import format_damage, format_table, status_row
    from forex_assets.defs.monitoring.automation import DRIFT, PERFORMANCE, TIMEZONE, latest_metadata
    from forex_assets.defs.monitoring.automation import weekly_optimization_schedule as weekly
    from forex_assets.defs.resources import MonitoringPolicy

    home = instance_home()
    store = read_only_store()
    log, alerts = _existing_logs()
    schedule = (weekly.cron_schedule, TIMEZONE, MonitoringPolicy().schedule_days)
    now = now or datetime.now(UTC)
    with dg.DagsterInstance.get() as instance:
        rows = [
            status_row(
                h,
                store,
                log,
                alerts,
                latest_metadata(instance, DRIFT, h),
                latest_metadata(instance, PERFORMANCE, h),
                now,
                schedule,
            )
            for h in HORIZONS
        ]
    return f"forex_assets status ({home}, {now:%Y-%m-%d %H:%M} UTC)\n\n{format_table(rows)}{format_damage(store)}"


def history(horizon: str, since: date | None = None, kinds: list[str] | None = None) -> str:
    from forex_assets.cli.views import format_damage, format_history
    from forex_assets.core.monitoring.optimization_history import decision_events, store_events, validation_events

    if horizon not in HORIZONS:
        raise OperatorError(f"unknown horizon {horizon!r}; horizons are {', '.join(HORIZONS)}")
    instance_home()
    store = read_only_store()
    log, _ = _existing_logs()
    reports = default_working_area() / "reports" / horizon  # globbed; not created when missing
    decisions = decision_events(log, horizon) if log else []
    events = sorted(store_events(store, horizon) + decisions + validation_events(reports, horizon), key=lambda e: e.at)
    if since is not None:
        events = [e for e in events if e.at.date() >= since]
    title = f"{horizon} history" + (f" since {since}" if since else "")
    return f"{title}\n\n{format_history(events, set(kinds) if kinds else None)}{format_damage(store)}"


def _say(answer) -> None:
    try:
        click.echo(answer())
    except OperatorError as error:
        raise CliError(str(error)) from None


@click.command(name="status", cls=GreedyCommand, context_settings=CONTEXT_SETTINGS)
def status_command() -> None:
    """Per horizon: deployed version and when, last drift severity, performance degradation, last
    optimization, next scheduled optimization, last alert.

    Reads the instance of $DAGSTER_HOME (default: the project's .dagster_home, what `make run` uses)."""
    _say(status)


@click.command(name="history", cls=GreedyCommand, context_settings=CONTEXT_SETTINGS)
@click.option("--horizon", required=True, metavar="H", help=", ".join(HORIZONS))
@click.option("--since", type=ISODate(), help="only events on or after this date")
@click.option(
    "--kind",
    cls=GreedyOption,
    type=click.Choice(HISTORY_KINDS),
    help="only these kinds of event (one or more)",
)
def history_command(horizon: str, since: date | None, kind: tuple[str, ...]) -> None:
    """Deploys, rollbacks, trigger decisions and validations of one horizon, with their reasons.

    Reads the instance of $DAGSTER_HOME (default: the project's .dagster_home, what `make run` uses)."""
    _say(lambda: history(horizon, since, list(kind)))
