"""Benchmark: one optimization run launched as a run container runs it, inside a real 1 GiB memory cgroup.

A DockerRunLauncher / K8sRunLauncher container runs ``dagster api execute_run``: one process (the run
worker) loads the code location and executes the job with the job's own executor. This bench does the
same with ``dagster job execute -m <code location> -j optimization_job --tags '{"dagster/partition": "h|USDCLP"}'``
(the CLI's run worker, same executor, same event log), each run in a fresh process inside a fresh cgroup v1
memory group with ``memory.limit_in_bytes`` 1 GiB, as the production run containers have
(deploy/dagster.yaml: ``mem_limit: 1g``, ``memswap_limit: 1g``; ``memory.memsw.limit_in_bytes`` is set too
where the machine has swap). Afterwards it reads the group's ``memory.max_usage_in_bytes``,
``memory.failcnt`` and the ``oom_kill`` count of ``memory.oom_control``, and removes the group. Where the memory controller is not writable (no cgroup v1
memory hierarchy, no permission) it says why and measures without the limit.

Two code locations, on the same instance, prices and cold working areas:

* **before**: the code location as it was before issue 15: Dagster's default executor (multiprocess in a
  launched run: the run worker plus one subprocess per step, each importing torch and the code location)
  and one step per approval check (six check steps). Written to a temporary module at run time. Run at
  90d only by default (``--before-horizons``): it is several times slower.
* **after**: ``forex_assets.definitions``: the in-process executor (``defs/runs.py``) and the six checks
  in one step.

Models: the bundled Chronos-2 checkpoint (the shipped search spaces) and a randomly initialised
Chronos-Bolt the size of amazon/chronos-bolt-small (built here; nothing is downloaded) searched over the
same context lengths and preprocessing. Horizons 30d and 90d (the longest contexts and outputs).

Usage::

    .venv/bin/python bench/bench_memory.py [--horizons 30d 90d] [--models bundled bolt] [--variants before after]
        [--before-horizons 90d]

Writes its section of ``bench/results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

LIMIT_BYTES = 2**30  # 1 GiB: the run containers' mem_limit
MIB = 2**20
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
START, END = "<!-- memory:start -->", "<!-- memory:end -->"
HORIZONS = ("30d", "90d")
SAMPLE_SECONDS = 0.1
RUN_TIMEOUT_S = 900
STARTUP_REPEATS = 3
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

BEFORE_MODULE = '''
"""forex_assets' code location before issue 15 (bench/bench_memory.py writes this file): Dagster's default
executor (multiprocess in a launched run) and one step per approval check."""
import dagster as dg

from forex_assets.core.recalibration.validation import CRITERIA_NAMES, ValidationMetrics, approval_criteria
from forex_assets.defs.graph import ASSETS
from forex_assets.defs.partitions import pair_horizon_partitions
from forex_assets.defs.recalibration.checks import DESCRIPTIONS
from forex_assets.defs.resources import PolicyResource, code_location_resources


def _criterion_check(name):
    @dg.asset_check(asset="validation_report", name=name, blocking=True, description=DESCRIPTIONS[name],
                    partitions_def=pair_horizon_partitions)
    def _check(validation_report: dict, policy: PolicyResource) -> dg.AssetCheckResult:
        metrics = ValidationMetrics(**validation_report["metrics"])
        criterion = next(c for c in approval_criteria(metrics, policy.settings().approval) if c.name == name)
        return dg.AssetCheckResult(passed=criterion.passed, severity=dg.AssetCheckSeverity.ERROR,
                                   description=criterion.description,
                                   metadata={"observed": float(criterion.observed),
                                             "threshold": float(criterion.threshold)})

    return _check


optimization_job = dg.define_asset_job(
    "optimization_job",
    selection=dg.AssetSelection.assets("candidate_config", "validation_report", "deployed_config"),
    tags={"forex/optimizer": "manual"},
)
defs = dg.Definitions(assets=ASSETS, asset_checks=[_criterion_check(name) for name in CRITERIA_NAMES],
                      jobs=[optimization_job], resources=code_location_resources())
'''
BEFORE_MODULE_NAME = "forex_before_issue15"
CODE_LOCATIONS = {"before": BEFORE_MODULE_NAME, "after": "forex_assets.definitions"}
VARIANT_LABELS = {
    "before": "before: default multiprocess executor, 6 check steps",
    "after": "after: in-process executor, checks in 1 step",
}


# --------------------------------------------------------------------------------------------- cgroup v1


def own_memory_cgroup(proc_cgroup: str = "/proc/self/cgroup") -> Path:
    """This process's cgroup v1 memory group (a directory under /sys/fs/cgroup/memory)."""
    for line in Path(proc_cgroup).read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return CGROUP_V1_MEMORY / path.lstrip("/")
    raise OSError("no cgroup v1 memory controller in /proc/self/cgroup (cgroup v2 only?)")


