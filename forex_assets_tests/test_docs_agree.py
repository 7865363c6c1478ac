"""README.md and docs/*.md say what the code does; these tests fail the day they drift apart.

* The tables rendered from the code (``docs_blocks.BLOCKS``: every policy default, the drift severity rules,
  the approval checks as the UI describes them, the rollback rules, the steps of the daily cycle) are the
  code's; ``python -m forex_assets_tests.docs_blocks --write`` rewrites them.
* Every threshold the docs quote as ``Class.field = value`` (or ``field = value``) is the ``PolicySettings``
  default, every policy key they name exists, the "default" column of those rows quotes only those values,
  and each number kept in prose (:data:`CLAIMS`) is rendered from the defaults it states.
* The approval checks the docs list are ``CRITERIA_NAMES``, and every count of checks or criteria is theirs.
* Every ``forex-assets`` command and option they name exists, and every command is in the README; every
  ``make`` target they name is in the Makefile, and every documented target is in the README.
* The README quotes no test count (it said 210 while 823 ran): it says how to ask pytest instead.
* Every repository path and link they name exists; every Dagster job, sensor, schedule, asset and resource they
  name is defined; every code name in backticks appears in the code; the package-layout table's modules exist.
* The architecture picture shows every step of ``CYCLE`` with the definitions and core functions carrying it.

The CHANGELOG is history (it names what was removed) and is not checked.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from enum import Enum
from pathlib import Path

import click
import pytest

from forex_assets.core.cycle import CYCLE
from forex_assets.core.monitoring.schedule import DAILY_MONITORING_CRON, WEEKLY_OPTIMIZATION_CRON
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.recalibration.search_space import load_search_space, search_space_path
from forex_assets.core.recalibration.validation import CRITERIA_NAMES
from forex_assets.core.working_area import PROJECT_ROOT, SEED_CONFIGS_DIR
from forex_assets_tests import docs_blocks
from forex_assets_tests.docs_blocks import ARCHITECTURE, DECISIONS, DOCS, PACKAGE, README, section_classes

CHECKED = [README, *sorted(DOCS.glob("*.md"))]
P = PolicySettings()

CODE_BLOCK = re.compile(r"^```.*?^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}


def _relative(path: Path) -> str:
    return path.relative_to(PROJECT_ROOT).as_posix()


@functools.cache
def _text(path: Path) -> str:
    return path.read_text()


def _prose(text: str) -> str:
    """``text`` without its fenced code blocks."""
    return CODE_BLOCK.sub("", text)


def _code_blocks(text: str) -> list[str]:
    return CODE_BLOCK.findall(text)


def _spans(path: Path) -> list[str]:
    """The inline code spans of ``path``'s prose (code blocks left out)."""
    return SPAN.findall(_prose(_text(path)))


def _lines(path: Path):
    """(line number, line) of ``path``."""
    return enumerate(_text(path).splitlines(), 1)


