"""`forex-assets`: the operator's command line, one click group like Dagster's own `dagster` CLI.

    forex-assets run | status | history --horizon H | rollback --horizon H | replay | forecasts --horizon H

(each takes --help). The subcommands live next to what they do (`cli/run.py`, `cli/operator.py`,
`cli/rollback.py`, `cli/replay.py`, `cli/forecasts.py`) and are imported when used: `run` and `rollback` load
Dagster and the whole asset graph, `replay` the models (seconds), which `forex-assets --help` need not wait for.
The read-only commands (`status`, `history`, `forecasts`) load none of that, nor torch or matplotlib
(forex_assets_tests/test_fast_cli.py; their time and memory: bench/bench_cli.py).
Also here, the pieces the subcommands share: the option parsing (options that take several values, as
`--horizons 7d 30d`), dates, the price source's options and the one-line error with exit status 2.
"""

from __future__ import annotations

import importlib
from datetime import date
from pathlib import Path

import click

from forex_assets.core.horizons import HORIZONS

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}

# name -> (module:command, the line `forex-assets --help` shows without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("forex_assets.cli.run:run_command", "One cycle on the embedded instance (what `make run` does)."),
    "status": (
        "forex_assets.cli.operator:status_command",
        "Per horizon: deployed version, drift, performance, optimizations, alerts.",
    ),
    "history": (
        "forex_assets.cli.operator:history_command",
        "Deploys, rollbacks, trigger decisions and validations of one horizon.",
    ),
    "rollback": (
        "forex_assets.cli.rollback:rollback_command",
        "Roll one horizon back to its previous (or a named) version with rollback_job; refresh its forecast.",
    ),
    "replay": (
        "forex_assets.cli.replay:replay_command",
        "The whole policy over a range of history, day by day, without look-ahead.",
    ),
    "forecasts": (
        "forex_assets.cli.forecasts:forecasts_command",
        "The recorded forecasts of one horizon (latest, or a range of origins) as CSV or JSON.",
    ),
}


class CliError(click.ClickException):
    """Said in one line on stderr, ``forex-assets COMMAND: message``, exit status 2: no usage, no traceback."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        ctx = click.get_current_context(silent=True)
        self.command_path = ctx.command_path if ctx is not None else "forex-assets"

    def show(self, file=None) -> None:
        click.echo(f"{self.command_path}: {self.format_message()}", file=file, err=file is None)


class GreedyOption(click.Option):
    """One or more values up to the next option, as argparse's ``nargs="+"`` (``--horizons 7d 30d``); repeating
    the option (``--horizons 7d --horizons 30d``) works too. Only for commands of class GreedyCommand."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["multiple"] = True
        super().__init__(*args, **kwargs)


