"""Reading a CSV file of USD/CLP prices in the formats people actually have.

A file of dates and prices comes as ``2024-01-02,678.01`` (pandas, most tools) or, from a Chilean Excel or the
Banco Central de Chile, as ``02-01-2024;678,01`` with ``1.012,50`` for a thousand and more: ``;`` separators,
decimal commas, ``.`` thousands separators, ``dd-mm-yyyy`` dates, sometimes Latin-1 or UTF-16. Each of these is a
setting of :class:`CsvFormat`; each is "auto" by default, and detection only accepts a reading that is the
only one possible: ``678,010`` (678.01 with a decimal comma, 678010 with a thousands comma) or a file whose every
date is ``dd/mm/yyyy`` and ``mm/dd/yyyy`` at once is refused with a message asking for the setting, never
guessed.

Nothing is partial: one bad row refuses the whole file, and every error names the file, the line (1-based, as an
editor shows it), the column and what was expected. A date pandas cannot hold (before 1677-09-22 or after
2262-04-11: ``0224-09-09`` for ``2024-09-09``) is refused like a date that cannot be read. A last line cut off in
the middle (the file does not end with a line break and the line is shorter than its neighbours) is refused too:
``694.7`` from a torn ``694.77`` is a plausible price, and only its shape shows it is wrong.

The reader hands back each row's file line (:class:`ParsedCsv`), so that the data contract names a row by its
line in the file too.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from forex_assets.core.prices.errors import PriceSourceError

AUTO = "auto"
#: delimiter settings -> the character; "auto" picks the one that splits the header into the two columns
DELIMITERS = {",": ",", ";": ";", "\t": "\t", "tab": "\t", "|": "|"}
AUTO_DELIMITERS = (",", ";", "\t")
DECIMALS = (".", ",")
#: thousands settings -> the character ("none": no thousands separator)
THOUSANDS = {"none": "", "": "", ".": ".", ",": ",", " ": " ", "'": "'"}
AUTO_THOUSANDS = ("", ".", ",")
#: the date formats "auto" tries; a file must fit exactly one of them (or several that read it the same)
AUTO_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d-%m-%Y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
)
MAX_SHOWN = 5
#: the dates a datetime64[ns] series can hold, whole days (pandas.Timestamp.min / max)
FIRST_DATE = pd.Timestamp.min.ceil("D")
LAST_DATE = pd.Timestamp.max.floor("D")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class CsvFormat:
    """How a price CSV is written. Every setting is "auto" by default (detected; an ambiguous file is refused).

    delimiter: ``,`` ``;`` ``tab`` (or a tab character) or ``|``.
    decimal: ``.`` or ``,``.
    thousands: ``none``, ``.``, ``,``, ``' '`` or ``'``; in groups of three digits (``1.012,50``).
    date_format: a strftime format such as ``%d-%m-%Y`` (exact: every row in that format).
    encoding: a Python codec such as ``utf-8``, ``latin-1``, ``utf-16``; "auto" reads a byte order mark,
    then UTF-8, then Windows-1252 / Latin-1.
    """

    delimiter: str = AUTO
    decimal: str = AUTO
    thousands: str = AUTO
    date_format: str = AUTO
    encoding: str = AUTO

    def checked(self) -> CsvFormat:
        """Self, or a PriceSourceError naming the setting that has an unsupported value."""

        def refuse(setting: str, value: str, allowed: Sequence[str]) -> None:
            shown = ", ".join(repr(a) for a in allowed)
            raise PriceSourceError(f"csv_{setting} {value!r} is not supported; use one of {shown}")

        if self.delimiter != AUTO and self.delimiter not in DELIMITERS:
            refuse("delimiter", self.delimiter, (AUTO, *DELIMITERS))
        if self.decimal != AUTO and self.decimal not in DECIMALS:
            refuse("decimal", self.decimal, (AUTO, *DECIMALS))
        if self.thousands != AUTO and self.thousands not in THOUSANDS:
            refuse("thousands", self.thousands, (AUTO, *[t for t in THOUSANDS if t]))
        if self.decimal != AUTO and self.decimal == THOUSANDS.get(self.thousands):
            raise PriceSourceError(f"csv_decimal and csv_thousands are both {self.decimal!r}; they must differ")
        if self.date_format != AUTO and "%" not in self.date_format:
            raise PriceSourceError(
                f"csv_date_format {self.date_format!r} is not a strftime format (such as '%d-%m-%Y' or '%Y-%m-%d')"
            )
        if self.encoding != AUTO:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise PriceSourceError(
                    f"csv_encoding {self.encoding!r} is not a known encoding (utf-8, latin-1, cp1252, utf-16, ...)"
                ) from None
        return self


@dataclass(frozen=True)
class _Row:
    line: int  # 1-based line number in the file
    text: str  # the line as written
    fields: list[str]


class ParsedCsv(NamedTuple):
    """A price CSV's rows as written: ``dates[i]`` and ``values[i]`` come from the file's line ``lines[i]``
    (1-based; the header is line 1, and blank lines are skipped but counted)."""

    dates: pd.Series
    values: np.ndarray
    lines: tuple[int, ...]


#: cells that mean "no price that day" in a wide file (compared lower-cased, stripped): a wide export of several
#: currencies leaves a column blank on its own country's holidays
MISSING_CELLS = frozenset({"", "na", "n/a", "#n/a", "nan", "null", "-"})


def parse_price_csv(
    path: Path | str,
    date_column: str = "date",
    value_column: str = "usdclp",
    fmt: CsvFormat | None = None,
    skip_missing: bool = False,
) -> ParsedCsv:
    """The dates, prices and file lines of a CSV file, row by row as written; a PriceSourceError for anything
    it cannot read with certainty. ``fmt`` None: every setting "auto". ``skip_missing``: a row whose value is
    a :data:`MISSING_CELLS` marker is no observation (a wide file's column on its country's holiday) instead
    of an error; a column with no value at all is still refused."""
    path = Path(path)
    try:
        fmt = (fmt or CsvFormat()).checked()
    except PriceSourceError as error:
        raise PriceSourceError(f"{path}: {error}") from None
    if date_column == value_column:
        raise PriceSourceError(f"{path}: date_column and value_column are both {date_column!r}; they must differ")
    if not path.exists():
        raise PriceSourceError(f"CSV price file {path} does not exist")
    if not path.is_file():
        raise PriceSourceError(f"CSV price file {path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PriceSourceError(f"CSV price file {path} cannot be read: {error.strerror or error}") from None
    expected = f"expected a header line naming the columns '{date_column}' and '{value_column}', then one row per day"
    if not data:
        raise PriceSourceError(f"{path}: the file is empty (0 bytes); {expected}")
    text = _decode(data, fmt.encoding, path)
    lines = _LINE_BREAK.split(text)
    ends_with_break = lines[-1] == ""
    if ends_with_break:
        lines.pop()
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise PriceSourceError(f"{path}: the file has only blank lines; {expected}")
    # the last line may be torn when the file does not end with a line break (an interrupted download or copy)
    torn_line = len(lines) if not ends_with_break and lines[-1].strip() else None

    header_line, header_text = numbered[0]
    delimiter = _delimiter(path, header_line, header_text, date_column, value_column, fmt.delimiter)
    header = _split(path, header_line, header_text, delimiter, torn_line)
    for column in (date_column, value_column):
        if header.count(column) > 1:
            raise PriceSourceError(f"{path}: line {header_line}: column '{column}' appears more than once: {header}")
    rows = []
    for line, line_text in numbered[1:]:
        fields = _split(path, line, line_text, delimiter, torn_line)
        if any(fields):  # a row of empty fields (";;" from a spreadsheet) is a blank line
            rows.append(_Row(line, line_text, fields))
    if not rows:
        raise PriceSourceError(
            f"{path}: no data rows after the header (line {header_line}: {header_text.strip()!r}); "
            f"expected one row per day with '{date_column}' and '{value_column}'"
        )
    di, vi = header.index(date_column), header.index(value_column)
    _check_field_counts(path, rows, header, header_line, delimiter, vi, torn_line)
    if skip_missing:
        rows = [r for r in rows if r.fields[vi].strip().lower() not in MISSING_CELLS]
        if not rows:
            raise PriceSourceError(f"{path}: column '{value_column}' has no value on any row")
    dates = _dates(path, rows, di, date_column, fmt.date_format, torn_line)
    values, decimals, (decimal, _) = _numbers(path, rows, vi, value_column, fmt, torn_line)
    if torn_line is not None and rows[-1].line == torn_line and len(rows) > 1:
        _check_not_torn(path, rows, di, decimals, decimal)
    return ParsedCsv(dates, values, tuple(r.line for r in rows))


def csv_columns(path: Path | str, date_column: str = "date", fmt: CsvFormat | None = None) -> list[str]:
    """The columns of a CSV's header line: split by the setting's delimiter, or for "auto" by the delimiter that
    gives the most columns with ``date_column`` among them (a wide file of one column per currency)."""
    path = Path(path)
    fmt = (fmt or CsvFormat()).checked()
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PriceSourceError(f"CSV price file {path} cannot be read: {error.strerror or error}") from None
    lines = [line for line in _LINE_BREAK.split(_decode(data, fmt.encoding, path)) if line.strip()]
    if not lines:
        raise PriceSourceError(
            f"{path}: the file is empty; expected a header line naming '{date_column}' and the currencies"
        )
    delimiters = AUTO_DELIMITERS if fmt.delimiter == AUTO else (DELIMITERS[fmt.delimiter],)
    splits = [fields for fields in (_header_fields(lines[0], d) for d in delimiters) if date_column in fields]
    if not splits:
        raise PriceSourceError(f"{path}: line 1: no column '{date_column}' in the header {lines[0].strip()!r}")
    return max(splits, key=len)


# ---------------------------------------------------------------- bytes, lines and fields


def _decode(data: bytes, encoding: str, path: Path) -> str:
    if encoding != AUTO:
        candidates = [encoding]
    elif data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif b"\x00" in data[:4096]:  # UTF-16 without a byte order mark: every other byte of ASCII text is 0
        head = data[:4096]
        candidates = ["utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be"]
    else:
        candidates = ["utf-8", "cp1252", "latin-1"]
    detected = {
        "utf-8-sig": " it starts with a UTF-8 byte order mark, but",
        "utf-16": " it starts with a UTF-16 byte order mark, but",
        "utf-16-le": " it looks like UTF-16 (every other byte is 0), but",
        "utf-16-be": " it looks like UTF-16 (every other byte is 0), but",
    }
    errors: list[UnicodeDecodeError] = []
    for candidate in candidates:
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError as caught:
            errors.append(caught)
            continue
        text = text.removeprefix("\ufeff")
        if "\x00" in text:
            at = text.index("\x00")
            raise PriceSourceError(
                f"{path}: line {text.count(chr(10), 0, at) + 1} has a NUL character when read as {candidate}: not a "
                "text CSV, or UTF-16 read as another encoding (set csv_encoding to the file's encoding)"
            )
        return text
    error = errors[0]  # the first candidate's: the encoding asked for, or the likeliest one
    cut = ""
    if error.reason == "truncated data":
        cut = " (is the file cut off?)" if encoding == AUTO else f" (the file is cut off, or not {encoding})"
    why = detected.get(candidates[0], "") if encoding == AUTO else ""
    raise PriceSourceError(
        f"{path}:{why} it is not valid {error.encoding} at byte {error.start}: {error.reason}{cut}; "
        "set csv_encoding to the file's encoding"
    )


def _split(path: Path, line: int, text: str, delimiter: str, torn_line: int | None) -> list[str]:
    try:
        fields = next(csv.reader([text], delimiter=delimiter, strict=True, skipinitialspace=True))
    except csv.Error as error:
        raise PriceSourceError(
            f"{path}: line {line} ({text!r}) is not valid CSV: {error} (a stray or unclosed quote?)"
            + _torn_hint([line], torn_line)
        ) from None
    return [field.strip() for field in fields]


def _delimiter(path: Path, line: int, header: str, date_column: str, value_column: str, setting: str) -> str:
    """The setting's delimiter; for "auto", the only one that splits the header into both columns."""
    if setting != AUTO:
        delimiter = DELIMITERS[setting]
        fields = _header_fields(header, delimiter)
        _require_columns(path, line, fields, date_column, value_column, delimiter)
        return delimiter
    splits = {d: _header_fields(header, d) for d in AUTO_DELIMITERS}
    fitting = [d for d, fields in splits.items() if date_column in fields and value_column in fields]
    if len(fitting) == 1:
        return fitting[0]
    if len(fitting) > 1:
        raise PriceSourceError(
            f"{path}: line {line}: the header {header.strip()!r} has the columns '{date_column}' and "
            f"'{value_column}' with more than one delimiter ({', '.join(map(repr, fitting))}); set csv_delimiter"
        )
    widest = max(AUTO_DELIMITERS, key=lambda d: len(splits[d]))  # the likeliest reading, to show the columns
    _require_columns(path, line, splits[widest], date_column, value_column, widest)
    raise AssertionError("unreachable")


