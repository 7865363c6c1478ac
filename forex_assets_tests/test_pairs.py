"""Currency pairs: the pairs file, each pair's business calendar and data contract, a wide CSV of several
currencies, a synthetic series per pair, and a replay of a pair other than USD/CLP on its own calendar."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from forex_assets.cli.main import cli
from forex_assets.core.calendar import CHILE, BusinessCalendar
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.pairs import PAIRS_FILE, PairError, default_calendar, load_pairs, parse_pairs
from forex_assets.core.prices.schema import PriceValidationError, validate_prices
from forex_assets.core.prices.sources import (
    MindicadorClient,
    PriceSourceError,
    price_frame,
    read_price_csv,
    scaled_synthetic_prices,
    synthetic_prices,
    wide_csv_columns,
)
from forex_assets.core.working_area import WorkingAreaLayout
from forex_assets.defs.resources import PriceSource

BRAZIL = BusinessCalendar(("BR",))
# Brazil's national holidays of November 2024: the Republic (Fri 15) and Black Consciousness (Wed 20, national
# from 2024); Chile has neither, and Brazil has none of Chile's (18-20 September, Fiestas Patrias)
BR_NOVEMBER_2024 = pd.to_datetime(["2024-11-15", "2024-11-20"])


# ------------------------------------------------------------------------------------------- the pairs file


def test_the_project_pairs_file_declares_usdclp_first_and_each_pair_gets_its_calendar():
    pairs = load_pairs()
    assert pairs.codes[0] == "USDCLP" and len(pairs.codes) >= 6
    assert pairs.get().code == "USDCLP"  # several declared: USD/CLP
    usdclp = pairs.get("usd/clp")
    assert (usdclp.label, usdclp.calendar, usdclp.csv_value_column) == ("USD/CLP", ("CL",), "usdclp")
    assert usdclp.business_calendar == CHILE and usdclp.seeds_dir == PAIRS_FILE.parent
    assert usdclp.price_range() == (100.0, 5000.0) and usdclp.mindicador_indicator == "dolar"
    assert pairs.get("EURCLP").calendar == ("CL",) and pairs.get("EURCLP").mindicador_indicator == "euro"
    assert pairs.get("USDBRL").calendar == ("BR",) and pairs.get("USDBRL").csv_value_column == "BRL"
    with pytest.raises(PairError, match=r"unknown pair 'USDXXX'; the pairs declared are USDCLP, EURCLP"):
        pairs.get("USDXXX")
    only = parse_pairs({"pairs": [{"code": "USDMXN"}]})
    assert only.get().code == "USDMXN"  # the only pair is the default


def test_default_calendars_quote_currency_for_dollar_pairs_chile_for_pesos_union_for_crosses():
    assert default_calendar("USD", "CLP") == ("CL",) and default_calendar("EUR", "CLP") == ("CL",)
    assert default_calendar("USD", "BRL") == ("BR",) and default_calendar("EUR", "USD") == ("ECB",)
    assert default_calendar("EUR", "BRL") == ("BR", "ECB")  # a cross: both
    cross = BusinessCalendar(default_calendar("EUR", "BRL"))
    # Good Friday is both; 26 December only the ECB's; 20 November only Brazil's: all three closed
    closed = cross.holidays("2024-01-01", "2024-12-31")
    assert {"2024-03-29", "2024-12-26", "2024-11-20"} <= {str(d.date()) for d in closed}
    assert not cross.is_business_day("2024-12-26") and BRAZIL.is_business_day("2024-12-26")


@pytest.mark.parametrize(
    "document, message",
    [
        ({"pairs": []}, "field '(document)': Value error, no pair declared"),
        ({"pairs": [{"code": "USDCLP"}, {"code": "usdbrl"}]}, "field 'pairs.1 (usdbrl).code'"),
        ({"pairs": [{"code": "USDXYZ"}]}, "field 'pairs.0 (USDXYZ)': Value error, no holiday calendar known for XYZ"),
        ({"pairs": [{"code": "USDBRL", "calendar": ["QQ"]}]}, "unknown holiday calendar 'QQ'"),
        ({"pairs": [{"code": "USDBRL", "min_price": 4}]}, "give both min_price and max_price"),
        ({"pairs": [{"code": "USDBRL", "min_price": 6, "max_price": 4}]}, "min_price 6.0 must be below max_price"),
        ({"pairs": [{"code": "USDBRL", "colour": "green"}]}, "field 'pairs.0 (USDBRL).colour': Extra inputs"),
        ({"pairs": [{"code": "USDBRL"}, {"code": "USDBRL"}]}, "pair(s) declared twice: USDBRL"),
        ({"pairs": [{"code": "USDBRL", "max_daily_move": 0}]}, "field 'pairs.0 (USDBRL).max_daily_move'"),
    ],
)
def test_a_bad_pairs_file_is_refused_naming_the_file_the_pair_and_the_field(tmp_path, document, message):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PairError) as error:
        load_pairs(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_a_pair_is_added_by_a_line_in_the_file_and_its_seeds_dir_is_relative_to_it(tmp_path):
    (tmp_path / "seeds").mkdir()
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps({"pairs": [{"code": "USDIDR", "seeds_dir": "seeds"}]}))
    pair = load_pairs(path).get()
    assert pair.seeds_dir == tmp_path / "seeds" and pair.calendar == ("ID",)


# -------------------------------------------------------------------------- calendars and the data contract


def test_brazilian_business_days_skip_brazils_holidays_not_chiles():
    origin = pd.Timestamp("2024-11-14")  # Thursday
    assert BRAZIL.next_business_days(origin, 5) == list(
        pd.to_datetime(["2024-11-18", "2024-11-19", "2024-11-21", "2024-11-22", "2024-11-25"])
    )
    assert CHILE.next_business_days(origin, 2) == list(pd.to_datetime(["2024-11-15", "2024-11-18"]))
    fiestas = pd.Timestamp("2024-09-17")  # the Tuesday before Chile's 18-20 September
    assert BRAZIL.next_business_days(fiestas, 1) == [pd.Timestamp("2024-09-18")]
    assert CHILE.next_business_days(fiestas, 1) == [pd.Timestamp("2024-09-23")]


def _series(level: float, start: str = "2024-01-02", days: int = 200, calendar: BusinessCalendar = CHILE):
    dates = calendar.business_days(start, periods=days)
    rng = np.random.default_rng(3)
    return price_frame(dates, level * np.exp(np.cumsum(rng.normal(0, 0.004, days))))


def test_the_contract_takes_its_range_daily_move_and_calendar_from_the_pair():
    pairs = parse_pairs({"pairs": [{"code": "EURUSD"}, {"code": "USDIDR"}, {"code": "USDBRL", "max_daily_move": 0.05}]})
    eurusd, usdidr, usdbrl = (pairs.get(c) for c in ("EURUSD", "USDIDR", "USDBRL"))
    for pair, level in ((eurusd, 1.08), (usdidr, 16_000.0)):  # both valid with their inferred ranges
        prices = _series(level, calendar=pair.business_calendar)
        validate_prices(prices, pair.price_rules(prices["usdclp"].to_numpy()))
    # a USD/IDR series with a stretch in thousands of rupiah: out of the range inferred around its median
    prices = _series(16_000.0, calendar=usdidr.business_calendar)
    prices.loc[150:, "usdclp"] /= 1000
    with pytest.raises(PriceValidationError) as error:
        validate_prices(prices, usdidr.price_rules(prices["usdclp"].to_numpy()), source="idr.csv")
    message = str(error.value)
    assert message.startswith("idr.csv: USD/IDR series failed validation (200 rows)")
    low, high = usdidr.price_range(prices["usdclp"].to_numpy())
    assert f"prices must lie between {low:,g} and {high:,g} IDR per USD" in message
    assert set(error.value.failures) == {"plausible_price_range", "max_daily_move"}
    assert list(error.value.failures["plausible_price_range"].index) == list(range(150, 200))
    # the pair's own largest daily move: 6 % passes USD/CLP's 15 % but not USD/BRL's declared 5 %
    prices = _series(5.0, calendar=BRAZIL)
    prices.loc[100, "usdclp"] *= 1.06
    validate_prices(
        prices, pairs.get("USDBRL").model_copy(update={"max_daily_move": 0.15}).price_rules(prices["usdclp"])
    )
    with pytest.raises(PriceValidationError, match="no single-day move above 5%"):
        validate_prices(prices, usdbrl.price_rules(prices["usdclp"].to_numpy()))


def test_gaps_are_counted_on_the_pairs_calendar():
    # a Brazilian series (no price on 15 and 20 November) has no gap for USD/BRL's contract; for a contract on
    # Chile's calendar the same holes are missing business days
    prices = _series(5.0, start="2024-10-01", days=60, calendar=BRAZIL)
    assert not prices["date"].isin(BR_NOVEMBER_2024).any()
    usdbrl = parse_pairs({"pairs": [{"code": "USDBRL"}]}).get()
    tight = usdbrl.price_rules(prices["usdclp"].to_numpy(), max_gap_business_days=0)
    validate_prices(prices, tight)
    chilean = parse_pairs({"pairs": [{"code": "USDBRL", "calendar": ["CL"]}]}).get()
    with pytest.raises(PriceValidationError, match="max_gap_business_days"):
        validate_prices(prices, chilean.price_rules(prices["usdclp"].to_numpy(), max_gap_business_days=0))


# ------------------------------------------------------------------------------------------- the sources


def _wide_csv(path, start="2014-01-02", end="2024-12-31"):
    """A wide export, one column per currency against the dollar: CLP blank on Chilean holidays, BRL blank on
    Brazilian ones (each country's fixing), EUR with a mistyped cell, XAU all blank."""
    days = pd.bdate_range(start, end)
    clp = synthetic_prices(start="2010-01-01", end=end).set_index("date")["usdclp"].reindex(days)
    brl = scaled_synthetic_prices(5.0, 0.009, seed=7, start="2010-01-01", end=end).set_index("date")["usdclp"]
    brl = brl.reindex(days)
    clp[~CHILE.is_business_day(days)] = np.nan
    brl[~BRAZIL.is_business_day(days)] = np.nan
    eur = pd.Series(0.9, index=days).astype(object)
    eur.iloc[10] = "0,9x"
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "CLP": clp.round(2), "BRL": brl, "EUR": eur, "XAU": ""})
    frame.to_csv(path, index=False, na_rep="")
    return days


