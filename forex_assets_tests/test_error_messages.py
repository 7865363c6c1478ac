"""Errors that say what was wrong: a bad seed names the file and the JSON position; `make run` shows the whole
error a step raised (every broken rule of the data contract with its rows), unwrapped from Dagster's "Error
occurred while executing op", and no traceback."""

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from forex_assets.cli.run import describe_error, format_summary, is_expected
from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.forecasting.config import ConfigError, load_seed
from forex_assets.core.working_area import PROJECT_ROOT, SEED_CONFIGS_DIR
from forex_assets_tests.conftest import random_walk_prices

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _broken_seeds(tmp_path):
    """The repository's seeds, with a comma missing after the first field of the 7d one."""
    seeds = tmp_path / "configs"
    seeds.mkdir()
    for source in SEED_CONFIGS_DIR.glob("chronos_*.json"):
        (seeds / source.name).write_text(source.read_text())
    document = json.loads((SEED_CONFIGS_DIR / "chronos_7d.json").read_text())
    text = json.dumps(document, indent=2).replace(",\n", "\n", 1)
    (seeds / "chronos_7d.json").write_text(text)
    return seeds / "chronos_7d.json"


def test_an_invalid_seed_names_the_file_and_the_json_position(tmp_path):
    seed = _broken_seeds(tmp_path)
    expected = f"{seed}: not valid JSON (line 3, column 3: Expecting ',' delimiter)"

    with pytest.raises(ConfigError) as direct:
        load_seed(seed, "7d")
    assert str(direct.value).startswith(expected) and "seed configuration" in str(direct.value)

    with pytest.raises(ConfigError) as through_store:  # what a first run (or a replay) meets
        ConfigStore(tmp_path / "store", seed_dir=seed.parent)
    assert str(through_store.value).startswith(expected)


def _step_error(asset) -> tuple:
    result = dg.materialize([asset], raise_on_error=False, run_config=QUIET)
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error, result.run_id


def test_a_project_error_is_shown_whole_and_unwrapped():
    @dg.asset
    def forecast_like():
        raise ConfigError("configs/chronos_7d.json: invalid Chronos configuration:\nfield 'x': bad\nfield 'y': bad")

    error, run_id = _step_error(forecast_like)
    assert error.message.startswith("dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred")
    assert describe_error(error, run_id) == (
        "configs/chronos_7d.json: invalid Chronos configuration:\nfield 'x': bad\nfield 'y': bad"
    )


def test_a_dagster_failure_shows_its_description():
    @dg.asset
    def prices_like():
        raise dg.Failure(description="csv:x.csv: USD/CLP series failed validation (3 rows):\n- rule 'a' failed")

    error, run_id = _step_error(prices_like)
    assert describe_error(error, run_id) == "csv:x.csv: USD/CLP series failed validation (3 rows):\n- rule 'a' failed"


def test_an_unexpected_error_keeps_its_class_and_points_to_its_traceback():
    @dg.asset
    def buggy():
        return {}["missing"]

    error, run_id = _step_error(buggy)
    assert describe_error(error, run_id) == f"KeyError: 'missing' (traceback in the event log of run {run_id})"
    assert not is_expected(KeyError("x")) and is_expected(ConfigError("x"))


def test_the_summary_keeps_every_line_of_a_failure():
    rows = [{"horizon": "7d", "status": "FAILED", "error": "first line:\n- rule 'a' on row 3\n- rule 'b' on row 9"}]
    assert format_summary(rows).splitlines()[2:] == [
        "7d      FAILED: first line:",
        "                - rule 'a' on row 3",
        "                - rule 'b' on row 9",
    ]


def test_make_run_shows_the_broken_rule_and_rows_without_a_traceback(tmp_path):
    """`python -m forex_assets.cli.run` (what `make run` runs) on a CSV whose day 150 jumps 50 %."""
    prices = random_walk_prices(300)
    prices.loc[150, "usdclp"] = round(prices.loc[149, "usdclp"] * 1.5, 2)
    csv = tmp_path / "usdclp.csv"
    prices.to_csv(csv, index=False)
    home = tmp_path / "home"
    env = os.environ | {"DAGSTER_HOME": str(home), "FOREX_ASSETS_HOME": str(tmp_path / "area")}

    done = subprocess.run(
        [sys.executable, "-m", "forex_assets.cli.run", "--source", "csv", "--csv-path", str(csv)]
        + ["--horizons", "7d", "--no-recalibration"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    day = prices.loc[150, "date"].strftime("%Y-%m-%d %a")
    assert f"pair_prices failed: csv:{csv}: USD/CLP series failed validation (300 rows):" in output
    assert "- rule 'max_daily_move' (no single-day move above 15%) on column 'usdclp'" in output
    assert f"line 152 ({day}, {prices.loc[150, 'usdclp']})" in output
    assert "Traceback" not in output and "Error occurred while executing" not in output
    assert "dagster._core" not in output
