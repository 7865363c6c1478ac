"""`forex-assets forecasts --horizon H`: the recorded forecasts, as CSV or JSON, for the people who use them.

    forex-assets forecasts --horizon 30d                                  # the latest forecast, CSV on stdout
    forex-assets forecasts --horizon 7d --since 2026-10-01 --until 2026-10-31 --format json --output oct.json

One row per (horizon, origin date, step): the target date, every quantile (CLP per USD), the last price at the
origin, the configuration version that made the forecast and when it was recorded. The columns are those of the
forecast history's tables, documented with example SQL for BI tools in docs/forecast_table.md.

Only reads: the forecast history of the working area is never created, and neither is the working area; an
absent history is a one-line error (exit status 2). It is opened read-only (``cli/state_reads.py``), so a
read-only copy of an instance exports as the instance would. --output is written whole or not at all: into a
temporary file next to it, renamed over it once complete; a file that cannot be written (no such directory,
a full disk, no permission) is a one-line error naming it, and nothing is left behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from datetime import date
from pathlib import Path

import click

from forex_assets.cli.main import CONTEXT_SETTINGS, CliError, ISODate, pair_option
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.working_area import pair_label

FORMATS = ("csv", "json")


def history_path() -> Path:  # every pair's: the rows are keyed by pair
    """The working area's forecast history, where `make run` and the instance of $DAGSTER_HOME write it:
    $FOREX_ASSETS_HOME, else $DAGSTER_HOME/forex_assets, else the project's .dagster_home/forex_assets."""
    from forex_assets.cli.state_reads import layout

    return layout().forecast_history


def export_columns() -> list[str]:
    from forex_assets.core.forecasting.history import QUANTILE_COLUMNS

    return ["horizon", "origin_date", "step", "target_date", *QUANTILE_COLUMNS, "last_price", "config_version",
            "created_at"]  # fmt: skip


def forecast_rows(
    path: Path,
    horizon: str,
    since: date | None = None,
    until: date | None = None,
    database_url: str | None = None,
    pair: str = "USDCLP",
) -> list[dict]:
    """The recorded forecasts of ``horizon`` as rows of :func:`export_columns`, ordered by origin and step: the
    latest origin's when neither ``since`` nor ``until`` is given, else every origin in [since, until].
    ``database_url``: the state database (production) instead of the SQLite file at ``path``."""
    if database_url:
        return _rows(path, horizon, since, until, database_url, pair)
    if not path.is_file():
        raise CliError(f"no forecast history at {path}: run `make run` first, or set DAGSTER_HOME (or "
                       "FOREX_ASSETS_HOME) to the instance whose forecasts to export")  # fmt: skip
    if path.stat().st_size == 0:  # opening it would write the schema into it
        raise CliError(f"{path} is empty: not a forecast history")
    return _rows(path, horizon, since, until, None, pair)


