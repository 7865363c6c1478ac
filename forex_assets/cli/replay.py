"""`forex-assets replay`: what would the policy have done over this range? Table on stdout, JSON and HTML.

    forex-assets replay                                   # synthetic default, the last 6 months
    forex-assets replay --start 2024-10-31 --end 2026-10-30 --horizons 7d 30d
    forex-assets replay --source csv --csv-path usdclp.csv --start 2017-01-02 --end 2018-12-28
    forex-assets replay --policy policies/adr.json --policy policies/default.json   # side by side

The synthetic default series carries a known regime change 30 business days before its end; it counts as
an injected drift (detection latency). ``--inject-drift 2026-03-02:3`` adds one more (volatility x3 for 60
business days), synthetic source only.
"""

from __future__ import annotations

import math
import shutil
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pandas as pd

from forex_assets.cli.main import (
    CONTEXT_SETTINGS,
    CliError,
    GreedyCommand,
    GreedyOption,
    ISODate,
    check_price_source,
    horizons_option,
    price_source_options,
)

if TYPE_CHECKING:
    from forex_assets.core.prices.sources import PriceSourceName

VALID_MULTIPLIER = (
    "the multiplier of the daily volatility from DATE on must be a positive number other than 1 "
    "(3: three times as volatile, 0.5: half as volatile)"
)


class Drift(click.ParamType):
    """``DATE[:VOLATILITY_MULTIPLIER]`` (the multiplier 3 when left out) -> InjectedDrift. A multiplier that is
    not a positive number other than 1 is refused (0 flattens the series, a negative one mirrors its returns,
    1 changes nothing: none is a drift whose detection could be timed), in one line, exit status 2."""

    name = "DATE[:MULT]"

    def convert(self, value, param, ctx):
        from forex_assets.core.prices.synthetic import InjectedDrift

        if isinstance(value, InjectedDrift):
            return value
        day, _, text = value.partition(":")
        try:
            onset, multiplier = pd.Timestamp(date.fromisoformat(day)), float(text or 3.0)
        except ValueError:
            raise CliError(f"--inject-drift {value!r}: expected DATE[:VOLATILITY_MULTIPLIER]") from None
        if not math.isfinite(multiplier) or multiplier <= 0 or multiplier == 1:
            raise CliError(f"--inject-drift {value!r}: {VALID_MULTIPLIER}")
        return InjectedDrift(onset, multiplier)


def price_source_from_options(
    source: PriceSourceName,
    csv_path: str | None = None,
    csv_date_column: str = "date",
    csv_value_column: str | None = None,
    csv_format: dict[str, str] | None = None,
    pair: str = "USDCLP",
    pairs_file: str | None = None,
    csv_skip_missing: bool = False,
):
    """The ``price_source`` resource the command's options describe. ``csv_format``: the CSV source's format
    settings by name (PriceSource's csv_delimiter, csv_decimal, csv_thousands, csv_date_format, csv_encoding);
    only those that are not "auto" are passed on."""
    from forex_assets.defs.resources import PriceSource

    chosen = (csv_format or {}).items()
    settings: dict[str, Any] = {name: value for name, value in chosen if value not in (None, "auto")}
    return PriceSource(
        source=source,
        pair=pair,
        pairs_file=pairs_file,
        csv_path=csv_path,
        csv_date_column=csv_date_column,
        csv_value_column=csv_value_column,
        csv_skip_missing=csv_skip_missing,
        **settings,
    )


def one_line(error: Exception) -> str:
    """A (possibly multi-line) price source or data contract error as one line: its lines joined by "; "."""
    lines = [line.strip().removeprefix("- ") for line in str(error).splitlines() if line.strip()]
    return (lines[0] + " " + "; ".join(lines[1:])).strip() if len(lines) > 1 else "".join(lines)


