"""`forex-assets status` and `forex-assets history --horizon H`: the operator's questions, answered from the
instance ($DAGSTER_HOME, else the project's .dagster_home that `make run` uses) without opening the UI.

Both only read, and work on a read-only copy of an instance (a backup, an auditor's copy, a read-only mount):
the config store is opened read-only (no lock, no repair; what a writer's open would repair is listed under
the answer); the decision and alert logs are opened read-only and a log that does not exist is not created
(nothing recorded); a $FOREX_STATE_DATABASE_URL that names nothing is a one-line error
(``cli/state_reads.py``); `status` reads the Dagster instance's latest reports without writing to it
(``cli/instance_reports.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import click

from forex_assets.cli.main import CONTEXT_SETTINGS, CliError, GreedyCommand, GreedyOption, ISODate, pair_option
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.working_area import DAGSTER_HOME_ENV, PRIMARY_PAIR, dagster_home, pair_label

HISTORY_KINDS = ("deploy", "rollback", "decision", "validation", "seed", "repair")


class OperatorError(RuntimeError):
    """Said to the operator in one line, exit status 2."""


HINT = "run `make run` first, or set DAGSTER_HOME to the directory of the instance"


def dagster_instance_home() -> Path:
    """The instance directory (set as $DAGSTER_HOME for what reads it next); a clear error when there is none."""
    home = dagster_home()
    if not home.is_dir():
        raise OperatorError(f"no Dagster instance at {home}: {HINT}")
    if not any((home / name).exists() for name in ("dagster.yaml", "storage", "history")):
        raise OperatorError(f"{home} is not a Dagster instance (no dagster.yaml, no storage): {HINT}")
    os.environ[DAGSTER_HOME_ENV] = str(home)
    return home


def instance_home(pair: str = PRIMARY_PAIR) -> Path:
    """The instance directory; a clear error when nothing has run there (for ``pair``)."""
    home, hint = dagster_instance_home(), HINT
    store = config_store_path(pair)
    if not store.is_dir():
        what = "" if pair == PRIMARY_PAIR else f" for {pair}"
        raise OperatorError(f"no forex_assets config store{what} at {store} (nothing has run{what} on {home}): {hint}")
    return home


def config_store_path(pair: str = PRIMARY_PAIR) -> Path:
    """Where the working area's config store of ``pair`` is (what ``WorkingArea().config_store(pair)`` opens)."""
    from forex_assets.cli.state_reads import layout

    return layout().config_store_for(pair)


def read_only_store(pair: str = PRIMARY_PAIR):
    """The pair's config store, opened read-only: nothing is written, and what a writer would repair is in
    ``damage``."""
    from forex_assets.cli.state_reads import read_only_store as open_store

    return open_store(OperatorError, pair)  # production: reads fetch the remote's head


def _existing_logs(pair: str = PRIMARY_PAIR):
    """The decision log and the alert log of the working area, opened read-only, each None when nothing was
    recorded (no file: none is created); in production ($FOREX_STATE_DATABASE_URL) the ones in the state
    database (never adopting a local file's rows)."""
    from forex_assets.cli.state_reads import layout, open_for_reading, state_url
    from forex_assets.core.alerting.delivery import AlertLog
    from forex_assets.core.monitoring.decision_log import DecisionLog

    area = layout()
    url = state_url()
    decisions = open_for_reading(DecisionLog, area.decision_log, url, pair)
    return decisions, open_for_reading(AlertLog, area.alert_log, url, pair)


def _reports(
    home: Path, pairs: tuple[str, ...] = (PRIMARY_PAIR,)
) -> tuple[Mapping[str, Mapping[str, tuple[dict | None, dict | None]]], str]:
    """pair -> horizon -> the metadata of its latest (drift, performance) reports, and a note for the operator:
    when the instance cannot be read, each is None (shown "unavailable") and the note says why."""
    from forex_assets.cli.instance_reports import latest_reports_of_pairs

    try:
        return latest_reports_of_pairs(home, HORIZONS, pairs), ""
    except Exception as error:  # a database of Dagster's that cannot be read: the rest of the status still can
        detail = " ".join(str(error).split()) or type(error).__name__
        note = (
            f"\n\ndrift and performance: unavailable, the Dagster instance at {home} could not be read "
            f"({type(error).__name__}: {detail})"
        )
        return {pair: {h: (None, None) for h in HORIZONS} for pair in pairs}, note


#: the variable that names the policy file in force (``core/policy_file.py``'s, which loads the whole modeling
#: stack to be imported: test_fast_cli.py checks that they agree)
POLICY_FILE_ENV = "FOREX_POLICY_FILE"


def schedule_days() -> int:
    """Days between scheduled optimizations of a horizon in the policy in force. Without ``$FOREX_POLICY_FILE``
    the policy is the default file, which holds every default: ``TriggerPolicy``'s own, read without loading a
    policy (seconds: the thresholds' modules load numpy, pandas, scipy and torch). A policy file that is set is
    read as the code location reads it."""
    if not os.environ.get(POLICY_FILE_ENV):
        from forex_assets.core.monitoring.triggers import TriggerPolicy

        return TriggerPolicy().schedule_days
    from forex_assets.core.policy_file import PolicyFileError, load_policy_in_force

    try:
        return load_policy_in_force().settings.triggers.schedule_days
    except PolicyFileError as error:
        raise OperatorError(str(error)) from None


