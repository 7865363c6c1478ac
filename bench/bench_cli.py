"""Wall time and peak RSS of the read-only commands, each run as the operator runs it (target: median < 1 s and
peak RSS < 150 MiB for `status`, `history` and `forecasts` on a 2-core machine).

Each sample is a fresh ``forex-assets ...`` process (the installed console script, beside this interpreter);
its wall time is measured from the spawn to its end, its peak RSS is the ``ru_maxrss`` that ``os.wait4``
returns for that one child. The commands read an instance made by ``forex-assets run --horizons 7d``
(``--dagster-home``: one made before, reused; default: one made now in a temporary directory, about a minute).

    .venv/bin/python bench/bench_cli.py [--runs 7] [--dagster-home DIR] [--label after] [--no-write]

The figures of each ``--label`` are kept in ``bench/cli_timings.json``, so that the section of
``bench/results.md`` (``cli``) shows the figures measured before the read-only commands imported lazily
(``--label before``) next to the latest ones.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_common import clean_environment, machine, replace_section

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results.md"
TIMINGS = BENCH / "cli_timings.json"
START, END = "<!-- cli:start -->", "<!-- cli:end -->"
FOREX_ASSETS = Path(sys.executable).parent / "forex-assets"
COMMANDS = {
    "--help": ["--help"],
    "status": ["status"],
    "history --horizon 7d": ["history", "--horizon", "7d"],
    "forecasts --horizon 7d": ["forecasts", "--horizon", "7d"],
}
TARGET_SECONDS, TARGET_MIB = 1.0, 150.0


#: settings of the developer's shell that would point a command elsewhere than the benchmark's instance
def environment(home: Path) -> dict[str, str]:
    return clean_environment(DAGSTER_HOME=str(home))


def make_instance(home: Path) -> None:
    """``forex-assets run --horizons 7d`` on ``home``: prices, a forecast, reports, a decision, a search."""
    done = subprocess.run([str(FOREX_ASSETS), "run", "--horizons", "7d"], env=environment(home), capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"forex-assets run on {home} failed ({done.returncode}):\n{done.stderr.decode()}")


def sample(arguments: list[str], home: Path) -> tuple[float, float, float]:
    """One fresh process of ``forex-assets ARGUMENTS``: (wall seconds, CPU seconds, peak RSS in MiB)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(FOREX_ASSETS), *arguments], env=environment(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not the sum of every child's
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode()
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"forex-assets {' '.join(arguments)} failed ({process.returncode}): {error}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux: KiB


def measure(home: Path, runs: int) -> dict[str, dict[str, float]]:
    """command -> median and max of wall seconds and peak RSS MiB over ``runs`` samples (interleaved)."""
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in COMMANDS}
    for arguments in COMMANDS.values():  # one unmeasured run each: the page cache, .pyc files
        sample(arguments, home)
    for _ in range(runs):
        for name, arguments in COMMANDS.items():
            samples[name].append(sample(arguments, home))
    return {
        name: {
            "median_s": statistics.median(s for s, _, _ in values),
            "max_s": max(s for s, _, _ in values),
            "median_cpu_s": statistics.median(c for _, c, _ in values),
            "median_rss_mib": statistics.median(m for _, _, m in values),
            "max_rss_mib": max(m for _, _, m in values),
            "runs": len(values),
        }
        for name, values in samples.items()
    }


def table(figures: dict[str, dict[str, float]], targeted: bool) -> str:
    lines = [
        "| command | runs | median s | max s | median CPU s | median peak RSS MiB | max peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in figures.items():
        within = targeted and name != "--help"
        seconds = f"**{f['median_s']:.2f}**" if within and f["median_s"] < TARGET_SECONDS else f"{f['median_s']:.2f}"
        rss = (
            f"**{f['median_rss_mib']:.0f}**"
            if within and f["max_rss_mib"] < TARGET_MIB
            else f"{f['median_rss_mib']:.0f}"
        )
        cpu = f"{f['median_cpu_s']:.2f}" if "median_cpu_s" in f else "not measured"
        lines.append(
            f"| `forex-assets {name}` | {f['runs']} | {seconds} | {f['max_s']:.2f} | {cpu} | {rss} | "
            f"{f['max_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def section(recorded: dict[str, dict]) -> str:
    parts = [
        f"{START}\n## Read-only commands: wall time and peak RSS of a fresh process\n",
        "Each sample is a fresh `forex-assets ...` process (the console script): its wall time, and from `os.wait4` "
        "its CPU time (user + system) and peak RSS (`ru_maxrss`), on an instance made by "
        "`forex-assets run --horizons 7d`. "
        f"Target for `status`, `history` and `forecasts`: median under {TARGET_SECONDS:g} s and peak RSS under "
        f"{TARGET_MIB:g} MiB (bold where met). Wall times grow with the machine's load: each run says its own.\n",
    ]
    for label, entry in recorded.items():
        parts.append(
            f"### {label}\n\nCommand: `{entry['command']}`  \nMachine: {entry['machine']}  \n"
            f"Date: {entry['date']}; load average (1 min) {entry.get('load', 'not recorded')}\n\n"
            f"{table(entry['figures'], targeted=True)}\n" + (f"\n{entry['note']}\n" if entry.get("note") else "")
        )
    return "\n".join(parts) + f"{END}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="samples per command (at least 5)")
    parser.add_argument("--dagster-home", type=Path, help="an instance made by `forex-assets run` (default: a new one)")
    parser.add_argument("--label", default="after", help="the name of these figures in results.md")
    parser.add_argument("--no-write", action="store_true", help="print the figures; write neither file")
    options = parser.parse_args()
    if options.runs < 5:
        parser.error(f"--runs {options.runs}: at least 5 samples per command")
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as scratch:
        home = options.dagster_home
        if home is None:
            home = Path(scratch) / "home"
            print(f"making an instance in {home} (forex-assets run --horizons 7d) ...", flush=True)
            make_instance(home)
        load_before = os.getloadavg()[0]
        figures = measure(home.resolve(), options.runs)
        load = f"{load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (other processes share the CPUs)"
    print(table(figures, targeted=True))
    if options.no_write:
        return
    recorded = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    command = " ".join(["python bench/bench_cli.py", *sys.argv[1:]])
    recorded[options.label] = {
        "command": command,
        "machine": machine(),
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "load": load,
        "figures": figures,
    }
    TIMINGS.write_text(json.dumps(recorded, indent=2) + "\n")
    replace_section(START, END, section(recorded))


if __name__ == "__main__":
    main()
