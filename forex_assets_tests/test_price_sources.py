from datetime import date

import numpy as np
import pandas as pd
import pytest

from forex_assets.core.prices.schema import PriceValidationError, validate_prices
from forex_assets.core.prices.sources import (
    CsvFormat,
    MindicadorClient,
    PriceSourceError,
    read_price_csv,
    synthetic_prices,
)
from forex_assets_tests.mindicador_server import FakeMindicador

# ---------------------------------------------------------------- synthetic


def test_synthetic_series_is_deterministic_and_usdclp_like():
    prices = synthetic_prices()
    pd.testing.assert_frame_equal(prices, synthetic_prices())
    validate_prices(prices)
    years = (prices["date"].iloc[-1] - prices["date"].iloc[0]).days / 365.25
    assert years >= 10
    assert 450 <= prices["usdclp"].min() and prices["usdclp"].max() <= 1050
    log_returns = np.diff(np.log(prices["usdclp"].to_numpy()))
    assert 0.0045 <= log_returns.std() <= 0.0075  # near 0.6 % a day
    assert np.sum(np.abs(log_returns) > 5 * log_returns.std()) >= 3  # occasional jumps


def test_synthetic_series_has_a_regime_change_in_the_last_120_observations():
    log_returns = np.diff(np.log(synthetic_prices()["usdclp"].to_numpy()))
    recent, before = log_returns[-30:], log_returns[-150:-30]  # the change is 30 observations from the end
    assert recent.std() / before.std() > 2.0


def test_synthetic_seed_changes_the_series():
    assert not synthetic_prices(seed=1)["usdclp"].equals(synthetic_prices(seed=2)["usdclp"])


# ---------------------------------------------------------------- csv


def test_csv_with_custom_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('fecha,valor\n2024-01-02,880.5\n2024-01-03,"1,001.25"\n')
    prices = read_price_csv(path, "fecha", "valor")
    assert list(prices.columns) == ["date", "usdclp"]
    assert prices["usdclp"].tolist() == [880.5, 1001.25]
    assert str(prices["date"].dtype) == "datetime64[ns]"


