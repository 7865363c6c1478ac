"""Re-materializes one pair-horizon partition from the Dagster UI, as an operator does, and checks the run.

    make screenshots            # takes the pictures, then runs this check

On a copy of the instance in $DAGSTER_HOME (default: the project's .dagster_home, filled by `make run`;
the instance itself is left as it is), the Dagster webserver is started and driven with Debian's Chromium
through Playwright: the ``forecast`` asset's Partitions tab, "Materialize...", the launch dialog's ``horizon``
and ``pair`` selectors set to one partition (30d and USDCLP by default), "Launch 1 run". The copy's
dagster.yaml launches runs at once (``DefaultRunCoordinator``): no daemon, so no schedule or sensor runs
beside it. Then, from the copy's instance, the check: the UI made exactly one run, tagged with that one
partition and its two dimensions, selecting ``forecast`` alone; it succeeded; it materialized
``forecast[30d|USDCLP]`` once and no other partition. Exit status 1 with what differed, else 0.

Pictures: docs/screenshots/materialize_one_partition.png (the dialog before the launch) and
partition_run.png (the run's page).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from forex_assets.core.working_area import DAGSTER_HOME_ENV, PROJECT_ROOT, WorkingAreaLayout, dagster_home

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_screenshots import CHROMIUM_FLAGS, free_port, wait_for  # noqa: E402 - the script beside this one

DIALOG = "Launch runs to materialize forecast"
COPY_INSTANCE_YAML = """telemetry:
  enabled: false
run_coordinator:  # the check's copy launches the UI's run at once: no daemon, no schedule or sensor beside it
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""


def choose(page, dimension_index: int, value: str) -> None:
    """In the launch dialog, one value of a dimension's partition selector (0: horizon, 1: pair)."""
    page.get_by_role("dialog").filter(has_text=DIALOG).get_by_text("Select a partition or create one").first.click()
    page.wait_for_timeout(800)
    name = re.escape(value)  # an item's text is its partition key twice (a label and the key): "30d30d"
    page.get_by_role("menuitem").filter(has_text=re.compile(rf"^{name}\s*{name}$")).first.click()
    page.wait_for_timeout(500)
    page.get_by_text(DIALOG).click()  # closes the selector's menu
    page.wait_for_timeout(500)


def wait_for_the_run(home: Path, before: set[str], timeout_s: float = 900) -> str:
    """The id of the run the UI launched on the instance in ``home``, once it has ended."""
    import dagster as dg

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open_instance(home) as instance:
            runs = [r for r in instance.get_runs() if r.run_id not in before]
            if runs and all(r.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) for r in runs):
                return runs[0].run_id
        time.sleep(2)
    raise SystemExit(f"no run launched from the UI ended within {timeout_s:.0f} s")


def launch_from_ui(base: str, horizon: str, pair: str, out: Path, chromium: str, home: Path, before: set[str]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{base}/assets/forecast?view=partitions")
        page.wait_for_timeout(6000)
        skip = page.get_by_role("button", name="Skip")  # the community dialog of a fresh browser profile
        if skip.count():
            skip.first.click()
        page.get_by_role("button", name="Materialize").first.click()
        page.wait_for_timeout(2000)
        confirm = page.get_by_role("button", name="Confirm")  # "upstream assets not materialized yet": deployed_config
        if confirm.count():
            confirm.first.click()
            page.wait_for_timeout(2000)
        for index, value in enumerate((horizon, pair)):
            choose(page, index, value)
        page.screenshot(path=str(out / "materialize_one_partition.png"))
        launch = page.get_by_role("button", name="Launch 1 run")
        if not launch.count():
            raise SystemExit("the launch dialog does not offer 'Launch 1 run' for one pair-horizon partition")
        launch.first.click()
        run_id = wait_for_the_run(home, before)
        page.goto(f"{base}/runs/{run_id}")
        page.wait_for_timeout(5000)
        page.screenshot(path=str(out / "partition_run.png"))
        print(f"  launched from the UI: {base}/runs/{run_id}")
        browser.close()


def open_instance(home: Path):
    """The Dagster instance whose dagster.yaml is in ``home``."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def check(home: Path, partition: str, before: set[str]) -> list[str]:
    """What differs from one successful run that materialized ``forecast[partition]`` alone."""
    import dagster as dg

    problems = []
    with open_instance(home) as instance:
        runs = [r for r in instance.get_runs() if r.run_id not in before]
        if len(runs) != 1:
            return [f"{len(runs)} new runs, expected 1"]
        [run] = runs
        horizon, pair = partition.split("|")
        expected_tags = {
            "dagster/partition": partition,
            "dagster/partition/horizon": horizon,
            "dagster/partition/pair": pair,
        }
        for key, value in expected_tags.items():
            if run.tags.get(key) != value:
                problems.append(f"run tag {key} = {run.tags.get(key)!r}, expected {value!r}")
        selected = sorted(k.to_user_string() for k in run.asset_selection or ())
        if selected != ["forecast"]:
            problems.append(f"the run selected {selected}, expected ['forecast']")
        if run.status != dg.DagsterRunStatus.SUCCESS:
            problems.append(f"the run ended {run.status.value}")
        events = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        materialized = sorted(
            (e.event_log_entry.dagster_event.asset_key.to_user_string(), e.event_log_entry.dagster_event.partition)
            for e in events
        )
        if materialized != [("forecast", partition)]:
            problems.append(f"the run materialized {materialized}, expected [('forecast', {partition!r})]")
        print(f"  run {run.run_id}: {run.status.value}, tags {expected_tags}, materialized {materialized}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--horizon", default="30d")
    parser.add_argument("--pair", default="USDCLP")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "docs" / "screenshots"))
    args = parser.parse_args()

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: `sudo apt-get install chromium` (Debian's package)")
    source = dagster_home()
    if not WorkingAreaLayout.from_environment(instance_home=source).root.is_dir():
        raise SystemExit(f"no forex_assets instance at {source}: run `make run` first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="forex_ui_check_") as scratch:
        home = Path(scratch) / "home"
        shutil.copytree(source, home, symlinks=True)
        (home / "dagster.yaml").write_text(COPY_INSTANCE_YAML)
        with open_instance(home) as instance:
            before = {r.run_id for r in instance.get_runs()}
        port = free_port()
        env = os.environ | {DAGSTER_HOME_ENV: str(home)}
        webserver = shutil.which("dagster-webserver", path=str(Path(sys.executable).parent)) or "dagster-webserver"
        server = subprocess.Popen(
            [webserver, "-m", "forex_assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=PROJECT_ROOT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/server_info", timeout_s=120)
            print(f"Dagster webserver on {base} (a copy of {source})")
            launch_from_ui(base, args.horizon, args.pair, out, chromium, home, before)
        finally:
            server.terminate()
            server.wait(timeout=30)
        problems = check(home, f"{args.horizon}|{args.pair}", before)
    for problem in problems:
        print(f"  FAILED: {problem}")
    print("one pair-horizon re-materialized from the UI: " + ("FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
