"""Screenshots of the Dagster UI for the README, taken with headless Chromium from Debian's packages.

    make screenshots            # = make run (if the instance is empty), then this script

Serves the instance in $DAGSTER_HOME (default: the project's .dagster_home, filled by `make run`) with
the Dagster webserver of `dagster dev`, without its daemon, so that taking pictures changes nothing,
on a free port of 127.0.0.1, drives Debian's Chromium with Playwright (no browser download) and saves
PNGs under docs/screenshots/:

* lineage.png             the asset graph, every group open
* validation_checks.png   validation_report's blocking asset checks on its latest partition
* validation_report.png   the HTML validation report of 30d
* optimization_metrics.png  the optimization_metrics asset with its tables and plots
* forecast_30d.png        the forecast asset's 30d partition (fan chart)
* runs.png                the runs of the cycle
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from forex_assets.core.working_area import DAGSTER_HOME_ENV, PROJECT_ROOT, WorkingAreaLayout, dagster_home

CHROMIUM_FLAGS = [  # this machine's closed network: no background connections, no updates
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GROUPS = ("prices", "forecasting", "monitoring", "recalibration", "deployment")
PAGES = {  # file name -> (path, seconds to let the page settle)
    "validation_checks.png": ("/assets/validation_report?view=checks", 6),
    "optimization_metrics.png": ("/assets/optimization_metrics", 6),
    "forecast_30d.png": ("/assets/forecast?view=partitions&partition=30d%7CUSDCLP", 6),  # 30d|USDCLP
    "runs.png": ("/runs", 5),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the Dagster webserver did not answer at {url} within {timeout_s:.0f} s")


def open_every_group(page) -> None:
    """The global lineage graph shows groups collapsed; the UI keeps the open ones in local storage, so
    opening them all before the page loads makes its first layout fit the whole graph."""
    expanded = ",".join(f"global@global:{group}" for group in GROUPS)
    key = "asset-graph-open-graph-nodes-global-__GLOBAL__"
    page.add_init_script(f"window.localStorage.setItem({key!r}, JSON.stringify({{expanded: {expanded!r}}}));")


def take(page, url: str, target: Path, settle_s: float, before=None) -> None:
    page.goto(url)
    page.wait_for_timeout(settle_s * 1000)
    skip = page.get_by_role("button", name="Skip")  # the community dialog of a fresh browser profile
    if skip.count():
        skip.first.click()
        page.wait_for_timeout(500)
    if before is not None:
        before(page)
    page.screenshot(path=str(target), full_page=False)
    print(f"  {target.relative_to(PROJECT_ROOT) if target.is_relative_to(PROJECT_ROOT) else target}  <- {url}")


def latest_report(home: Path, horizon: str) -> Path | None:
    area = WorkingAreaLayout.from_environment(instance_home=home)
    reports = sorted(area.reports_for(horizon).glob(f"validation_{horizon}_*.html"))
    return reports[-1] if reports else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(PROJECT_ROOT / "docs" / "screenshots"))
    parser.add_argument("--size", default="1440,900", help="window size in pixels, W,H")
    args = parser.parse_args()

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: `sudo apt-get install chromium` (Debian's package)")
    home = dagster_home()
    if not WorkingAreaLayout.from_environment(instance_home=home).root.is_dir():
        raise SystemExit(f"no forex_assets instance at {home}: run `make run` first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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
        from playwright.sync_api import sync_playwright

        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/server_info", timeout_s=120)
        print(f"Dagster webserver on {base} (DAGSTER_HOME={home})")
        width, height = (int(v) for v in args.size.split(","))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            open_every_group(page)
            take(page, f"{base}/asset-groups", out / "lineage.png", 6)
            for name, (path, settle_s) in PAGES.items():
                take(page, base + path, out / name, settle_s)
            report = latest_report(home, "30d")
            if report is not None:
                report_page = browser.new_page(viewport={"width": 1100, "height": 1500})
                take(report_page, report.as_uri(), out / "validation_report.png", 1)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