class GreedyCommand(click.Command):
    """A command whose GreedyOptions take every value that follows them (these commands have no arguments)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        greedy = {name for p in self.params if isinstance(p, GreedyOption) for name in p.opts}
        rewritten: list[str] = []
        taking, first = None, False  # the greedy option whose values follow; still waiting for its first value
        for i, arg in enumerate(args):
            if arg == "--":
                rewritten += args[i:]
                break
            if arg.startswith("-") and len(arg) > 1:
                name, equals, _ = arg.partition("=")
                taking, first = (name, not equals) if name in greedy else (None, False)
                rewritten.append(arg)
            elif taking is not None and not first:
                rewritten += [taking, arg]
            else:
                rewritten.append(arg)
                first = False
        return super().parse_args(ctx, rewritten)


class ISODate(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


def unique(values: tuple[str, ...]) -> tuple[str, ...]:
    """``values`` without repeats, in the order first given (``--horizons 7d 30d 7d`` -> ``("7d", "30d")``)."""
    return tuple(dict.fromkeys(values))


def declared_pairs(pairs_file: str | None = None) -> tuple[str, ...]:
    """The pair codes of the pairs file (``pairs_file``, else ``$FOREX_PAIRS_FILE``, else configs/pairs.json),
    read as plain JSON: the read-only commands load neither pydantic's models nor the calendars to check a
    ``--pair``. A file that cannot be read is left to the commands that load it whole (none of its codes here:
    every code is taken)."""
    import json
    import os

    from forex_assets.core.working_area import SEED_CONFIGS_DIR

    chosen = pairs_file or os.environ.get("FOREX_PAIRS_FILE", "").strip()
    path = Path(chosen) if chosen else SEED_CONFIGS_DIR / "pairs.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["pairs"]
        return tuple(entry["code"] for entry in entries)
    except (OSError, ValueError, KeyError, TypeError):
        return ()


def pair_option(function=None, *, every_by_default: bool = False):
    """--pair: the currency pair the command works on (USDCLP, EUR/CLP, eurclp); default the only pair of the
    pairs file, or USD/CLP when it declares several (``every_by_default``: None, every pair); one the pairs file
    does not declare is refused, naming those it does."""
    if function is None:
        return lambda f: pair_option(f, every_by_default=every_by_default)

    def checked(ctx, param, value: str | None) -> str | None:
        declared = declared_pairs()
        if value is None:
            if every_by_default:
                return None
            return declared[0] if len(declared) == 1 else "USDCLP"
        code = value.replace("/", "").upper()
        if declared and code not in declared:
            raise click.BadParameter(f"{value!r} is not a declared pair ({', '.join(declared)}; the pairs file)")
        return code

    default = "every declared pair that has run" if every_by_default else "the only pair declared, else USDCLP"
    return click.option(
        "--pair",
        default=None,
        metavar="PAIR",
        callback=checked,
        help="the currency pair (configs/pairs.json, or $FOREX_PAIRS_FILE): its config store, forecasts, decisions "
        f"and alerts  [default: {default}]",
    )(function)


def horizons_option(function):
    """--horizons: one or more horizons, each once (a repeated one is run once, where it first appears)."""
    return click.option(
        "--horizons",
        cls=GreedyOption,
        type=click.Choice(HORIZONS),
        default=HORIZONS,
        show_default=True,
        callback=lambda ctx, param, value: unique(value),
        help="one or more horizons (--horizons 7d 30d)",
    )(function)


def price_source_options(function):
    """--source, --csv-path, --csv-date-column, --csv-value-column and the CSV format options (PriceSource's
    settings; "auto" detects and refuses an ambiguous file)."""
    options = [
        click.option(
            "--source",
            type=click.Choice(["synthetic", "csv", "mindicador"]),
            default="synthetic",
            show_default=True,
            help="where the prices come from",
        ),
        click.option("--csv-path", metavar="FILE", help="the CSV file of --source csv"),
        click.option("--csv-date-column", default="date", show_default=True, help="the CSV's date column"),
        click.option(
            "--csv-value-column",
            help="the CSV's price column  [default: the pair's, in configs/pairs.json: usdclp for USD/CLP]",
        ),
        click.option("--csv-delimiter", default="auto", show_default=True, help="',', ';', 'tab', '|' or auto"),
        click.option("--csv-decimal", default="auto", show_default=True, help="decimal mark: '.' or ',' or auto"),
        click.option(
            "--csv-thousands", default="auto", show_default=True, help="thousands separator: none, '.', ',' or auto"
        ),
        click.option(
            "--csv-date-format", default="auto", show_default=True, help="strftime format, e.g. %d-%m-%Y, or auto"
        ),
        click.option("--csv-encoding", default="auto", show_default=True, help="e.g. utf-8, latin-1, or auto"),
        click.option(
            "--csv-skip-missing",
            is_flag=True,
            help="a row with no value in the price column (blank, NA, -) is no observation: a wide file of several "
            "currencies, blank on each country's holidays",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def check_price_source(source: str, csv_path: str | None) -> None:
    if source == "csv" and not csv_path:
        raise CliError("--source csv needs --csv-path FILE (a CSV file of dates and prices)")


def one_paragraph(error: click.UsageError) -> CliError:
    """click's usage error (usage line, hint, blank line, ``Error: ...``) as the CLI's one line on stderr,
    ``forex-assets COMMAND: message; see 'forex-assets COMMAND --help'``, exit status 2."""
    path = error.ctx.command_path if error.ctx is not None else "forex-assets"
    message = " ".join(line.strip() for line in error.format_message().splitlines() if line.strip())
    said = CliError(f"{message.rstrip('.')}; see '{path} --help'")
    said.command_path = path
    return said


class LazyGroup(click.Group):
    """The group of COMMANDS, each imported when it is run or asked for its help. A usage error (an unknown
    option or command, a bad or missing value) is said in one line like every other error (:func:`one_paragraph`);
    the group without a command still prints its help."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as error:
            raise one_paragraph(error) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            raise one_paragraph(error) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[name][0].partition(":")
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, short) in COMMANDS.items()])


@click.group(name="forex-assets", cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
def cli() -> None:
    """USD/CLP forecasts with Chronos that keep themselves calibrated: run a cycle, ask the instance how each
    horizon stands and what happened to it, replay the policy over history, export the forecasts.

    Each command takes --help."""


if __name__ == "__main__":
    cli(prog_name="forex-assets")
