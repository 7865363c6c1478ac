"""`forex-assets replay`: what would the policy have done over this range? Table on stdout, JSON and HTML.

    forex-assets replay                                   # synthetic default, the last 6 months
    forex-assets replay --start 2024-10-31 --end 2026-10-30 --horizons 7d 30d
    forex-assets replay --source csv --csv-path usdclp.csv --start 2017-01-02 --end 2018-12-28

The synthetic default series carries a known regime change 30 business days before its end; it counts as
an injected drift (detection latency). ``--inject-drift 2026-03-02:3`` adds one more (volatility x3 for 60
business days), synthetic source only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from forex_assets.core.horizons import HORIZONS


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _drift(text: str):
    from forex_assets.core.prices.synthetic import InjectedDrift

    day, _, multiplier = text.partition(":")
    try:
        return InjectedDrift(pd.Timestamp(_date(day)), float(multiplier or 3.0))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected DATE[:VOLATILITY_MULTIPLIER]") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="forex-assets replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--source", choices=["synthetic", "csv", "mindicador"], default="synthetic")
    p.add_argument("--csv-path")
    p.add_argument("--csv-date-column", default="date")
    p.add_argument("--csv-value-column", default="usdclp")
    p.add_argument("--start", type=_date, help="first replay day (default: 6 months before --end)")
    p.add_argument("--end", type=_date, help="last replay day (default: the last price)")
    p.add_argument("--horizons", nargs="+", default=list(HORIZONS), choices=list(HORIZONS))
    p.add_argument("--inject-drift", type=_drift, action="append", default=[], metavar="DATE[:MULT]")
    p.add_argument("--out", help="directory for replay_report.json / .html (default: <working area>/replays/<time>)")
    p.add_argument("--keep-state", action="store_true", help="keep the replay's config store, logs and caches")
    p.add_argument("--no-progress", action="store_true")
    return p


def load_provider(args) -> tuple:
    """(provider, injected drift onsets) from the arguments; the source's own errors pass through."""
    from forex_assets.core.prices.schema import validate_prices
    from forex_assets.core.prices.synthetic import RegimeChange, inject_drifts
    from forex_assets.core.replay.engine import PriceProvider
    from forex_assets.defs.resources import PriceSource

    source = PriceSource(
        source=args.source,
        csv_path=args.csv_path,
        csv_date_column=args.csv_date_column,
        csv_value_column=args.csv_value_column,
    )
    prices = source.load()
    onsets = []
    if args.source == "synthetic":
        onsets.append(pd.Timestamp(prices["date"].iloc[-RegimeChange().observations_before_end]))
        if args.inject_drift:
            prices = validate_prices(inject_drifts(prices, args.inject_drift), source=source.describe())
            onsets += [pd.Timestamp(d.onset) for d in args.inject_drift]
    elif args.inject_drift:
        raise SystemExit("forex-assets replay: --inject-drift is for the synthetic source only")
    return PriceProvider(prices, source.describe()), tuple(sorted(onsets))


def main(argv: list[str]) -> int:
    from forex_assets.core.prices.schema import PriceValidationError
    from forex_assets.core.prices.sources import PriceSourceError
    from forex_assets.core.replay.engine import ReplayError, ReplaySettings, run_replay
    from forex_assets.core.replay.report import build_report, format_table, write_report
    from forex_assets.core.working_area import default_working_area

    args = parser().parse_args(argv)
    try:
        provider, onsets = load_provider(args)
    except (PriceValidationError, PriceSourceError, OSError) as error:
        print(f"forex-assets replay: the price source failed: {error}", file=sys.stderr)
        return 2
    first, last = provider.span()
    end = args.end or last.date()
    start = args.start or (pd.Timestamp(end) - pd.DateOffset(months=6)).date()
    settings = ReplaySettings(start=start, end=end, horizons=tuple(args.horizons), injected_drifts=onsets)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else default_working_area() / "replays" / stamp
    state = out / "state" if args.keep_state else Path(tempfile.mkdtemp(prefix="forex_replay_"))
    bar = None
    if not args.no_progress:
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
        print(f"forex-assets replay: {error}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    known = provider.visible(result.days[-1]) if result.days else provider.prices.iloc[:0]
    report = build_report(result, known)
    json_path, html_path = write_report(report, known, out)
    print(format_table(report))
    print(f"\nreport: {html_path}\n        {json_path}")
    if not args.keep_state:
        import shutil

        shutil.rmtree(state, ignore_errors=True)
    return 3 if result.partial else 0
