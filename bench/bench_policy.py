"""Benchmark: policies side by side on the same replayed days (issue "decision quality").

Datasets:

* ``real``: the real USD/CLP series of the workplace's data folder (``--real-csv``; the bench reads it when it is
  there, nothing in the repository depends on it), 2013-01-02..2018-12-28 by default;
* ``drifts``: the default synthetic series with two injected volatility drifts (detection latency);
* ``stationary``: a stationary random walk (constant volatility, no drift): every optimization a trigger
  fires there is a false positive.

Policies are policy files (``policies/*.json``, ``forex_assets.core.policy_file``). Each (dataset, policy)
replay runs in its own process (``--jobs``). Writes the table to ``bench/results.md`` (section ``policy``) and
the JSON reports to ``bench/policy/``.

Usage::

    .venv/bin/python bench/bench_policy.py [--datasets real drifts stationary] \\
        [--policies policies/adr.json policies/default.json] [--years 6] [--horizons 7d 30d] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from bench_search import machine, replace_section  # noqa: E402

from forex_assets.core.horizons import HORIZONS  # noqa: E402
from forex_assets.core.policy_file import load_policy  # noqa: E402
from forex_assets.core.prices.sources import price_frame, read_price_csv, synthetic_prices  # noqa: E402
from forex_assets.core.prices.synthetic import InjectedDrift, inject_drifts  # noqa: E402
from forex_assets.core.replay.engine import PriceProvider, ReplaySettings, run_replay  # noqa: E402
from forex_assets.core.replay.report import build_report  # noqa: E402

START, END = "<!-- policy:start -->", "<!-- policy:end -->"
REAL_CSV = ROOT.parent / "shared" / "data" / "usdclp_observado_2003_2018.csv"


def dataset(name: str, years: float, real_csv: Path) -> tuple[pd.DataFrame, pd.Timestamp, pd.Timestamp, tuple]:
    """(prices, first replay day, last replay day, injected drift onsets)."""
    if name == "real":
        prices = read_price_csv(real_csv)
        end = pd.Timestamp("2018-12-28")
        return prices, max(pd.Timestamp("2013-01-02"), end - pd.DateOffset(months=int(12 * years))), end, ()
    if name == "drifts":
        base = synthetic_prices()
        end = pd.Timestamp(base["date"].iloc[-1])
        start = end - pd.DateOffset(months=int(12 * years))
        days = base["date"][(base["date"] >= start)].reset_index(drop=True)
        onsets = (days.iloc[len(days) // 3], days.iloc[2 * len(days) // 3])
        drifts = [InjectedDrift(onsets[0], vol_multiplier=2.5), InjectedDrift(onsets[1], vol_multiplier=0.4)]
        return inject_drifts(base, drifts), start, end, tuple(pd.Timestamp(o) for o in onsets)
    if name == "stationary":
        rng = np.random.default_rng(20261126)
        dates = pd.bdate_range("2008-01-01", "2018-12-28")
        values = 600.0 * np.exp(np.cumsum(rng.normal(0.0, 0.006, len(dates))))
        prices = price_frame(dates, np.round(values, 2))
        end = pd.Timestamp(dates[-1])
        return prices, end - pd.DateOffset(months=int(12 * years)), end, ()
    raise SystemExit(f"unknown dataset {name!r}: real, drifts or stationary")


def one_replay(job: tuple) -> dict:
    name, policy_path, years, horizons, real_csv = job
    torch_threads = os.environ.get("FOREX_BENCH_TORCH_THREADS")
    if torch_threads:
        import torch

        torch.set_num_threads(int(torch_threads))
    prices, start, end, onsets = dataset(name, years, Path(real_csv))
    policy_name, settings = load_policy(policy_path)
    replay_settings = ReplaySettings(
        start=start.date(), end=end.date(), horizons=tuple(horizons), policy=settings, injected_drifts=onsets
    )
    provider = PriceProvider(prices, name)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="forex_policy_bench_") as state:
        result = run_replay(provider, replay_settings, Path(state))
        report = build_report(result, provider.visible(result.days[-1]), settings.triggers)
    report["bench"] = {"dataset": name, "policy": policy_name, "wall_s": time.perf_counter() - started}
    out = BENCH / "policy" / f"{name}_{policy_name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def _ratio(accuracy: dict, a: str, b: str) -> float | None:
    try:
        return accuracy[a]["rmse_clp"] / accuracy[b]["rmse_clp"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def _fmt(value, digits=3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(reports: list[dict]) -> str:
    header = (
        f"{'dataset':<11}{'policy':<21}{'h':<5}{'days':>5}{'opt/yr':>8}{'perf':>6}{'drift':>6}{'sched':>6}"
        f"{'deploys':>8}{'rollb':>6}{'live/static':>12}{'p(DM)':>7}{'live/RW':>9}{'cov95':>7}"
    )
    lines = [header, "-" * len(header)]
    for report in reports:
        bench, days = report["bench"], report["days_replayed"]
        for horizon, r in report["horizons"].items():
            years = max(days / 252.0, 1e-9)
            accuracy = r.get("accuracy", {})
            dm = (accuracy.get("diebold_mariano_vs_static") or {}).get("p_value")
            live = accuracy.get("live") or {}
            lines.append(
                f"{bench['dataset']:<11}{bench['policy']:<21}{horizon:<5}{days:>5}{r['optimizations'] / years:>8.1f}"
                f"{r['triggers'].get('performance', 0):>6}{r['triggers'].get('drift', 0):>6}"
                f"{r['triggers'].get('schedule', 0):>6}{r['deploys']:>8}{r['rollbacks']:>6}"
                f"{_fmt(_ratio(accuracy, 'live', 'static')):>12}{_fmt(dm):>7}"
                f"{_fmt(_ratio(accuracy, 'live', 'random_walk')):>9}{_fmt(live.get('coverage_95')):>7}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["real", "drifts", "stationary"])
    parser.add_argument("--policies", nargs="+", default=["policies/adr.json", "policies/default.json"])
    parser.add_argument("--years", type=float, default=6.0)
    parser.add_argument("--horizons", nargs="+", default=list(HORIZONS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--real-csv", default=str(REAL_CSV))
    args = parser.parse_args()
    datasets = [d for d in args.datasets if d != "real" or Path(args.real_csv).exists()]
    if len(datasets) < len(args.datasets):
        print(f"skipping 'real': {args.real_csv} is not there")
    jobs = [(d, p, args.years, args.horizons, args.real_csv) for d in datasets for p in args.policies]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        reports = list(pool.map(one_replay, jobs))
    wall = time.perf_counter() - started
    text = table(reports)
    print(text)
    command = "make bench" if os.environ.get("MAKELEVEL") else " ".join(["python", *sys.argv])
    walls = ", ".join(
        f"{r['bench']['dataset']}/{r['bench']['policy']} {r['bench']['wall_s'] / 60:.1f} min" for r in reports
    )
    replace_section(
        START,
        END,
        f"""{START}
## Policies side by side (replays of the same days)

Command: `{command}`  
Machine: {machine()}

{len(jobs)} replays of {args.years:g} years x {", ".join(args.horizons)} in {wall / 60:.1f} min with {args.jobs} processes
({walls}). Columns: optimizations per horizon-year and the triggers that fired them, deploys, rollbacks,
live RMSE / static (the seed configuration, never changed) with the Diebold-Mariano p-value of that
difference, live RMSE / random walk, and live 95 % coverage. Reports: `bench/policy/*.json`.

```
{text}
```
{END}
""",
    )


if __name__ == "__main__":
    main()
