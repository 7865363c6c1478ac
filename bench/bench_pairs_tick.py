"""The daily sensors and schedules with many currency pairs (issue 24's target: a sensor tick with 25 pairs x 4
horizons under 2 s).

A pairs file of ``--pairs`` pairs (USD/CLP and synthetic others) is written and named by $FOREX_PAIRS_FILE before
the code location is imported, so its partitions are ``pairs x 4``. USD/CLP's four horizons get real drift and
performance reports (the assets run); every other partition gets the same metadata as a runless
materialization (the sensors read metadata only, never a model), so a tick sees ``pairs x 4`` new reports.

Timed, each over ``--repeats`` ticks (median, min, max):

* ``optimization_sensor`` with every partition's reports new (the worst tick: a decision recorded for each of the
  ``pairs x 4`` series, the optimizations it requests);
* ``optimization_sensor`` with nothing new (every minute of a normal day);
* ``rollback_sensor`` (opens each pair's config store, watches each horizon's deploy);
* ``weekly_optimization_schedule`` (a decision for each series).

Usage: .venv/bin/python bench/bench_pairs_tick.py [--pairs 25] [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import string
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_common import machine, replace_section  # noqa: E402

START, END = "<!-- pairs-tick:start -->", "<!-- pairs-tick:end -->"


def pairs_document(count: int) -> dict:
    """USD/CLP as configs/pairs.json declares it, then ``count - 1`` synthetic pairs against the US dollar."""
    shipped = json.loads((Path(__file__).resolve().parents[1] / "configs" / "pairs.json").read_text())
    usdclp = next(p for p in shipped["pairs"] if p["code"] == "USDCLP")
    quotes = ("".join(letters) for letters in itertools.product(string.ascii_uppercase, repeat=3))
    others = []
    for quote in quotes:
        if len(others) == count - 1:
            break
        if quote in ("USD", "CLP"):
            continue
        level = 1.0 + len(others) * 7.3
        others.append(
            {
                "code": f"USD{quote}",
                "calendar": ["US"],
                "synthetic_level": level,
                "synthetic_daily_vol": 0.006,
            }
        )
    return {"pairs": [usdclp, *others]}


def timed(function, repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(name: str, seconds: list[float]) -> str:
    return (
        f"{name}: median {statistics.median(seconds):.3f} s, min {min(seconds):.3f} s, max {max(seconds):.3f} s "
        f"({len(seconds)} ticks)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_pairs_"))
    pairs_file = work / "pairs.json"
    pairs_file.write_text(json.dumps(pairs_document(args.pairs)))
    os.environ["FOREX_PAIRS_FILE"] = str(pairs_file)  # before the code location is imported: its partitions

    import dagster as dg

    from forex_assets.cli.run import QUIET, materialize_selection
    from forex_assets.core.horizons import HORIZONS
    from forex_assets.core.working_area import SEED_CONFIGS_DIR
    from forex_assets.definitions import defs
    from forex_assets.defs.deployment.sensors import rollback_sensor
    from forex_assets.defs.monitoring.assets import drift_report, performance_report
    from forex_assets.defs.monitoring.automation import optimization_sensor, weekly_optimization_schedule
    from forex_assets.defs.partitions import pair_horizon_partitions, pair_partitions, series_key
    from forex_assets.defs.prices.assets import pair_prices
    from forex_assets.defs.resources import WorkingArea, code_location_resources

    partitions = pair_horizon_partitions.get_partition_keys()
    assert len(pair_partitions.get_partition_keys()) == args.pairs and len(partitions) == args.pairs * 4
    area = WorkingArea(path=str(work / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    resources = code_location_resources(area)
    definitions = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules,
        sensors=defs.sensors,
        resources=resources,
    )
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET
        ).success
        template = {}
        for horizon in HORIZONS:
            assert materialize_selection(instance, resources, [drift_report, performance_report], horizon).success
            for key in ("drift_report", "performance_report"):
                event = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[str(series_key(horizon))]),
                    limit=1,
                ).records[0]
                template[key, horizon] = event.asset_materialization.metadata

        def new_reports() -> None:
            for partition in partitions:
                horizon = partition.split("|")[0]
                for key in ("drift_report", "performance_report"):
                    instance.report_runless_asset_event(
                        dg.AssetMaterialization(key, partition=partition, metadata=template[key, horizon])
                    )

        def optimization_tick(cursor: str | None = None):
            context = dg.build_sensor_context(
                instance=instance, resources=resources, cursor=cursor, definitions=definitions
            )
            return optimization_sensor.evaluate_tick(context)

        busy, requested = [], 0
        for _ in range(args.repeats):
            new_reports()
            started = time.perf_counter()
            result = optimization_tick()
            busy.append(time.perf_counter() - started)
            requested = len(result.run_requests)
        cursor = result.cursor
        quiet = timed(lambda: optimization_tick(cursor), args.repeats)

        def rollback_tick():
            context = dg.build_sensor_context(instance=instance, resources=resources, definitions=definitions)
            return rollback_sensor.evaluate_tick(context)

        rollback_tick()  # the first tick creates each pair's config store (once per pair, ever)
        rollback = timed(rollback_tick, args.repeats)

        def weekly_tick():
            context = dg.build_schedule_context(
                instance=instance,
                resources=resources,
                scheduled_execution_time=datetime(2026, 11, 29, 2, 0),
                repository_def=definitions.get_repository_def(),
            )
            return weekly_optimization_schedule.evaluate_tick(context)

        weekly = timed(weekly_tick, args.repeats)

    lines = [
        START,
        f"## Sensor and schedule ticks with {args.pairs} pairs x 4 horizons (issue 24)",
        "",
        f"Command: `python bench/bench_pairs_tick.py --pairs {args.pairs} --repeats {args.repeats}`  ",
        f"Machine: {machine()}",
        "",
        f"{len(partitions)} partitions (target: a sensor tick under 2 s):",
        "",
        "- " + summary(f"optimization_sensor, {len(partitions)} new report pairs, a decision each "
                       f"({requested} optimizations requested)", busy),
        "- " + summary("optimization_sensor, no new report (every minute of a normal day)", quiet),
        "- " + summary(f"rollback_sensor, {args.pairs} config stores opened, every horizon's deploy watched", rollback),
        "- " + summary(f"weekly_optimization_schedule, {len(partitions)} decisions", weekly),
        END,
    ]  # fmt: skip
    replace_section(START, END, "\n".join(lines) + "\n")
    print("\n".join(lines[1:-1]))


if __name__ == "__main__":
    main()
