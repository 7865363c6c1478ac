"""No Python traceback from any `forex-assets` command on bad input or a missing resource: every subcommand of
``forex_assets.cli.main.COMMANDS`` (a new one is covered as soon as it is listed there) is run as a real
subprocess of the virtualenv's ``forex-assets`` with bad arguments (derived from its own options: an unknown
option, a bad horizon or choice, a bad date, a missing required option, a CSV that does not exist, is a
directory, is empty or malformed, an output that cannot be written, a drift that is none, a policy file that
does not exist, a version that does not exist) and in bad environments (``DAGSTER_HOME`` pointing at nothing,
at a file or where nothing can be created; ``FOREX_STATE_DATABASE_URL`` malformed, unreachable or unwritable;
``FOREX_CONFIG_STORE_DIR`` at a file; ``FOREX_CONFIG_STORE_REMOTE`` at nothing).

The exit status each case expects follows the CLI's convention (forex_assets/cli/main.py, README "Operating"):

* **2**: bad input or a missing resource found before any work: one paragraph on stderr (no blank line, a few
  lines at most) whose last line starts ``forex-assets COMMAND:`` (a warning may come before it) and which names
  the offending value, path or variable; nothing on stdout, and nothing written: no file of the case's
  directory or the instance's working area created, changed or removed, no alert, decision, forecast or config
  store commit (a failed run recorded in the instance aside). Click's usage errors are said the same way
  (``LazyGroup`` in cli/main.py).
* **1**: `forex-assets run` only, when the bad input is met inside the cycle's Dagster runs (the CSV read by
  ``pair_prices``, the config store or the state database opened by ``forecast``): the run is recorded failed
  in the instance, where the UI shows it, and the message is in the summary (or ``pair_prices failed: ...``
  on stderr), one paragraph naming the file or value. Exit status 1 is what run's help documents for a failed
  cycle.
* **0 and a warning**: `status` and `history` with an unreachable ``FOREX_CONFIG_STORE_REMOTE`` answer from the
  local clone and say so in one paragraph naming the remote (the store's documented fallback for readers).

Each case runs on its own copy of one instance prepared by ``forex-assets run --no-recalibration --horizons 7d``
(once per session, :func:`forex_assets_tests.real_cli.prepared_instance`); a rollback's copy has a second 7d
version, so that only the bad input can stop it. Cost: a command that loads Dagster before it refuses takes
~6-9 s of CPU, so those commands get fewer cases (:data:`KINDS_TRIED`, :data:`CSV_FILES`), and an environment
that a command does not read, or that takes the same code as another case, is not tried on it (``None`` in
:data:`ENVIRONMENTS`, with the reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

from forex_assets.cli.main import COMMANDS, ISODate, cli
from forex_assets_tests.real_cli import ROOT, copy_instance, environment, invoke, observe, prepared_instance

MAX_LINES = 12
#: The commands that load Dagster before they refuse (~6-9 s a case) get fewer cases: `run` (its module imports
#: Dagster) one unknown option, one CSV and one policy file that do not exist (click's usage errors and the price
#: source options are the same code in every command); the four CSV problems are spread over `run`, `replay` and
#: `rollback` (one reader, PriceSource, behind them all), `replay --out` gets one unwritable place and `--source csv`
#: without `--csv-path` is tried where it is cheap (`rollback`). A new command gets every case.
KINDS_TRIED = {
    "run": {"unknown option", "csv", "policy"},
    "replay": {"unknown option", "bad choice", "bad date", "csv", "output", "drift", "policy", "pair", "pairs file"},
}
CSV_FILES = {
    "run": ("no_such_file.csv",),
    "replay": ("a_directory.csv", "empty.csv"),
    "rollback": ("no_such_file.csv", "malformed.csv"),
}
ALL_CSV_FILES = ("no_such_file.csv", "a_directory.csv", "empty.csv", "malformed.csv")
#: a command whose bad CSV is met inside a Dagster run (exit 1, see the module's docstring)
CSV_READ_IN_A_RUN = {"run"}
GOOD_ARGUMENTS: dict[str, list[str]] = {
    "run": ["--no-recalibration", "--horizons", "7d"],
    "status": [],
    "history": ["--horizon", "7d"],
    "rollback": ["--horizon", "7d"],
    "replay": ["--start", "2026-10-28", "--end", "2026-10-30", "--horizons", "7d", "--no-progress"],
    "forecasts": ["--horizon", "7d"],
}


@dataclass(frozen=True)
class Bad:
    """One bad invocation: ``argv`` (after ``forex-assets``; ``{d}`` is the case's directory), ``env``, the exit
    status it must give and what its message must name."""

    kind: str
    argv: list[str]
    exit_code: int = 2
    names: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None  # makes the files the case needs in its directory


def _files(d: Path) -> None:
    """The bad files the CSV and output cases point at."""
    (d / "a_directory.csv").mkdir()
    (d / "empty.csv").write_bytes(b"")
    (d / "malformed.csv").write_text("date,usdclp\n2024-01-02,878.01\n2024-01-03,abc\n")
    (d / "a_file").write_text("a file, not a directory\n")


def _option(param: click.Parameter) -> str:
    return max(param.opts, key=len)


def _good_value(param: click.Parameter) -> str:
    if isinstance(param.type, click.Choice):
        return "7d" if "7d" in param.type.choices else str(param.type.choices[0])
    return "7d"  # the required options are horizons (--horizon H)


def _required(command: click.Command, leaving_out: str | None = None) -> list[str]:
    argv = []
    for param in command.params:
        if isinstance(param, click.Option) and param.required and _option(param) != leaving_out:
            argv += [_option(param), _good_value(param)]
    return argv


def argument_cases(name: str, command: click.Command) -> list[Bad]:
    """The bad arguments of ``command``, from its own options."""
    required = _required(command)
    options = {_option(p): p for p in command.params if isinstance(p, click.Option) and not p.is_flag}
    in_a_run = name in CSV_READ_IN_A_RUN
    cases = [Bad("unknown option", [name, *required, "--no-such-option"], names=("--no-such-option",))]
    for option, param in options.items():
        if param.required:
            cases.append(Bad("missing option", [name, *_required(command, leaving_out=option)], names=(option,)))
        if option in ("--horizon", "--horizons"):
            cases.append(Bad("bad choice", [name, *_required(command, option), option, "5d"], names=("5d",)))
        elif isinstance(param.type, click.Choice):
            cases.append(Bad("bad choice", [name, *required, option, "no-such-choice"], names=("no-such-choice",)))
        elif isinstance(param.type, ISODate):
            cases.append(Bad("bad date", [name, *required, option, "2024-13-01"], names=("2024-13-01",)))
        elif option == "--csv-path":
            for file in CSV_FILES.get(name, ALL_CSV_FILES):
                argv = [name, *GOOD_ARGUMENTS.get(name, required), "--source", "csv", option, "{d}/" + file]
                cases.append(Bad("csv", argv, 1 if in_a_run else 2, names=("{d}/" + file,), prepare=_files))
            cases.append(Bad("csv without path", [name, *required, "--source", "csv"], names=("--csv-path",)))
        elif option in ("--out", "--output"):
            targets = (
                ["{d}/a_file/report"]
                if option == "--out"
                else ["{d}/nowhere/f.csv", "/dev/full", "{d}/a_directory.csv"]
            )
            for target in targets:
                argv = [name, *GOOD_ARGUMENTS.get(name, required), option, target]
                cases.append(Bad("output", argv, names=(target,), prepare=_files))
        elif option == "--inject-drift":
            for drift in ("not-a-drift", "2026-03-02:-2", "2026-03-02:0"):
                argv = [name, *GOOD_ARGUMENTS.get(name, required), option, drift, "--out", "{d}/out"]
                cases.append(Bad("drift", argv, names=(drift,)))
        elif option == "--policy":
            cases.append(
                Bad("policy", [name, *required, option, "{d}/no_such_policy.json"], names=("{d}/no_such_policy.json",))
            )
        elif option == "--pair":
            cases.append(Bad("pair", [name, *required, option, "USDXXX"], names=("USDXXX",)))
        elif option == "--pairs-file":
            missing = "{d}/no_such_pairs.json"
            cases.append(Bad("pairs file", [name, *required, option, missing], names=(missing,)))
        elif option == "--to":
            cases.append(
                Bad(
                    "version",
                    [name, *required, option, "20190101T000000Z-deadbeef"],
                    names=("20190101T000000Z-deadbeef",),
                )
            )
    if name in KINDS_TRIED:
        cases = [case for case in cases if case.kind in KINDS_TRIED[name]]
    return cases


URL_VARIABLE = "FOREX_STATE_DATABASE_URL"
#: environment case -> (the variables it sets, what the message must name); {d}: the case's directory. A state
#: database URL is named by its variable and its place (the URL may be shown with its driver added).
ENVIRONMENT_CASES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "DAGSTER_HOME at nothing": ({"DAGSTER_HOME": "{d}/no_such_home"}, ("{d}/no_such_home",)),
    "DAGSTER_HOME at a file": ({"DAGSTER_HOME": "{d}/a_file"}, ("{d}/a_file",)),
    "DAGSTER_HOME where nothing can be created": (
        {"DAGSTER_HOME": "/proc/forex_assets_home"},
        ("/proc/forex_assets_home",),
    ),
    "state database URL malformed": ({URL_VARIABLE: "not a url"}, (URL_VARIABLE, "not a url")),
    "state database unreachable": (
        {URL_VARIABLE: "postgresql://forex@127.0.0.1:1/forex"},
        (URL_VARIABLE, "127.0.0.1:1/forex"),
    ),
    "state database unwritable": ({URL_VARIABLE: "sqlite:////proc/state.db"}, (URL_VARIABLE, "/proc/state.db")),
    "config store directory a file": ({"FOREX_CONFIG_STORE_DIR": "{d}/a_file"}, ("{d}/a_file",)),
    "config store remote at nothing": (
        {"FOREX_CONFIG_STORE_REMOTE": "{d}/no_such_remote.git"},
        ("{d}/no_such_remote.git",),
    ),
}
REFUSED, IN_A_RUN, WARNED = 2, 1, 0
#: command -> environment case -> the exit status it gives (None: not tried, for the reason in the comment).
#: Every command of COMMANDS must be here (test_every_command_has_its_environment_expectations).
ENVIRONMENTS: dict[str, dict[str, int | None]] = {
    "run": {
        "DAGSTER_HOME at nothing": None,  # not bad: run makes a new instance there
        "DAGSTER_HOME at a file": REFUSED,
        "DAGSTER_HOME where nothing can be created": None,  # cost: the same check as "at a file"
        "state database URL malformed": IN_A_RUN,  # forecast opens the history inside the run
        "state database unreachable": None,  # cost: the same in-run failure as "malformed" (status tries it)
        "state database unwritable": None,  # idem (history tries it)
        "config store directory a file": None,  # cost: the same in-run failure (status, history, rollback try it)
        "config store remote at nothing": None,  # a documented fallback (the local clone), in a run
    },
    "status": {
        "DAGSTER_HOME at nothing": REFUSED,
        "DAGSTER_HOME at a file": REFUSED,
        "DAGSTER_HOME where nothing can be created": None,  # the same check as "at nothing" (history tries it)
        "state database URL malformed": REFUSED,
        "state database unreachable": REFUSED,
        "state database unwritable": None,  # cost: history tries it
        "config store directory a file": REFUSED,
        "config store remote at nothing": WARNED,
    },
    "history": {
        "DAGSTER_HOME at nothing": REFUSED,
        "DAGSTER_HOME at a file": REFUSED,
        "DAGSTER_HOME where nothing can be created": REFUSED,
        "state database URL malformed": None,  # cost: status tries it (the same logs are opened)
        "state database unreachable": None,  # idem
        "state database unwritable": REFUSED,
        "config store directory a file": REFUSED,
        "config store remote at nothing": WARNED,
    },
    "rollback": {
        "DAGSTER_HOME at nothing": REFUSED,
        "DAGSTER_HOME at a file": REFUSED,
        "DAGSTER_HOME where nothing can be created": REFUSED,
        "state database URL malformed": None,  # cost: a rollback job a case; "unreachable" is tried
        "state database unreachable": REFUSED,
        "state database unwritable": None,  # idem
        "config store directory a file": REFUSED,
        "config store remote at nothing": REFUSED,  # a rollback must reach the remote it publishes to
    },
    "replay": {  # a replay keeps its own state in its own directory: only the default --out is in DAGSTER_HOME
        "DAGSTER_HOME at nothing": None,  # not bad: the report goes to a new directory there
        "DAGSTER_HOME at a file": REFUSED,
        "DAGSTER_HOME where nothing can be created": None,  # the same check as "at a file"
        "state database URL malformed": None,
        "state database unreachable": None,
        "state database unwritable": None,
        "config store directory a file": None,
        "config store remote at nothing": None,
    },
    "forecasts": {  # reads the forecast history only
        "DAGSTER_HOME at nothing": REFUSED,
        "DAGSTER_HOME at a file": REFUSED,
        "DAGSTER_HOME where nothing can be created": REFUSED,
        "state database URL malformed": REFUSED,
        "state database unreachable": REFUSED,
        "state database unwritable": REFUSED,
        "config store directory a file": None,
        "config store remote at nothing": None,
    },
}


def environment_cases(name: str) -> list[Bad]:
    cases = []
    for case, exit_code in ENVIRONMENTS.get(name, {}).items():
        if exit_code is None:
            continue
        env, names = ENVIRONMENT_CASES[case]
        cases.append(Bad(case, [name, *GOOD_ARGUMENTS[name]], exit_code, names, dict(env), prepare=_files))
    return cases


def _command(name: str) -> click.Command:
    with click.Context(cli) as ctx:
        return cli.get_command(ctx, name)


def _all_cases() -> list[tuple[str, Bad]]:
    cases = []
    for name in COMMANDS:
        command = _command(name)
        cases += [(f"{name}: {c.kind}: {' '.join(c.argv[1:])}", c) for c in argument_cases(name, command)]
        cases += [(f"{name}: env {c.kind}", c) for c in environment_cases(name)]
    return cases


CASES = _all_cases()


def _give_a_previous_version(home: Path) -> None:
    from forex_assets.core.deployment.config_store import ConfigStore

    store = ConfigStore(home / "forex_assets" / "config_store")
    store.deploy(store.read("7d").model_copy(update={"context_length": 90}), reason="a deploy to roll back")


def one_paragraph(text: str) -> str:
    """``text`` stripped, after checking it is one paragraph: no blank line, at most MAX_LINES lines."""
    text = text.strip()
    assert text, "no message"
    lines = text.splitlines()
    assert all(line.strip() for line in lines), f"a blank line inside the message:\n{text}"
    assert len(lines) <= MAX_LINES, f"{len(lines)} lines:\n{text}"
    return text


def test_every_command_has_its_environment_expectations():
    assert set(ENVIRONMENTS) == set(COMMANDS), "a new command: say in ENVIRONMENTS what each environment does to it"
    assert all(set(e) == set(ENVIRONMENT_CASES) for e in ENVIRONMENTS.values())
    assert set(GOOD_ARGUMENTS) == set(COMMANDS)


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_bad_input_gives_its_exit_status_and_one_paragraph_without_a_traceback(case, tmp_path):
    d = tmp_path
    if case.prepare:
        case.prepare(d)
    home = copy_instance(prepared_instance(), d / "home")
    if case.argv[0] == "rollback":
        _give_a_previous_version(home)  # so that only the bad input can stop the rollback
        # the refreshed forecast reads the stored prices first: without them, the price options are read
        (home / "storage" / "pair_prices" / "USDCLP").unlink()
    argv = [part.replace("{d}", str(d)) for part in case.argv]
    env = {k: v.replace("{d}", str(d)) for k, v in case.env.items()}
    names = [n.replace("{d}", str(d)) for n in case.names]

    done = observe(["forex-assets", *argv], d, home, env, timeout=240)

    output = f"$ forex-assets {' '.join(argv)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert "Traceback" not in done.stdout + done.stderr, output
    assert done.exit_code == case.exit_code, output
    if case.exit_code == REFUSED:
        assert done.stdout == "", output
        assert done.wrote_nothing, f"refused, but it wrote: {done}\n{output}"  # runs recorded aside
        message = one_paragraph(done.stderr)
        assert message.splitlines()[-1].startswith(f"forex-assets {argv[0]}: "), output  # after a warning, if any
    elif case.exit_code == IN_A_RUN:
        assert "FAILURE" in done.runs, f"exit status 1 without a failed run in the instance: {done}\n{output}"
        failure = done.stderr.strip() or "\n".join(line for line in done.stdout.splitlines() if "FAILED" in line)
        message = one_paragraph(failure)
    else:
        message = one_paragraph(done.stderr)
    for name in names:
        assert name in message, f"{name!r} not named:\n{output}"


def test_usage_errors_are_one_paragraph_too():
    """The group's own usage errors (no such command), like those of its commands (above)."""
    done = invoke(["forex-assets", "no-such-command"], environment(None), ROOT)
    assert done.returncode == 2 and done.stdout == ""
    assert one_paragraph(done.stderr).startswith("forex-assets: No such command 'no-such-command'")
    assert "see 'forex-assets --help'" in done.stderr
