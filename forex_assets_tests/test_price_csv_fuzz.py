"""Fuzz-style: 240 CSV files derived from one valid series, each written in a random format (delimiter, decimal
mark, thousands separator, date format, encoding, line ending, quoting, column names and order, extra columns)
and most given one corruption (truncation, duplicates, gaps, outliers, text for a price, shuffled rows, a column
too many or too few, a wrong setting, a mistyped year, dates after today ...). Seeded: the same 240 files every
run (the future_dates cases' dates are counted from today).

Each case knows the series its file stands for. The reader plus the data contract (what PriceSource.load does)
must EITHER load exactly that series OR refuse the file with a message naming the file and where (a line and,
for the data contract, its rule; a byte); NEVER load anything else, and never fail otherwise. Cases the reader
can read with certainty (a recoverable format, unambiguous detection, a harmless gap) must load; cases whose file
is wrong (a 100x price, a duplicated date, a torn number) must be refused. The loader runs once per case
(:func:`outcomes`); every test judges what it did.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forex_assets.core.prices.schema import PriceRules, PriceValidationError, today_in_chile, validate_prices
from forex_assets.core.prices.sources import CsvFormat, PriceSourceError, price_frame, read_price_csv

SEED = 20261126
CASES = 240
ROWS = 60
START = "2023-04-13"  # the first days are past the 12th: dd/mm and mm/dd dates never fit the same file

DELIMITERS = [",", ";", "\t"]
DATE_FORMATS = ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%Y/%m/%d", "%d.%m.%Y"]
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le"]
COLUMNS = [("date", "usdclp"), ("fecha", "valor"), ("Día", "Dólar observado")]
CORRUPTIONS = [  # case n gets CORRUPTIONS[n % len]; "none" four times: an eighth of the cases test formats alone
    "none",
    "none",
    "none",
    "none",
    "torn_last_line",
    "cut_mid_file",
    "duplicate_row",
    "duplicate_date",
    "small_gaps",
    "long_gap",
    "outlier_100x",
    "outlier_001x",
    "negative",
    "text_for_price",
    "letter_in_price",
    "shuffled",
    "swapped_rows",
    "extra_column",
    "missing_value_column",
    "missing_field",
    "series_in_cents",
    "wrong_number_setting",
    "wrong_date_setting",
    "wrong_encoding_setting",
    "header_repeated",
    "blank_and_empty_rows",
    "three_decimals",
    "unquoted_decimal_comma",
    "odd_byte_cut",
    "mistyped_year",
    "future_dates",
]
#: corruptions whose every case must load (the file stands for its series, written some other way)
ALWAYS_LOADED = {"none", "small_gaps", "extra_column", "blank_and_empty_rows"}
#: corruptions some of whose cases load and some are refused (a cut that leaves whole rows, or one that tears
#: a number; three decimals that detection can or cannot settle); every other corruption is always refused
LOADED_OR_REFUSED = {"torn_last_line", "cut_mid_file", "three_decimals"}


@dataclass
class Case:
    number: int
    corruption: str
    data: bytes
    columns: tuple[str, str]
    fmt: CsvFormat
    intended: pd.DataFrame | None  # the series the file stands for (None: no valid series)
    must_load: bool  # False with an intended series: refusing is fine too, loading anything else is not
    error: str = ""  # for must-fail cases: a regex the message must match (beyond naming file and place)
    notes: dict = field(default_factory=dict)


def _number(value: float, decimals: int, decimal: str, thousands: str) -> str:
    text = f"{abs(value):,.{decimals}f}".replace(",", "\0").replace(".", decimal).replace("\0", thousands)
    return ("-" if value < 0 else "") + text


def _line(tokens: list[str], delimiter: str, quote_all: bool, quote: bool = True) -> str:
    """One CSV line; a token holding the delimiter is quoted (unless ``quote`` is False, a broken writer)."""
    quoted = [f'"{t}"' if quote and (quote_all or delimiter in t) else t for t in tokens]
    return delimiter.join(quoted)


def _series(rng: random.Random, start=START) -> pd.DataFrame:
    level = rng.uniform(600, 1060)  # some series cross 1,000, where thousands separators appear
    steps = np.random.default_rng(rng.randrange(2**32)).normal(0.0, 0.006, ROWS)
    return price_frame(pd.bdate_range(start, periods=ROWS), np.round(level * np.exp(np.cumsum(steps)), 2))


def _with_year(date_text: str, year: str) -> str:
    """``date_text`` (any of DATE_FORMATS) with its four-digit year replaced by ``year``."""
    return re.sub(r"\d{4}", year, date_text, count=1)


def _build(number: int, rng: random.Random) -> Case:
    corruption = CORRUPTIONS[number % len(CORRUPTIONS)]
    # future_dates: the last 20 rows after today (their days past the 12th or not: the format is set explicitly)
    start = pd.Timestamp(today_in_chile()) - pd.offsets.BDay(ROWS - 21) if corruption == "future_dates" else START
    series = _series(rng, start)
    delimiter = rng.choice(DELIMITERS)
    decimal = rng.choice([".", ","])
    thousands = rng.choice(["", "," if decimal == "." else "."])
    date_format = rng.choice(DATE_FORMATS)
    encoding = rng.choice(ENCODINGS)
    newline = rng.choice(["\n", "\r\n"])
    quote_all = rng.random() < 0.2
    date_column, value_column = rng.choice(COLUMNS)
    value_first = rng.random() < 0.25
    extra = rng.random() < 0.2 or corruption == "extra_column"
    explicit = rng.random() < 0.4 or corruption == "future_dates"
    decimals = 3 if corruption == "three_decimals" else 2
    if corruption == "three_decimals":
        series = series.assign(usdclp=np.round(series["usdclp"] + rng.choice([0.001, 0.007]), 3))
    if corruption == "unquoted_decimal_comma":
        delimiter, decimal, thousands, quote_all = ",", ",", "", False
    if corruption == "series_in_cents":
        decimals = 0
    if corruption == "odd_byte_cut":
        encoding = rng.choice(["utf-16", "utf-16-le"])
    if corruption == "wrong_encoding_setting":
        date_column, value_column = COLUMNS[2]  # accented names: the encoding matters
    columns = (date_column, value_column)

    dates = [d.strftime(date_format) for d in series["date"]]
    values = series["usdclp"].to_numpy().copy()
    intended: pd.DataFrame | None = series
    must_load, error = True, ""
    rows = list(range(ROWS))  # which series rows the file lists, in file order
    value_text: dict[int, str] = {}  # a row's price as written, where not the formatted value

    if corruption == "duplicate_row":
        i = rng.randrange(1, ROWS - 1)
        rows.insert(i + 1, i)
        intended, error = None, rf"rule 'unique_dates'.*line {i + 2} .*line {i + 3} "
    elif corruption == "duplicate_date":
        i = rng.randrange(1, ROWS - 1)
        rows.insert(i + 1, ROWS)  # a second price on row i's date
        dates.append(dates[i])
        values = np.append(values, round(values[i] * 1.002, decimals))
        intended, error = None, r"rule 'unique_dates'"
    elif corruption == "small_gaps":
        dropped = sorted(rng.sample(range(2, ROWS - 2, 3), 3))  # never two next to each other
        rows = [r for r in rows if r not in dropped]
        intended = series.drop(index=dropped).reset_index(drop=True)
    elif corruption == "long_gap":
        i = rng.randrange(5, ROWS - 20)
        rows = [r for r in rows if not i <= r < i + 12]
        intended, error = None, rf"rule 'max_gap_business_days'.*line {i + 2} "
    elif corruption in ("outlier_100x", "outlier_001x", "negative"):
        i = rng.randrange(1, ROWS)
        factor = {"outlier_100x": 100.0, "outlier_001x": 0.01, "negative": -1.0}[corruption]
        values[i] = round(values[i] * factor, decimals)
        rule = "positive_finite_values" if factor < 0 else "plausible_price_range"
        intended, error = None, rf"rule '{rule}'.*line {i + 2} "
    elif corruption == "text_for_price":
        i = rng.randrange(1, ROWS)
        value_text[i] = rng.choice(["NaN", "nan", "", "N/A", "#N/D", "-", "null", "s/i"])
        intended, error = None, rf"not a valid number \(line {i + 2}: "
    elif corruption == "letter_in_price":
        i = rng.randrange(1, ROWS)
        text = _number(values[i], decimals, decimal, thousands)
        j = rng.choice([k for k, c in enumerate(text) if c == "0"] or [0])
        value_text[i] = text[:j] + "O" + text[j + 1 :]
        intended, error = None, rf"not a valid number \(line {i + 2}: "
    elif corruption == "shuffled":
        while rows == sorted(rows):
            rng.shuffle(rows)
        intended, error = None, r"rule 'strictly_increasing_dates'"
    elif corruption == "swapped_rows":
        i = rng.randrange(1, ROWS - 1)
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
        intended, error = None, rf"rule 'strictly_increasing_dates'.*line {i + 3} "
    elif corruption == "series_in_cents":
        values = np.round(values * 100)
        # 90.512 (thousands '.') could as well be 90.512: refused as ambiguous before the contract sees it
        intended, error = None, r"rule 'plausible_price_range'.*most prices are out of range|format is ambiguous"
    elif corruption == "header_repeated":
        pass  # below, on the lines
    elif corruption == "mistyped_year":
        i = rng.randrange(1, ROWS)
        year = rng.choice(["0224", "1024", "9024", "2224"])  # 2224 is a date pandas holds: the contract refuses it
        dates[i] = _with_year(dates[i], year)
        if year == "2224":
            error = rf"rule 'no_future_dates'.*line {i + 2} \(2224-"
        else:
            error = rf"are dates out of range \(line {i + 2}: '{re.escape(dates[i])}'\)"
        intended = None
    elif corruption == "future_dates":
        first_refused = int((series["date"] > PriceRules().last_allowed_date()).argmax())
        intended, error = None, rf"rule 'no_future_dates'.* row\(s\): line {first_refused + 2} \("
    # --- the lines
    header = [date_column, value_column]
    if value_first:
        header.reverse()
    if extra:
        header.insert(rng.randrange(len(header) + 1), rng.choice(["fuente", "observación", "nota"]))
    quote = corruption != "unquoted_decimal_comma"
    lines = [_line(header, delimiter, quote_all)]
    for r in rows:
        price = value_text.get(r, _number(values[r], decimals, decimal, thousands))
        tokens = {date_column: dates[r], value_column: price}
        lines.append(_line([tokens.get(h, "BCCh") for h in header], delimiter, quote_all, quote))
    if corruption == "missing_value_column":
        v = header.index(value_column)
        lines = [  # every row loses the price
            _line([f for k, f in enumerate(_split(line, delimiter)) if k != v], delimiter, quote_all) for line in lines
        ]
        intended, error = None, r"line 1: column\(s\) \[.*\] not found"
    elif corruption == "missing_field":
        i = rng.randrange(1, ROWS)
        fields = _split(lines[i + 1], delimiter)
        lines[i + 1] = _line(fields[:-1], delimiter, quote_all)
        intended, error = None, rf"line {i + 2} has {len(fields) - 1}"
    elif corruption == "header_repeated":
        i = rng.randrange(2, ROWS - 2)
        lines.insert(i + 1, lines[0])  # two exports pasted together
        intended, error = None, rf"not a valid (date|number) \(line {i + 2}: "
    elif corruption == "blank_and_empty_rows":
        empty = delimiter.join([""] * len(header))
        for _ in range(3):
            lines.insert(rng.randrange(1, len(lines) + 1), rng.choice(["", empty, "  "]))
    elif corruption == "unquoted_decimal_comma":
        intended, error = None, r"do not have the \d+ fields of the header .*a decimal comma in a comma-separated file"
    elif corruption == "three_decimals" and not explicit and (series["usdclp"] < 1000).all():
        # 905,123 is 905.123 or 905123: nothing in the file settles it
        intended, error = None, r"the number format is ambiguous: '[\d.,]+' \(line \d+\)"
    text = newline.join(lines) + newline

    if corruption in ("torn_last_line", "cut_mid_file"):
        text, intended, must_load = _truncate(
            rng,
            text,
            newline,
            corruption,
            series,
            delimiter,
            header.index(date_column),
            header.index(value_column),
            at_line_end=number // len(CORRUPTIONS) % 3 == 0,  # a third of the cases cut mid-file
        )
    fmt = CsvFormat()
    if explicit:
        fmt = CsvFormat(
            delimiter="tab" if delimiter == "\t" else delimiter,
            decimal=decimal,
            thousands=thousands or "none",
            date_format=date_format,
            encoding=encoding,
        )
    if corruption == "wrong_number_setting":  # the decimal mark and thousands separator the other way round
        fmt = CsvFormat(decimal="," if decimal == "." else ".", thousands=decimal)
        intended, error = None, r"not a valid number|rule 'plausible_price_range'"
    elif corruption == "wrong_date_setting":
        fmt = CsvFormat(date_format=rng.choice([f for f in DATE_FORMATS if f != date_format]))
        intended, error = None, r"not a valid date \(line 2: "
    elif corruption == "wrong_encoding_setting":
        wrong = {"utf-8": "utf-16", "utf-8-sig": "utf-16", "utf-16": "utf-8", "utf-16-le": "latin-1"}
        fmt = CsvFormat(encoding=wrong.get(encoding, "utf-8"))
        intended, error = None, r"not valid|not found|has a NUL character"
    data = text.encode(encoding)
    if corruption == "odd_byte_cut":  # a UTF-16 file cut after an odd number of bytes
        data = data[: rng.randrange(len(data) // 3, len(data) - 2) | 1]
        cut_off = r"\((is the file cut off\?|the file is cut off, or not utf-16)"  # detected / set
        intended, error = None, r"not valid utf-16(-le)? at byte \d+: truncated data " + cut_off
    return Case(number, corruption, data, columns, fmt, intended, must_load, error)


def _split(line: str, delimiter: str) -> list[str]:
    import csv

    return next(csv.reader([line], delimiter=delimiter))


def _truncate(rng, text, newline, corruption, series, delimiter, date_index, value_index, at_line_end=False):
    """The text cut at a random character -- in its last line, or anywhere past the first fifth (at the end of
    that line when ``at_line_end``) -- and what the cut file stands for: the rows before the cut, plus the cut row
    when its date and price are whole (then it may load or be refused), or nothing when they are not (it must
    be refused)."""
    lines = text[: -len(newline)].split(newline)
    if corruption == "torn_last_line":
        start = len(text) - len(newline) - len(lines[-1])
        cut = rng.randrange(start, len(text))
    else:
        cut = rng.randrange(len(text) // 5, 4 * len(text) // 5)
        if at_line_end:  # a shorter file of whole rows: it must load
            cut = text.index(newline, cut) + len(newline)
    kept = text[:cut]
    parts = re.split(r"\r\n|\r|\n", kept)  # as the reader splits lines: a lone "\r" ends one too
    whole, rest = len(parts) - 1, parts[-1]  # lines ended by a line break; the partial line after them
    prefix = series.iloc[: whole - 1].reset_index(drop=True)  # data lines before the cut (line 1: the header)
    if not rest.strip():
        return kept, prefix, True  # cut at a line boundary (or in the line break): a shorter, whole file
    full = lines[whole]
    if rest == full:
        return kept, series.iloc[:whole].reset_index(drop=True), True  # only the line break is missing
    try:
        fields = _split(rest, delimiter)
        original = _split(full, delimiter)
        intact = all(len(fields) > k and fields[k] == original[k] for k in (date_index, value_index))
    except Exception:
        intact = False
    if intact:  # the cut is past the date and the price (in an extra column): either outcome is honest
        return kept, series.iloc[:whole].reset_index(drop=True), False
    return kept, None, False


CASES_LIST = [_build(n, random.Random(SEED * 1000 + n)) for n in range(CASES)]
NAMES_A_LINE = re.compile(r"line \d+|byte \d+|the file is empty|only blank lines")


def _load(path, case: Case) -> pd.DataFrame:
    """What PriceSource.load does for a CSV source: read, then the data contract."""
    frame = read_price_csv(path, *case.columns, csv_format=case.fmt)
    return validate_prices(frame, source=f"csv:{path}")


@dataclass
class Outcome:
    path: Path
    loaded: pd.DataFrame | None = None
    error: BaseException | None = None  # a refusal, or anything else the loader raised


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[int, Outcome]:
    """Each case's file written and given to the loader, once: case number -> what the loader did."""
    directory = tmp_path_factory.mktemp("fuzzed_csvs")
    done = {}
    for case in CASES_LIST:
        path = directory / f"case_{case.number:03d}.csv"
        path.write_bytes(case.data)
        try:
            done[case.number] = Outcome(path, loaded=_load(path, case))
        except Exception as error:  # judged by _judge: only a refusal that names file and place is right
            done[case.number] = Outcome(path, error=error)
    return done


