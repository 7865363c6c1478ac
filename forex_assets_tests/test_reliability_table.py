"""The README's reliability table is what the code says: every bad input and fault of
``reliability_cases.CASES`` is provoked for real, and its message must name what was wrong and where."""

import functools

import pytest

from forex_assets_tests.reliability_cases import CASES, observe, readme_table, render_table


@functools.cache
def _messages() -> tuple[str, ...]:
    return tuple(observe(case) for case in CASES)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.provoke.__name__ for c in CASES])
def test_each_case_gives_a_message_that_names_what_and_where(index):
    case, message = CASES[index], _messages()[index]
    assert "Traceback" not in message and "(loaded)" not in message and "(no error)" not in message
    if case.outcome == "loaded as written":
        assert message == "loaded: 878.01, 1012.50"  # the Chilean export, read right (not 87801 / 101250)
    else:
        named = ("<dir>", "--csv-path", "7d")  # the file, the missing option, or the horizon of the store
        assert any(name in message for name in named)
        assert len(message) > 40


def test_the_readme_table_is_the_one_the_cases_produce():
    expected = render_table(list(_messages()))
    assert readme_table() == expected, (
        "README.md's reliability table is out of date: run "
        "`.venv/bin/python -m forex_assets_tests.reliability_cases --write-readme`"
    )