def _tables(path: Path) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table of ``path``: (header cells, rows of cells)."""
    tables, lines = [], _text(path).splitlines()
    i = 0
    while i < len(lines) - 1:
        if lines[i].startswith("|") and re.match(r"^\|[-| :]+\|$", lines[i + 1]):
            header = _cells(lines[i])
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            tables.append((header, rows))
        else:
            i += 1
    return tables


def _cells(line: str) -> list[str]:
    # a `|` inside backticks or escaped (\|) does not end a cell
    cells, current, in_code = [], "", False
    for previous, char in itertools.zip_longest(" " + line, line, fillvalue=""):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code and previous != "\\":
            cells.append(current.strip())
            current = ""
        else:
            current += char
    return cells[1:]


# ----------------------------------------------------------------------------- blocks rendered from the code


def test_the_blocks_rendered_from_the_code_are_current():
    stale = docs_blocks.stale_blocks()
    assert not stale, (
        f"these blocks differ from what the code renders: {', '.join(stale)}; "
        "run `.venv/bin/python -m forex_assets_tests.docs_blocks --write`"
    )


def test_the_defaults_table_names_every_policy_field():
    table = docs_blocks.block_in(_text(DECISIONS), "policy-defaults", DECISIONS)
    for section, cls in section_classes().items():
        if section == "drift_per_horizon":
            assert "`drift_per_horizon`" in table
            continue
        for field in dataclasses.fields(cls):
            assert f"`{section}.{field.name}`" in table, f"{section}.{field.name} missing from the defaults table"


# ----------------------------------------------------------------------------- thresholds quoted in the docs

ASSIGNMENT = re.compile(r"(?:\b(\w+)\.)?\.?\b(\w+) = (\"[^\"]*\"|[\w.+-]+)")


@functools.cache
def _settings_classes() -> dict[str, type]:
    """Class name and policy file section -> the dataclass of that section."""
    classes = {}
    for section, cls in section_classes().items():
        classes[section] = classes[cls.__name__] = cls
    return classes


@functools.cache
def _defaults() -> dict[type, object]:
    """Dataclass -> its instance in ``PolicySettings()`` (the levers, None there: the dataclass's defaults)."""
    found: dict[type, object] = {}
    for section, cls in section_classes().items():  # drift before drift_per_horizon: drift's instance is kept
        value = getattr(P, section)
        found.setdefault(cls, value if dataclasses.is_dataclass(value) else cls())
    return found


def _default_of(cls: type, field: str):
    return getattr(_defaults()[cls], field)


@functools.cache
def _field_owners() -> dict[str, list[type]]:
    owners: dict[str, list[type]] = {}
    for cls in set(_settings_classes().values()):
        for field in dataclasses.fields(cls):
            owners.setdefault(field.name, []).append(cls)
    return owners


def _same(quoted: str, default) -> bool:
    if isinstance(default, Enum):
        return quoted.split(".")[-1].strip('"') == default.name
    if isinstance(default, bool):
        return quoted.lower() == str(default).lower()
    if isinstance(default, str):
        return quoted.strip('"') == default
    try:
        return float(quoted) == float(default)
    except ValueError:
        return False


def _assignments(path: Path):
    """(class, field, quoted value, span) of every ``[Class.]field = value`` in a code span of ``path``
    that names a policy setting."""
    for span in _spans(path):
        for qualifier, field, value in ASSIGNMENT.findall(span):
            if qualifier in _settings_classes():
                cls = _settings_classes()[qualifier]
                assert field in {f.name for f in dataclasses.fields(cls)}, f"{_relative(path)}: `{span}`: no such field"
            elif len(_field_owners().get(field, [])) == 1 and not qualifier:
                cls = _field_owners()[field][0]
            else:
                continue
            yield cls, field, value, span


def test_every_quoted_setting_is_the_policy_default():
    checked, wrong = 0, []
    for path in CHECKED:
        for cls, field, value, span in _assignments(path):
            checked += 1
            if not _same(value, _default_of(cls, field)):
                wrong.append(f"{_relative(path)}: `{span}` (the default is {_default_of(cls, field)!r})")
    assert not wrong, "quoted settings that are not the defaults:\n" + "\n".join(wrong)
    assert checked >= 30, f"only {checked} quoted settings found: did the pattern stop matching the docs?"


def test_every_policy_key_named_exists():
    keys = re.compile(r"^(triggers|drift|performance|approval|rollback|levers)\.(?!(?:py|json|md)$)(\w+)$")
    named, unknown = 0, []
    for path in CHECKED:
        for span in _spans(path):
            found = keys.match(span) or re.match(r"^([A-Z]\w+)\.(\w+)$", span)
            if not found or found.group(1) not in _settings_classes():
                continue
            named += 1
            if found.group(2) not in {f.name for f in dataclasses.fields(_settings_classes()[found.group(1)])}:
                unknown.append(f"{_relative(path)}: `{span}`")
    assert not unknown, "policy keys or fields that do not exist:\n" + "\n".join(unknown)
    assert named >= 10


DEFAULT_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]*\d)(?!d\b)")


def test_the_default_column_quotes_the_values_of_its_row():
    """In a table with a "default" column, a row that names its settings as ``field = value`` quotes no other
    number as its default."""
    rows_checked, wrong = 0, []
    for path in CHECKED:
        for header, rows in _tables(path):
            if "default" not in header:
                continue
            column = header.index("default")
            for row in rows:
                values = set()
                for cell in row:
                    for qualifier, field, value in ASSIGNMENT.findall(" ".join(SPAN.findall(cell))):
                        owner = _settings_classes().get(qualifier) or (_field_owners().get(field) or [None])[0]
                        if owner is not None and field in {f.name for f in dataclasses.fields(owner)}:
                            values.add(float(value) if re.fullmatch(r"[\d.]+", value) else value)
                if not values or column >= len(row):
                    continue
                rows_checked += 1
                for number in DEFAULT_NUMBER.findall(SPAN.sub("", row[column])):
                    if float(number) not in values:
                        wrong.append(
                            f"{_relative(path)}: '{row[column]}' quotes {number}, not among {sorted(map(str, values))}"
                        )
    assert not wrong, "\n".join(wrong)
    assert rows_checked >= 15


