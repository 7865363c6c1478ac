"""Drift detection latency and false alarms of the drift report, on stationary random walks.

The replay's injected-drift figure is measured on the synthetic default series, which has volatility
regimes of its own: a detection there may be an earlier regime's alarm. This isolates the detector
(``monitoring.drift.detect_drift`` with its default thresholds, exactly what the drift asset runs): on
geometric random walks (daily volatility 0.6 %, ``--seeds`` of them) it injects, 900 business days in,
one regime change at a time (volatility x2.5, volatility x0.4, a trend of +0.3 % a day: half a daily
standard deviation) and counts the business days from the onset to the first report of severity MEDIUM
or HIGH (the drift trigger's level); and on the same walks without a drift, the share of days whose
report is MEDIUM or HIGH (false alarms; the trigger's 14-day guard then spaces the optimizations they
cause). It prints the table and writes it into bench/results.md (section ``drift-latency``).

    .venv/bin/python bench/bench_drift_latency.py [--seeds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from bench_common import machine, replace_section  # noqa: E402

from forex_assets.core.monitoring.drift import Severity, detect_drift  # noqa: E402
from forex_assets.core.prices.synthetic import InjectedDrift, inject_drifts  # noqa: E402

START, END = "<!-- drift-latency:start -->", "<!-- drift-latency:end -->"
DAILY_VOL = 0.006
ONSET = 900  # business days of stationary history before the drift
WATCH = 60  # business days watched after the onset
DRIFTS = {
    "volatility x2.5": {"vol_multiplier": 2.5},
    "volatility x0.4": {"vol_multiplier": 0.4},
    "trend +0.3 %/day": {"vol_multiplier": 1.0, "daily_drift": 0.003},
}


def alarmed(prices: np.ndarray, end: int) -> bool:
    return detect_drift(prices[: end + 1]).severity >= Severity.MEDIUM


def measure(seeds: int) -> dict:
    latencies: dict[str, list[int | None]] = {name: [] for name in DRIFTS}
    false_alarm_share = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        dates = pd.bdate_range("2010-01-01", periods=ONSET + WATCH + 1)
        values = np.round(700.0 * np.exp(np.cumsum(rng.normal(0.0, DAILY_VOL, len(dates)))), 2)
        frame = pd.DataFrame({"date": dates, "usdclp": values})
        for name, fields in DRIFTS.items():
            drifted = inject_drifts(frame, [InjectedDrift(dates[ONSET], duration_days=WATCH, **fields)])
            prices = drifted["usdclp"].to_numpy()
            latencies[name].append(next((k for k in range(WATCH) if alarmed(prices, ONSET + k)), None))
        checked = range(300, ONSET, 3)  # every third day of the stationary stretch (after the windows fill)
        false_alarm_share.append(float(np.mean([alarmed(values, day) for day in checked])))
    return {"latencies": latencies, "false_alarm_share": false_alarm_share}


def table(result: dict, seeds: int) -> str:
    header = f"{'injected drift':<20}{'median':>8}{'quartiles':>14}{'<= 7 days':>11}{'missed (60 d)':>15}"
    lines = [header, "-" * len(header)]
    for name, values in result["latencies"].items():
        found = sorted(v for v in values if v is not None)
        quartiles = f"{np.quantile(found, 0.25):.0f}..{np.quantile(found, 0.75):.0f}" if found else "n/a"
        median = f"{statistics.median(found):.1f}" if found else "n/a"
        within = sum(v <= 7 for v in found) / seeds
        lines.append(f"{name:<20}{median:>8}{quartiles:>14}{within:>11.0%}{seeds - len(found):>15}")
    shares = result["false_alarm_share"]
    lines.append("")
    lines.append(
        f"no drift: share of days with a MEDIUM/HIGH report {np.mean(shares):.1%} "
        f"(per walk {min(shares):.1%}..{max(shares):.1%})"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    result = measure(args.seeds)
    text = table(result, args.seeds)
    print(text)
    command = (
        "make bench" if os.environ.get("MAKELEVEL") else f"python bench/bench_drift_latency.py --seeds {args.seeds}"
    )
    replace_section(
        START,
        END,
        f"{START}\n## Drift detection latency on stationary random walks\n\n"
        f"`{command}` on {machine()}, {time.perf_counter() - started:.0f} s. {args.seeds} geometric random walks "
        f"(daily volatility {DAILY_VOL:.1%}), each drift injected {ONSET} business days in; latency = business "
        "days from the onset to the first drift report of severity MEDIUM or HIGH (the drift trigger's level), "
        f"watched for {WATCH} days.\n\n```\n{text}\n```\n{END}\n",
    )


if __name__ == "__main__":
    main()
