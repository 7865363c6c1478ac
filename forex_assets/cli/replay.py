"""`forex-assets replay`: what would the policy have done over this range? Table on stdout, JSON and HTML.

    forex-assets replay                                   # synthetic default, the last 6 months
    forex-assets replay --start 2024-10-31 --end 2026-10-30 --horizons 7d 30d
    forex-assets replay --source csv --csv-path usdclp.csv --start 2017-01-02 --end 2018-12-28

The synthetic default series carries a known regime change 30 business days before its end; it counts as
an injected drift (detection latency). ``--inject-drift 2026-03-02:3`` adds one more (volatility x3 for 60
business days), synthetic source only.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import click
import pandas as pd

from forex_assets.cli.main import (
    CONTEXT_SETTINGS,
    CliError,
    GreedyCommand,
    ISODate,
    check_price_source,
    horizons_option,
    price_source_options,
)


class Drift(click.ParamType):
    """``DATE[:VOLATILITY_MULTIPLIER]`` (the multiplier 3 when left out) -> InjectedDrift."""

    name = "DATE[:MULT]"

    def convert(self, value, param, ctx):
        from forex_assets.core.prices.synthetic import InjectedDrift

        if isinstance(value, InjectedDrift):
            return value
        day, _, multiplier = value.partition(":")
        try:
            return InjectedDrift(pd.Timestamp(date.fromisoformat(day)), float(multiplier or 3.0))
        except ValueError:
            self.fail(f"{value!r}: expected DATE[:VOLATILITY_MULTIPLIER]", param, ctx)


def load_provider(
    source: str,
    csv_path: str | None = None,
    csv_date_column: str = "date",
    csv_value_column: str = "usdclp",
    inject_drift: tuple = (),
) -> tuple:
    """(provider, injected drift onsets) from the command's options; the source's own errors pass through."""
    from forex_assets.core.prices.schema import validate_prices
    from forex_assets.core.prices.synthetic import RegimeChange, inject_drifts
    from forex_assets.core.replay.engine import PriceProvider
    from forex_assets.defs.resources import PriceSource

    price_source = PriceSource(
        source=source, csv_path=csv_path, csv_date_column=csv_date_column, csv_value_column=csv_value_column
    )
    prices = price_source.load()
    onsets = []
    if source == "synthetic":
        onsets.append(pd.Timestamp(prices["date"].iloc[-RegimeChange().observations_before_end]))
        if inject_drift:
            prices = validate_prices(inject_drifts(prices, list(inject_drift)), source=price_source.describe())
            onsets += [pd.Timestamp(d.onset) for d in inject_drift]
    return PriceProvider(prices, price_source.describe()), tuple(sorted(onsets))


@click.command(name="replay", cls=GreedyCommand, context_settings=CONTEXT_SETTINGS)
@price_source_options
@click.option("--start", type=ISODate(), help="first replay day  [default: 6 months before --end]")
@click.option("--end", type=ISODate(), help="last replay day  [default: the last price]")
@horizons_option
@click.option(
    "--inject-drift",
    type=Drift(),
    multiple=True,
    help="one more drift: volatility x MULT (default 3) for 60 business days from DATE; synthetic source "
    "only; repeatable",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="directory for replay_report.json / .html  [default: <working area>/replays/<time>]",
)
@click.option("--keep-state", is_flag=True, help="keep the replay's config store, logs and caches (under --out)")
@click.option("--no-progress", is_flag=True, help="no progress bar on stderr")
@click.pass_context
def replay_command(
    ctx: click.Context,
    source: str,
    csv_path: str | None,
    csv_date_column: str,
    csv_value_column: str,
    start: date | None,
    end: date | None,
    horizons: tuple[str, ...],
    inject_drift: tuple,
    out: str | None,
    keep_state: bool,
    no_progress: bool,
) -> None:
    """What would the policy have done over this range? Replays it business day by business day without
    look-ahead; prints a table per horizon against the ADR's success metrics and writes replay_report.json
    and .html. Exit status 3 when the report is partial (the price source failed mid-replay).

    \b
        forex-assets replay                                   # synthetic default, the last 6 months
        forex-assets replay --start 2024-10-31 --end 2026-10-30 --horizons 7d 30d
        forex-assets replay --source csv --csv-path usdclp.csv --start 2017-01-02 --end 2018-12-28

    The synthetic default series carries a known regime change 30 business days before its end; it counts
    as an injected drift (detection latency). --inject-drift 2026-03-02:3 adds one more."""
    from forex_assets.core.prices.schema import PriceValidationError
    from forex_assets.core.prices.sources import PriceSourceError
    from forex_assets.core.replay.engine import ReplayError, ReplaySettings, run_replay
    from forex_assets.core.replay.report import build_report, format_table, write_report
    from forex_assets.core.working_area import default_working_area

    check_price_source(source, csv_path)
    if inject_drift and source != "synthetic":
        raise CliError("--inject-drift is for the synthetic source only")
    try:
        provider, onsets = load_provider(source, csv_path, csv_date_column, csv_value_column, inject_drift)
    except (PriceValidationError, PriceSourceError, OSError) as error:
        raise CliError(f"the price source failed: {error}") from None
    first, last = provider.span()
    end = end or last.date()
    start = start or (pd.Timestamp(end) - pd.DateOffset(months=6)).date()
    settings = ReplaySettings(start=start, end=end, horizons=tuple(horizons), injected_drifts=onsets)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(out) if out else default_working_area() / "replays" / stamp
    state = out_dir / "state" if keep_state else Path(tempfile.mkdtemp(prefix="forex_replay_"))
    bar = None
    if not no_progress:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="day", file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int, day) -> None:
        if bar is not None:
            bar.total = total
            bar.set_postfix_str(str(day.date()))
            bar.update(1)

    try:
        result = run_replay(provider, settings, state, progress)
    except ReplayError as error:
        raise CliError(str(error)) from None
    finally:
        if bar is not None:
            bar.close()
    known = provider.visible(result.days[-1]) if result.days else provider.prices.iloc[:0]
    report = build_report(result, known)
    json_path, html_path = write_report(report, known, out_dir)
    click.echo(format_table(report))
    click.echo(f"\nreport: {html_path}\n        {json_path}")
    if not keep_state:
        import shutil

        shutil.rmtree(state, ignore_errors=True)
    ctx.exit(3 if result.partial else 0)