def _space(horizon: str):
    return load_search_space(search_space_path(SEED_CONFIGS_DIR, horizon))


def _spacing() -> str:
    return (
        f"{_space('7d').origin_spacing}, {_space('15d').origin_spacing}, {_space('30d').origin_spacing} and "
        f"{_space('90d').origin_spacing} business days apart"
    )


#: candidates the schedule alone validates in a horizon-year: the Bonferroni divisor of the significance level
TESTS_A_YEAR = round(365 / P.triggers.schedule_days)

# (file, sentence rendered from the code): each number the docs keep in prose, next to what it stands for.
# Whitespace (line breaks) does not count. Edit the sentence here when the prose changes.
CLAIMS: list[tuple[Path, str]] = [
    # triggers
    (
        README,
        f"the deployed version's latest {P.performance.random_walk_test_origins} matured forecasts "
        f"significantly worse than the random walk's, one-sided Diebold-Mariano p < {P.triggers.performance_p_value:g}",
    ),
    (README, f"degradation above {P.triggers.performance_threshold_pct:g} %"),
    (
        README,
        f"schedule (no optimization for {P.triggers.schedule_days} days); drift and schedule wait "
        f"{P.triggers.min_days_between_optimizations} days after an optimization, a performance trigger may override "
        f"that once every {P.triggers.performance_override_min_days} days",
    ),
    (README, f"horizons not optimized for {P.triggers.schedule_days} days"),
    (
        DECISIONS,
        f"the deployed version's latest {P.performance.random_walk_test_origins} matured forecasts "
        f"significantly worse than the random walk's (one-sided Diebold-Mariano p < {P.triggers.performance_p_value:g}",
    ),
    (DECISIONS, f"While fewer than {P.performance.min_live_forecasts} forecasts have matured, a backtest stands in"),
    # performance
    (README, f"the forecasts whose targets matured in the last {P.performance.window_days} days"),
    (
        README,
        f"With fewer than {P.performance.min_live_forecasts} matured forecasts it scores a rolling-origin "
        f"backtest of the deployed configuration over the latest {P.performance.backtest_origins} origins",
    ),
    # drift
    (
        README,
        f"baseline = the {P.drift.baseline_window} returns before the test window, test = the latest "
        f"{P.drift.test_window}",
    ),
    (README, f"PSI on {P.drift.psi_bins} baseline-quantile bins"),
    (
        README,
        f"Page-Hinkley test on squared standardized returns (threshold {P.drift.fast_threshold:g}, delta "
        f"{P.drift.fast_delta:g})",
    ),
    (
        README,
        f"HIGH: KS p < {P.drift.high_ks_p:g} and KS > {P.drift.high_ks_statistic:g}, or volatility ratio above "
        f"{P.drift.high_vol_ratio:g} / below {1 / P.drift.high_vol_ratio:g}. MEDIUM: KS p < {P.drift.medium_ks_p:g} "
        f"and KS > {P.drift.medium_ks_statistic:g} (ADR), corrected PSI > {P.drift.medium_psi:g}, volatility ratio "
        f"above {P.drift.medium_vol_ratio:g} / below {1 / P.drift.medium_vol_ratio:.2f}, or a Page-Hinkley alarm in "
        f"the last {P.drift.fast_recent} observations. LOW: KS p < {P.drift.low_ks_p:g}, PSI > {P.drift.low_psi:g} "
        f"or ratio beyond {P.drift.low_vol_ratio:g}",
    ),
    (
        DECISIONS,
        f"{P.drift.baseline_window} / {P.drift.test_window} (the baseline is the {P.drift.baseline_window} returns "
        f"before the latest {P.drift.test_window})",
    ),
    # approval
    (
        README,
        f"its level is {P.approval.max_improvement_p_value:g} because the policy tests about {TESTS_A_YEAR} "
        f"candidates a horizon-year (0.05 / {TESTS_A_YEAR}, Bonferroni)",
    ),
    (README, f"no candidate gains {P.approval.min_rmse_improvement_pct:g} % RMSE with a significant improvement"),
    (
        DECISIONS,
        f"RMSE change <= -{P.approval.min_rmse_improvement_pct:g} % **or** MAPE change <= "
        f"-{P.approval.min_mape_improvement_pct:g} %",
    ),
    (DECISIONS, f"error std candidate / deployed <= {1 + P.approval.max_error_std_growth_pct / 100:.2f}"),
    (DECISIONS, f"seconds per forecast candidate / deployed <= {P.approval.max_inference_time_ratio:g}"),
    (DECISIONS, f"**or** at most {P.approval.max_inference_excess_seconds:g} s slower, the rollback rule's floor"),
    (DECISIONS, f"95 % interval coverage >= {P.approval.min_coverage_95:.2f}"),
    (
        DECISIONS,
        f"abs(bias) < {P.approval.max_abs_bias_clp:g} CLP, **or** abs(bias) no more than "
        f"{P.approval.max_bias_growth_pct:g} % above the deployed configuration's",
    ),
    (DECISIONS, f"that the candidate's squared path error is lower <= {P.approval.max_improvement_p_value:g}"),
    (DECISIONS, f"{P.approval.max_improvement_p_value:g} = 0.05 / {TESTS_A_YEAR}: the schedule alone tests about "),
    (DECISIONS, f"The level is therefore 0.05 / {TESTS_A_YEAR} = {P.approval.max_improvement_p_value:g}"),
    (DECISIONS, f"inference time also passes when at most {P.approval.max_inference_excess_seconds:g} s slower"),
    (DECISIONS, f"bias also passes when no more than {P.approval.max_bias_growth_pct:g} % above the deployed"),
    (DECISIONS, f"`improvement_significant`: one-sided Diebold-Mariano p <= {P.approval.max_improvement_p_value:g}"),
    (
        DECISIONS,
        f"split into the schedule trigger ({P.triggers.schedule_days} days) and the guard "
        f"({P.triggers.min_days_between_optimizations} days); a performance trigger may override the guard, at most "
        f"once every {P.triggers.performance_override_min_days} days",
    ),
    # rollback
    (
        DECISIONS,
        f"RMSE only after {P.rollback.min_matured_forecasts} matured forecasts, and judged relative to the random "
        f"walk's on the same targets (skill > {P.rollback.rmse_ratio:g}x the baseline's",
    ),
    (
        DECISIONS,
        f"inference time only when {P.rollback.min_inference_excess_seconds:g} s above the baseline on each of the "
        f"latest {P.rollback.slow_forecasts} forecasts",
    ),
    (
        DECISIONS,
        f"| {P.rollback.inference_time_ratio:g}x, {P.rollback.min_inference_excess_seconds:g} s, "
        f"{P.rollback.slow_forecasts} forecasts |",
    ),
    # windows (the search-space files)
    (
        README,
        f"the validation window is the {_space('7d').validation_origins} most recent origins whose h targets "
        f"are all observed, spaced {_spacing()}",
    ),
    (README, f"search window is the {_space('7d').search_origins} origins (same spacing)"),
    (
        README,
        f"Validation windows hold {_space('7d').validation_origins} origins spaced {_space('7d').origin_spacing}, "
        f"{_space('15d').origin_spacing}, {_space('30d').origin_spacing} and {_space('90d').origin_spacing}",
    ),
    (DECISIONS, f"validation on the latest {_space('7d').validation_origins} origins, spaced {_spacing()}"),
    (DECISIONS, f"search on {_space('7d').search_origins} origins (same spacing)"),
    (
        DECISIONS,
        f"| {_space('7d').search_origins} / {_space('7d').validation_origins}, spaced "
        f"{_space('7d').origin_spacing} (7d), {_space('15d').origin_spacing} (15d)",
    ),
    (DECISIONS, f"| trials one search may run | {_space('7d').trial_budget} (every shipped file) |"),
]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_numbers_kept_in_prose_are_the_code_values():
    missing = [
        f"{_relative(path)}: {sentence!r}" for path, sentence in CLAIMS if _flat(sentence) not in _flat(_text(path))
    ]
    assert not missing, (
        "these sentences, rendered from the code's values, are not in the docs (a value or the wording changed; "
        "fix the doc, or the sentence in CLAIMS when only the wording changed):\n" + "\n".join(missing)
    )