def cgroup_unavailable_reason() -> str | None:
    """Why a child memory group cannot be made here, or None when it can (tries one and removes it)."""
    try:
        parent = own_memory_cgroup()
        if not (parent / "memory.limit_in_bytes").exists():
            return f"{parent} has no memory.limit_in_bytes: not a cgroup v1 memory hierarchy"
        probe = parent / f"bench_memory_probe_{os.getpid()}"
        probe.mkdir()
        try:
            (probe / "memory.limit_in_bytes").write_text(str(LIMIT_BYTES))
        finally:
            probe.rmdir()
    except OSError as error:
        return f"the cgroup v1 memory controller is not writable here: {error}"
    return None


@dataclass
class CgroupStats:
    max_usage_bytes: int
    failcnt: int  # memory.failcnt: charges refused at memory.limit_in_bytes
    oom_kills: int  # -1: the kernel's oom_control has no oom_kill line


def swap_configured() -> bool:
    try:
        return len(Path("/proc/swaps").read_text().strip().splitlines()) > 1
    except OSError:
        return False


class MemoryCgroup:
    """A child memory group with a hard limit (and the same memory+swap limit), removed on exit."""

    def __init__(self, name: str, limit_bytes: int = LIMIT_BYTES):
        self.path = own_memory_cgroup() / name
        self.limit_bytes = limit_bytes

    def __enter__(self) -> MemoryCgroup:
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(self.limit_bytes))
        # memswap_limit = mem_limit: no swap past the limit. Only where there is swap to limit: with the
        # memory+swap limit set, the memsw counter refuses charges first and (kernel 6.18 here) neither it nor
        # memory.failcnt counts them, so failcnt would read 0 even for a run that was OOM-killed.
        memsw = self.path / "memory.memsw.limit_in_bytes"
        if swap_configured() and memsw.exists():
            memsw.write_text(str(self.limit_bytes))
        return self

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in self.procs.read_text().split()]
        except OSError:
            return []

    def read(self, name: str) -> str:
        return (self.path / name).read_text()

    def stat(self) -> dict[str, int]:
        return {k: int(v) for k, v in (line.split() for line in self.read("memory.stat").splitlines())}

    def stats(self) -> CgroupStats:
        oom = dict(line.split() for line in self.read("memory.oom_control").splitlines())
        return CgroupStats(
            max_usage_bytes=int(self.read("memory.max_usage_in_bytes")),
            failcnt=int(self.read("memory.failcnt")),
            oom_kills=int(oom.get("oom_kill", -1)),
        )

    def __exit__(self, *exc) -> None:
        for _ in range(50):  # the command's processes have exited; wait for the kernel to let go of them
            if not self.pids():
                break
            time.sleep(0.1)
        for pid in self.pids():  # only processes this bench started can be left in its own group
            os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        self.path.rmdir()


def in_cgroup(command: list[str], procs: Path) -> list[str]:
    """``command`` started inside the group: the shell moves itself into it, then becomes the command."""
    return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs), *command]


def tree_rss_bytes(pids: list[int]) -> tuple[int, int]:
    """Summed resident set of ``pids`` now, and its anonymous part (``RssAnon``: heap, tensors; what the
    kernel cannot drop under the limit, unlike file-backed pages such as the mapped torch libraries).
    Shared pages count once per process, as `ps` adds them up."""
    total = anon = 0
    for pid in pids:
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
            total += int(fields["VmRSS"].split()[0]) * 1024
            anon += int(fields["RssAnon"].split()[0]) * 1024
        except (OSError, KeyError, ValueError, IndexError):
            pass
    return total, anon


