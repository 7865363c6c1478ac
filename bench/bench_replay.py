"""Benchmark: a two-year replay of all four horizons with the bundled model (target: within 30 minutes on
2 cores), on the default synthetic series (its regime change 30 business days before the end is the
injected drift). Writes its section of ``bench/results.md`` and the replay report beside it.

Usage::

    .venv/bin/python bench/bench_replay.py [--years 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_common import machine, replace_section  # noqa: E402

from forex_assets.core.prices.sources import synthetic_prices  # noqa: E402
from forex_assets.core.prices.synthetic import RegimeChange  # noqa: E402
from forex_assets.core.replay.engine import PriceProvider, ReplaySettings, run_replay  # noqa: E402
from forex_assets.core.replay.report import build_report, format_table, write_report  # noqa: E402

START, END = "<!-- replay:start -->", "<!-- replay:end -->"
TARGET_S = 30 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=float, default=2.0)
    args = parser.parse_args()
    prices = synthetic_prices()
    end = pd.Timestamp(prices["date"].iloc[-1])
    start = end - pd.DateOffset(months=int(12 * args.years))
    onset = pd.Timestamp(prices["date"].iloc[-RegimeChange().observations_before_end])
    provider = PriceProvider(prices, "synthetic default series")
    settings = ReplaySettings(start=start.date(), end=end.date(), injected_drifts=(onset,))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="forex_replay_bench_") as state:
        result = run_replay(provider, settings, Path(state), lambda i, n, d: print(f"\r{i}/{n} {d.date()}", end=""))
        report = build_report(result, provider.visible(result.days[-1]))
    wall = time.perf_counter() - started
    json_path, html_path = write_report(report, provider.visible(result.days[-1]), BENCH / "replay")
    table = format_table(report)
    print("\n" + table)
    command = "make bench" if os.environ.get("MAKELEVEL") else " ".join(["python", *sys.argv])
    optimizations = sum(r["optimizations"] for r in report["horizons"].values())
    seconds = [s for r in report["horizons"].values() if (s := r["median_optimization_seconds"]) is not None]
    verdict = "within" if wall <= TARGET_S else "**OVER**"
    replace_section(
        START,
        END,
        f"""{START}
## Replay: two years, four horizons, bundled model

Command: `{command}`  
Machine: {machine()}

{len(result.days)} business days ({start.date()}..{end.date()}) x 4 horizons: forecasts, drift and performance
reports, trigger decisions, {optimizations} optimizations (search + validation, deploy when approved) and
the rollback watch, in **{wall / 60:.1f} min** wall time ({verdict} the 30-minute target; median
optimization {max(seconds or [0]):.1f} s at most per horizon). Report: `bench/replay/replay_report.html`.

```
{table}
```
{END}
""",
    )


if __name__ == "__main__":
    main()
