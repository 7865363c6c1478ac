"""Benchmark: policies side by side on the same replayed days (issue "decision quality").

Datasets:

* ``real``: the real USD/CLP series of the workplace's data folder (``--real-csv``; the bench reads it when it is
  there, nothing in the repository depends on it), 2013-01-02..2018-12-28 by default;
* ``drifts``: the default synthetic series with two injected volatility drifts (detection latency);
* ``stationary``: a stationary random walk (constant volatility, no drift): every optimization a trigger
  fires there is a false positive.
* ``cycle``: a calm random walk (0.15 % a day) carrying a 22-business-day cycle of 3 % amplitude that stops
  two thirds into the replay: the one dataset where the model's median can beat the last price, so the
  one where deploys should happen (and win), and where the policy must notice when the edge is gone.
* ``managed``: a managed float: the log price reverts to a central rate (an Ornstein-Uhlenbeck process,
  half-life 20 business days, 0.4 % a day of noise), as a currency held inside a band by its central bank
  does. The square-root-of-time bands of the seeds (model and EWMA) are too wide at 30 and 90 business
  days there, so it is where the distribution path should deploy narrower bands (and where their wins
  can be counted).

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
from scipy.signal import lfilter

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from bench_common import machine, replace_section  # noqa: E402

from forex_assets.core.horizons import HORIZONS  # noqa: E402
from forex_assets.core.policy_file import load_policy  # noqa: E402
from forex_assets.core.prices.sources import price_frame, read_price_csv  # noqa: E402
from forex_assets.core.prices.synthetic import InjectedDrift, inject_drifts, usdclp_like_series  # noqa: E402
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
        # the embedded default's generator with a longer history before the replay (the 90d windows need
        # about 7.8 years of prices: docs/decisions.md)
        base = usdclp_like_series(start="2005-01-03")
        end = pd.Timestamp(base["date"].iloc[-1])
        start = end - pd.DateOffset(months=int(12 * years))
        days = base["date"][(base["date"] >= start)].reset_index(drop=True)
        onsets = (days.iloc[len(days) // 3], days.iloc[2 * len(days) // 3])
        drifts = [InjectedDrift(onsets[0], vol_multiplier=2.5), InjectedDrift(onsets[1], vol_multiplier=0.4)]
        return inject_drifts(base, drifts), start, end, tuple(pd.Timestamp(o) for o in onsets)
    if name == "stationary":
        rng = np.random.default_rng(20261126)
        dates = pd.bdate_range("2003-01-01", "2018-12-28")
        values = 600.0 * np.exp(np.cumsum(rng.normal(0.0, 0.006, len(dates))))
        prices = price_frame(dates, np.round(values, 2))
        end = pd.Timestamp(dates[-1])
        return prices, end - pd.DateOffset(months=int(12 * years)), end, ()
    if name == "cycle":
        rng = np.random.default_rng(20261127)
        dates = pd.bdate_range("2005-01-03", "2018-12-28")
        end = pd.Timestamp(dates[-1])
        start = end - pd.DateOffset(months=int(12 * years))
        days = dates[dates >= start]
        stop = pd.Timestamp(days[2 * len(days) // 3])  # the cycle ends here: the edge is gone
        t = np.arange(len(dates))
        cycle = 0.03 * np.sin(2 * np.pi * t / 22.0) * (dates < stop)
        values = 850.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0015, len(dates))) + cycle)
        return price_frame(dates, np.round(values, 2)), start, end, (stop,)
    if name == "managed":
        rng = np.random.default_rng(20261206)
        dates = pd.bdate_range("2005-01-03", "2018-12-28")
        end = pd.Timestamp(dates[-1])
        phi = 0.5 ** (1 / 20)  # half-life 20 business days
        shocks = rng.normal(0.0, 0.004, len(dates))
        deviation = lfilter([1.0], [1.0, -phi], shocks)  # x_t = phi x_(t-1) + e_t
        values = 800.0 * np.exp(deviation)
        return price_frame(dates, np.round(values, 2)), end - pd.DateOffset(months=int(12 * years)), end, ()
    raise SystemExit(f"unknown dataset {name!r}: real, drifts, stationary, cycle or managed")


def one_replay(job: tuple) -> dict:
    """One replay of ``horizons``; its report is written to bench/policy/ unless ``part`` (one horizon's share of
    a replay split over processes, merged by :func:`merge`)."""
    name, policy_path, years, horizons, real_csv, command, part = job
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
    report["bench"] = {
        "dataset": name,
        "policy": policy_name,
        "wall_s": time.perf_counter() - started,
        "command": command,
        "machine": machine(),
    }
    if not part:
        save(report)
    return report


def save(report: dict) -> None:
    out = BENCH / "policy" / f"{report['bench']['dataset']}_{report['bench']['policy']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")


def merge(parts: list[dict]) -> dict:
    """The reports of one replay split by horizon over processes (the horizons share nothing but the prices)
    as one: every horizon's section; wall time = the slowest part, CPU seconds = the sum."""
    merged = json.loads(json.dumps(parts[0], default=str))
    for part in parts[1:]:
        merged["horizons"] |= part["horizons"]
    merged["seconds"] = max(p["seconds"] for p in parts)
    merged["bench"]["wall_s"] = max(p["bench"]["wall_s"] for p in parts)
    merged["bench"]["replay_seconds_summed"] = sum(p["seconds"] for p in parts)
    merged["bench"]["processes"] = len(parts)
    return merged