def test_every_shipped_search_space_has_the_windows_the_docs_quote():
    spaces = [_space(h) for h in ("7d", "15d", "30d", "90d")]
    assert {s.validation_origins for s in spaces} == {spaces[0].validation_origins}
    assert {s.search_origins for s in spaces} == {spaces[0].search_origins}
    assert {s.trial_budget for s in spaces} == {spaces[0].trial_budget}


def _cron_time(cron: str) -> str:
    minute, hour = cron.split()[:2]
    return f"{int(hour):02d}:{int(minute):02d}"


def test_schedule_times_and_sensor_intervals_are_the_definitions():
    from forex_assets.definitions import defs

    times = {
        "daily_monitoring_schedule": _cron_time(DAILY_MONITORING_CRON),
        "weekly_optimization_schedule": _cron_time(WEEKLY_OPTIMIZATION_CRON),
    }
    intervals = {s.name: s.minimum_interval_seconds for s in defs.sensors or []}
    wrong, seen = [], 0
    for path in CHECKED:
        for number, line in _lines(path):
            named = [name for name in times if name in line]
            if len(named) == 1:
                for quoted in re.findall(r"\b(\d\d:\d\d)\b", line):
                    seen += 1
                    if quoted != times[named[0]]:
                        wrong.append(
                            f"{_relative(path)}:{number}: {named[0]} at {quoted}, the cron says {times[named[0]]}"
                        )
            sensors = [name for name in intervals if re.search(rf"\b{name}\b", line)]
            if len(sensors) != 1 or intervals[sensors[0]] is None:
                continue
            sensor = sensors[0]
            for every in re.findall(r"\bevery (\d+) s\b", line):
                seen += 1
                if int(every) != intervals[sensor]:
                    wrong.append(f"{_relative(path)}:{number}: {sensor} every {every} s, defined {intervals[sensor]} s")
    assert not wrong, "\n".join(wrong)
    assert seen >= 5


