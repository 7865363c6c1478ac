"""Bad price files on the operator's paths: the pair_prices asset (what `make run` materializes) and
`forex-assets replay`. Each is refused before anything runs, with one message naming the file and what is wrong;
the replay says it in one line with exit status 2 and creates nothing."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from forex_assets.cli.main import cli as cli_group
from forex_assets.core.prices.schema import PriceRules, today_in_chile
from forex_assets.core.prices.sources import PriceSourceError
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.resources import PriceSource
from forex_assets_tests.cli_home import area, cli, instance_home

EMPTY = (
    "the file is empty (0 bytes); expected a header line naming the columns 'date' and 'usdclp', then one row per day"
)
HEADER_ONLY = "no data rows after the header (line 1: 'date,usdclp'); expected one row per day with 'date' and 'usdclp'"
BAD_FILES = {
    "empty.csv": (b"", EMPTY),
    "header_only.csv": (b"date,usdclp\n", HEADER_ONLY),
    "blank.csv": (b"\n\n", EMPTY.replace("the file is empty (0 bytes)", "the file has only blank lines")),
}


@pytest.fixture
def bad_csv(tmp_path, request):
    name = request.param
    data, expected = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    return path, f"{path}: {expected}"


@pytest.mark.parametrize("bad_csv", list(BAD_FILES), indirect=True)
def test_price_source_refuses_empty_files_naming_them(bad_csv):
    path, expected = bad_csv
    with pytest.raises(PriceSourceError) as caught:
        PriceSource(source="csv", csv_path=str(path)).load()
    assert str(caught.value) == expected


@pytest.mark.parametrize("bad_csv", ["empty.csv", "header_only.csv"], indirect=True)
def test_prices_asset_fails_with_the_file_and_the_cause(bad_csv):
    path, expected = bad_csv
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [pair_prices],
            partition_key="USDCLP",
            instance=instance,
            resources={"price_source": PriceSource(source="csv", csv_path=str(path))},
            raise_on_error=False,
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert failure.step_failure_data.user_failure_data.description == expected
        assert instance.get_latest_materialization_event(dg.AssetKey("pair_prices")) is None


def _replay_refuses(tmp_path, monkeypatch, path) -> str:
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(tmp_path / "area"))
    out = tmp_path / "out"
    args = ["replay", "--source", "csv", "--csv-path", str(path), "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(cli_group, args, catch_exceptions=False)
    assert result.exit_code == 2 and result.stdout == "", result.output
    [line] = result.stderr.splitlines()
    assert not out.exists() and not (tmp_path / "area").exists()  # refused before the first replay day
    return line


@pytest.mark.parametrize("bad_csv", list(BAD_FILES), indirect=True)
def test_replay_refuses_empty_files_in_one_line(tmp_path, monkeypatch, bad_csv):
    path, expected = bad_csv
    assert _replay_refuses(tmp_path, monkeypatch, path) == f"forex-assets replay: the price source failed: {expected}"


def test_replay_refuses_a_series_100_times_too_high_in_one_line(tmp_path, monkeypatch):
    path = tmp_path / "cents.csv"
    path.write_text("date,usdclp\n2024-01-02,67801\n2024-01-03,67950\n")
    assert _replay_refuses(tmp_path, monkeypatch, path) == (
        f"forex-assets replay: the price source failed: csv:{path}: USD/CLP series failed validation (2 rows): "
        "rule 'plausible_price_range' (prices must lie between 100 and 5,000 CLP per USD) on column 'usdclp' failed "
        "on 2 row(s): line 2 (2024-01-02 Tue, 67801.0), line 3 (2024-01-03 Wed, 67950.0); most prices are out of "
        "range: a decimal comma read as a thousands separator (678,01 -> 67801), or another unit? Check the file's "
        "number format (the CSV source's csv_decimal / csv_thousands)"
    )


def test_replay_refuses_an_ambiguous_file_in_one_line(tmp_path, monkeypatch):
    path = tmp_path / "ambiguous.csv"
    path.write_text("date;usdclp\n02-01-2024;678,010\n03-01-2024;679,500\n")
    line = _replay_refuses(tmp_path, monkeypatch, path)
    assert line.startswith(f"forex-assets replay: the price source failed: {path}: column 'usdclp': the number ")
    assert "'678,010' (line 2) reads as 678010 with decimal '.' and thousands separator ','" in line


def test_replay_refuses_a_torn_file_in_one_line(tmp_path, monkeypatch):
    path = tmp_path / "torn.csv"
    path.write_text("date,usdclp\n2024-01-02,678.01\n2024-01-03,679.1")
    assert _replay_refuses(tmp_path, monkeypatch, path) == (
        f"forex-assets replay: the price source failed: {path}: line 3 ('2024-01-03,679.1') looks cut off: the "
        "file does not end with a line break and its price has 1 decimal(s) after '.' where most rows have 2; "
        "complete or remove the line"
    )


# ---------------------------------------------------------------- dates in the future, dates pandas cannot hold
# (issue 21: a CSV running to 2027-01-29 gave forecasts with that origin; a year typed 0224 crashed `run` with
# "OutOfBoundsDatetime" and no file or line, and `replay` with a traceback; the contract said "row 700" for the
# file's line 702)


def _price_lines(dates: pd.DatetimeIndex, seed: int = 4) -> list[str]:
    values = 900 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.004, len(dates))))
    return [f"{day:%Y-%m-%d},{value:.2f}" for day, value in zip(dates, values, strict=True)]


def _as_shown(row: str) -> str:
    """A CSV row 'YYYY-MM-DD,price' as the data contract shows it: '2027-01-04 Mon, 900.1'."""
    day, price = row.split(",")
    return f"{pd.Timestamp(day):%Y-%m-%d %a}, {float(price)}"


def _nothing_written(home) -> None:
    """The refused run recorded no forecast and materialized no prices."""
    assert not (area(home) / "forecast_history.sqlite").exists()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_latest_materialization_event(dg.AssetKey("pair_prices")) is None


def test_run_refuses_prices_dated_after_today_naming_file_lines_and_dates(tmp_path):
    last_allowed = PriceRules().last_allowed_date()  # the next Chilean business day after today
    dates = pd.bdate_range(end=last_allowed + pd.offsets.BDay(30), periods=80)
    rows = _price_lines(dates)
    path = tmp_path / "usdclp.csv"
    # a blank line and an empty spreadsheet row after the header: row i is on line i + 4, not i + 2
    path.write_text("\n".join(["date,usdclp", "", ",", *rows]) + "\n")
    first = int(np.argmax(dates > last_allowed))
    home = instance_home(tmp_path)

    done = cli(home, "run", "--no-recalibration", "--horizons", "7d", "--source", "csv", "--csv-path", str(path))

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"pair_prices failed: csv:{path}: USD/CLP series failed validation (80 rows):" in done.stderr
    assert (
        f"- rule 'no_future_dates' (no date after {last_allowed:%Y-%m-%d}: today is {today_in_chile():%Y-%m-%d} "
        "in America/Santiago, and a price is dated the next Chilean business day at most) on column 'date' failed "
        f"on {len(dates) - first} row(s): line {first + 4} ({_as_shown(rows[first])})"
    ) in done.stderr
    assert f"the latest line {len(rows) + 3} ({_as_shown(rows[-1])}); a mistyped year or month" in done.stderr
    assert "Traceback" not in done.stderr and "row " not in done.stderr.replace("row(s)", "")
    _nothing_written(home)


MISTYPED = "0224-09-09"  # 2024-09-09 with a slip of the finger: the year 224, before pandas' first date


def _mistyped_year_csv(tmp_path):
    rows = _price_lines(pd.bdate_range("2024-03-01", "2024-10-31"))
    index = next(i for i, row in enumerate(rows) if row.startswith("2024-09-09"))
    rows[index] = rows[index].replace("2024-09-09", MISTYPED)
    path = tmp_path / "usdclp.csv"
    path.write_text("\n".join(["date,usdclp", *rows]) + "\n")
    return path, (
        f"{path}: 1 value(s) in column 'date' are dates out of range (line {index + 2}: '{MISTYPED}'); dates must "
        "lie between 1677-09-22 and 2262-04-11 (the dates pandas can hold): a mistyped year?"
    )


def test_run_refuses_a_mistyped_year_naming_file_line_and_value(tmp_path):
    path, expected = _mistyped_year_csv(tmp_path)
    home = instance_home(tmp_path)

    done = cli(home, "run", "--no-recalibration", "--horizons", "7d", "--source", "csv", "--csv-path", str(path))

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"pair_prices failed: {expected}" in done.stderr
    assert "OutOfBoundsDatetime" not in done.stderr and "Traceback" not in done.stderr
    _nothing_written(home)


def test_replay_refuses_a_mistyped_year_in_one_line(tmp_path):
    path, expected = _mistyped_year_csv(tmp_path)
    home, out = instance_home(tmp_path), tmp_path / "out"
    args = ["--source", "csv", "--csv-path", str(path), "--start", "2024-10-01", "--end", "2024-10-04"]

    done = cli(home, "replay", *args, "--horizons", "7d", "--no-progress", "--out", str(out))

    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr == f"forex-assets replay: the price source failed: {expected}\n"
    assert not out.exists() and not area(home).exists()


def test_replay_refuses_prices_dated_after_today_in_one_line(tmp_path, monkeypatch):
    last_allowed = PriceRules().last_allowed_date()
    dates = pd.bdate_range(end=last_allowed + pd.offsets.BDay(1), periods=40)
    path = tmp_path / "usdclp.csv"
    path.write_text("\n".join(["date,usdclp", *_price_lines(dates)]) + "\n")
    line = _replay_refuses(tmp_path, monkeypatch, path)
    assert line.startswith(f"forex-assets replay: the price source failed: csv:{path}: USD/CLP series failed ")
    assert f"rule 'no_future_dates' (no date after {last_allowed:%Y-%m-%d}: " in line
    assert f"failed on 1 row(s): line 41 ({dates[-1]:%Y-%m-%d %a}, " in line