def _judge(case: Case, outcome: Outcome) -> str:
    """'loaded' or 'refused' when the loader did what the case demands; else an AssertionError saying why."""
    path, error = outcome.path, outcome.error
    if error is not None:
        message = str(error)
        assert isinstance(error, (PriceSourceError, PriceValidationError)), f"crashed: {error!r}"
        assert case.intended is None or not case.must_load, f"refused a readable file: {message}"
        assert str(path) in message, message
        assert NAMES_A_LINE.search(message), message
        if isinstance(error, PriceValidationError):  # the contract names its rule and each row's file line
            assert "rule '" in message, message
            assert not re.search(r"\brow \d+", message), f"a row number where the file line belongs: {message}"
        if case.error:
            assert re.search(case.error, message, re.S), message
        return "refused"
    assert case.intended is not None, f"loaded a series from a file that has none ({case.corruption})"
    pd.testing.assert_frame_equal(outcome.loaded, case.intended)
    return "loaded"


@pytest.mark.parametrize("case", CASES_LIST, ids=lambda c: f"{c.number:03d}-{c.corruption}")
def test_fuzzed_csv_loads_the_intended_series_or_is_refused(outcomes, case):
    _judge(case, outcomes[case.number])


def test_fuzz_covers_every_corruption_both_ways(outcomes):
    """What the loader did over the 240 cases means something: every case right (as above), every corruption
    refused at least once unless its files all stand for their series, loaded at least once where it can be,
    both outcomes in numbers, and loaded files in every format (detected and set)."""
    judged = {case.number: _judge(case, outcomes[case.number]) for case in CASES_LIST}
    seen = defaultdict(set)
    for case in CASES_LIST:
        seen[case.corruption].add(judged[case.number])
    for corruption in CORRUPTIONS:
        expected = (
            {"loaded"}
            if corruption in ALWAYS_LOADED
            else {"loaded", "refused"}
            if corruption in LOADED_OR_REFUSED
            else {"refused"}
        )
        assert seen[corruption] == expected, corruption
    loaded = [c for c in CASES_LIST if judged[c.number] == "loaded"]
    refused = [c for c in CASES_LIST if judged[c.number] == "refused"]
    assert len(loaded) >= 60 and len(refused) >= 100, (len(loaded), len(refused))
    assert {c.fmt == CsvFormat() for c in loaded} == {True, False}  # detected and explicit settings
    loaded_text = [c.data for c in loaded]
    assert any(b";" in d for d in loaded_text) and any(b"\t" in d for d in loaded_text)
    assert any(re.search(rb"\d\.\d{3},\d\d", d) for d in loaded_text)  # 1.012,50 read by detection or setting
    assert any(d.startswith(b"\xef\xbb\xbf") for d in loaded_text)
    assert any(d.startswith(b"\xff\xfe") for d in loaded_text)