@dataclass
class Measurement:
    returncode: int
    wall_s: float
    largest_process_rss_bytes: int  # peak RSS of the largest single process of the tree (wait4)
    tree_rss_bytes: int  # sampled peak of the sum of the tree's RSS
    tree_anon_bytes: int  # sampled peak of the sum of the tree's anonymous RSS
    cgroup: CgroupStats | None = None
    output_tail: str = ""


def measure(command: list[str], env: dict, cgroup: MemoryCgroup | None, log: Path) -> Measurement:
    """Run ``command`` (inside ``cgroup`` when given) to its end; wall time and memory peaks."""
    import subprocess

    full = in_cgroup(command, cgroup.procs) if cgroup else command
    tree_peak = anon_peak = 0
    started = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen(full, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > RUN_TIMEOUT_S:
                os.killpg(process.pid, signal.SIGKILL)  # the session this bench started for the run
            if cgroup:
                rss, anon = tree_rss_bytes(cgroup.pids())
            else:
                rss, anon = tree_rss_bytes([process.pid])
            tree_peak, anon_peak = max(tree_peak, rss), max(anon_peak, anon)
            time.sleep(SAMPLE_SECONDS)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measurement(
        returncode=process.returncode,
        wall_s=wall,
        largest_process_rss_bytes=usage.ru_maxrss * 1024,
        tree_rss_bytes=tree_peak,
        tree_anon_bytes=anon_peak,
        cgroup=cgroup.stats() if cgroup else None,
        output_tail=log.read_text()[-3000:],
    )


# ----------------------------------------------------------------------------------------------- runs


def prepare_configs(directory: Path, bolt_dir: Path | None) -> Path:
    """The seed configurations, with the search spaces pointed at the Bolt checkpoint when given."""
    from forex_assets.core.working_area import SEED_CONFIGS_DIR

    directory.mkdir(parents=True, exist_ok=True)
    for seed in SEED_CONFIGS_DIR.glob("*.json"):
        document = json.loads(seed.read_text())
        if bolt_dir is not None and seed.name.startswith("search_space_"):
            document["checkpoints"] = [{"checkpoint": str(bolt_dir), "family": "chronos-bolt"}]
        (directory / seed.name).write_text(json.dumps(document, indent=2))
    return directory


def dagster_cli() -> str:
    beside = Path(sys.executable).with_name("dagster")
    return str(beside) if beside.exists() else "dagster"


def job_command(module: str, job: str, tags: dict, run_config: Path) -> list[str]:
    return [dagster_cli(), "job", "execute", "-m", module, "-j", job, "--tags", json.dumps(tags), "-c", str(run_config)]


@dataclass
class RunDetails:
    status: str
    steps: int  # steps that started
    processes: int  # distinct processes that ran steps (the run worker alone when in process)
    compute_s: float  # sum of the step durations (start to success or failure)
    run_s: float  # run start to run end in the event log (steps, resources, IO, the executor's own work)
    checks: int  # check evaluations recorded
    checks_passed: int
    materialized: list[str] = field(default_factory=list)
    trials: int | None = None


def run_details(home: Path, case: str) -> RunDetails:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"bench/case": case}), limit=1)
        if not runs:
            return RunDetails(
                status="NOT CREATED", steps=0, processes=0, compute_s=0.0, run_s=0.0, checks=0, checks_passed=0
            )
        run = runs[0]
        starts, ends, pids, checks, materialized, trials = {}, {}, set(), [], [], None
        run_start = run_end = None
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type == dg.DagsterEventType.RUN_START:
                run_start = entry.timestamp
            elif event.event_type in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
                run_end = entry.timestamp
            elif event.event_type == dg.DagsterEventType.STEP_START:
                starts[entry.step_key] = entry.timestamp
                pids.add(event.pid)
            elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                ends[entry.step_key] = entry.timestamp
            elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                checks.append(entry.asset_check_evaluation.passed)
            elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                materialization = entry.asset_materialization
                materialized.append(materialization.asset_key.to_user_string())
                if "trials_complete" in materialization.metadata:
                    trials = int(materialization.metadata["trials_complete"].value)
        compute = sum(ends[k] - starts[k] for k in starts if k in ends)
        return RunDetails(
            status=run.status.value,
            steps=len(starts),
            processes=len(pids),
            compute_s=compute,
            run_s=(run_end - run_start) if run_start and run_end else 0.0,
            checks=len(checks),
            checks_passed=sum(checks),
            materialized=materialized,
            trials=trials,
        )