def _header_fields(header: str, delimiter: str) -> list[str]:
    try:
        return [f.strip() for f in next(csv.reader([header], delimiter=delimiter, skipinitialspace=True))]
    except csv.Error:
        return [header.strip()]


def _require_columns(
    path: Path, line: int, fields: list[str], date_column: str, value_column: str, delimiter: str
) -> None:
    missing = [c for c in (date_column, value_column) if c not in fields]
    if missing:
        raise PriceSourceError(
            f"{path}: line {line}: column(s) {missing} not found; the file has {fields} "
            f"(read with delimiter {delimiter!r}; set date_column / value_column, or csv_delimiter, in the price "
            "source config)"
        )


def _check_field_counts(
    path: Path,
    rows: list[_Row],
    header: list[str],
    header_line: int,
    delimiter: str,
    value_index: int,
    torn_line: int | None,
) -> None:
    n = len(header)
    # more fields are fine only when the extra ones are empty (a spreadsheet's trailing ";")
    bad = [r for r in rows if len(r.fields) < n or any(r.fields[n:])]
    if not bad:
        return
    shown = ", ".join(f"line {r.line} has {len(r.fields)} ({r.text.strip()!r})" for r in bad[:MAX_SHOWN])
    shown += f" and {len(bad) - MAX_SHOWN} more" if len(bad) > MAX_SHOWN else ""
    hint = ""

    def split_price(fields: list[str]) -> bool:  # '678,01' read as the two fields '678' and '01'
        price, after = fields[value_index], fields[value_index + 1]
        return price.lstrip("+-").replace(".", "").isdigit() and after.isdigit()

    if delimiter == "," and any(len(r.fields) == n + 1 and split_price(r.fields) for r in bad):
        hint = (
            "; a decimal comma in a comma-separated file splits the price in two: quote the prices "
            "(\"678,01\") or use ';' as the delimiter"
        )
    raise PriceSourceError(
        f"{path}: {len(bad)} row(s) do not have the {n} fields of the header (line {header_line}, delimiter "
        f"{delimiter!r}): {shown}{hint}" + _torn_hint([r.line for r in bad], torn_line)
    )


