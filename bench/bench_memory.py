"""Benchmark: peak RSS of one optimization run, against the 1 GB limit of a run container.

An optimization run is what ``optimization_job`` runs in its container: ``candidate_config`` (the
Optuna search over the horizon's search space on 30 origins), ``validation_report`` with its five
blocking checks (candidate and deployed configuration backtested on 30 later origins, inference
timing) and ``deployed_config``, in-process in a fresh Python process (Dagster, torch and both models
loaded), from a cold cache. Models:

* the bundled Chronos-2 checkpoint (the shipped search spaces);
* a randomly initialised Chronos-Bolt the size of amazon/chronos-bolt-small (47.7M parameters, built
  here: nothing is downloaded), searched over the same context lengths and preprocessing.

Horizons 30d and 90d (the longest contexts and outputs). The peak is the process's VmHWM.

Usage::

    .venv/bin/python bench/bench_memory.py

Writes its section of ``bench/results.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_search import RESULTS, machine  # noqa: E402

from forex_assets.core.working_area import SEED_CONFIGS_DIR  # noqa: E402

LIMIT_MB = 1024
START, END = "<!-- memory:start -->", "<!-- memory:end -->"
HORIZONS = ("30d", "90d")


def prepare_configs(directory: Path, bolt_dir: Path | None) -> Path:
    """The seed configurations, with the search spaces pointed at the Bolt checkpoint when given."""
    directory.mkdir(parents=True, exist_ok=True)
    for seed in SEED_CONFIGS_DIR.glob("*.json"):
        document = json.loads(seed.read_text())
        if bolt_dir is not None and seed.name.startswith("search_space_"):
            document["checkpoints"] = [{"checkpoint": str(bolt_dir), "family": "chronos-bolt"}]
        (directory / seed.name).write_text(json.dumps(document, indent=2))
    return directory


CHILD = """
import json, sys
import dagster as dg
from forex_assets.cli.run import ALL_ASSETS, QUIET
from forex_assets.defs.deployment.assets import deployed_config
from forex_assets.defs.prices.assets import usdclp_prices
from forex_assets.defs.recalibration.assets import candidate_config, validation_report
from forex_assets.defs.resources import WorkingArea, code_location_resources
configs, area, horizon = sys.argv[1:4]
resources = code_location_resources(WorkingArea(path=area, configs_dir=configs))
with dg.instance_for_test() as instance:
    dg.materialize([usdclp_prices], instance=instance, resources=resources, run_config=QUIET)
    result = dg.materialize(ALL_ASSETS, selection=[candidate_config, validation_report, deployed_config],
        partition_key=horizon, instance=instance, resources=resources, raise_on_error=False, run_config=QUIET)
    candidate = result.output_for_node("candidate_config")
hwm_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"peak_rss_mb": hwm_kb / 1024, "trials": candidate["trials_complete"],
                  "checks_passed": sum(e.passed for e in result.get_asset_check_evaluations())}))
"""


def optimization_run(configs: Path, horizon: str, limit_mb: int | None) -> dict:
    """One run in a fresh process; ``limit_mb`` is the memory limit the engine sees (in a container it
    reads the cgroup's; here, with no container, FOREX_MEMORY_LIMIT_MB stands for it)."""
    with tempfile.TemporaryDirectory() as area:
        command = [sys.executable, "-c", CHILD, str(configs), area, horizon]
        env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        env.pop("FOREX_MEMORY_LIMIT_MB", None)
        if limit_mb is not None:
            env["FOREX_MEMORY_LIMIT_MB"] = str(limit_mb)
        out = subprocess.run(command, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"optimization run {horizon} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def write_section(rows: list[tuple[str, str, str, dict]], command: str) -> str:
    lines = [
        START,
        "## Peak RSS of one optimization run (fresh process, cold cache) vs the 1 GB run container",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}",
        "",
        "candidate_config (search, 30 origins) + validation_report and its 5 checks (30 later origins) + "
        "deployed_config, in-process with Dagster, as `optimization_job` runs in its container.",
        "",
        "The engine sizes each batched model call to half the headroom left under the process's memory",
        "limit (the container's cgroup limit, or FOREX_MEMORY_LIMIT_MB), at most 256 MB of activations.",
        'Rows "limit seen" run as in the 1 GB container; "no limit" rows show the same run when the',
        "engine sees no limit (a plain server), for contrast. Trials = completed ones: with the random",
        "Bolt the 4 log-preprocessing trials fail by design (its log-space outputs overflow: ForecastError",
        '"non-finite forecasts"), after running their forecasts.',
        "",
        "| model | horizon | engine | trials | peak RSS MB | limit MB | within |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, horizon, mode, r in rows:
        within = "yes" if r["peak_rss_mb"] <= LIMIT_MB else "**NO**"
        lines.append(
            f"| {model} | {horizon} | {mode} | {r['trials']} | {r['peak_rss_mb']:.0f} | {LIMIT_MB} | {within} |"
        )
    lines += [END, ""]
    section = "\n".join(lines)
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if START in old:
        old = old[: old.index(START)] + old[old.index(END) + len(END) :].lstrip("\n")
    RESULTS.write_text(old.rstrip("\n") + "\n\n" + section)
    return section


def main() -> None:
    from forex_assets.core.models.random_bolt import build_random_bolt_checkpoint, parameter_count

    rows = []
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        bolt_dir = build_random_bolt_checkpoint(work_dir / "bolt-small-random", seed=0)
        millions = parameter_count(bolt_dir) / 1e6
        models = {
            "bundled Chronos-2 (0.76M parameters)": prepare_configs(work_dir / "configs-bundled", None),
            f"random Chronos-Bolt, bolt-small size ({millions:.1f}M parameters)": prepare_configs(
                work_dir / "configs-bolt", bolt_dir
            ),
        }
        for model, configs in models.items():
            for horizon in HORIZONS:
                for mode, limit in (("limit seen (1 GB)", LIMIT_MB), ("no limit", None)):
                    result = optimization_run(configs, horizon, limit)
                    print(f"{model} {horizon} {mode}: {result}")
                    rows.append((model, horizon, mode, result))
    command = "make bench" if os.environ.get("MAKELEVEL") else " ".join(["python", *sys.argv])
    print(write_section(rows, command))


if __name__ == "__main__":
    main()