@click.command(name="replay", cls=GreedyCommand, context_settings=CONTEXT_SETTINGS)
@price_source_options
@click.option(
    "--pair",
    "pairs",
    cls=GreedyOption,
    default=("USDCLP",),
    show_default=True,
    help="a pair of the pairs file (USDCLP, EURCLP, USDBRL, ...): its calendar, seeds, data contract, and its "
    "CSV column unless --csv-value-column names one; several (--pair USDCLP EURCLP USDBRL): one replay each on "
    "the same range, one report each under --out/<pair>/ and a summary table across them",
)
@click.option("--pairs-file", metavar="FILE", help="the pairs file  [default: configs/pairs.json]")
@click.option("--start", type=ISODate(), help="first replay day  [default: 6 months before --end]")
@click.option("--end", type=ISODate(), help="last replay day  [default: the last price]")
@horizons_option
@click.option(
    "--inject-drift",
    type=Drift(),
    multiple=True,
    help="one more drift: volatility x MULT (default 3; a positive number other than 1) for 60 business days "
    "from DATE; synthetic source only; repeatable",
)
@click.option(
    "--policy",
    "policy_files",
    metavar="FILE",
    multiple=True,
    help="a policy settings file (policies/*.json) instead of $FOREX_POLICY_FILE, else policies/default.json (the "
    "policy `forex-assets run` uses); repeatable: two or "
    "more are replayed on the same days and compared",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="directory for replay_report.json / .html (with several policies: one directory per policy and "
    "replay_comparison.json / .html)  [default: <working area>/replays/<time>]",
)
@click.option("--keep-state", is_flag=True, help="keep the replay's config store, logs and caches (under --out)")
@click.option("--no-progress", is_flag=True, help="no progress bar on stderr")
@click.pass_context
def replay_command(
    ctx: click.Context,
    source: PriceSourceName,
    csv_path: str | None,
    csv_date_column: str,
    csv_value_column: str | None,
    pairs: tuple[str, ...],
    pairs_file: str | None,
    start: date | None,
    end: date | None,
    horizons: tuple[str, ...],
    inject_drift: tuple,
    policy_files: tuple[str, ...],
    out: str | None,
    keep_state: bool,
    no_progress: bool,
    # the CSV format options of price_source_options (cli/main.py)
    csv_delimiter: str = "auto",
    csv_decimal: str = "auto",
    csv_thousands: str = "auto",
    csv_date_format: str = "auto",
    csv_encoding: str = "auto",
    csv_skip_missing: bool = False,
) -> None:
    """What would the policy have done over this range? Replays it business day by business day without
    look-ahead; prints a table per horizon against the ADR's success metrics and writes replay_report.json
    and .html. Exit status 3 when the report is partial (the price source failed mid-replay).

    \b
        forex-assets replay                                   # synthetic default, the last 6 months
        forex-assets replay --start 2024-10-31 --end 2026-10-30 --horizons 7d 30d
        forex-assets replay --source csv --csv-path usdclp.csv --start 2017-01-02 --end 2018-12-28
        forex-assets replay --policy policies/adr.json --policy policies/default.json
        forex-assets replay --pair USDBRL --source csv --csv-path fx.csv --csv-value-column BRL --csv-skip-missing

    The synthetic default series carries a known regime change 30 business days before its end; it counts
    as an injected drift (detection latency). --inject-drift 2026-03-02:3 adds one more.

    Policies: without --policy, the one `forex-assets run` uses ($FOREX_POLICY_FILE, else
    policies/default.json). With two or more --policy files, each is replayed
    on the same days and prices in its own working area; each report goes to --out/<policy name>/, and the
    comparison (per horizon, one row per policy) to stdout and --out/replay_comparison.json / .html."""
    from forex_assets.core.replay.compare import format_comparison
    from forex_assets.core.replay.engine import ReplayError
    from forex_assets.core.replay.report import format_table
    from forex_assets.core.replay.setup import ReplayOptions, run_replays, set_up_replay
    from forex_assets.core.working_area import WorkingAreaLayout

    check_price_source(source, csv_path)
    codes = tuple(dict.fromkeys(p.replace("/", "").upper() for p in pairs))
    if len(codes) > 1 and csv_value_column:
        raise CliError(
            "--csv-value-column names one column: with several --pair each reads its own (configs/pairs.json)"
        )
    if len(codes) > 1 and len(policy_files) > 1:
        raise CliError(
            "several --pair and several --policy: replay the pairs with one policy, or one pair with several"
        )
    csv_format = {
        "csv_delimiter": csv_delimiter,
        "csv_decimal": csv_decimal,
        "csv_thousands": csv_thousands,
        "csv_date_format": csv_date_format,
        "csv_encoding": csv_encoding,
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(out) if out else WorkingAreaLayout.from_environment().replays / stamp
    setups = {}
    out_existed = out_dir.exists()
    for code in codes:  # every pair's inputs are read and checked before the first replay day and before --out
        price_source = price_source_from_options(
            source, csv_path, csv_date_column, csv_value_column, csv_format, code, pairs_file, csv_skip_missing
        )
        options = ReplayOptions(start, end, tuple(horizons), tuple(policy_files), tuple(inject_drift), code, pairs_file)
        pair_out = out_dir / code if len(codes) > 1 else out_dir
        try:
            setups[code] = set_up_replay(
                options, price_source.load, price_source.describe(), source == "synthetic", pair_out
            )
        except ReplayError as error:
            if setups and not out_existed:  # an earlier pair's report directories: nothing is left behind
                shutil.rmtree(out_dir, ignore_errors=True)
            raise CliError(one_line(error) if len(codes) == 1 else f"{code}: {one_line(error)}") from None
    if len(codes) > 1:
        _replay_pairs(ctx, setups, out_dir, no_progress, keep_state)
    [setup] = setups.values()
    compared = setup.compared
    bars: list = []

    def progress(name: str):
        if no_progress:
            return None
        from tqdm import tqdm

        for bar in bars:  # one bar at a time, the previous policy's finished
            bar.close()
        bar = tqdm(total=0, unit="day", file=sys.stderr, dynamic_ncols=True, desc=name if compared else None)
        bars.append(bar)

        def step(done: int, total: int, day) -> None:
            bar.total = total
            bar.set_postfix_str(str(day.date()))
            bar.update(1)

        return step

    try:
        run = run_replays(setup, progress, keep_state)
    except ReplayError as error:
        raise CliError(str(error)) from None
    finally:
        for bar in bars:
            bar.close()
    if not compared:
        [(name, replayed)] = run.replays.items()
        json_path, html_path = run.report_paths[name]
        click.echo(format_table(replayed.report))
        click.echo(f"\nreport: {html_path}\n        {json_path}")
    else:
        assert run.comparison is not None and run.comparison_paths is not None  # two or more policies: compared
        json_path, html_path = run.comparison_paths
        click.echo(format_comparison(run.comparison))
        click.echo("\nreports:")
        for name, (_, policy_html) in run.report_paths.items():
            click.echo(f"  {name}: {policy_html}")
        click.echo(f"comparison: {html_path}\n            {json_path}")
    ctx.exit(3 if run.partial else 0)


def _replay_pairs(ctx: click.Context, setups: dict, out_dir: Path, no_progress: bool, keep_state: bool) -> None:
    """Replay each pair's set-up (its report under ``out_dir/<pair>/``), one process per core at a time, then
    print and write the summary across pairs (``out_dir/pairs_summary.json``); exit status 3 when one stopped
    early. A pair's replay is the same in its own process: its prices, its working area, its report; torch
    gets the cores divided between the processes (bench/bench_pairs_replay.py: the time against one pair)."""
    import json
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from forex_assets.core.files import write_text_atomically
    from forex_assets.core.replay.engine import ReplayError
    from forex_assets.core.replay.pairs_summary import format_pairs_summary, pairs_summary

    cores = os.cpu_count() or 1
    workers = max(1, min(len(setups), cores))
    if not no_progress:
        click.echo(f"replaying {', '.join(setups)} in {workers} process(es) ...", err=True)
    reports, paths, partial = {}, {}, False
    # spawned, not forked: the parent has torch loaded (and its thread pool), which a fork must not copy
    context = multiprocessing.get_context("spawn")
    threads = max(1, cores // workers)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_torch_threads, initargs=(threads,)) as pool:
        futures = {code: pool.submit(_replay_one_pair, setup, keep_state) for code, setup in setups.items()}
        for code, future in futures.items():  # in the order given
            try:
                reports[code], paths[code], stopped_early = future.result()
            except ReplayError as error:
                pool.shutdown(cancel_futures=True)
                raise CliError(f"{code}: {error}") from None
            except BrokenProcessPool:  # a replay process killed (kill -9, out of memory): every pending one is lost
                _kill_replay_processes(pool)
                unfinished = ", ".join(c for c in setups if c not in reports)
                finished = f"{', '.join(reports)}, their reports under {out_dir}" if reports else "none"
                raise CliError(
                    "a replay process died before its report (killed, or out of memory: a pair's replay holds "
                    f"about 0.6 GiB), the others were stopped; unfinished: {unfinished}; finished: {finished}"
                ) from None
            partial = partial or stopped_early
    summary = pairs_summary(reports)
    summary_path = out_dir / "pairs_summary.json"
    write_text_atomically(summary_path, json.dumps(summary, indent=2))
    click.echo(format_pairs_summary(summary))
    click.echo("\nreports:")
    for code, html_path in paths.items():
        click.echo(f"  {code}: {html_path}")
    click.echo(f"summary: {summary_path}")
    ctx.exit(3 if partial else 0)


def _kill_replay_processes(pool) -> None:
    """SIGKILL the pool's processes still alive. The executor only sends them SIGTERM, then waits for them (and
    for its queue's feeder thread) with no time limit: a process that does not die of SIGTERM (blocked or
    ignored, as a parent's signal mask and ignored signals are inherited) would hang the command for ever."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):  # the executor's own (private)
        if process.is_alive():
            process.kill()


def _torch_threads(threads: int) -> None:
    """A pair's replay process: torch on ``threads`` threads (the cores shared between the processes)."""
    import torch

    torch.set_num_threads(threads)


def _replay_one_pair(setup, keep_state: bool) -> tuple[dict, Path, bool]:
    """One pair's replay in its process: (its report, its HTML report's path, whether it stopped early)."""
    from forex_assets.core.replay.setup import run_replays

    run = run_replays(setup, None, keep_state)
    [(name, replayed)] = run.replays.items()
    return replayed.report, run.report_paths[name][1], bool(run.partial)