def _torn_hint(lines: list[int], torn_line: int | None) -> str:
    if torn_line is not None and torn_line in lines:
        return f"; the file does not end with a line break: line {torn_line} looks cut off"
    return ""


def _shown(rows: list[_Row], tokens: list[str], bad: np.ndarray) -> str:
    where = np.flatnonzero(bad)
    shown = ", ".join(f"line {rows[i].line}: {tokens[i]!r}" for i in where[:MAX_SHOWN])
    more = len(where) - MAX_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


# ---------------------------------------------------------------- dates


def _dates(path: Path, rows: list[_Row], index: int, column: str, setting: str, torn_line: int | None) -> pd.Series:
    tokens = [r.fields[index] for r in rows]
    formats = AUTO_DATE_FORMATS if setting == AUTO else (setting,)
    parsed = {f: _parse_dates(tokens, f) for f in formats}
    fitting = [f for f in formats if parsed[f].notna().all()]
    if not fitting:
        best = max(formats, key=lambda f: int(parsed[f].notna().sum()))  # the first of equals
        bad = parsed[best].isna().to_numpy()
        if setting != AUTO:
            expected = f"in csv_date_format {setting!r}"
        elif bad.all():
            expected = f"in any of the formats {', '.join(AUTO_DATE_FORMATS)} (set csv_date_format)"
        else:
            expected = f"in the format {best} of the other rows"
        raise PriceSourceError(
            f"{path}: {int(bad.sum())} value(s) in column '{column}' are not a valid date "
            f"({_shown(rows, tokens, bad)}); expected dates {expected}"
            + _torn_hint([r.line for r, b in zip(rows, bad, strict=True) if b], torn_line)
        )
    chosen = fitting[0]
    for other in fitting[1:]:
        differs = (parsed[other] != parsed[chosen]).to_numpy()
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            raise PriceSourceError(
                f"{path}: column '{column}': the date format is ambiguous: {tokens[i]!r} (line {rows[i].line}) "
                f"reads as {parsed[chosen].iloc[i]:%Y-%m-%d} with {chosen} and as {parsed[other].iloc[i]:%Y-%m-%d} "
                f"with {other}, and every row fits both; set csv_date_format (e.g. '{chosen}')"
            )
    dates = parsed[chosen]
    _check_date_range(path, rows, tokens, dates, column, torn_line)
    return dates