def test_every_column_of_a_wide_csv_is_a_series_and_a_bad_column_is_refused_by_name(tmp_path):
    path = tmp_path / "fx.csv"
    days = _wide_csv(path)
    columns = wide_csv_columns(path)
    assert list(columns) == ["CLP", "BRL", "EUR", "XAU"]
    brl = columns["BRL"]
    assert isinstance(brl, pd.DataFrame) and len(brl) == BRAZIL.is_business_day(days).sum()
    assert not brl["date"].isin(BR_NOVEMBER_2024).any() and brl["date"].isin(pd.to_datetime(["2024-09-18"])).any()
    assert (
        isinstance(columns["CLP"], pd.DataFrame)
        and not columns["CLP"]["date"].isin(pd.to_datetime(["2024-09-18"])).any()
    )
    assert isinstance(columns["EUR"], str) and "column 'EUR'" in columns["EUR"] and "'0,9x'" in columns["EUR"]
    assert columns["XAU"] == f"{path}: column 'XAU' has no value on any row"
    # without skip_missing a blank cell stays an error, as for a one-pair file
    with pytest.raises(PriceSourceError, match=r"value\(s\) in column 'BRL' are not a valid number"):
        read_price_csv(path, value_column="BRL")


def test_each_pair_has_its_own_synthetic_series_and_usdclp_keeps_the_embedded_default():
    usdclp = PriceSource(pair="USDCLP").load()
    pd.testing.assert_frame_equal(usdclp, synthetic_prices())
    brl, cop = PriceSource(pair="USDBRL").load(), PriceSource(pair="USDCOP").load()
    assert brl["usdclp"].iloc[0] == 5.2 and cop["usdclp"].iloc[0] == 4100.0
    vol = {name: np.diff(np.log(f["usdclp"].to_numpy())).std() for name, f in (("clp", usdclp), ("brl", brl))}
    assert vol["brl"] / vol["clp"] == pytest.approx(0.0095 / 0.005, rel=0.15)  # before rounding: exactly
    brl_returns, cop_returns = (np.diff(np.log(f["usdclp"].to_numpy())) for f in (brl, cop))
    assert abs(np.corrcoef(brl_returns, cop_returns)[0, 1]) < 0.1  # each its own path