# ----------------------------------------------------------------------------- the approval checks


def test_the_check_table_lists_every_criterion_in_order():
    tables = [rows for header, rows in _tables(DECISIONS) if header and header[0] == "check"]
    assert tables, "docs/decisions.md has no table of the approval checks"
    for rows in tables:
        assert [row[0].strip("`") for row in rows] == list(CRITERIA_NAMES)


LISTING = re.compile(r"(\d+|\w+) blocking (?:asset )?checks?[^:\n]*:(.*?)(?:\n\s*\n|$)", re.S)


def test_every_listing_of_the_checks_names_all_of_them():
    listings = 0
    for path in CHECKED:
        for count, listed in LISTING.findall(_text(path)):
            names = set(re.findall(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b", listed)) & set(CRITERIA_NAMES)
            if len(names) < 2:  # a sentence about one check, not a listing
                continue
            listings += 1
            assert names == set(CRITERIA_NAMES), f"{_relative(path)}: lists {sorted(names)}"
            assert NUMBER_WORDS.get(count, count) in (len(CRITERIA_NAMES), str(len(CRITERIA_NAMES)))
    assert listings >= 2  # the README's picture and the architecture's asset graph


COUNT = re.compile(
    r"\b(other |the same |all )?(\d+|one|two|three|four|five|six|seven|eight)\s+"
    r"(?:blocking\s+|approval\s+|asset\s+|gating\s+)*(checks?|criteria|criterion)\b",
    re.I,
)


def _about_the_project(path: Path) -> str:
    """``path``'s text without what describes the original decision record (its column of the table of
    differences, and lines about ``policies/adr.json`` or the record's own rules)."""
    lines = []
    for line in _text(path).splitlines():
        if "adr.json" in line or "decision record's original" in line:
            continue
        lines.append(line)
    text = "\n".join(lines)
    for header, rows in _tables(path):
        if len(header) > 1 and "decision record" in header[1]:
            for row in rows:
                text = text.replace(f"| {row[1]} |", "|  |")
    return text


def test_every_count_of_checks_is_the_number_of_criteria():
    counted, wrong = 0, []
    for path in CHECKED:
        for qualifier, count, _ in COUNT.findall(_about_the_project(path)):
            number = NUMBER_WORDS.get(count.lower()) or int(count)
            expected = len(CRITERIA_NAMES) - 1 if qualifier.strip().lower() == "other" else len(CRITERIA_NAMES)
            counted += 1
            if number != expected:
                wrong.append(f"{_relative(path)}: '{qualifier}{count} ... checks/criteria' (there are {expected})")
    assert not wrong, "\n".join(wrong)
    assert counted >= 5


def test_the_decision_record_column_still_says_five_criteria():
    """The table of differences keeps the record's own count (five), beside the project's (six): the exemption
    above covers exactly that column."""
    rows = [
        row
        for header, rows in _tables(DECISIONS)
        if len(header) > 1 and "decision record" in header[1]
        for row in rows
        if row[0] == "approval"
    ]
    assert rows and "five" in rows[0][1] and "six" in rows[0][2]


# ----------------------------------------------------------------------------- commands and make targets

MENTION = re.compile(r"forex-assets (\S+)")


@functools.cache
def _commands() -> dict[str, set[str]]:
    """Command -> its options, from the click group itself."""
    from forex_assets.cli.main import cli

    ctx = click.Context(cli)
    return {
        name: {option for param in cli.get_command(ctx, name).params for option in param.opts} | {"--help", "-h"}
        for name in cli.list_commands(ctx)
    }


def _command_mentions(path: Path):
    """(line number, command, options) of every ``forex-assets COMMAND [--options]`` of ``path``; the options are
    those up to the end of its code span (or of the code line)."""
    for number, line in _lines(path):
        for found in MENTION.finditer(line):
            command = found.group(1).strip("`.,;:)")
            if command in ("", "..."):  # "forex-assets ...": any command
                continue
            rest = line[found.end() :]
            if line[: found.start()].count("`") % 2 == 1:  # inside a code span: up to its end
                rest = rest.split("`", 1)[0]
            yield number, command, set(re.findall(r"(?<![\w-])--[a-z][\w-]*", rest))


def test_every_command_and_option_named_exists():
    commands, wrong, mentions = _commands(), [], 0
    for path in CHECKED:
        for number, command, options in _command_mentions(path):
            if command.startswith("-"):
                assert command.rstrip("`") in {"--help", "-h"}, f"{_relative(path)}:{number}: forex-assets {command}"
                continue
            mentions += 1
            if command not in commands:
                wrong.append(f"{_relative(path)}:{number}: `forex-assets {command}`: no such command")
            elif options - commands[command]:
                wrong.append(
                    f"{_relative(path)}:{number}: forex-assets {command} has no {sorted(options - commands[command])}"
                )
    assert not wrong, "\n".join(wrong)
    assert mentions >= 20


def test_every_command_is_in_the_readme():
    named = {command for _, command, _ in _command_mentions(README)}
    assert set(_commands()) <= named, f"commands the README never names: {sorted(set(_commands()) - named)}"


@functools.cache
def _make_targets() -> tuple[set[str], set[str]]:
    """(every target of the Makefile, the targets it documents with a ``## make TARGET`` line)."""
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):(?!=)", makefile, re.M))
    documented = set(re.findall(r"^## make ([a-z][\w-]*)", makefile, re.M))
    return targets, documented


def _make_mentions(path: Path) -> set[str]:
    """The targets of every ``make TARGET`` in a code span or a code block line of ``path``."""
    text = _text(path)
    pieces = SPAN.findall(_prose(text)) + [line for block in _code_blocks(text) for line in block.splitlines()]
    return {target for piece in pieces for target in re.findall(r"(?<![\w/.-])make ([a-z][\w-]*)", piece)}


def test_every_make_target_named_exists_and_every_documented_one_is_named():
    targets, documented = _make_targets()
    for path in CHECKED:
        unknown = _make_mentions(path) - targets
        assert not unknown, f"{_relative(path)} names make targets the Makefile lacks: {sorted(unknown)}"
    assert documented <= _make_mentions(README), f"not in the README: {sorted(documented - _make_mentions(README))}"


def test_the_readme_quotes_no_test_count_and_says_how_to_count():
    for path in CHECKED:
        counts = re.findall(r"\b\d[\d,]* (?:tests|test cases)\b", _text(path))
        assert not counts, f"{_relative(path)} quotes a test count ({counts}): it drifts with every test added"
    assert "pytest --collect-only -q" in _text(README)


# ----------------------------------------------------------------------------- paths, links and names

PATH_ROOTS = (
    "forex_assets/",
    "forex_assets_tests/",
    "bench/",
    "scripts/",
    "configs/",
    "policies/",
    "deploy/",
    "docs/",
    ".ci/",
)
IN_PACKAGE = ("core/", "defs/", "cli/", "templates/")


def _expand(path: str) -> list[str]:
    """``a_{7d,15d}.json`` -> both; ``chronos_{h}.json`` -> one per horizon."""
    found = re.search(r"\{([^}]*)\}", path)
    if not found:
        return [path]
    choices = found.group(1).split(",") if "," in found.group(1) else ["7d", "15d", "30d", "90d"]
    return [p for c in choices for p in _expand(path[: found.start()] + c.strip() + path[found.end() :])]


def _repository_paths(path: Path) -> set[str]:
    """The repository paths ``path`` names in code spans, relative to the repository."""
    named = set()
    for span in _spans(path):
        candidate = span.split(" ")[0].rstrip(",;:")
        if "<" in candidate or "..." in candidate or candidate.startswith(("$", "-")):
            continue
        if candidate.startswith(IN_PACKAGE):
            candidate = "forex_assets/" + candidate
        if candidate.startswith(PATH_ROOTS) or re.fullmatch(r"\w[\w.-]*\.(md|toml|yaml|yml|lock)", candidate):
            named |= set(_expand(candidate))
    return named


def test_every_path_named_exists():
    missing, named = [], 0
    for path in CHECKED:
        for relative in sorted(_repository_paths(path)):
            named += 1
            if "*" in relative:
                exists = any(PROJECT_ROOT.glob(relative))
            else:
                exists = (PROJECT_ROOT / relative).exists() or (path.parent / relative).exists()
            if not exists:
                missing.append(f"{_relative(path)}: `{relative}`")
    assert not missing, "paths the docs name that do not exist:\n" + "\n".join(missing)
    assert named >= 60


def test_every_link_resolves():
    broken = []
    for path in CHECKED:
        for target in re.findall(r"\]\(([^)\s]+)\)", _prose(_text(path))):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                broken.append(f"{_relative(path)}: ({target})")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{_relative(path)}: ({target}): no heading with that anchor")
            if "shared" in Path(file).parts:
                broken.append(f"{_relative(path)}: ({target}): the docs stand alone")
    assert not broken, "\n".join(broken)


@functools.cache
def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of ``path``'s headings: lower case, punctuation dropped, spaces as dashes."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", _prose(path.read_text()), re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors


@functools.cache
def _dagster_names() -> dict[str, set[str]]:
    from forex_assets.definitions import defs
    from forex_assets.defs.resources import code_location_resources

    repository = defs.get_repository_def()
    return {
        "job": {job.name for job in repository.get_all_jobs()},
        "sensor": {sensor.name for sensor in repository.sensor_defs},
        "schedule": {schedule.name for schedule in repository.schedule_defs},
        "asset": {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()},
        "resource": set(code_location_resources()),
    }


def test_every_dagster_definition_named_exists():
    names, wrong = _dagster_names(), []
    implicit = {"__ASSET_JOB"}
    for path in CHECKED:
        for span in _spans(path):
            for kind in ("job", "sensor", "schedule"):
                if re.fullmatch(rf"[a-z_]+_{kind}", span) and span not in names[kind] | implicit:
                    wrong.append(f"{_relative(path)}: `{span}`: no such {kind}")
            asset = re.fullmatch(r"([a-z_]+)\[h\]", span)
            if asset and asset.group(1) not in names["asset"]:
                wrong.append(f"{_relative(path)}: `{span}`: no such asset")
        prose = _prose(_text(path))
        for resource in re.findall(r"resource `(\w+)`|`(\w+)` resource", prose):
            name = resource[0] or resource[1]
            if name not in names["resource"]:
                wrong.append(f"{_relative(path)}: resource `{name}`: the code location has {sorted(names['resource'])}")
    assert not wrong, "\n".join(wrong)


SOURCE_GLOBS = (
    "forex_assets/**/*.py",
    "forex_assets/templates/*",
    "configs/*.json",
    "policies/*.json",
    "deploy/*",
    "bench/*.py",
    "scripts/*.py",
    "dagster.yaml",
    "workspace.yaml",
    "Makefile",
    "pyproject.toml",
    "Dockerfile",
    "docker-compose.yml",
    ".env.example",
)
# names the docs quote from other projects (Dagster, Optuna, pandas, Helm, SQLite, HTTP)
FOREIGN_NAMES = {
    "GridSampler",
    "RDBStorage",
    "JournalStorage",
    "TPESampler",
    "DockerRunLauncher",
    "K8sRunLauncher",
    "QueuedRunCoordinator",
    "PreviewWarning",
    "RetryPolicy",
    "BaseChronosPipeline",
    "from_pretrained",
    "RetryRequested",
    "Retry_After",
    "dagster_k8s",
    "max_concurrent_runs",
    "PageHinkley",
    "dagsterApiGrpcArgs",
    "includeConfigInLaunchedRuns",
    "schema_translate_map",
    "pg_ctl",
    "pg_dump",
}


@functools.cache
def _code_words() -> frozenset[str]:
    words: set[str] = set()
    for pattern in SOURCE_GLOBS:
        for file in PROJECT_ROOT.glob(pattern):
            if file.is_file() and "__pycache__" not in file.parts:
                words |= set(re.findall(r"\w+", file.read_text(errors="replace")))
    return frozenset(words | FOREIGN_NAMES)


def _code_names(text: str) -> set[str]:
    """Identifiers that read as code names: with an underscore, or in CamelCase (a word that starts with a digit,
    as a version id or ``30d_...``, is data)."""
    return {
        word
        for word in re.findall(r"\w+", text)
        if not word[0].isdigit()
        and (
            ("_" in word.strip("_") and word.lower() == word)
            or re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+", word)
        )
    }


def _in_code(name: str) -> bool:
    """``name`` is a word of the code, or (``prefix_``, from a ``prefix_*`` pattern) begins one."""
    if name in _code_words():
        return True
    return name.endswith("_") and any(word.startswith(name) for word in _code_words())


def _metadata_pattern(name: str) -> bool:
    """``degradation_skill_pct``: a key the code builds as ``f"degradation_{key}_pct"``."""
    return any(name.startswith(prefix) for prefix in _template_prefixes())


@functools.cache
def _template_prefixes() -> frozenset[str]:
    """The literal prefixes of f-string keys in the package (``f"degradation_{key}_pct"`` -> ``degradation_``)."""
    prefixes = set()
    for file in PACKAGE.glob("**/*.py"):
        prefixes |= set(re.findall(r"f\"([a-z][a-z0-9_]*_)\{", file.read_text()))
    return frozenset(prefixes)


def test_every_code_name_in_backticks_is_in_the_code():
    unknown = []
    for path in CHECKED:
        for span in _spans(path):
            if span.startswith(("$", "-", "http")) or " " in span.strip() and "=" not in span and "(" not in span:
                continue
            if re.fullmatch(r"[\w./{}*-]+\.(?:py|json|md|ya?ml|toml|lock|sqlite|html|j2|jsonl|csv)", span):  # a path
                continue
            for name in sorted(_code_names(span)):
                if not _in_code(name) and not _metadata_pattern(name):
                    unknown.append(f"{_relative(path)}: `{span}` ({name})")
    assert not unknown, "code names the code does not have (renamed or removed?):\n" + "\n".join(sorted(set(unknown)))


def test_the_layout_table_names_modules_that_exist():
    layout = [rows for header, rows in _tables(ARCHITECTURE) if header[:2] == ["folder", "responsibility"]]
    assert layout, "docs/architecture.md has no package layout table"
    missing, checked = [], 0
    for row in layout[0]:
        folder = re.match(r"`([\w/]+/)`", row[0])
        if not folder:
            continue
        base = PACKAGE / folder.group(1).removeprefix("forex_assets/")
        for module in re.findall(r"`([\w.-]+(?:\.py|/))`", row[2]):
            checked += 1
            if not (base / module).exists():
                missing.append(f"{folder.group(1)}{module}")
    assert not missing, "modules the package layout names that do not exist: " + ", ".join(missing)
    assert checked >= 50


def test_every_module_of_defs_is_in_the_layout_table():
    table = _text(ARCHITECTURE)
    for module in sorted(PACKAGE.glob("defs/**/*.py")):
        if module.name != "__init__.py":
            assert f"`{module.name}`" in table, f"docs/architecture.md's layout never names {_relative(module)}"


# ----------------------------------------------------------------------------- the picture


def _picture() -> str:
    text = _text(ARCHITECTURE)
    section = text[text.index("## From `forex-assets run` to a deploy") :]
    return _code_blocks(section)[0]


def test_the_picture_shows_every_step_with_what_carries_it():
    picture = _picture()
    positions = []
    for index, step in enumerate(CYCLE, 1):
        found = re.search(rf"^ {index} {step.name}\b", picture, re.M)
        assert found, f"the picture lacks step {index} {step.name}"
        positions.append(found.start())
        for name in [*step.carriers, *(call.__name__ for call in step.calls)]:
            assert name in picture, f"the picture's step {step.name} does not name {name}"
    assert positions == sorted(positions)
    assert "forex-assets run" in picture and "deploy_from_report" in picture


def test_every_name_in_the_picture_is_in_the_code():
    unknown = {name for name in _code_names(_picture()) if not _in_code(name)}
    assert not unknown, f"names in the picture the code does not have: {sorted(unknown)}"


@pytest.mark.parametrize("path", CHECKED, ids=_relative)
def test_no_doc_names_a_resource_or_class_that_was_removed(path):
    """The settings resources issue 22 replaced by the ``policy`` resource (a direct check, beside the generic
    one above, because these names are the ones a reader would try)."""
    for removed in ("monitoring_policy", "approval_policy", "MonitoringPolicy", "ApprovalPolicy", "defs/resources.py"):
        assert removed not in _text(path), f"{_relative(path)} still names {removed}"
