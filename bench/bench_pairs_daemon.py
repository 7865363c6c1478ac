"""Runs per pair and business day, and what Dagster's own storage grows by, counted on a live daemon (issue 24's
sizing: the figures the README's "Sizing a book of pairs" is computed from).

On a fresh instance the code location is served by ``dagster-daemon run`` as in production, its sensors and
schedules on; once on the embedded default's storage (the repository's dagster.yaml: SQLite, a file per run) and
once on production's (deploy/dagster.yaml's PostgreSQL storage, on a throwaway cluster started with initdb).
One pair's business day is started as the daily schedule starts it, a prices run of that pair
(``dagster asset materialize --select pair_prices --partition USDBRL``); then the daemon does the rest by itself (the automation sensor's forecast and report runs, the optimization sensor's
optimization runs, one at a time) until it is quiet: every run ended and none new for ``--quiet`` seconds. Twice:

1. the pair's first day (every horizon is due an optimization on a fresh instance);
2. the next prices run of the pair (no optimization due: a day of monitoring only).

Counted from the instance: the runs each day made, by what they materialized (an optimization whose candidate
the blocking checks refused ends FAILURE by design: counted as rejected, not failed), their wall time from the
run records (start to end), and the bytes the day added to Dagster's storage (SQLite: ``$DAGSTER_HOME`` less the
working area; PostgreSQL: its tables and indexes). Per pair-year: 261 monitoring days plus ~0.4 optimizations per
business day (the replays' rate).

Usage: .venv/bin/python bench/bench_pairs_daemon.py [--pair USDBRL] [--storage sqlite postgresql] [--quiet 150]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

from bench_common import clean_environment, machine, replace_section  # noqa: E402

BIN = Path(sys.executable).parent
START, END = "<!-- pairs-daemon:start -->", "<!-- pairs-daemon:end -->"
OPTIMIZATIONS_PER_BUSINESS_DAY = 0.4  # per pair: the replays' rate (README "Sizing a book of pairs")
BUSINESS_DAYS_PER_YEAR = 261
STORAGES = ("sqlite", "postgresql")


POSTGRES_TABLE_BYTES = (
    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relkind = 'r'"
)


def dagster_storage(home: Path, cluster=None) -> int:
    """Bytes of the Dagster instance of ``home``: on SQLite every file but the working area (``forex_assets/``),
    on PostgreSQL (``cluster``) its tables with their indexes and TOAST."""
    if cluster is not None:
        return int(cluster.query(POSTGRES_TABLE_BYTES)[0][0])
    return sum(p.stat().st_size for p in home.rglob("*") if p.is_file() and "forex_assets" not in p.parts)


def instance_yaml(home: Path, storage: str) -> None:
    """The embedded default's dagster.yaml, with deploy/dagster.yaml's PostgreSQL storage for ``postgresql``."""
    text = (BENCH.parent / "dagster.yaml").read_text()
    if storage == "postgresql":
        production = (BENCH.parent / "deploy" / "dagster.yaml").read_text()
        block = production[production.index("storage:") :]
        text += "\n" + block[: block.index("\n\n")] + "\n"
    (home / "dagster.yaml").write_text(text)


def runs(home: Path) -> list:
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        return list(instance.get_runs())


def kind(run) -> str:
    """What a run did: ``optimization`` (optimization_job: a candidate and its validation), else the assets it
    materialized (``pair_prices``, ``drift_report+forecast+performance_report`` ...)."""
    if run.job_name == "optimization_job":
        return "optimization"
    return "+".join(sorted(k.to_user_string() for k in (run.asset_selection or ()))) or run.job_name


def refused_by_checks(home: Path, run) -> bool:
    """Whether a failed run failed only because blocking asset checks failed (a rejected candidate)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from forex_assets.defs.alerting.sensors import only_refused_by_checks

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        return only_refused_by_checks([e.dagster_event.event_specific_data.error for e in events])