def status(now: datetime | None = None, pair: str | None = PRIMARY_PAIR) -> str:
    """The status table of ``pair``'s horizons; ``pair=None``: the pair x horizon grid of every declared pair
    that has run on the instance (a pair column when there are several), and the declared pairs that have not."""
    from forex_assets.cli.views import format_damage, format_table, status_row
    from forex_assets.core.monitoring.schedule import TIMEZONE, WEEKLY_OPTIMIZATION_CRON

    pairs: tuple[str, ...] = (pair,) if pair is not None else ()
    not_run: tuple[str, ...] = ()
    if pair is None:
        pairs, not_run = pairs_run_here()
    home = instance_home(pairs[0])
    schedule = (WEEKLY_OPTIMIZATION_CRON, TIMEZONE, schedule_days())
    now = now or datetime.now(UTC)
    reports, note = _reports(home, pairs)
    rows, damage = [], []
    for code in pairs:
        store = read_only_store(code)
        log, alerts = _existing_logs(code)
        with _state_errors():
            shown = pair_label(code)
            rows += [status_row(h, store, log, alerts, *reports[code][h], now, schedule, shown) for h in HORIZONS]
        damage.append(format_damage(store))
    table = format_table(rows)
    title = f"{pair_label(pairs[0])}, " if len(pairs) == 1 and pairs[0] != PRIMARY_PAIR else ""
    if not_run:
        note += f"\n\nnot run on this instance yet: {', '.join(pair_label(code) for code in not_run)}"
    return f"forex_assets status ({title}{home}, {now:%Y-%m-%d %H:%M} UTC)\n\n{table}{note}{''.join(damage)}"


def pairs_run_here() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the declared pairs that have a config store on the instance, those that have none), in the pairs file's
    order; USD/CLP stands for a single-pair instance's when no pairs file can be read. None has run: the error
    of :func:`instance_home` for the first declared pair."""
    from forex_assets.cli.main import declared_pairs

    dagster_instance_home()
    declared = declared_pairs() or (PRIMARY_PAIR,)
    run = tuple(code for code in declared if config_store_path(code).is_dir())
    if not run:
        instance_home(declared[0])
    return run, tuple(code for code in declared if code not in run)


@contextmanager
def _state_errors() -> Iterator[None]:
    """A state database that fails while it is read (a connection lost, a corrupt file): one line."""
    from forex_assets.core.corrupt_files import CorruptFileError
    from forex_assets.core.storage import StateDatabaseError

    try:
        yield
    except (StateDatabaseError, CorruptFileError) as error:
        raise OperatorError(str(error)) from None


def history(horizon: str, since: date | None = None, kinds: list[str] | None = None, pair: str = PRIMARY_PAIR) -> str:
    from forex_assets.cli.state_reads import layout
    from forex_assets.cli.views import format_damage, format_history
    from forex_assets.core.monitoring.optimization_history import decision_events, store_events, validation_events

    if horizon not in HORIZONS:
        raise OperatorError(f"unknown horizon {horizon!r}; horizons are {', '.join(HORIZONS)}")
    instance_home(pair)
    store = read_only_store(pair)
    log, _ = _existing_logs(pair)
    reports = layout().reports_for(horizon, pair)  # globbed; not created when missing
    with _state_errors():
        decisions = decision_events(log, horizon) if log else []
    events = sorted(store_events(store, horizon) + decisions + validation_events(reports, horizon), key=lambda e: e.at)
    if since is not None:
        events = [e for e in events if e.at.date() >= since]
    title = ("" if pair == PRIMARY_PAIR else f"{pair_label(pair)} ") + f"{horizon} history"
    title += f" since {since}" if since else ""
    return f"{title}\n\n{format_history(events, set(kinds) if kinds else None)}{format_damage(store)}"


def _say(answer) -> None:
    try:
        click.echo(answer())
    except OperatorError as error:
        raise CliError(str(error)) from None


@click.command(name="status", cls=GreedyCommand, context_settings=CONTEXT_SETTINGS)
@pair_option(every_by_default=True)
def status_command(pair: str | None) -> None:
    """Per pair and horizon: deployed version and when, last drift severity, performance degradation, band,
    last optimization, next scheduled optimization, last alert. Without --pair, every declared pair that has run
    on the instance, one grid (a pair column when there are several).

    Reads the instance of $DAGSTER_HOME (default: the project's .dagster_home, what `make run` uses)."""
    _say(lambda: status(pair=pair))


@click.command(name="history", cls=GreedyCommand, context_settings=CONTEXT_SETTINGS)
@click.option("--horizon", required=True, metavar="H", help=", ".join(HORIZONS))
@click.option("--since", type=ISODate(), help="only events on or after this date")
@click.option(
    "--kind",
    cls=GreedyOption,
    type=click.Choice(HISTORY_KINDS),
    help="only these kinds of event (one or more)",
)
@pair_option
def history_command(horizon: str, since: date | None, kind: tuple[str, ...], pair: str) -> None:
    """Deploys, rollbacks, trigger decisions and validations of one horizon, with their reasons.

    Reads the instance of $DAGSTER_HOME (default: the project's .dagster_home, what `make run` uses)."""
    _say(lambda: history(horizon, since, list(kind), pair))