@dataclass
class Row:
    model: str
    horizon: str
    variant: str
    measurement: Measurement
    details: RunDetails

    @property
    def completed(self) -> bool:
        """The run got to its verdict: candidate and report made, all six checks evaluated."""
        return (
            {"candidate_config", "validation_report"} <= set(self.details.materialized)
            and self.details.checks == 6
            and self.details.status in ("SUCCESS", "FAILURE")
        )

    @property
    def outcome(self) -> str:
        if not self.completed:
            return f"**did not complete** ({self.details.status}, exit {self.measurement.returncode})"
        if "deployed_config" in self.details.materialized:
            return "deployed"
        return f"deploy blocked ({self.details.checks - self.details.checks_passed} checks failed)"


def write_section(
    rows: list[Row], command: str, machine: str, cgroup_note: str, load: str, startup: list[tuple[float, int]]
) -> str:
    from bench_common import replace_section

    limit_mb = LIMIT_BYTES / MIB
    lines = [
        START,
        "## One optimization run as the run container runs it, inside a 1 GiB memory cgroup",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine}  ",
        f"Load: {load}",
        "",
        "Each run: `dagster job execute -m <code location> -j optimization_job --tags "
        '\'{"dagster/partition": "<h>"}\' -c <run config>` in a fresh process (the run worker, with the job\'s',
        "own executor: what `dagster api execute_run` does in a DockerRunLauncher/K8sRunLauncher container),",
        "cold working area (no backtest cache, no Optuna journal), prices materialized beforehand by `prices_job`.",
        f"{cgroup_note}",
        "`FOREX_MEMORY_LIMIT_MB=1024` stands for the limit the engine reads in the container (a child group is",
        "not visible at /sys/fs/cgroup/memory/memory.limit_in_bytes without a cgroup namespace).",
        "",
        "* **before**: Dagster's default executor (multiprocess in a launched run: the run worker and one",
        "  subprocess per step, each importing torch and the code location) and one step per approval check;",
        "* **after**: `forex_assets.definitions` as it is: in-process executor (`defs/runs.py`), the six checks",
        "  in one step (`defs/recalibration/checks.py`).",
        "",
        "Columns: *steps / processes* = steps that ran / distinct processes that ran them (event log pids);",
        "*cgroup peak* = `memory.max_usage_in_bytes` (anonymous memory and the page cache charged to the group:",
        "what the limit enforces; it cannot pass the limit: the kernel reclaims page cache, else OOM-kills);",
        "*failcnt* = `memory.failcnt`, charges that hit the limit; *OOM kills* = `oom_kill` of",
        "`memory.oom_control`; *tree RSS (anon)* = sampled peak of the summed RSS of the group's processes",
        "(shared library pages counted once per process, as `ps` adds them up) and of its anonymous part",
        "(`RssAnon`: heap and tensors, which the kernel cannot drop); *largest process* = peak RSS of the",
        "largest single process (wait4). *compute* = sum of the step durations; *run* = run start to run end",
        "in the event log; *wall* = the whole `dagster job execute` process (interpreter start, code location",
        "load, run, event log writes).",
        "",
        "Caveat on *cgroup peak*: a page is charged to the group that first read it. Library pages already in",
        "this machine's page cache (torch and friends, read by other processes before) stay charged elsewhere,",
        "so the group's peak can be below its process's RSS. A fresh container charges those pages to itself;",
        "they are file-backed, so at the limit the kernel drops and re-reads them (slower, failcnt > 0) rather",
        "than OOM-kill: the anonymous part is the floor that must fit.",
        "",
        f"Loading the code location alone (`python -c 'import forex_assets.definitions'`, fresh process, best of"
        f" {len(startup)}): {min(t for t, _ in startup):.1f} s, peak RSS {max(r for _, r in startup) / MIB:.0f} MiB"
        " (RSS of the largest process); every process that runs a step pays it once: one per run in process,",
        "one per step (plus the run worker) with the multiprocess executor.",
        "",
        "Outcome: on this synthetic series the candidate does not beat the seed, so a blocked deploy is the",
        "usual verdict; the run completed (both assets and all six check evaluations recorded).",
        "",
        "| model | horizon | code location | steps / processes | trials | outcome | cgroup peak MiB | failcnt "
        "| OOM kills | tree RSS (anon) MiB | largest process MiB | compute s | run s | wall s | wall / compute |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m, d = row.measurement, row.details
        g = m.cgroup
        peak = f"{g.max_usage_bytes / MIB:.0f}" if g else "n/a"
        if g and g.max_usage_bytes >= 0.99 * LIMIT_BYTES:
            peak += " (at the limit)"
        oom = "n/a" if g is None else ("?" if g.oom_kills < 0 else str(g.oom_kills))
        ratio = f"{m.wall_s / d.compute_s:.2f}" if d.compute_s else "n/a"
        lines.append(
            f"| {row.model} | {row.horizon} | {VARIANT_LABELS[row.variant]} | {d.steps} / {d.processes} "
            f"| {d.trials if d.trials is not None else '-'} | {row.outcome} | {peak} | {g.failcnt if g else 'n/a'} "
            f"| {oom} | {m.tree_rss_bytes / MIB:.0f} ({m.tree_anon_bytes / MIB:.0f}) "
            f"| {m.largest_process_rss_bytes / MIB:.0f} | {d.compute_s:.1f} | {d.run_s:.1f} | {m.wall_s:.1f} | {ratio} |"
        )
    lines += ["", _targets(rows, limit_mb), END]
    section = "\n".join(lines)
    replace_section(START, END, section + "\n")
    return section