def wait_until_quiet(home: Path, known: set[str], quiet_s: float, timeout_s: float) -> list:
    """The runs not in ``known``, once every run has ended and none was created for ``quiet_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    last_change, seen = time.monotonic(), 0
    while time.monotonic() < deadline:
        time.sleep(10)
        new = [r for r in runs(home) if r.run_id not in known]
        if len(new) != seen or any(not r.is_finished for r in new):
            last_change, seen = time.monotonic(), len(new)
            continue
        if time.monotonic() - last_change >= quiet_s:
            return new
    raise SystemExit(f"the daemon was not quiet within {timeout_s:.0f} s")


def run_seconds(home: Path, run_ids: list[str]) -> float:
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
        return sum((r.end_time or 0) - (r.start_time or 0) for r in records)


def prices_run(pair: str, env: dict[str, str]) -> None:
    argv = [str(BIN / "dagster"), "asset", "materialize", "-m", "forex_assets.definitions"]
    done = subprocess.run(
        [*argv, "--select", "pair_prices", "--partition", pair], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the prices run failed:\n{done.stderr[-3000:]}")


def day(home: Path, pair: str, env: dict[str, str], args: argparse.Namespace, cluster=None) -> dict:
    known = {r.run_id for r in runs(home)}
    before = dagster_storage(home, cluster)
    started = time.monotonic()
    prices_run(pair, env)
    new = wait_until_quiet(home, known, args.quiet, args.timeout)
    unsuccessful = [r for r in new if r.status.value != "SUCCESS"]
    rejected = [r for r in unsuccessful if kind(r) == "optimization" and refused_by_checks(home, r)]
    return {
        "runs": len(new),
        "kinds": dict(sorted(Counter(kind(r) for r in new).items())),
        "rejected": len(rejected),
        "failed": [f"{kind(r)} {r.run_id}" for r in unsuccessful if r not in rejected],
        "run_seconds": run_seconds(home, [r.run_id for r in new]),
        "wall_s": time.monotonic() - started - args.quiet,
        "bytes": dagster_storage(home, cluster) - before,
    }


def measure(storage: str, args: argparse.Namespace) -> dict:
    """Two days of one pair on a fresh instance of ``storage`` served by a daemon."""
    work = Path(tempfile.mkdtemp(prefix=f"bench_pairs_daemon_{storage}_"))
    home = work / "home"
    home.mkdir()
    instance_yaml(home, storage)
    cluster = None
    if storage == "postgresql":
        from forex_assets_tests.postgres_cluster import PostgresCluster

        cluster = PostgresCluster().start()
        os.environ.update(cluster.environment())  # this process reads the instance too (runs, run records)
    env = clean_environment(DAGSTER_HOME=str(home), **(cluster.environment() if cluster else {}))
    log = (work / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "forex_assets.definitions"],
        env=env,
        cwd=BENCH.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        time.sleep(args.settle)  # the sensors' first ticks, on an instance with nothing materialized
        unprompted = len(runs(home))
        first = day(home, args.pair, env, args, cluster)
        second = day(home, args.pair, env, args, cluster)
    finally:
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        if cluster is not None:
            cluster.stop()
    print(f"{storage}: instance and daemon log under {work}", flush=True)
    optimizations = first["kinds"].get("optimization", 0)
    per_optimization = (first["bytes"] - second["bytes"]) / max(optimizations, 1)
    pair_year = BUSINESS_DAYS_PER_YEAR * (second["bytes"] + OPTIMIZATIONS_PER_BUSINESS_DAY * per_optimization)
    return {
        "first": first,
        "second": second,
        "unprompted": unprompted,
        "per_optimization": per_optimization,
        "pair_year": pair_year,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="USDBRL")
    parser.add_argument("--storage", nargs="+", choices=STORAGES, default=list(STORAGES))
    parser.add_argument("--quiet", type=float, default=150, help="seconds without a new run that end a day")
    parser.add_argument("--timeout", type=float, default=1500, help="seconds a day may take at most")
    parser.add_argument("--settle", type=float, default=90, help="seconds the daemon runs before the first day")
    args = parser.parse_args()
    results = {storage: measure(storage, args) for storage in args.storage}

    def kinds(d: dict) -> str:
        rejected = f" ({d['rejected']} rejected by the blocking checks)" if d["rejected"] else ""
        return ", ".join(f"{n} {k}" for k, n in d["kinds"].items()) + rejected

    lines = [
        START,
        "## Runs per pair-day and Dagster's storage, on a live daemon (issue 24)",
        "",
        f"Command: `python bench/bench_pairs_daemon.py --pair {args.pair} --storage {' '.join(args.storage)} "
        f"--quiet {args.quiet:.0f}`  ",
        f"Machine: {machine()}",
        "",
        "| storage | day of one pair | runs | of which | run time (sum) | wall until quiet | Dagster storage added |",
        "|---|---|---|---|---|---|---|",
    ]
    for storage, r in results.items():
        for name, d in (("first (4 horizons due)", r["first"]), ("next (monitoring only)", r["second"])):
            lines.append(
                f"| {storage} | {name} | {d['runs']} | {kinds(d)} | {d['run_seconds']:.0f} s | {d['wall_s']:.0f} s "
                f"| {d['bytes'] / 1024:.0f} KiB |"
            )
    lines.append("")
    for storage, r in results.items():
        failed = r["first"]["failed"] + r["second"]["failed"]
        lines.append(
            f"- {storage}: runs the daemon made on its own in its first {args.settle:.0f} s (nothing materialized "
            f"yet): {r['unprompted']}; failed runs: {', '.join(failed) or 'none'}; per optimization "
            f"{r['per_optimization'] / 1024:.0f} KiB; per pair-year ({BUSINESS_DAYS_PER_YEAR} monitoring days, "
            f"{OPTIMIZATIONS_PER_BUSINESS_DAY} optimizations per business day): **{r['pair_year'] / 1024**2:.0f} MiB** "
            "of Dagster's own storage (runs, event log, the sensor ticks of the days; before any retention)"
        )
    lines.append(END)
    replace_section(START, END, "\n".join(lines) + "\n")
    print("\n".join(lines[1:-1]))


if __name__ == "__main__":
    main()
