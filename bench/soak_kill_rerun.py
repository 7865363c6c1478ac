"""Soak: `forex-assets run` SIGKILLed at a random moment, then run again, many times over one instance.

Issue 21's done-when: "30 runs of `forex-assets run` each SIGKILLed at a random moment, each followed by a
run that completes within its normal time, no pool claim left, no lost decision, `git fsck` clean".

One ``$DAGSTER_HOME`` for the whole soak (runs, event logs and pool claims accumulate, as on a server).
Each iteration has its own working area (``FOREX_ASSETS_HOME``): the killed run then always starts from a
fresh area, so, like the operator's first `make run`, it searches and validates all four horizons, and a
random moment lands in the optimizer pool most of the time; its rerun works in the same area (what the
killed run left: a half-written study journal, a deploy killed before its commit, a run STARTED for ever).

Per iteration:

1. start ``forex-assets run`` in its own process group; SIGKILL the group at a moment drawn uniformly in
   [0, typical run time] (the median of ``--warmup`` complete runs measured first, in fresh areas);
   what it was doing is read from the instance afterwards (the step its unfinished run had started, and
   whether that step held a slot of the optimizer pool);
2. run ``forex-assets run`` again to completion in the same area, and check: exit status 0; wall time at most
   ``--max-ratio`` x the typical run time; no pool claim left in the instance; no run left unfinished; the
   killed process's unfinished runs marked failed by the sweep; a trigger decision for every horizon
   recorded by the rerun (no lost decision); ``git fsck --full`` of the area's config store clean.

Usage::

    .venv/bin/python bench/soak_kill_rerun.py --runs 30 --seed 1 [--dagster-home DIR] [--warmup 2]

Writes its section of ``bench/results.md`` (``--no-write``: print it only) and one JSON line per iteration to
``<dagster home>/soak.jsonl``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
from bench_common import clean_environment, machine, replace_section  # noqa: E402

from forex_assets.core.horizons import HORIZONS  # noqa: E402
from forex_assets.core.monitoring.decision_log import DecisionLog  # noqa: E402
from forex_assets.core.run_owner import OWNER_PID_TAG  # noqa: E402
from forex_assets.core.working_area import (  # noqa: E402
    DAGSTER_HOME_ENV,
    HOME_ENV,
    WorkingAreaLayout,
)
from forex_assets.defs.dead_runs import UNFINISHED, claims, run_label  # noqa: E402

CLI = str(Path(sys.executable).parent / "forex-assets")
START, END = "<!-- kill-rerun-soak:start -->", "<!-- kill-rerun-soak:end -->"


def _env(home: Path, area: Path) -> dict[str, str]:
    return clean_environment(**{DAGSTER_HOME_ENV: str(home), HOME_ENV: str(area)})


def _complete_run(home: Path, area: Path, log: Path, timeout: float) -> tuple[int, float, str]:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [CLI, "run"], env=_env(home, area), cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as expired:
        log.write_text(f"TIMED OUT after {timeout:.0f} s\n{expired.stdout or ''}{expired.stderr or ''}")
        return -1, time.perf_counter() - started, ""
    log.write_text(done.stdout + done.stderr)
    return done.returncode, time.perf_counter() - started, done.stdout


def _killed_run(home: Path, area: Path, log: Path, after: float) -> tuple[int, bool, float]:
    """Start `forex-assets run`, SIGKILL its process group ``after`` seconds later; (pid, killed, wall)."""
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(
            [CLI, "run"], env=_env(home, area), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            process.wait(timeout=after)
            return process.pid, False, time.perf_counter() - started
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return process.pid, True, time.perf_counter() - started


def _phase(instance: dg.DagsterInstance, pid: int) -> tuple[str, list[str], bool]:
    """What the killed process was doing: (phase, its unfinished run ids, whether it held an optimizer slot)."""
    records = instance.get_run_records(dg.RunsFilter(tags={OWNER_PID_TAG: str(pid)}), limit=50)
    if not records:
        return "start-up (before its first run)", [], False
    unfinished = [r.dagster_run for r in records if r.dagster_run.status in UNFINISHED]
    held = any(c.run_id in {r.run_id for r in unfinished} for c in claims(instance, ["optimizer"]) if not c.pending)
    if not unfinished:
        return "between runs (trigger decision, summary)", [], False
    run = unfinished[0]
    started, ended = [], set()
    for record in instance.get_records_for_run(
        run.run_id,
        of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE},
    ).records:
        event = record.event_log_entry.dagster_event
        (
            started.append(event.step_key)
            if event.event_type == dg.DagsterEventType.STEP_START
            else ended.add(event.step_key)
        )
    running = [s for s in started if s not in ended]
    partition = run.tags.get("dagster/partition", "")
    if running:
        what = f"step {running[-1]} {partition}".strip()
    else:
        what = f"run of {run_label(instance, run)}, {run.status.value}, no step running"
    return what, [r.run_id for r in unfinished], held


def _fsck(store: Path) -> tuple[bool, str]:
    if not (store / ".git").exists() and not (store / "HEAD").exists():
        return False, f"no git repository at {store}"
    done = subprocess.run(["git", "-C", str(store), "fsck", "--full"], capture_output=True, text=True)
    bad = [line for line in (done.stdout + done.stderr).splitlines() if not line.startswith(("dangling", "Checking"))]
    return done.returncode == 0 and not bad, "; ".join(bad)[:300]


def _failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    return records[-1].event_log_entry.message if records else ""


def check_rerun(
    instance: dg.DagsterInstance, area: Path, rerun_started: dt.datetime, killed_runs: list[str]
) -> list[str]:
    """What is wrong after a rerun (empty: nothing)."""
    problems = []
    left = claims(instance)
    if left:
        problems.append(f"pool claims left: {[(c.pool, c.run_id, c.step_key) for c in left]}")
    unfinished = instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED))
    if unfinished:
        problems.append(f"runs left unfinished: {[r.dagster_run.run_id for r in unfinished]}")
    for run_id in killed_runs:
        run = instance.get_run_by_id(run_id)
        if run.status != dg.DagsterRunStatus.FAILURE or "process that ran this run is gone" not in _failure_message(
            instance, run_id
        ):
            problems.append(f"killed run {run_id} is {run.status.value}, not failed by the sweep")
    layout = WorkingAreaLayout.in_directory(area)
    entries = DecisionLog(layout.decision_log, read_only=True).entries()
    decided = {d.horizon for at, d in entries if at is not None and at >= rerun_started}
    lost = [h for h in HORIZONS if h not in decided]
    if lost:
        problems.append(f"no decision recorded by the rerun for {', '.join(lost)}")
    clean, detail = _fsck(layout.config_store)
    if not clean:
        problems.append(f"git fsck --full of the config store: {detail}")
    return problems


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="kill-and-rerun iterations")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill moments")
    parser.add_argument("--dagster-home", type=Path, default=None, help="default: a new temporary directory")
    parser.add_argument("--warmup", type=int, default=2, help="complete runs measured first (typical time)")
    parser.add_argument("--max-ratio", type=float, default=2.0, help="a rerun may take this x the typical time")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results.md")
    args = parser.parse_args()

    home = args.dagster_home or Path(tempfile.mkdtemp(prefix="forex_soak_"))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    dg.DagsterInstance.from_config(str(home)).dispose()
    logs = home / "soak_logs"
    logs.mkdir(exist_ok=True)
    journal = (home / "soak.jsonl").open("a")
    rng = random.Random(args.seed)
    began, load_before = time.perf_counter(), _load()
    print(f"soak in DAGSTER_HOME={home}; {load_before}", flush=True)

    warm = []
    for i in range(args.warmup):
        rc, wall, _ = _complete_run(home, home / "areas" / f"warmup-{i}", logs / f"warmup-{i}.txt", 1800)
        if rc != 0:
            raise SystemExit(f"warm-up run {i} failed (status {rc}): see {logs / f'warmup-{i}.txt'}")
        warm.append(wall)
        print(f"warm-up {i}: {wall:.1f} s", flush=True)
    typical = statistics.median(warm)

    rows = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for i in range(args.runs):
            area = home / "areas" / f"iter-{i:02d}"
            after = rng.uniform(0, typical)
            pid, killed, _ = _killed_run(home, area, logs / f"iter-{i:02d}-killed.txt", after)
            phase, killed_runs, held = _phase(instance, pid) if killed else ("completed before the kill", [], False)
            rerun_started = dt.datetime.now(dt.UTC)
            rc, wall, stdout = _complete_run(home, area, logs / f"iter-{i:02d}-rerun.txt", max(600.0, 6 * typical))
            problems = [] if rc == 0 else [f"rerun exit status {rc}"]
            if wall > args.max_ratio * typical:
                problems.append(f"rerun took {wall:.1f} s, over {args.max_ratio:g} x {typical:.1f} s")
            problems += check_rerun(instance, area, rerun_started, killed_runs)
            swept = sum(1 for run_id in killed_runs if f"run {run_id} (" in stdout and "marked failed" in stdout)
            row = {
                "iteration": i,
                "kill_after_s": round(after, 1),
                "killed": killed,
                "phase": phase,
                "held_optimizer_slot": held,
                "unfinished_runs_left": len(killed_runs),
                "swept_by_rerun": swept,
                "rerun_s": round(wall, 1),
                "problems": problems,
            }
            rows.append(row)
            journal.write(json.dumps(row) + "\n")
            journal.flush()
            print(
                f"{i:2d} kill at {after:5.1f} s: {phase}{' [optimizer slot]' if held else ''}; rerun {wall:5.1f} s "
                f"{'ok' if not problems else 'PROBLEMS: ' + '; '.join(problems)}",
                flush=True,
            )
    minutes = (time.perf_counter() - began) / 60
    section = format_section(args, home, warm, typical, rows, minutes, load_before)
    print(section)
    if not args.no_write:
        replace_section(START, END, section)


def _phase_kind(phase: str) -> str:
    """The phase without its horizon: "step candidate_config 30d" -> "step candidate_config"."""
    if phase.startswith("step "):
        return " ".join(phase.split()[:2])
    if phase.startswith("run of "):
        return "a run started, no step running yet"
    return phase


def format_section(args, home: Path, warm, typical, rows, minutes: float, load_before: str) -> str:
    command = f".venv/bin/python bench/soak_kill_rerun.py --runs {args.runs} --seed {args.seed}"
    if args.dagster_home:
        command += f" --dagster-home {args.dagster_home}"
    reruns = [r["rerun_s"] for r in rows]
    failures = [r for r in rows if r["problems"]]
    phases = Counter(_phase_kind(r["phase"]) for r in rows)
    held = sum(r["held_optimizer_slot"] for r in rows)
    left = sum(r["unfinished_runs_left"] for r in rows)
    swept = sum(r["swept_by_rerun"] for r in rows)
    phase_lines = "\n".join(f"| {phase} | {n} |" for phase, n in sorted(phases.items(), key=lambda kv: -kv[1]))
    failure_lines = (
        "\n".join(f"* iteration {r['iteration']} ({r['phase']}): {'; '.join(r['problems'])}" for r in failures)
        or "none"
    )
    return f"""{START}
