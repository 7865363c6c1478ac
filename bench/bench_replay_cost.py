"""Benchmark: does a replay's cost per business day grow with the history it has accumulated? (issue 13)

Replays ``--years`` of the default synthetic series (the last years of it) for ``--horizons`` with the
bundled model, timing every business day, and reports the seconds per day by replay year (median and mean),
the optimizations of each year and the ratio last year / first year (target <= 1.2: the study storage,
the decision log's look-ups, the monitoring's reads of the forecast history and the reports must not cost
more as the working area fills up). Because optimization days cost far more than the others, the ratio is
also given for the days without an optimization and per optimization, which does not depend on how many
optimizations each year happened to trigger. On a shared machine the wall time follows the other
processes' load (the mean 1-minute load average of each year is shown), so the process's CPU seconds per
day are reported too: they are what the replay itself spends. Writes its section of ``bench/results.md``.

Usage::

    .venv/bin/python bench/bench_replay_cost.py [--years 6] [--horizons 7d [15d ...]]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_common import machine, replace_section  # noqa: E402

from forex_assets.core.horizons import HORIZONS  # noqa: E402
from forex_assets.core.prices.sources import synthetic_prices  # noqa: E402
from forex_assets.core.prices.synthetic import RegimeChange  # noqa: E402
from forex_assets.core.replay.engine import PriceProvider, Replay, ReplaySettings, check_range  # noqa: E402
from forex_assets.core.working_area import WorkingAreaLayout  # noqa: E402

START, END = "<!-- replay-cost:start -->", "<!-- replay-cost:end -->"
TARGET_RATIO = 1.2


@dataclass
class Year:
    index: int
    first: pd.Timestamp
    seconds: list[float] = field(default_factory=list)  # per business day, every horizon (wall)
    cpu: list[float] = field(default_factory=list)  # the process's CPU seconds per business day
    load: list[float] = field(default_factory=list)  # the machine's 1-minute load average after each day
    verdicts: dict[str, int] = field(default_factory=dict)  # approved / rejected / error
    quiet_seconds: list[float] = field(default_factory=list)  # days without an optimization
    optimization_seconds: list[float] = field(default_factory=list)  # per optimization (search + validation)
    last: pd.Timestamp | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.seconds)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def cpu_mean(self) -> float:
        return statistics.fmean(self.cpu)

    @property
    def quiet_mean(self) -> float | None:
        return statistics.fmean(self.quiet_seconds) if self.quiet_seconds else None

    @property
    def per_optimization(self) -> float | None:
        return statistics.fmean(self.optimization_seconds) if self.optimization_seconds else None


def replay_years(years: float, horizons: tuple[str, ...], workdir: Path) -> tuple[list[Year], Replay]:
    prices = synthetic_prices()
    end = pd.Timestamp(prices["date"].iloc[-1])
    start = end - pd.DateOffset(months=round(12 * years))
    onset = pd.Timestamp(prices["date"].iloc[-RegimeChange().observations_before_end])
    provider = PriceProvider(prices, "synthetic default series")
    settings = ReplaySettings(start=start.date(), end=end.date(), horizons=horizons, injected_drifts=(onset,))
    days = check_range(provider, settings)
    replay = Replay(provider, settings, workdir)  # what run_replay does, with a clock around every day
    if settings.measure_seed_baseline:
        replay.measure_seed_baselines(days[0])
    bounds = [start + pd.DateOffset(years=k) for k in range(int(years) + 2)]
    out: list[Year] = []
    for i, day in enumerate(days):
        index = sum(day >= b for b in bounds[1:])
        if not out or out[-1].index != index:
            out.append(Year(index, day))
        before = {h: len(replay.traces[h].optimizations) for h in horizons}
        started, cpu = time.perf_counter(), time.process_time()
        replay.run_day(day)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        new = [o for h in horizons for o in replay.traces[h].optimizations[before[h] :]]
        year = out[-1]
        year.seconds.append(seconds)
        year.cpu.append(cpu)
        year.load.append(os.getloadavg()[0])
        year.last = day
        for o in new:
            year.verdicts[o.verdict] = year.verdicts.get(o.verdict, 0) + 1
        if new:
            year.optimization_seconds += [o.seconds for o in new]
        else:
            year.quiet_seconds.append(seconds)
        print(
            f"\r{i + 1}/{len(days)} {day.date()} {seconds:6.2f} s, {sum(len(y.optimization_seconds) for y in out)} "
            "optimizations",
            end="",
            flush=True,
        )
    print()
    return out, replay


def _ratio(last: float | None, first: float | None) -> str:
    return f"{last / first:.2f}" if last is not None and first else "n/a"


def _s(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def table(years: list[Year]) -> str:
    lines = [
        "| replay year | days | optimizations (approved/rejected/error) | median s/day | mean s/day "
        "| median CPU s/day | mean CPU s/day | mean s/day without optimization | mean s per optimization "
        "| load average |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for y in years:
        verdicts = "/".join(str(y.verdicts.get(v, 0)) for v in ("approved", "rejected", "error"))
        lines.append(
            f"| {y.index + 1} ({y.first.date()}..{y.last.date() if y.last is not None else ''}) | {len(y.seconds)} "
            f"| {len(y.optimization_seconds)} ({verdicts}) | {y.median:.3f} | {y.mean:.3f} | {y.cpu_median:.3f} "
            f"| {y.cpu_mean:.3f} | {_s(y.quiet_mean)} | {_s(y.per_optimization)} | {statistics.fmean(y.load):.1f} |"
        )
    return "\n".join(lines)


def storage_summary(replay: Replay) -> str:
    journals = sorted(Path(replay.journal).glob("*.journal")) if Path(replay.journal).is_dir() else []
    sizes = [p.stat().st_size for p in journals]
    html = list(WorkingAreaLayout.in_directory(replay.workdir).reports.rglob("*.html"))
    return (
        f"{len(journals)} study journals (largest {max(sizes, default=0) / 1024:.0f} KiB, "
        f"{sum(sizes) / 1024:.0f} KiB in all), {len(html)} validation HTML reports"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=float, default=6.0, help="replay years, the last ones of the series")
    parser.add_argument("--horizons", nargs="+", default=["7d"], choices=HORIZONS, help="default 7d only")
    args = parser.parse_args()
    horizons = tuple(args.horizons)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="forex_replay_cost_") as state:
        years, replay = replay_years(args.years, horizons, Path(state))
        storage = storage_summary(replay)
    wall = time.perf_counter() - started
    full = [y for y in years if y.last is not None and len(y.seconds) >= 0.9 * max(len(x.seconds) for x in years)]
    first, last = full[0], full[-1]
    same = len(first.optimization_seconds) == len(last.optimization_seconds)
    ratios = {
        "median s/day": _ratio(last.median, first.median),
        "mean s/day": _ratio(last.mean, first.mean),
        "median CPU s/day": _ratio(last.cpu_median, first.cpu_median),
        "mean CPU s/day": _ratio(last.cpu_mean, first.cpu_mean),
        "mean s/day without optimization": _ratio(last.quiet_mean, first.quiet_mean),
        "mean s per optimization": _ratio(last.per_optimization, first.per_optimization),
    }
    verdict = ", ".join(f"{k} **{v}**" for k, v in ratios.items())
    same_note = (
        "Both years had the same number of optimizations."
        if same
        else "The years had different numbers of optimizations: the ratios of the days without an optimization "
        "and per optimization do not depend on the count."
    )
    rows = table(years)
    print(rows)
    print(f"last / first year: {verdict}")
    command = " ".join(["python", *sys.argv]) if not os.environ.get("MAKELEVEL") else "make bench"
    replace_section(
        START,
        END,
        f"""{START}
## Replay cost by replay year ({", ".join(horizons)}, bundled model)

Command: `{command}`  
Machine: {machine()}

{sum(len(y.seconds) for y in years)} business days, {sum(len(y.optimization_seconds) for y in years)} optimizations,
{wall / 60:.1f} min wall time. State at the end: {storage}.

Seconds per business day (all horizons of the day, optimizations included) by replay year; the load average
is the machine's (other processes included), the CPU seconds are the replay process's own:

{rows}

Last full year / first year (target <= {TARGET_RATIO}): {verdict}.
{same_note}
{END}
""",
    )


if __name__ == "__main__":
    main()