def test_mindicador_reads_the_pairs_indicator_and_refuses_a_pair_it_has_not(tmp_path):
    client = MindicadorClient("http://127.0.0.1:9", tmp_path, indicator="euro")
    assert client.url(2024) == "http://127.0.0.1:9/api/euro/2024" and client.cache_path(2024).name == "euro_2024.json"
    with pytest.raises(PriceSourceError, match="mindicador has no series for USD/BRL"):
        PriceSource(source="mindicador", pair="USDBRL", mindicador_cache_dir=str(tmp_path)).load()


# ------------------------------------------------------------------------------------------- a replay


def test_a_usdbrl_replay_from_a_wide_csv_forecasts_brazilian_business_days(tmp_path, monkeypatch):
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(tmp_path / "area"))
    path = tmp_path / "fx.csv"
    _wide_csv(path)
    out = tmp_path / "out"
    args = ["replay", "--pair", "usd/brl", "--source", "csv", "--csv-path", str(path), "--csv-value-column", "BRL"]
    args += ["--csv-skip-missing", "--start", "2024-11-11", "--end", "2024-12-06", "--horizons", "7d"]
    result = CliRunner().invoke(cli, [*args, "--keep-state", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("replay of USDBRL from csv:")
    report = json.loads((out / "replay_report.json").read_text())
    assert (report["pair"], report["calendar"]) == ("USDBRL", "BR")
    steps = ForecastHistory(WorkingAreaLayout.in_directory(out / "state").forecast_history).steps("7d")
    origins = steps["origin_date"].unique()
    assert pd.Timestamp("2024-11-14") in origins and not set(BR_NOVEMBER_2024) & set(origins)
    for origin in origins:  # every path on Brazil's business days, never on its holidays
        targets = list(steps[steps["origin_date"] == origin].sort_values("step")["target_date"])
        assert targets == BRAZIL.next_business_days(origin, 7)
    assert report["horizons"]["7d"]["accuracy"]["origins"] > 0
    # the same file without --csv-skip-missing: refused, naming the column
    bad = CliRunner().invoke(cli, [a for a in args if a != "--csv-skip-missing"] + ["--no-progress"])
    assert bad.exit_code == 2 and "column 'BRL'" in bad.stderr


def test_several_pairs_in_one_replay_one_report_each_and_a_summary_across_them(tmp_path, monkeypatch):
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(tmp_path / "area"))
    out = tmp_path / "out"
    args = ["replay", "--pair", "USDCLP", "EURCLP", "--start", "2026-10-01", "--end", "2026-10-30"]
    result = CliRunner().invoke(cli, [*args, "--horizons", "7d", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "pairs_summary.json").read_text())["pairs"]
    assert list(summary) == ["USDCLP", "EURCLP"]
    lines = result.stdout.splitlines()
    for code in ("USDCLP", "EURCLP"):
        report = json.loads((out / code / "replay_report.json").read_text())
        assert report["pair"] == code
        row, horizon = summary[code]["horizons"]["7d"], report["horizons"]["7d"]
        accuracy = horizon["accuracy"]
        assert row["origins_scored"] == accuracy["origins"] > 0
        assert row["optimizations"] == horizon["optimizations"] and row["deploys"] == horizon["deploys"]
        assert row["wql_live_vs_ewma_band"]["ratio"] == accuracy["wql_ratio_vs_ewma_band"]["ratio"]
        assert row["coverage_95"]["coverage"] == accuracy["coverage_95_live_interval"]["coverage"]
        [line] = [line for line in lines if line.startswith(f"{code:<8}7d")]
        assert f"{accuracy['wql_ratio_vs_ewma_band']['ratio']:.3f} [" in line
    # the two pairs forecast different series: their scores differ
    assert (
        summary["USDCLP"]["horizons"]["7d"]["wql_live_vs_ewma_band"]
        != summary["EURCLP"]["horizons"]["7d"]["wql_live_vs_ewma_band"]
    )
    refused = CliRunner().invoke(cli, [*args, "--csv-value-column", "CLP", "--no-progress"])
    assert refused.exit_code == 2 and "--csv-value-column names one column" in refused.stderr
    # a bad pair after a good one: refused before any replay, the good one's directories not left behind
    bad_out = tmp_path / "bad_out"
    bad = CliRunner().invoke(cli, ["replay", "--pair", "USDCLP", "USDXXX", "--no-progress", "--out", str(bad_out)])
    assert bad.exit_code == 2 and "USDXXX: unknown pair 'USDXXX'" in bad.stderr and not bad_out.exists()


def _cmdline(pid: int) -> str:
    """The command line of process ``pid`` (empty once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _signal_state(pid: int) -> str:
    """The blocked and ignored signal masks of process ``pid`` (``/proc/<pid>/status``)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "gone"
    return " ".join(line.replace("\t", "") for line in lines if line.startswith(("SigBlk", "SigIgn")))


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc: Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def test_a_replay_process_killed_mid_replay_is_one_line_naming_the_pair_not_a_traceback(tmp_path):
    import os
    import signal
    import subprocess
    import time

    from forex_assets_tests.cli_home import CLEARED, FOREX_ASSETS

    env = {k: v for k, v in os.environ.items() if k not in CLEARED} | {"FOREX_ASSETS_HOME": str(tmp_path / "area")}
    args = ["replay", "--pair", "USDCLP", "EURCLP", "--start", "2026-01-02", "--end", "2026-10-30", "--no-progress"]
    command = subprocess.Popen(
        [str(FOREX_ASSETS), *args, "--out", str(tmp_path / "out")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGTERM ignored, as a parent can hand it down (it did in the test suite): the surviving replay process
        # ignores the executor's SIGTERM, and the command hung for ever waiting for it
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN),
    )
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while len(workers) < 2 and time.monotonic() < deadline and command.poll() is None:
        # the pool's two replay processes, known by spawn's entry point in their command line: not the resource
        # tracker spawn also starts, nor a child caught between fork and exec (it still shows the parent's)
        workers = [p for p in _children(command.pid) if "spawn_main" in _cmdline(p)]
        time.sleep(0.2)
    assert len(workers) == 2, "the replay processes did not start"
    time.sleep(3)  # inside their replay (importing, loading prices, or forecasting)
    # what the processes inherit of signals (a blocked or ignored SIGTERM): said if the command hangs
    signals = {p: _signal_state(p) for p in (command.pid, *workers)}
    os.kill(workers[0], signal.SIGKILL)
    try:
        stdout, stderr = command.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the replay did not end after its process was killed; signals: {signals}")
    finally:
        if command.poll() is None:  # never leave a replay running behind a failed test
            command.kill()
    assert command.returncode == 2, stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("forex-assets replay: a replay process died before its report (killed, or out of memory")
    assert line.endswith("unfinished: USDCLP, EURCLP; finished: none") and "Traceback" not in stderr
    time.sleep(1)
    assert not [p for p in workers if Path(f"/proc/{p}").exists()]  # the other replay was stopped, not left running
    assert not (tmp_path / "out" / "pairs_summary.json").exists()