def _rows(
    path: Path, horizon: str, since: date | None, until: date | None, database_url: str | None, pair: str
) -> list[dict]:
    import pandas as pd

    from forex_assets.cli.state_reads import open_for_reading
    from forex_assets.core.corrupt_files import CorruptFileError
    from forex_assets.core.forecasting.history import QUANTILE_COLUMNS, ForecastHistory
    from forex_assets.core.storage import StateDatabaseError

    where = "the state database" if database_url else str(path)
    history = open_for_reading(ForecastHistory, path, database_url, pair)  # read-only: creates, writes nothing
    if history is None:  # a database without the forecast history's tables
        raise CliError(f"no {_of(pair)}{horizon} forecasts recorded in {where}")
    try:
        if since is None and until is None:
            runs = history.runs(horizon)
            if runs.empty:
                raise CliError(f"no {_of(pair)}{horizon} forecasts recorded in {where}")
            runs = runs[runs["origin_date"] == runs["origin_date"].max()]
            start = runs["origin_date"].iloc[0]
        else:
            start = pd.Timestamp(since) if since is not None else None
            runs = history.runs(horizon, since=start)
        steps = history.steps(horizon, since=start)
    except CliError:
        raise
    except (CorruptFileError, StateDatabaseError) as error:
        raise CliError(str(error)) from None
    except Exception as error:  # SQLite's (or pandas') errors
        raise CliError(f"cannot read the forecast history {path}: {error}") from None
    if until is not None:
        runs = runs[runs["origin_date"] <= pd.Timestamp(until)]
    table = steps.merge(runs, on=["horizon", "origin_date"], how="inner", validate="many_to_one")
    table = table.sort_values(["origin_date", "step"])
    return [
        {
            "horizon": row.horizon,
            "origin_date": row.origin_date.strftime("%Y-%m-%d"),
            "step": int(row.step),
            "target_date": row.target_date.strftime("%Y-%m-%d"),
            **{column: float(getattr(row, column)) for column in QUANTILE_COLUMNS},
            "last_price": float(row.last_price),
            "config_version": row.config_version,
            "created_at": row.created_at,
        }
        for row in table.itertuples(index=False)
    ]


def _of(pair: str) -> str:
    """How a message names a pair other than USD/CLP ("EUR/CLP "); USD/CLP's messages read as they always did."""
    return "" if pair == "USDCLP" else f"{pair_label(pair)} "


def render(rows: list[dict], output_format: str) -> str:
    """CSV with a header (floats at full precision: they read back equal) or a JSON list of records."""
    if output_format == "json":
        return json.dumps(rows, indent=2, allow_nan=False) + "\n"
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=export_columns(), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


@click.command(name="forecasts", context_settings=CONTEXT_SETTINGS)
@click.option("--horizon", required=True, type=click.Choice(HORIZONS), help="the horizon whose forecasts to export")
@click.option("--since", type=ISODate(), help="only origins on or after this date (a range)")
@click.option("--until", type=ISODate(), help="only origins on or before this date (a range)")
@click.option(
    "--format", "output_format", type=click.Choice(FORMATS), default="csv", show_default=True, help="csv or json"
)
@click.option("--output", metavar="FILE", type=click.Path(dir_okay=False), help="write to FILE instead of stdout")
@pair_option
def forecasts_command(
    horizon: str, since: date | None, until: date | None, output_format: str, output: str | None, pair: str
) -> None:
    """The recorded forecasts of one horizon: one row per origin date and step, with the target date, every
    quantile (CLP per USD), the last price at the origin, the configuration version that made the forecast and
    when it was recorded (UTC). Without --since or --until, the latest origin only; with either, every origin
    in the range.

    Reads the forecast history of the working area ($FOREX_ASSETS_HOME, else $DAGSTER_HOME/forex_assets,
    default: the project's .dagster_home, what `make run` uses), or the state database when
    $FOREX_STATE_DATABASE_URL is set (production), and writes nothing there. The table and its
    columns are described in docs/forecast_table.md."""
    if since is not None and until is not None and since > until:
        raise click.BadParameter(f"--since {since} is after --until {until}", param_hint="'--since'")
    from forex_assets.cli.state_reads import state_url as configured_url

    text = render(forecast_rows(history_path(), horizon, since, until, configured_url(), pair), output_format)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_whole(Path(output), text)


def write_whole(path: Path, text: str) -> None:
    """``text`` into ``path`` whole or not at all: written and flushed to a temporary file in the same
    directory, then renamed over ``path``; on any failure the temporary file is removed and ``path`` is as it
    was. A character device (``/dev/stdout``, ``/dev/full``) cannot be replaced: it is written directly."""
    data = text.encode("utf-8")
    try:
        if path.exists() and not path.is_file():
            with path.open("wb") as device:
                device.write(data)
            return
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o666 & ~_umask())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise CliError(f"cannot write --output {path}: {error.strerror or error}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