def _check_date_range(
    path: Path, rows: list[_Row], tokens: list[str], dates: pd.Series, column: str, torn_line: int | None
) -> None:
    """Every date within the span a datetime64[ns] series holds (the series' type), else a PriceSourceError
    naming each one's line and text: ``0224-09-09`` reads as the year 224, which no price series can have."""
    bad = ((dates < FIRST_DATE) | (dates > LAST_DATE)).to_numpy()
    if bad.any():
        raise PriceSourceError(
            f"{path}: {int(bad.sum())} value(s) in column '{column}' are dates out of range "
            f"({_shown(rows, tokens, bad)}); dates must lie between {FIRST_DATE:%Y-%m-%d} and {LAST_DATE:%Y-%m-%d} "
            "(the dates pandas can hold): a mistyped year?"
            + _torn_hint([r.line for r, b in zip(rows, bad, strict=True) if b], torn_line)
        )


def _parse_dates(tokens: list[str], date_format: str) -> pd.Series:
    return pd.to_datetime(pd.Series(tokens, dtype=object), format=date_format, errors="coerce")


# ---------------------------------------------------------------- numbers


def _number_pattern(decimal: str, thousands: str) -> re.Pattern[str]:
    integer = r"\d+" if not thousands else rf"(?:\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+|\d+)"
    return re.compile(rf"[+-]?{integer}(?:{re.escape(decimal)}(\d+))?")