def test_csv_missing_column_is_named(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("day,price\n2024-01-02,880.5\n")
    with pytest.raises(PriceSourceError, match=r"column\(s\) \['date', 'usdclp'\] not found.*\['day', 'price'\]"):
        read_price_csv(path)


def test_csv_bad_value_names_line_and_column(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("date,usdclp\n2024-01-02,880.5\n2024-01-03,abc\n")
    with pytest.raises(PriceSourceError, match=r"column 'usdclp' are not a valid number \(line 3: 'abc'\)"):
        read_price_csv(path)


def test_csv_bad_date_names_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("date,usdclp\n2024-13-45,880.5\n")
    with pytest.raises(PriceSourceError, match=r"not a valid date \(line 2: '2024-13-45'\)"):
        read_price_csv(path)


@pytest.mark.parametrize(
    "rows, line, shown",
    [
        ("2024-09-06,880.5\n0224-09-09,881.0\n2024-09-10,882.0\n", 3, "'0224-09-09'"),  # the year 224
        ("2024-09-06,880.5\n\n2024-09-09,881.0\n9024-09-10,882.0\n", 5, "'9024-09-10'"),  # after a blank line
        ("06-09-2024;880,5\n09-09-1024;881,0\n", 3, "'09-09-1024'"),  # dd-mm-yyyy, 1024: before 1677
        ("2024-09-06,880.5\n0001-01-01,1.0\n2262-04-12,2.0\n", 3, "'0001-01-01', line 4: '2262-04-12'"),
    ],
)
def test_a_date_pandas_cannot_hold_is_refused_naming_line_and_value(tmp_path, rows, line, shown):
    """pandas reads '0224-09-09' as the year 224, which no datetime64[ns] series holds (it crashed the run
    with OutOfBoundsDatetime and no file or line): refused like a date that cannot be read."""
    header = "date;usdclp\n" if ";" in rows else "date,usdclp\n"
    path = _csv(tmp_path, header + rows)
    count = shown.count("line") + 1
    assert _refused(path) == (
        f"{path}: {count} value(s) in column 'date' are dates out of range (line {line}: {shown}); dates must lie "
        "between 1677-09-22 and 2262-04-11 (the dates pandas can hold): a mistyped year?"
    )


def test_the_first_and_last_dates_pandas_holds_are_read(tmp_path):
    path = _csv(tmp_path, "date,usdclp\n1677-09-22,880.5\n2262-04-11,881.0\n")
    assert read_price_csv(path)["date"].tolist() == [pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11")]


def test_csv_missing_file(tmp_path):
    with pytest.raises(PriceSourceError, match="does not exist"):
        read_price_csv(tmp_path / "nope.csv")


def _csv(tmp_path, body, name="p.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(body.encode(encoding) if isinstance(body, str) else body)
    return path


def _refused(path, *args, **kwargs) -> str:
    with pytest.raises(PriceSourceError) as caught:
        read_price_csv(path, *args, **kwargs)
    message = str(caught.value)
    assert str(path) in message  # every refusal names the file
    return message


CHILEAN = "Día;Dólar observado\n02-01-2024;878,01\n03-01-2024;1.012,50\n04-01-2024;999,9\n"


def test_chilean_export_is_read_by_detection(tmp_path):
    path = _csv(tmp_path, CHILEAN, encoding="latin-1")  # as the Banco Central de Chile's downloads
    prices = read_price_csv(path, "Día", "Dólar observado")
    assert prices["usdclp"].tolist() == [878.01, 1012.5, 999.9]
    assert prices["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-02", "2024-01-03", "2024-01-04"]


def test_chilean_export_with_explicit_settings(tmp_path):
    path = _csv(tmp_path, CHILEAN, encoding="cp1252")
    fmt = CsvFormat(delimiter=";", decimal=",", thousands=".", date_format="%d-%m-%Y", encoding="cp1252")
    prices = read_price_csv(path, "Día", "Dólar observado", fmt)
    assert prices["usdclp"].tolist() == [878.01, 1012.5, 999.9]
    assert prices["date"].iloc[0] == pd.Timestamp("2024-01-02")


def test_decimal_comma_is_never_read_as_a_thousands_separator(tmp_path):
    """The bug: '678,01' was read as 67801. Now it is 678.01; a thousands comma needs groups of three digits, so
    even the wrong setting cannot make 67801 of it; and a series 1,000x too high cannot pass the contract."""
    path = _csv(tmp_path, 'date,usdclp\n2024-01-02,"678,01"\n2024-01-03,"679,50"\n')
    assert read_price_csv(path)["usdclp"].tolist() == [678.01, 679.5]
    message = _refused(path, csv_format=CsvFormat(decimal=".", thousands=","))
    assert "2 value(s) in column 'usdclp' are not a valid number (line 2: '678,01', line 3: '679,50')" in message
    path = _csv(tmp_path, "date;usdclp\n2024-01-02;678,010\n2024-01-03;679,500\n")
    forced = read_price_csv(path, csv_format=CsvFormat(decimal=".", thousands=","))  # a wrong setting...
    assert forced["usdclp"].tolist() == [678010.0, 679500.0]
    with pytest.raises(PriceValidationError) as caught:  # ...is refused by the data contract
        validate_prices(forced)
    assert "rule 'plausible_price_range' (prices must lie between 100 and 5,000 CLP per USD)" in str(caught.value)
    assert "line 2 (2024-01-02 Tue, 678010.0), line 3 (2024-01-03 Wed, 679500.0)" in str(caught.value)
    assert "most prices are out of range: a decimal comma read as a thousands separator" in str(caught.value)


def test_ambiguous_number_is_refused_and_the_setting_decides(tmp_path):
    path = _csv(tmp_path, "date;usdclp\n2024-01-02;678,010\n2024-01-03;679,500\n")
    message = _refused(path)
    assert message == (
        f"{path}: column 'usdclp': the number format is ambiguous: '678,010' (line 2) reads as 678010 with decimal "
        "'.' and thousands separator ',' and as 678.01 with decimal ','; set csv_decimal ('.' or ',') and "
        "csv_thousands ('none', '.' or ',') in the price source config"
    )
    assert read_price_csv(path, csv_format=CsvFormat(decimal=","))["usdclp"].tolist() == [678.01, 679.5]
    # one value of four integer digits settles it: '1012,500' cannot have a thousands comma
    path = _csv(tmp_path, "date;usdclp\n2024-01-02;678,010\n2024-01-03;1012,500\n")
    assert read_price_csv(path)["usdclp"].tolist() == [678.01, 1012.5]


def test_decimal_point_and_thousands_comma_read_as_before(tmp_path):
    path = _csv(tmp_path, 'date,usdclp\n2024-01-02,"1,012.25"\n2024-01-03,998.5\n2024-01-04,1001\n')
    assert read_price_csv(path)["usdclp"].tolist() == [1012.25, 998.5, 1001.0]


def test_thousands_groups_must_have_three_digits(tmp_path):
    path = _csv(tmp_path, "date;usdclp\n2024-01-02;1.012,50\n2024-01-03;1.01,50\n")
    message = _refused(path)
    assert "1 value(s) in column 'usdclp' are not a valid number (line 3: '1.01,50')" in message
    assert "expected numbers with decimal ',' and thousands separator '.' as in the other rows" in message


def test_unquoted_decimal_comma_in_a_comma_separated_file_is_refused(tmp_path):
    path = _csv(tmp_path, "date,usdclp\n2024-01-02,678,01\n2024-01-03,679,50\n")
    assert _refused(path) == (
        f"{path}: 2 row(s) do not have the 2 fields of the header (line 1, delimiter ','): line 2 has 3 "
        "('2024-01-02,678,01'), line 3 has 3 ('2024-01-03,679,50'); a decimal comma in a comma-separated file "
        "splits the price in two: quote the prices (\"678,01\") or use ';' as the delimiter"
    )


@pytest.mark.parametrize(
    "body, expected",
    [
        ("date\tusdclp\n2024-01-02\t678.01\n", "\t"),
        ("date|usdclp\n2024-01-02|678.01\n", "|"),
        ("date;usdclp;fuente\n02-01-2024;678,01;BCCh;\n", ";"),
    ],
)
def test_delimiters(tmp_path, body, expected):
    setting = {"\t": "tab", "|": "|", ";": "auto"}[expected]
    prices = read_price_csv(_csv(tmp_path, body), csv_format=CsvFormat(delimiter=setting))
    assert prices["usdclp"].tolist() == [678.01] and prices["date"].iloc[0] == pd.Timestamp("2024-01-02")


def test_ambiguous_dates_are_refused_and_the_setting_decides(tmp_path):
    path = _csv(tmp_path, "date,usdclp\n02/01/2024,678.01\n03/01/2024,679.01\n")
    assert _refused(path) == (
        f"{path}: column 'date': the date format is ambiguous: '02/01/2024' (line 2) reads as 2024-01-02 with "
        "%d/%m/%Y and as 2024-02-01 with %m/%d/%Y, and every row fits both; set csv_date_format (e.g. '%d/%m/%Y')"
    )
    fmt = CsvFormat(date_format="%m/%d/%Y")
    assert read_price_csv(path, csv_format=fmt)["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-02-01",
        "2024-03-01",
    ]
    path = _csv(tmp_path, "date,usdclp\n12/01/2024,678.01\n15/01/2024,679.01\n")  # 15 settles it
    assert read_price_csv(path)["date"].dt.day.tolist() == [12, 15]


def test_one_date_format_for_every_row(tmp_path):
    path = _csv(tmp_path, "date,usdclp\n2024-01-02,678.01\n03-01-2024,679.01\n2024-01-04,680.01\n")
    assert _refused(path).endswith(
        "1 value(s) in column 'date' are not a valid date (line 3: '03-01-2024'); expected dates in the format "
        "%Y-%m-%d of the other rows"
    )
    message = _refused(path, csv_format=CsvFormat(date_format="%d-%m-%Y"))
    assert "2 value(s) in column 'date' are not a valid date (line 2: '2024-01-02', line 4: '2024-01-04')" in message
    assert message.endswith("expected dates in csv_date_format '%d-%m-%Y'")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be"])
def test_encodings_are_detected(tmp_path, encoding):
    path = _csv(tmp_path, "Fecha;Dólar\r\n2024-01-02;878,01\r\n", encoding=encoding)
    prices = read_price_csv(path, "Fecha", "Dólar")
    assert prices["usdclp"].tolist() == [878.01]


def test_explicit_encoding_that_does_not_fit_is_refused(tmp_path):
    path = _csv(tmp_path, "Fecha;Dólar\n2024-01-02;878,01\n", encoding="latin-1")
    message = _refused(path, "Fecha", "Dólar", CsvFormat(encoding="utf-8"))
    assert message == (
        f"{path}: it is not valid utf-8 at byte 7: invalid continuation byte; set csv_encoding to the file's encoding"
    )


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"", "the file is empty (0 bytes); expected a header line naming the columns 'date' and 'usdclp', then "
         "one row per day"),
        (b"\n \n\r\n", "the file has only blank lines; expected a header line naming the columns 'date' and "
         "'usdclp', then one row per day"),
        (b"date,usdclp\n", "no data rows after the header (line 1: 'date,usdclp'); expected one row per day with "
         "'date' and 'usdclp'"),
        (b"date,usdclp\n\n,\n", "no data rows after the header (line 1: 'date,usdclp'); expected one row per "
         "day with 'date' and 'usdclp'"),
    ],
)  # fmt: skip
def test_empty_and_header_only_files_are_refused(tmp_path, body, expected):
    path = _csv(tmp_path, body)
    assert _refused(path) == f"{path}: {expected}"


def test_blank_lines_and_empty_spreadsheet_rows_are_skipped(tmp_path):
    path = _csv(tmp_path, "date;usdclp;\n\n2024-01-02;678,01;\n;;\n2024-01-03;679,01;\n;;\n")
    assert read_price_csv(path)["usdclp"].tolist() == [678.01, 679.01]


def test_a_cut_off_last_line_is_refused(tmp_path):
    path = _csv(tmp_path, "date,usdclp\n2024-01-02,678.01\n2024-01-03,679.1")
    assert _refused(path) == (
        f"{path}: line 3 ('2024-01-03,679.1') looks cut off: the file does not end with a line break and its "
        "price has 1 decimal(s) after '.' where most rows have 2; complete or remove the line"
    )
    path = _csv(tmp_path, "date,usdclp\n2024-01-02,678.01\n2024-01-03,679.")
    assert "not a valid number (line 3: '679.')" in _refused(path)
    assert "the file does not end with a line break: line 3 looks cut off" in _refused(path)
    # a complete last line without a line break is fine
    path = _csv(tmp_path, "date,usdclp\n2024-01-02,678.01\n2024-01-03,679.10")
    assert read_price_csv(path)["usdclp"].tolist() == [678.01, 679.1]


def test_rows_with_missing_or_extra_fields_are_named(tmp_path):
    path = _csv(tmp_path, "date,usdclp\n2024-01-02,678.01\n2024-01-03\n2024-01-04,680.01,x\n")
    assert _refused(path) == (
        f"{path}: 2 row(s) do not have the 2 fields of the header (line 1, delimiter ','): line 3 has 1 "
        "('2024-01-03'), line 4 has 3 ('2024-01-04,680.01,x')"
    )


@pytest.mark.parametrize("token", ["NaN", "nan", "", "N/A", "#N/D", "-", "inf", "1e3", "$678"])
def test_missing_and_non_numeric_prices_are_refused(tmp_path, token):
    path = _csv(tmp_path, f'date,usdclp\n2024-01-02,678.01\n2024-01-03,"{token}"\n')
    assert f"1 value(s) in column 'usdclp' are not a valid number (line 3: {token!r})" in _refused(path)


def test_a_stray_quote_is_named(tmp_path):
    path = _csv(tmp_path, 'date,usdclp\n2024-01-02,"678.01\n')
    assert _refused(path) == (
        f"{path}: line 2 ('2024-01-02,\"678.01') is not valid CSV: unexpected end of data (a stray or unclosed quote?)"
    )


@pytest.mark.parametrize(
    "fmt, expected",
    [
        (CsvFormat(decimal=";"), "csv_decimal ';' is not supported; use one of 'auto', '.', ','"),
        (
            CsvFormat(delimiter=":"),
            "csv_delimiter ':' is not supported; use one of 'auto', ',', ';', '\\t', 'tab', '|'",
        ),
        (CsvFormat(decimal=",", thousands=","), "csv_decimal and csv_thousands are both ','; they must differ"),
        (CsvFormat(date_format="dd-mm-yyyy"), "csv_date_format 'dd-mm-yyyy' is not a strftime format"),
        (CsvFormat(encoding="klingon"), "csv_encoding 'klingon' is not a known encoding"),
    ],
)
def test_unsupported_settings_are_named(tmp_path, fmt, expected):
    path = _csv(tmp_path, "date,usdclp\n2024-01-02,678.01\n")
    with pytest.raises(PriceSourceError) as caught:
        read_price_csv(path, csv_format=fmt)
    assert str(caught.value).startswith(f"{path}: {expected}")


def test_the_real_file_layout_still_reads(tmp_path):
    """The layout of the project's real series (2003-2018, ``date,usdclp``, two decimals), written here."""
    days = pd.bdate_range("2003-01-02", periods=5)
    values = [718.61, 718.73, 715.76, 710.19, 709.0]
    body = "date,usdclp\n" + "".join(f"{d:%Y-%m-%d},{v:.2f}\n" for d, v in zip(days, values, strict=True))
    prices = validate_prices(read_price_csv(_csv(tmp_path, body)))
    assert prices["usdclp"].tolist() == [718.61, 718.73, 715.76, 710.19, 709.0]


# ---------------------------------------------------------------- mindicador over real HTTP


@pytest.fixture
def api():
    server = FakeMindicador()
    yield server
    server.close()


def _client(api, tmp_path, **kwargs):
    defaults = {"timeout_s": 0.3, "max_retries": 2, "backoff_s": 0.01}
    return MindicadorClient(api.url, tmp_path / "cache", **(defaults | kwargs))


TODAY = date(2024, 6, 14)


def test_mindicador_fetches_sorts_and_validates(api, tmp_path):
    prices = _client(api, tmp_path).prices(2022, 2024, today=TODAY)
    validate_prices(prices)
    assert prices["date"].iloc[0] == pd.Timestamp("2022-01-03")  # Chilean dates, not UTC dates
    assert prices["date"].is_monotonic_increasing
    assert sorted(api.requests) == ["/api/dolar/2022", "/api/dolar/2023", "/api/dolar/2024"]


def test_mindicador_fetches_only_missing_years_and_the_current_one(api, tmp_path):
    client = _client(api, tmp_path)
    first = client.prices(2022, 2024, today=TODAY)
    api.requests.clear()
    second = client.prices(2021, 2024, today=TODAY)
    assert sorted(api.requests) == ["/api/dolar/2021", "/api/dolar/2024"]  # 2022-2023 from cache
    assert len(second) > len(first)
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_mindicador_retries_a_500_then_succeeds(api, tmp_path):
    api.script[2023] = ["500", "503", "ok"]
    prices = _client(api, tmp_path).prices(2023, 2023, today=TODAY)
    assert len(prices) == len(pd.bdate_range("2023-01-01", "2023-12-31"))
    assert api.requests.count("/api/dolar/2023") == 3


def test_mindicador_gives_up_after_retries_and_caches_nothing(api, tmp_path):
    api.script[2023] = ["500"]
    with pytest.raises(PriceSourceError, match=r"/api/dolar/2023 failed after 3 attempts \(last error: HTTP 500\)"):
        _client(api, tmp_path).prices(2023, 2023, today=TODAY)
    assert api.requests.count("/api/dolar/2023") == 3
    assert not (tmp_path / "cache" / "dolar_2023.json").exists()


def test_mindicador_timeout_is_retried_then_reported(api, tmp_path):
    api.script[2023] = ["sleep"]
    with pytest.raises(PriceSourceError, match=r"timed out after 0.3 s"):
        _client(api, tmp_path).prices(2023, 2023, today=TODAY)
    assert api.requests.count("/api/dolar/2023") == 3


def test_mindicador_timeout_then_recovery(api, tmp_path):
    api.script[2023] = ["sleep", "ok"]
    assert len(_client(api, tmp_path).prices(2023, 2023, today=TODAY)) > 250


def test_mindicador_404_is_not_retried(api, tmp_path):
    api.script[2023] = ["404"]
    with pytest.raises(PriceSourceError, match="HTTP 404; not retried"):
        _client(api, tmp_path).prices(2023, 2023, today=TODAY)
    assert api.requests.count("/api/dolar/2023") == 1


def test_mindicador_unexpected_document(api, tmp_path):
    api.script[2023] = ["garbage"]
    with pytest.raises(PriceSourceError, match="unexpected document"):
        _client(api, tmp_path).prices(2023, 2023, today=TODAY)