def _ratio(accuracy: dict, a: str, b: str) -> float | None:
    try:
        return accuracy[a]["rmse_clp"] / accuracy[b]["rmse_clp"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def _fmt(value, digits=3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(accuracy: dict, key: str) -> str:
    interval = accuracy.get(key) or {}
    if "ci_low" not in interval:  # no interval (too few origins): the ratio alone
        return "n/a" if interval.get("ratio") is None else f"{interval['ratio']:.3f}"
    return f"{interval['ratio']:.3f} [{interval['ci_low']:.3f},{interval['ci_high']:.3f}]"


def _after_last_onset(accuracy: dict) -> str:
    """Live / static on the origins from the last injected drift on (n/a: no injected drift)."""
    rows = accuracy.get("after_onsets") or []
    return _ci(rows[-1], "rmse_ratio_vs_static") if rows else "n/a"


def table(reports: list[dict]) -> str:
    header = (
        f"{'dataset':<11}{'policy':<9}{'h':<5}{'days':>5}{'opt/yr':>7}{'perf':>5}{'drift':>6}{'sched':>6}"
        f"{'deploys':>8}{'rollb':>6}{'win':>6}{'rb/dep':>7}{'live/static [95% CI]':>23}{'p(DM)':>7}"
        f"{'live/RW [95% CI]':>23}{'cov95':>7}{'latency':>8}{'after last onset [95% CI]':>27}"
    )
    lines = [header, "-" * len(header)]
    for report in reports:
        bench, days = report["bench"], report["days_replayed"]
        for horizon, r in report["horizons"].items():
            years = max(days / 252.0, 1e-9)
            accuracy = r.get("accuracy", {})
            dm = (accuracy.get("diebold_mariano_vs_static") or {}).get("p_value")
            live = accuracy.get("live") or {}
            win = r.get("realised_win_rate") if r.get("deploys_judged") else None
            per_deploy = r.get("rollbacks_per_deploy") if r.get("deploys") else None
            lines.append(
                f"{bench['dataset']:<11}{bench['policy'][:8]:<9}{horizon:<5}{days:>5}{r['optimizations'] / years:>7.1f}"
                f"{r['triggers'].get('performance', 0):>5}{r['triggers'].get('drift', 0):>6}"
                f"{r['triggers'].get('schedule', 0):>6}{r['deploys']:>8}{r['rollbacks']:>6}"
                f"{_fmt(win, 2):>6}{_fmt(per_deploy, 2):>7}{_ci(accuracy, 'rmse_ratio_vs_static'):>23}{_fmt(dm):>7}"
                f"{_ci(accuracy, 'rmse_ratio_vs_random_walk'):>23}{_fmt(live.get('coverage_95')):>7}"
                f"{_fmt(r.get('median_detection_latency_days'), 0):>8}{_after_last_onset(accuracy):>27}"
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
    parser.add_argument(
        "--split-horizons",
        action="store_true",
        help="replay each horizon in its own process (--jobs of them at a time) and merge the reports",
    )
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="replay nothing: rebuild the results.md table from the reports already in bench/policy/",
    )
    args = parser.parse_args()
    datasets = [d for d in args.datasets if d != "real" or Path(args.real_csv).exists()]
    if len(datasets) < len(args.datasets):
        print(f"skipping 'real': {args.real_csv} is not there")
    command = "make bench" if os.environ.get("MAKELEVEL") else " ".join(["python", *sys.argv])
    runs = [(d, p) for d in datasets for p in args.policies]
    if args.split_horizons:  # one process per horizon: the horizons of a replay are independent
        jobs = [(d, p, args.years, [h], args.real_csv, command, True) for d, p in runs for h in args.horizons]
    else:
        jobs = [(d, p, args.years, args.horizons, args.real_csv, command, False) for d, p in runs]
    started = time.perf_counter()
    if args.table_only:
        reports = [json.loads((BENCH / "policy" / f"{d}_{load_policy(p)[0]}.json").read_text()) for d, p in runs]
        wall = sum(r["bench"]["wall_s"] for r in reports)
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            reports = list(pool.map(one_replay, jobs))
        if args.split_horizons:
            per_run = len(args.horizons)
            reports = [merge(reports[i : i + per_run]) for i in range(0, len(reports), per_run)]
            for report in reports:
                save(report)
        wall = time.perf_counter() - started
    text = table(reports)
    print(text)
    walls = ", ".join(
        f"{r['bench']['dataset']}/{r['bench']['policy']} {r['range'][0]}..{r['range'][1]} "
        f"{r['bench']['wall_s'] / 60:.1f} min"
        for r in reports
    )
    commands = sorted({r["bench"].get("command", "(not recorded)") for r in reports})
    machines = sorted({r["bench"].get("machine", machine()) for r in reports})
    replace_section(
        START,
        END,
        f"""{START}
## Policies side by side (replays of the same days)

Commands: {"; ".join(f"`{c}`" for c in commands)}  
Machine: {"; ".join(machines)}

{len(reports)} replays of {", ".join(args.horizons)}, {wall / 60:.1f} min of replay in all ({walls}). Columns: optimizations per horizon-year and the triggers that fired them, deploys, rollbacks,
realised win rate of deploys (share of judged deploys whose forecasts beat the replaced configuration's on
their next 20 matured origins), rollbacks per deploy, live RMSE / static (the seed configuration, never
changed) with its circular-block bootstrap 95 % interval (block = h) and the Diebold-Mariano p-value of that
difference, live RMSE / random walk with its interval, live 95 % coverage, and the median detection latency
of injected drifts (business days). n/a: nothing to measure (no deploy, no injected drift).
Reports: `bench/policy/*.json`.

```
{text}
```
{END}
""",
    )


if __name__ == "__main__":
    main()