def _parse_numbers(tokens: list[str], decimal: str, thousands: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, decimal digits) under one reading; NaN / -1 where a token does not fit it."""
    pattern = _number_pattern(decimal, thousands)
    values = np.full(len(tokens), np.nan)
    decimals = np.full(len(tokens), -1)
    for i, token in enumerate(tokens):
        match = pattern.fullmatch(token)
        if match:
            plain = token.replace(thousands, "") if thousands else token
            values[i] = float(plain.replace(decimal, "."))
            decimals[i] = len(match.group(1) or "")
    return values, decimals


def _describe(reading: tuple[str, str]) -> str:
    decimal, thousands = reading
    return f"decimal {decimal!r}" + (f" and thousands separator {thousands!r}" if thousands else "")


def _numbers(
    path: Path, rows: list[_Row], index: int, column: str, fmt: CsvFormat, torn_line: int | None
) -> tuple[np.ndarray, np.ndarray, tuple[str, str]]:
    tokens = [r.fields[index] for r in rows]
    decimals_allowed = DECIMALS if fmt.decimal == AUTO else (fmt.decimal,)
    thousands_allowed = AUTO_THOUSANDS if fmt.thousands == AUTO else (THOUSANDS[fmt.thousands],)
    readings = [(d, t) for d in decimals_allowed for t in thousands_allowed if d != t]
    parsed = {reading: _parse_numbers(tokens, *reading) for reading in readings}
    fitting = [r for r in readings if not np.isnan(parsed[r][0]).any()]
    if not fitting:
        best = max(readings, key=lambda r: int((~np.isnan(parsed[r][0])).sum()))
        bad = np.isnan(parsed[best][0])
        if fmt.decimal != AUTO or fmt.thousands != AUTO:
            expected = f"numbers with {_describe(best)} (csv_decimal {fmt.decimal!r}, csv_thousands {fmt.thousands!r})"
        elif bad.all():
            expected = (
                "numbers such as 678.01, 678,01, 1,012.50 or 1.012,50 (one decimal mark, thousands separators in "
                "groups of three)"
            )
        else:
            expected = f"numbers with {_describe(best)} as in the other rows"
        raise PriceSourceError(
            f"{path}: {int(bad.sum())} value(s) in column '{column}' are not a valid number "
            f"({_shown(rows, tokens, bad)}); expected {expected}"
            + _torn_hint([r.line for r, b in zip(rows, bad, strict=True) if b], torn_line)
        )
    chosen = fitting[0]
    for other in fitting[1:]:
        differs = parsed[other][0] != parsed[chosen][0]
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            raise PriceSourceError(
                f"{path}: column '{column}': the number format is ambiguous: {tokens[i]!r} (line {rows[i].line}) "
                f"reads as {parsed[chosen][0][i]:g} with {_describe(chosen)} and as {parsed[other][0][i]:g} with "
                f"{_describe(other)}; set csv_decimal ('.' or ',') and csv_thousands ('none', '.' or ',') in the "
                "price source config"
            )
    values, decimals = parsed[chosen]
    return values, decimals, chosen


# ---------------------------------------------------------------- a torn last line


def _check_not_torn(path: Path, rows: list[_Row], date_index: int, decimals: np.ndarray, decimal: str) -> None:
    """The last row of a file without a final line break must look like the others: as many decimals as most
    rows and a date as long as most dates; else it was probably cut off (``694.7`` from ``694.77``)."""
    last = rows[-1]
    usual_decimals = Counter(decimals[:-1].tolist()).most_common(1)[0][0]
    usual_date = Counter(len(r.fields[date_index]) for r in rows[:-1]).most_common(1)[0][0]
    problems = []
    if decimals[-1] < usual_decimals:
        problems.append(
            f"its price has {decimals[-1]} decimal(s) after {decimal!r} where most rows have {usual_decimals}"
        )
    if len(last.fields[date_index]) < usual_date:
        problems.append(f"its date is {len(last.fields[date_index])} characters long where most are {usual_date}")
    if problems:
        raise PriceSourceError(
            f"{path}: line {last.line} ({last.text.strip()!r}) looks cut off: the file does not end with a line "
            f"break and {' and '.join(problems)}; complete or remove the line"
        )
