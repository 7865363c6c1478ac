"""Time optimization_sensor ticks (target < 2 s): a test instance with fresh drift and performance
reports for all four horizons before each tick. Usage: .venv/bin/python bench/bench_sensor_tick.py"""

import statistics
import tempfile
import time

import dagster as dg

from forex_assets.cli.run import materialize_selection
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets.definitions import defs
from forex_assets.defs.monitoring.assets import drift_report, performance_report
from forex_assets.defs.monitoring.automation import optimization_sensor
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.resources import (
    WorkingArea,
    code_location_resources,
)

tmp = tempfile.mkdtemp()
ws = WorkingArea(path=tmp, configs_dir=str(SEED_CONFIGS_DIR))
res = code_location_resources(ws)
q = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
d = dg.Definitions(
    assets=defs.assets,
    asset_checks=defs.asset_checks,
    jobs=defs.jobs,
    schedules=defs.schedules,
    sensors=defs.sensors,
    resources=res,
)
with dg.instance_for_test() as inst:
    dg.materialize([pair_prices], partition_key="USDCLP", instance=inst, resources=res, run_config=q)
    times = []
    for _ in range(5):
        for h in HORIZONS:
            materialize_selection(inst, res, [drift_report, performance_report], h)
        ctx = dg.build_sensor_context(instance=inst, resources=res, definitions=d)
        t = time.perf_counter()
        r = optimization_sensor.evaluate_tick(ctx)
        times.append(time.perf_counter() - t)
    print(
        f"optimization_sensor tick with 4 new report pairs, 5 ticks: median {statistics.median(times):.3f} s, "
        f"max {max(times):.3f} s"
    )