## Kill and rerun soak: `forex-assets run` SIGKILLed at a random moment, then run again

Command: `{command}` ({minutes:.0f} min)  
Machine: {machine()}; {load_before} at the start, {_load()} at the end (other work shared the machine)

One `$DAGSTER_HOME` for the whole soak; each iteration a fresh working area, so the killed run searches
and validates all four horizons. Typical run time (median of {len(warm)} complete runs first:
{", ".join(f"{w:.1f}" for w in warm)} s): **{typical:.1f} s**; each kill at a moment uniform in [0, {typical:.1f} s].
A rerun passes when it exits 0 within {args.max_ratio:g} x the typical time, leaves no pool claim and no unfinished
run in the instance, the killed run's unfinished runs are failed by the dead-run sweep, it records a trigger
decision for every horizon, and `git fsck --full` of the config store is clean.

* iterations: **{len(rows)}**, killed: {sum(r["killed"] for r in rows)} (the others had completed first)
* killed while a step held the optimizer pool slot: **{held}**
* runs left unfinished by the killed processes: {left}; marked failed by the rerun's sweep: {swept}
* rerun wall time: median {statistics.median(reruns):.1f} s, max {max(reruns):.1f} s (limit {args.max_ratio * typical:.1f} s)
* failed reruns: **{len(failures)}**

| what the killed process was doing | kills |
|---|---|
{phase_lines}

Failures: {failure_lines}

Per iteration: `{home}/soak.jsonl`.
{END}
"""


if __name__ == "__main__":
    main()