def _targets(rows: list[Row], limit_mb: float) -> str:
    after = [r for r in rows if r.variant == "after"]
    if not after:
        return "Targets: no in-process run measured."
    ok_complete = all(r.completed for r in after)
    ok_oom = all(r.measurement.cgroup is None or r.measurement.cgroup.oom_kills <= 0 for r in after)
    peaks = [r.measurement.cgroup.max_usage_bytes / MIB for r in after if r.measurement.cgroup]
    ok_peak = all(p <= limit_mb for p in peaks)
    anon = max(r.measurement.tree_anon_bytes for r in after) / MIB
    named = {f"{r.model.split(' (')[0]} {r.horizon}": r for r in after if r.details.compute_s}
    ratios = {name: r.measurement.wall_s / r.details.compute_s for name, r in named.items()}
    met = [name for name, ratio in ratios.items() if ratio <= 1.5]
    startup = ", ".join(f"{name} {r.measurement.wall_s - r.details.run_s:.1f} s" for name, r in named.items())
    return (
        f"Targets (after): completes {'yes' if ok_complete else '**NO**'}; cgroup peak <= {limit_mb:.0f} MiB "
        f"{'yes' if ok_peak else '**NO**'} (highest {max(peaks, default=float('nan')):.0f}; anonymous RSS at most "
        f"{anon:.0f}); no OOM kill {'yes' if ok_oom else '**NO**'}; wall <= 1.5 x compute: "
        f"{len(met)} of {len(ratios)} runs ({', '.join(f'{n} {v:.2f}' for n, v in ratios.items())}). "
        f"Wall minus run (process start and code location load, paid once per run): {startup}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--horizons", nargs="+", default=list(HORIZONS))
    parser.add_argument("--models", nargs="+", default=["bundled", "bolt"], choices=["bundled", "bolt"])
    parser.add_argument("--variants", nargs="+", default=["before", "after"], choices=["before", "after"])
    parser.add_argument(
        "--before-horizons",
        nargs="+",
        default=["90d"],
        help="horizons that also run 'before' (multiprocess: several times slower; 90d is the issue's case)",
    )
    args = parser.parse_args()

    from bench_search import machine

    from forex_assets.core.models.random_bolt import build_random_bolt_checkpoint, parameter_count

    reason = cgroup_unavailable_reason()
    if reason:
        print(f"SKIPPING the memory cgroup: {reason}; measuring without a limit", flush=True)
        cgroup_note = f"**No memory cgroup**: {reason}; the runs had no limit."
    else:
        cgroup_note = (
            f"Each run in its own cgroup v1 memory group under {own_memory_cgroup()}: "
            f"`memory.limit_in_bytes` = {LIMIT_BYTES} (1 GiB), as `mem_limit: 1g` in deploy/dagster.yaml "
            + (
                "(and `memory.memsw.limit_in_bytes` the same, as `memswap_limit: 1g`)"
                if swap_configured()
                else "(no swap on this machine: nothing for `memswap_limit: 1g` to limit)"
            )
            + "; removed after the run."
        )
    load = "load average {:.1f} / {:.1f} / {:.1f} at the start (other processes share the cores)".format(
        *os.getloadavg()
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        home = work_dir / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        (work_dir / f"{BEFORE_MODULE_NAME}.py").write_text(textwrap.dedent(BEFORE_MODULE))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOREX_")} | {
            "DAGSTER_HOME": str(home),
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "FOREX_MEMORY_LIMIT_MB": str(LIMIT_BYTES // MIB),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(work_dir), os.environ.get("PYTHONPATH")])),
        }
        models = {}
        if "bundled" in args.models:
            models["bundled Chronos-2 (0.76M parameters)"] = prepare_configs(work_dir / "configs-bundled", None)
        if "bolt" in args.models:
            bolt_dir = build_random_bolt_checkpoint(work_dir / "bolt-small-random", seed=0)
            millions = parameter_count(bolt_dir) / 1e6
            models[f"random Chronos-Bolt, bolt-small size ({millions:.1f}M parameters)"] = prepare_configs(
                work_dir / "configs-bolt", bolt_dir
            )

        prices_config = work_dir / "prices.json"
        prices_config.write_text(json.dumps(QUIET))
        prices = measure(
            job_command(
                "forex_assets.definitions",
                "prices_job",
                {"dagster/partition": "USDCLP", "bench/case": "prices"},
                prices_config,
            ),
            env,
            None,
            work_dir / "prices.log",
        )
        if prices.returncode != 0:
            raise SystemExit(f"prices_job failed:\n{prices.output_tail}")
        startup = []  # (seconds, peak RSS bytes) of loading the code location in a fresh process
        for _ in range(STARTUP_REPEATS):
            load_only = [sys.executable, "-c", "import forex_assets.definitions"]
            loaded = measure(load_only, env, None, work_dir / "load.log")
            startup.append((loaded.wall_s, loaded.largest_process_rss_bytes))
        print(f"code location load: {startup}", flush=True)

        for m_index, (model, configs) in enumerate(models.items()):
            for horizon in args.horizons:
                for variant in args.variants:
                    if variant == "before" and horizon not in args.before_horizons:
                        continue
                    case = f"{m_index}-{horizon}-{variant}"
                    run_config = work_dir / f"run-{case}.json"
                    area = work_dir / f"area-{case}"
                    run_config.write_text(
                        json.dumps(
                            QUIET
                            | {
                                "resources": {
                                    "working_area": {"config": {"path": str(area), "configs_dir": str(configs)}}
                                }
                            }
                        )
                    )
                    tags = {"dagster/partition": f"{horizon}|USDCLP", "bench/case": case}  # USD/CLP's horizon
                    command = job_command(CODE_LOCATIONS[variant], "optimization_job", tags, run_config)
                    log = work_dir / f"run-{case}.log"
                    if reason:
                        measurement = measure(command, env, None, log)
                    else:
                        with MemoryCgroup(f"bench_memory_{os.getpid()}_{case}") as group:
                            measurement = measure(command, env, group, log)
                    row = Row(model, horizon, variant, measurement, run_details(home, case))
                    rows.append(row)
                    g = measurement.cgroup
                    print(
                        f"{model} {horizon} {variant}: {row.outcome}; wall {measurement.wall_s:.1f} s, compute "
                        f"{row.details.compute_s:.1f} s, steps {row.details.steps} in {row.details.processes} "
                        f"processes; cgroup peak {g.max_usage_bytes / MIB if g else float('nan'):.0f} MiB, failcnt "
                        f"{g.failcnt if g else '-'}, OOM kills {g.oom_kills if g else '-'}; tree RSS "
                        f"{measurement.tree_rss_bytes / MIB:.0f} MiB (anon {measurement.tree_anon_bytes / MIB:.0f})",
                        flush=True,
                    )
                    if not row.completed:
                        print(measurement.output_tail, flush=True)
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:])
    command = "make bench" if os.environ.get("MAKELEVEL") else f"python bench/bench_memory.py {argv}".strip()
    print(write_section(rows, command, machine(), cgroup_note, load, startup))


if __name__ == "__main__":
    main()
