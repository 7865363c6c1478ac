"""The README's reliability table is what the real commands do: every bad input and fault of
``reliability_cases.CASES`` is provoked for real and its command run in a subprocess; each case must give the
outcome it expects (exit status, runs recorded, what it wrote or nothing, a message naming what and where), and
the table rendered from the observed outcomes must be README.md's."""

import functools

import pytest

from forex_assets_tests.reliability_cases import CASES, Outcome, readme_table, render_table, run_case


@functools.cache
def _outcome(index: int) -> Outcome:
    return run_case(CASES[index])


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.provoke.__name__ for c in CASES])
def test_each_case_has_the_outcome_it_expects(index):
    case, outcome = CASES[index], _outcome(index)
    expect = case.expect
    shown = f"{case.what}\nhappens: {outcome.happens}\nmessage: {outcome.message}\n{outcome.output}"
    if outcome.output.startswith("$ forex-assets"):  # (`dagster asset materialize` logs its steps' tracebacks)
        assert "Traceback" not in outcome.output, shown
    assert "Traceback" not in outcome.message and not outcome.message.startswith("(no "), shown
    assert outcome.exit_code == expect.exit_code, shown
    assert outcome.runs == tuple(sorted(expect.runs)), shown
    assert outcome.writes == tuple(sorted(expect.writes)), shown
    for name in expect.names:
        assert name in outcome.message, f"{name!r} not in the message\n{shown}"


def test_the_readme_table_is_the_one_the_cases_produce():
    expected = render_table([_outcome(i) for i in range(len(CASES))])
    assert readme_table() == expected, (
        "README.md's reliability table is out of date: run "
        "`.venv/bin/python -m forex_assets_tests.reliability_cases --write-readme`"
    )
