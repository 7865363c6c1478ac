"""Replays across currency pairs (issue 24's target: 5 pairs <= 5x one pair's time on 2 cores) and the
figures the Kubernetes sizing in deploy/README.md is computed from.

1. ``forex-assets replay --pair USDCLP`` then ``--pair USDCLP EURCLP USDBRL USDMXN USDCOP`` on the same range
   (each pair its synthetic series, all four horizons), wall time of each command; the ratio.
2. The state one pair's replay leaves (``--keep-state``): the forecast history, decisions, config store and
   studies, in bytes per business day of replay, i.e. the storage a pair adds per year of daily cycles.
3. One daily cycle of a pair with its four optimizations (``forex-assets run --pair USDBRL``, a fresh instance,
   so every horizon is due): wall and CPU seconds, the seconds of each optimization from its summary.
4. What Dagster's own storage (``$DAGSTER_HOME`` less the working area: runs, event log, schedules) grows by:
   the same pair's cycle again (nothing due: a daily cycle without optimization), then a second pair's first
   cycle on the same instance (a daily cycle and four optimization runs); the runs each recorded, from the
   instance's run storage. Per pair-year: 261 daily cycles and ~0.4 optimizations per business day.

Usage: .venv/bin/python bench/bench_pairs_replay.py [--start 2026-05-01] [--end 2026-10-30]
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
STORAGE_START, STORAGE_END = "<!-- pairs-storage:start -->", "<!-- pairs-storage:end -->"


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


def dagster_storage(home: Path) -> int:
    """Bytes of the Dagster instance in ``home``: everything but the working area (``forex_assets/``)."""
    return sum(size(p) for p in home.iterdir() if p.name != "forex_assets")


def runs_recorded(home: Path) -> int:
    """The runs in the instance's SQLite run storage."""
    import sqlite3

    connection = sqlite3.connect(home / "history" / "runs.db")
    try:
        return connection.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        connection.close()


def storage_growth(work: Path, env: dict[str, str]) -> None:
    """Part 4: Dagster's own storage and runs per daily cycle and per optimization (its own results section)."""
    home = work / "home"
    home.mkdir()
    shutil.copy(BENCH.parent / "dagster.yaml", home / "dagster.yaml")
    run([str(FOREX_ASSETS), "run", "--pair", "USDBRL"], env)
    first = (dagster_storage(home), runs_recorded(home))
    again = run([str(FOREX_ASSETS), "run", "--pair", "USDBRL"], env)[2]
    searched_again = len(re.findall(r"RMSE change [^(]*\((\d+\.\d) s\)", again.stdout))
    second = (dagster_storage(home), runs_recorded(home))
    new_pair = run([str(FOREX_ASSETS), "run", "--pair", "USDMXN"], env)[2]
    searched_new = len(re.findall(r"RMSE change [^(]*\((\d+\.\d) s\)", new_pair.stdout))
    third = (dagster_storage(home), runs_recorded(home))
    daily_bytes, daily_runs = second[0] - first[0], second[1] - first[1]
    per_optimization = (third[0] - second[0] - daily_bytes) / max(searched_new, 1)
    optimization_runs = (third[1] - second[1] - daily_runs) / max(searched_new, 1)
    pair_year = 261 * daily_bytes + 0.4 * 261 * per_optimization
    lines = [
        STORAGE_START,
        "## Dagster's own storage per pair-year (issue 24)",
        "",
        "Command: `python bench/bench_pairs_replay.py --storage-only`  ",
        f"Machine: {machine()}",
        "",
        f"Dagster's own storage (runs, event log; SQLite): a daily cycle with nothing due ({searched_again} "
        f"optimizations) recorded {daily_runs} runs and {daily_bytes / 1024:.0f} KiB; a new pair's first cycle "
        f"({searched_new} optimizations) {third[1] - second[1]} runs and {(third[0] - second[0]) / 1024:.0f} KiB, "
        f"i.e. {optimization_runs:.1f} runs and {per_optimization / 1024:.0f} KiB per optimization; per pair-year "
        f"(261 cycles, 0.4 optimizations per business day): **{pair_year / 1024 / 1024:.1f} MiB**. Instance "
        f"created by the first cycle: {first[0] / 1024:.0f} KiB, {first[1]} runs.",
        STORAGE_END,
    ]  # fmt: skip
    replace_section(STORAGE_START, STORAGE_END, "\n".join(lines) + "\n")
    print("\n".join(lines[1:-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2026-05-01")
    parser.add_argument("--end", default="2026-10-30")
    parser.add_argument("--storage-only", action="store_true", help="part 4 alone (a few minutes)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_pairs_replay_"))
    env = clean_environment(DAGSTER_HOME=str(work / "home"))
    if args.storage_only:
        storage_growth(work, env)
        return
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
