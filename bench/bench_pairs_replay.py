"""Replays across currency pairs (issue 24's target: 5 pairs <= 5x one pair's time on 2 cores) and the
figures the Kubernetes sizing in deploy/README.md is computed from.

1. ``forex-assets replay --pair USDCLP`` then ``--pair USDCLP EURCLP USDBRL USDMXN USDCOP`` on the same range
   (each pair its synthetic series, all four horizons), wall time of each command; the ratio.
2. The state one pair's replay leaves (``--keep-state``): the forecast history, decisions, config store and
   studies, in bytes per business day of replay, i.e. the storage a pair adds per year of daily cycles.
3. One daily cycle of a pair with its four optimizations (``forex-assets run --pair USDBRL``, a fresh instance,
   so every horizon is due): wall and CPU seconds, the seconds of each optimization from its summary.
Dagster's own storage and the runs per pair-day are measured on a live daemon: bench/bench_pairs_daemon.py.

Usage: .venv/bin/python bench/bench_pairs_replay.py [--start 2024-11-01] [--end 2026-10-30]
(the issue's target is on two years, about 30 minutes; half a year, --start 2026-05-01, a quarter of it)
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_common import clean_environment, machine, replace_section  # noqa: E402

FOREX_ASSETS = Path(sys.executable).parent / "forex-assets"
FIVE = ("USDCLP", "EURCLP", "USDBRL", "USDMXN", "USDCOP")
START, END = "<!-- pairs-replay:start -->", "<!-- pairs-replay:end -->"


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """``argv`` in a subprocess: (wall seconds, CPU seconds of the child, the completed process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, cpu, done


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2024-11-01")
    parser.add_argument("--end", default="2026-10-30")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_pairs_replay_"))
    env = clean_environment(DAGSTER_HOME=str(work / "home"))
    window = ["--start", args.start, "--end", args.end, "--no-progress"]

    one_wall, one_cpu, _ = run(
        [str(FOREX_ASSETS), "replay", "--pair", "USDCLP", *window, "--out", str(work / "one"), "--keep-state"], env
    )
    five_wall, five_cpu, five = run(
        [str(FOREX_ASSETS), "replay", "--pair", *FIVE, *window, "--out", str(work / "five")], env
    )
    days = json.loads((work / "one" / "replay_report.json").read_text())["days_replayed"]
    state = work / "one" / "state"
    parts = {
        name: size(state / name)
        for name in ("forecast_history.sqlite", "trigger_decisions.sqlite", "config_store", "optuna_studies")
        if (state / name).exists()
    }

    (work / "home").mkdir()
    shutil.copy(BENCH.parent / "dagster.yaml", work / "home" / "dagster.yaml")
    cycle_wall, cycle_cpu, cycle = run([str(FOREX_ASSETS), "run", "--pair", "USDBRL"], env)
    optimizations = [float(s) for s in re.findall(r"RMSE change [^(]*\((\d+\.\d) s\)", cycle.stdout)]

    lines = [
        START,
        "## Replays across currency pairs, and the sizing figures (issue 24)",
        "",
        f"Command: `python bench/bench_pairs_replay.py --start {args.start} --end {args.end}`  ",
        f"Machine: {machine()}",
        "",
        f"Replay {args.start}..{args.end}, four horizons, each pair on its synthetic series:",
        "",
        "| replay | wall | CPU (child) |",
        "|---|---|---|",
        f"| `--pair USDCLP` | {one_wall / 60:.2f} min | {one_cpu / 60:.2f} min |",
        f"| `--pair {' '.join(FIVE)}` | {five_wall / 60:.2f} min | {five_cpu / 60:.2f} min |",
        "",
        f"5 pairs / 1 pair: **{five_wall / one_wall:.2f}x** wall (target <= 5x).",
        "",
        f"State one pair's replay left ({days} business days): "
        + ", ".join(f"{name} {bytes_ / 1024:.0f} KiB" for name, bytes_ in parts.items())
        + f"; per pair-year (261 business days): {sum(parts.values()) / days * 261 / 1024 / 1024:.1f} MiB",
        "",
        f"One daily cycle of a new pair with its four optimizations (`forex-assets run --pair USDBRL`, fresh "
        f"instance): {cycle_wall:.1f} s wall, {cycle_cpu:.1f} s CPU; optimizations "
        + ", ".join(f"{s:.1f} s" for s in optimizations)
        + ".",
        END,
    ]  # fmt: skip
    replace_section(START, END, "\n".join(lines) + "\n")
    print("\n".join(lines[1:-1]))
    print(five.stdout.splitlines()[-12:] if five.stdout else "")


if __name__ == "__main__":
    main()
