"""Bad price files on the operator's paths: the usdclp_prices asset (what `make run` materializes) and
`forex-assets replay`. Each is refused before anything runs, with one message naming the file and what is wrong;
the replay says it in one line with exit status 2 and creates nothing."""

import dagster as dg
import pytest
from click.testing import CliRunner

from forex_assets.cli.main import cli
from forex_assets.core.prices.sources import PriceSourceError
from forex_assets.defs.prices.assets import usdclp_prices
from forex_assets.defs.resources import PriceSource

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
            [usdclp_prices],
            instance=instance,
            resources={"price_source": PriceSource(source="csv", csv_path=str(path))},
            raise_on_error=False,
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert failure.step_failure_data.user_failure_data.description == expected
        assert instance.get_latest_materialization_event(dg.AssetKey("usdclp_prices")) is None


def _replay_refuses(tmp_path, monkeypatch, path) -> str:
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(tmp_path / "area"))
    out = tmp_path / "out"
    args = ["replay", "--source", "csv", "--csv-path", str(path), "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
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
        "on 2 row(s): row 0 (2024-01-02 Tue, 67801.0), row 1 (2024-01-03 Wed, 67950.0); most prices are out of "
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
