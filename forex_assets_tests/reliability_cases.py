"""Every bad input and fault of the README's reliability table, provoked for real through the real commands.

Each case prepares its bad input or fault in a directory of its own (a real file, a copy of a real Dagster
instance made by ``forex-assets run``, a real git store, a real SQLite file, a real Optuna journal) and runs the
command an operator would run there, in a subprocess: ``forex-assets ...``, or Dagster's own
``dagster asset materialize`` where only the code location's resource configuration reaches the fault (a
deployment's seed directory, a search that runs). The table's columns are what was observed, never typed:
"what happens" is the exit status, the runs recorded in the instance, the files written, changed or removed
(the directory tree before and after, by content), the rows added to the alert log, the decision log and the
forecast history, and the config store's commits (:mod:`forex_assets_tests.real_cli`); "what the user sees"
is the command's own message. Each case also says what it expects (:class:`Expect`): ``test_reliability_table.py``
fails when a case's outcome changes, and when README.md's table is not the one the cases produce;
``python -m forex_assets_tests.reliability_cases --write-readme`` rewrites it. Paths, versions, run ids, time
stamps and today's date are replaced by placeholders so the table does not depend on the run.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from forex_assets.core.prices.schema import today_in_chile
from forex_assets_tests.real_cli import (
    DEFINITIONS,
    ROOT,
    Observed,
    copy_instance,
    environment,
    invoke,
    observe,
    prepared_instance,
    run_config,
    searched_configs,
    searched_instance,
    seed_copy,
    store_root,
    working_area,
)

README = ROOT / "README.md"
START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"

GOOD_ROWS = ["date,usdclp", "2024-01-02,878.01", "2024-01-03,879.50", "2024-01-04,881.20", "2024-01-05,880.00"]
GARBAGE = b"this is not an SQLite database, whatever its name says\n" * 40
FORECAST_7D = ["--horizons", "7d", "--no-recalibration"]


@dataclass(frozen=True)
class Provoked:
    """The command a case runs: ``argv`` with DAGSTER_HOME=home (None: unset) and ``env``; ``shows`` picks the
    message the user reads from what it printed."""

    argv: list[str]
    home: Path | None
    env: dict[str, str] = field(default_factory=dict)
    shows: Callable[[Observed], str] | None = None


@dataclass(frozen=True)
class Expect:
    """What a case must do: its exit status, the status of each run it records (sorted), what it writes (the
    items of :func:`written`, sorted; none: nothing written), and strings its message names."""

    exit_code: int
    runs: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    area: str
    what: str  # the bad input or fault, as a user would describe it
    provoke: Callable[[Path], Provoked]  # prepares the fault in a directory of its own; the command to run there
    expect: Expect


# ---------------------------------------------------------------------------------------------- messages


def _paragraph(text: str, start: str) -> str:
    """The lines of ``text`` from the first that starts with ``start`` to the next blank line."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith(start):
            block = []
            for later in lines[i:]:
                if not later.strip():
                    break
                block.append(later.strip())
            return " ".join(block)
    return f"(no line starting {start!r})"


def summary_failure(o: Observed) -> str:
    """The failed horizon's row of `forex-assets run`'s summary, every line of its error."""
    return _paragraph(o.stdout, "7d      FAILED:").removeprefix("7d FAILED: ").removeprefix("7d      FAILED: ")


def summary_row(o: Observed) -> str:
    """The 7d row of `forex-assets run`'s summary: origin, last price, status (not the timings or the version)."""
    for line in o.stdout.splitlines():
        fields = line.split()
        if fields[:1] == ["7d"] and len(fields) >= 4:
            return f"summary row 7d: origin {fields[1]}, last price {fields[2]} CLP, {fields[-1]}"
    return "(no 7d row)"


def repairs(o: Observed) -> str:
    return _paragraph(o.stdout, "config store")


_DAGSTER_FAILURE = re.compile(r"^dagster\._core\.definitions\.events\.Failure: (.+)$", re.MULTILINE)
_DAGSTER_LOG = re.compile(r"^\S+ \S+ \S+ - dagster - (?:WARNING|ERROR) - \S+ - \S+ - (?:\S+ - )?(.+)$", re.MULTILINE)


def dagster_failure(o: Observed) -> str:
    """The error the failed step raised, as Dagster's run log shows it (the first line of its message)."""
    found = _DAGSTER_FAILURE.search(o.stderr)
    return found.group(1) if found else "(no step failure)"


def dagster_warning(containing: str) -> Callable[[Observed], str]:
    def shows(o: Observed) -> str:
        found = [m.group(1) for m in _DAGSTER_LOG.finditer(o.stderr) if containing in m.group(1)]
        return found[0] if found else f"(no warning with {containing!r})"

    return shows


def said(o: Observed) -> str:
    """Default: the one line of a refusal (stderr), else the failed row of the summary."""
    if o.argv[0] == "dagster":
        return dagster_failure(o)
    if "Traceback (most recent call last)" in o.stderr:  # a bug: its last line, not the whole stack
        return "a Python traceback ending " + o.stderr.strip().splitlines()[-1]
    return o.stderr.strip() or summary_failure(o)


# ---------------------------------------------------------------------------------------------- preparing


def _csv(directory: Path, text: str | bytes, name: str = "usdclp.csv") -> Path:
    path = directory / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _instance(d: Path) -> Path:
    return copy_instance(prepared_instance(), d / "home")


def _fresh_instance(d: Path) -> Path:
    """An instance home as a new deployment has it: the repo's dagster.yaml, nothing run yet."""
    home = d / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def _run_on_csv(d: Path, text: str | bytes, *options: str) -> Provoked:
    """`forex-assets run --source csv` (7d, no recalibration) on a copy of the instance."""
    path = _csv(d, text)
    return Provoked(
        ["forex-assets", "run", "--source", "csv", "--csv-path", str(path), *options, *FORECAST_7D], _instance(d)
    )


def _materialize(home: Path, select: str, config: str, shows=None) -> Provoked:
    """`dagster asset materialize` of USD/CLP's 7d partition (``7d|USDCLP``: pair x horizon)."""
    argv = ["dagster", "asset", "materialize", *DEFINITIONS, "--select", select, "--partition", "7d|USDCLP"]
    return Provoked([*argv, "--config-json", config], home, shows=shows)


def _with_prices(home: Path, config: str) -> Path:
    """``home`` after `dagster asset materialize --select pair_prices --partition USDCLP` (what a new deployment
    runs first: the prices are partitioned by pair, the forecasts by pair and horizon)."""
    argv = ["dagster", "asset", "materialize", *DEFINITIONS, "--select", "pair_prices", "--partition", "USDCLP"]
    done = invoke([*argv, "--config-json", config], environment(home), home)
    if done.returncode != 0:
        raise RuntimeError(f"materializing the prices failed (exit {done.returncode}):\n{done.stderr}")
    return home


# ---------------------------------------------------------------------------------------------- prices


def empty_csv(d: Path) -> Provoked:
    return _run_on_csv(d, "")


def header_only_csv(d: Path) -> Provoked:
    return _run_on_csv(d, "date,usdclp\n")


def decimal_comma_unquoted(d: Path) -> Provoked:
    return _run_on_csv(d, "date,usdclp\n2024-01-02,878,01\n2024-01-03,879,50\n")


def ambiguous_number(d: Path) -> Provoked:
    return _run_on_csv(d, "date;usdclp\n2024-01-02;878,010\n2024-01-03;879,500\n")


def chilean_export(d: Path) -> Provoked:
    """300 business days as the Banco Central's export writes them: `;`, dd-mm-yyyy, `1.012,50`, Latin-1."""
    import numpy as np
    import pandas as pd

    days = pd.bdate_range(end="2024-06-28", periods=300)
    walk = np.exp(np.cumsum(np.random.default_rng(7).normal(0, 0.004, len(days))))
    values = np.round(1012.50 * walk / walk[-1], 2)  # ends on 1012.50, around 1,000 CLP: both sides of the "."

    def chilean(value: float) -> str:
        whole, cents = f"{value:.2f}".split(".")
        return f"{int(whole):,}".replace(",", ".") + "," + cents

    lines = ["Fecha;Dólar observado"] + [f"{day:%d-%m-%Y};{chilean(v)}" for day, v in zip(days, values, strict=True)]
    provoked = _run_on_csv(
        d,
        ("\n".join(lines) + "\n").encode("latin-1"),
        "--csv-date-column",
        "Fecha",
        "--csv-value-column",
        "Dólar observado",
    )
    return Provoked(provoked.argv, provoked.home, shows=summary_row)


def torn_last_line(d: Path) -> Provoked:
    return _run_on_csv(d, "\n".join(GOOD_ROWS[:-1] + ["2024-01-05,880.0"]))


def prices_100x(d: Path) -> Provoked:
    rows = ["date,usdclp"] + [f"{r.split(',')[0]},{float(r.split(',')[1]) * 100:.1f}" for r in GOOD_ROWS[1:]]
    return _run_on_csv(d, "\n".join(rows) + "\n")


def duplicate_date(d: Path) -> Provoked:
    return _run_on_csv(d, "\n".join(GOOD_ROWS + ["2024-01-05,880.10"]) + "\n")


def long_gap(d: Path) -> Provoked:
    return _run_on_csv(d, "date,usdclp\n2024-01-02,878.01\n2024-02-01,879.01\n")


def not_a_number(d: Path) -> Provoked:
    return _run_on_csv(d, "date,usdclp\n2024-01-02,878.01\n2024-01-03,NaN\n2024-01-04,881.20\n")


def future_date(d: Path) -> Provoked:
    """The last row dated 2099 (a mistyped year)."""
    return _run_on_csv(d, "\n".join(GOOD_ROWS + ["2099-01-08,880.10"]) + "\n")


def year_out_of_range(d: Path) -> Provoked:
    """A date with a three-digit year: `0224-09-09` for 2024-09-09."""
    return _run_on_csv(d, "date,usdclp\n2024-09-05,878.01\n2024-09-06,879.50\n0224-09-09,881.20\n")


# ---------------------------------------------------------------------------------------------- configuration


def _first_setup_with_seed(d: Path, broken: Callable[[str], str]) -> Provoked:
    """A new deployment whose working_area resource takes its seeds from ``d/configs`` (7d's seed ``broken``):
    its first materialization of USD/CLP's prices, then of its forecast 7d, with `dagster asset materialize`."""
    configs = seed_copy(d)
    seed = configs / "chronos_7d.json"
    seed.write_text(broken(seed.read_text()))
    return _materialize(_with_prices(_fresh_instance(d), run_config(configs)), "forecast", run_config(configs))


def invalid_seed_json(d: Path) -> Provoked:
    """The comma after the seed's checkpoint field left out."""
    return _first_setup_with_seed(d, lambda text: text.replace('-mini",\n', '-mini"\n', 1))


def seed_out_of_range(d: Path) -> Provoked:
    return _first_setup_with_seed(d, lambda text: text.replace('"context_length": 180', '"context_length": 0'))


def invalid_search_space(d: Path) -> Provoked:
    """A search of 7d (`dagster asset materialize --select candidate_config`) with context length 5 allowed."""
    configs = seed_copy(d, {"context_length": [5, 180]})
    return _materialize(_instance(d), "candidate_config", run_config(configs))


# ---------------------------------------------------------------------------------------------- config store


def half_made_store_read(d: Path) -> Provoked:
    """The store an interrupted first set-up leaves (a git repository with no commit), read by `history`."""
    import git

    home = _instance(d)
    shutil.rmtree(store_root(home))
    git.Repo.init(store_root(home))
    return Provoked(["forex-assets", "history", "--horizon", "7d"], home)


def hand_edit_on_writer_open(d: Path) -> Provoked:
    home = _instance(d)
    path = store_root(home) / "chronos_7d.json"
    path.write_text(path.read_text().replace('"context_length": 180', '"context_length": 90'))
    return Provoked(["forex-assets", "run", *FORECAST_7D], home, shows=repairs)


def stray_file_in_store(d: Path) -> Provoked:
    """`cp chronos_7d.json chronos_7d.json.bak` in the store, then a run."""
    home = _instance(d)
    shutil.copy(store_root(home) / "chronos_7d.json", store_root(home) / "chronos_7d.json.bak")
    return Provoked(["forex-assets", "run", *FORECAST_7D], home, shows=repairs)


def stale_validation(d: Path) -> Provoked:
    """A candidate validated against the seed; another configuration is deployed meanwhile; then its deploy."""
    from forex_assets.core.deployment.config_store import ConfigStore

    home = copy_instance(searched_instance(), d / "home")
    store = ConfigStore(store_root(home))
    store.deploy(store.read("7d").model_copy(update={"context_length": 270}), reason="another validated deploy")
    return _materialize(home, "deployed_config", run_config(searched_configs()))


def _current_version(home: Path) -> str:
    from forex_assets.core.deployment.config_store import ConfigStore

    return ConfigStore(store_root(home), read_only=True).current_version("7d").id


def rollback_to_same_content(d: Path) -> Provoked:
    home = _instance(d)
    return Provoked(["forex-assets", "rollback", "--horizon", "7d", "--to", _current_version(home)], home)


def rollback_to_unknown_version(d: Path) -> Provoked:
    return Provoked(["forex-assets", "rollback", "--horizon", "7d", "--to", "20190101T000000Z-deadbeef"], _instance(d))


def foreign_remote(d: Path) -> Provoked:
    """FOREX_CONFIG_STORE_REMOTE pointing at a repository whose main holds a README, on a new instance."""
    import git

    work = git.Repo.init(d / "other-work", initial_branch="main")
    (d / "other-work" / "README.md").write_text("# another project\n")
    work.index.add(["README.md"])
    ana = git.Actor("Ana Perez", "ana@example.org")
    work.index.commit("initial commit", author=ana, committer=ana)
    git.Repo.init(d / "other.git", bare=True, initial_branch="main")
    work.git.push(str(d / "other.git"), "main")
    env = {"FOREX_CONFIG_STORE_REMOTE": str(d / "other.git")}
    return Provoked(["forex-assets", "run", *FORECAST_7D], _fresh_instance(d), env)


# ---------------------------------------------------------------------------------------------- state files


def corrupt_backtest_cache(d: Path) -> Provoked:
    home = copy_instance(searched_instance(), d / "home")
    (working_area(home) / "backtest_cache.sqlite").write_bytes(GARBAGE)
    return _materialize(home, "candidate_config", run_config(searched_configs()), dagster_warning("is corrupt"))


def corrupt_forecast_history(d: Path) -> Provoked:
    home = _instance(d)
    (working_area(home) / "forecast_history.sqlite").write_bytes(GARBAGE)
    return Provoked(["forex-assets", "run", *FORECAST_7D], home)


def torn_optuna_journal(d: Path) -> Provoked:
    """The study's journal cut in the middle of a record (a search killed while writing), then the search again."""
    home = copy_instance(searched_instance(), d / "home")
    [journal] = (working_area(home) / "optuna_studies").glob("*.journal")
    with open(journal, "ab") as handle:
        handle.write(b'{"op_code":4,"worker_id":"w","study_id":0,"datetime_st')
    return _materialize(home, "candidate_config", run_config(searched_configs()), dagster_warning("is corrupt"))


# ---------------------------------------------------------------------------------------------- model


def truncated_weights(d: Path) -> Provoked:
    """7d deployed on a local checkpoint whose model.safetensors was cut short (a copy interrupted), then a run."""
    from forex_assets.core.deployment.config_store import ConfigStore
    from forex_assets.core.models.loading import MODELS_DIR

    target = d / "checkpoint"
    shutil.copytree(MODELS_DIR / "usdclp-chronos2-mini", target)
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100_000])
    home = _instance(d)
    store = ConfigStore(store_root(home))
    store.deploy(store.read("7d").model_copy(update={"checkpoint": str(target)}), reason="a local checkpoint")
    return Provoked(["forex-assets", "run", *FORECAST_7D], home)


# ---------------------------------------------------------------------------------------------- commands

SHORT_REPLAY = ["--start", "2026-10-28", "--end", "2026-10-30", "--horizons", "7d", "--no-progress"]


def replay_csv_without_path(d: Path) -> Provoked:
    return Provoked(["forex-assets", "replay", "--source", "csv"], None)


def replay_header_only_csv(d: Path) -> Provoked:
    path = _csv(d, "date,usdclp\n")
    return Provoked(
        ["forex-assets", "replay", "--source", "csv", "--csv-path", str(path), "--out", str(d / "out")], None
    )


def replay_unwritable_out(d: Path) -> Provoked:
    blocker = d / "not_a_directory"
    blocker.write_text("a file where the output directory should go\n")
    return Provoked(["forex-assets", "replay", *SHORT_REPLAY, "--out", str(blocker / "report")], None)


def replay_negative_drift(d: Path) -> Provoked:
    argv = ["forex-assets", "replay", *SHORT_REPLAY, "--inject-drift", "2026-03-02:-2", "--out", str(d / "out")]
    return Provoked(argv, None)


def forecasts_to_missing_directory(d: Path) -> Provoked:
    return Provoked(
        ["forex-assets", "forecasts", "--horizon", "7d", "--output", str(d / "nowhere" / "f.csv")], _instance(d)
    )


def forecasts_to_full_disk(d: Path) -> Provoked:
    return Provoked(["forex-assets", "forecasts", "--horizon", "7d", "--output", "/dev/full"], _instance(d))


def status_with_unreachable_database(d: Path) -> Provoked:
    env = {"FOREX_STATE_DATABASE_URL": "postgresql://forex@127.0.0.1:1/forex"}
    return Provoked(["forex-assets", "status"], _instance(d), env)


def run_with_home_a_file(d: Path) -> Provoked:
    home = d / "home"
    home.write_text("not a directory\n")
    return Provoked(["forex-assets", "run", *FORECAST_7D], home)


FAILED, OK = "FAILURE", "SUCCESS"
#: what a search of 7d writes (announced, searched, its candidate): the searched instance's search again
SEARCHED_AGAIN = (
    "alert: optimization_triggered 7d",
    "trigger decision recorded (7d)",
    "changed candidates/candidate_7d.json",
    "changed optuna_studies/7d-<study>.journal",
)
CSV = "<dir>/usdclp.csv"

CASES: tuple[Case, ...] = (
    Case("prices", "empty CSV file", empty_csv, Expect(1, (FAILED,), names=(CSV, "empty"))),
    Case("prices", "CSV with a header and no rows", header_only_csv, Expect(1, (FAILED,), names=(CSV, "line 1"))),
    Case(
        "prices",
        "decimal commas in a comma-separated CSV (`878,01` unquoted)",
        decimal_comma_unquoted,
        Expect(1, (FAILED,), names=(CSV, "line 2", "quote the prices")),
    ),
    Case(
        "prices",
        "ambiguous number (`878,010`: 878.01 or 878010?)",
        ambiguous_number,
        Expect(1, (FAILED,), names=(CSV, "line 2", "csv_decimal")),
    ),
    Case(
        "prices",
        "Chilean export: `;`, `dd-mm-yyyy`, `1.012,50`, Latin-1",
        chilean_export,
        Expect(0, (OK, OK), writes=("forecast recorded (7d 2024-06-28)",), names=("last price 1012.50 CLP", "ok")),
    ),
    Case("prices", "last line torn (file cut mid-write)", torn_last_line, Expect(1, (FAILED,), names=(CSV, "line 5"))),
    Case(
        "prices",
        "prices 100 times too high",
        prices_100x,
        Expect(1, (FAILED,), names=(CSV, "plausible_price_range", "line 2")),
    ),
    Case("prices", "duplicate date", duplicate_date, Expect(1, (FAILED,), names=(CSV, "unique_dates", "line 6"))),
    Case(
        "prices",
        "a gap of more than 10 business days",
        long_gap,
        Expect(1, (FAILED,), names=(CSV, "max_gap_business_days", "line 3")),
    ),
    Case("prices", "a price that is not a number (`NaN`)", not_a_number, Expect(1, (FAILED,), names=(CSV, "line 3"))),
    Case(
        "prices",
        "a row dated in the future (2099 for 2024)",
        future_date,
        Expect(1, (FAILED,), names=(CSV, "2099-01-08", "line 6")),
    ),
    Case(
        "prices",
        "a year out of range (`0224-09-09`)",
        year_out_of_range,
        Expect(1, (FAILED,), names=(CSV, "0224-09-09", "line 4")),
    ),
    Case(
        "configuration",
        "seed JSON with a syntax error (a new deployment's seed directory)",
        invalid_seed_json,
        Expect(1, (FAILED,), names=("<dir>/configs/chronos_7d.json", "not valid JSON", "line 5")),
    ),
    Case(
        "configuration",
        "seed with `context_length: 0` on first set-up",
        seed_out_of_range,
        Expect(1, (FAILED,), names=("<dir>/configs/chronos_7d.json", "context_length")),
    ),
    Case(
        "configuration",
        "search space with an invalid context length",
        invalid_search_space,
        Expect(
            1,
            (FAILED,),
            writes=("alert: optimization_triggered 7d", "trigger decision recorded (7d)"),
            names=("<dir>/configs/search_space_7d.json", "context length 5"),
        ),
    ),
    Case(
        "config store",
        "`history` on a half-made store (interrupted set-up)",
        half_made_store_read,
        Expect(2, names=("<home>/forex_assets/config_store", "no commit")),
    ),
    Case(
        "config store",
        "hand edit of a live configuration file",
        hand_edit_on_writer_open,
        Expect(
            0,
            (OK, OK),
            writes=(
                "alert: config_store_repaired 7d",
                "changed config_store/chronos_7d.json",
                "forecast recorded (7d 2026-10-30)",
                "wrote config_store/backups/chronos_7d.json.discarded-<stamp>",
                "wrote config_store/backups/repairs.alerted",
                "wrote config_store/backups/repairs.jsonl",
            ),
            names=("restored chronos_7d.json", "backups/chronos_7d.json.discarded-<stamp>"),
        ),
    ),
    Case(
        "config store",
        "a stray file in the store (`chronos_7d.json.bak`)",
        stray_file_in_store,
        Expect(
            0,
            (OK, OK),
            writes=(
                "alert: config_store_repaired 7d",
                "forecast recorded (7d 2026-10-30)",
                "removed config_store/chronos_7d.json.bak",
                "wrote config_store/backups/chronos_7d.json.bak.discarded-<stamp>",
                "wrote config_store/backups/repairs.alerted",
                "wrote config_store/backups/repairs.jsonl",
            ),
            names=("moved chronos_7d.json.bak", "backups/chronos_7d.json.bak.discarded-<stamp>"),
        ),
    ),
    Case(
        "config store",
        "deploy of a report validated against a version no longer deployed",
        stale_validation,
        Expect(1, (FAILED,), names=("deploy refused", "validated against version <version>", "nothing was changed")),
    ),
    Case(
        "config store",
        "`rollback --to` the configuration already deployed",
        rollback_to_same_content,
        Expect(2, (FAILED,), names=("already", "<version>")),
    ),
    Case(
        "config store",
        "`rollback --to` a version the horizon never had",
        rollback_to_unknown_version,
        Expect(2, (FAILED,), names=("unknown configuration version", "the versions of 7d, newest first: <version>")),
    ),
    Case(
        "config store",
        "`FOREX_CONFIG_STORE_REMOTE` at another project's repository",
        foreign_remote,
        Expect(1, (OK, FAILED), names=("<dir>/other.git", "README.md", "nothing was created or pushed")),
    ),
    Case(
        "state files",
        "corrupt `backtest_cache.sqlite`",
        corrupt_backtest_cache,
        Expect(
            0,
            (OK,),
            writes=(
                *SEARCHED_AGAIN,
                "changed backtest_cache.sqlite",
                "wrote backtest_cache.sqlite.corrupt-<stamp>",
                "alert: file_set_aside 7d",
            ),
            names=("<home>/forex_assets/backtest_cache.sqlite", "corrupt-<stamp>", "an empty one took its place"),
        ),
    ),
    Case(
        "state files",
        "corrupt `forecast_history.sqlite`",
        corrupt_forecast_history,
        Expect(1, (FAILED, OK), names=("<home>/forex_assets/forecast_history.sqlite", "left as it is")),
    ),
    Case(
        "state files",
        "Optuna journal torn by a killed search",
        torn_optuna_journal,
        Expect(
            0,
            (OK,),
            writes=(
                *SEARCHED_AGAIN,
                "wrote optuna_studies/7d-<study>.journal.corrupt-<stamp>",
                "alert: file_set_aside 7d",
            ),
            names=("optuna_studies/7d-<study>.journal", "corrupt-<stamp>", "intact"),
        ),
    ),
    Case(
        "model",
        "truncated `model.safetensors` of the deployed checkpoint",
        truncated_weights,
        Expect(1, (FAILED, OK), names=("<dir>/checkpoint/model.safetensors", "truncated")),
    ),
    Case(
        "commands",
        "`replay --source csv` without `--csv-path`",
        replay_csv_without_path,
        Expect(2, names=("--csv-path",)),
    ),
    Case("commands", "`replay` on a header-only CSV", replay_header_only_csv, Expect(2, names=(CSV,))),
    Case(
        "commands",
        "`replay --out` not writable",
        replay_unwritable_out,
        Expect(2, names=("<dir>/not_a_directory/report",)),
    ),
    Case(
        "commands",
        "`replay --inject-drift 2026-03-02:-2` (no drift)",
        replay_negative_drift,
        Expect(2, names=("2026-03-02:-2",)),
    ),
    Case(
        "commands",
        "`forecasts --output` in a directory that does not exist",
        forecasts_to_missing_directory,
        Expect(2, names=("<dir>/nowhere/f.csv",)),
    ),
    Case(
        "commands",
        "`forecasts --output /dev/full` (disk full)",
        forecasts_to_full_disk,
        Expect(2, names=("/dev/full",)),
    ),
    Case(
        "commands",
        "`status` with `FOREX_STATE_DATABASE_URL` at a server that does not answer",
        status_with_unreachable_database,
        Expect(2, names=("FOREX_STATE_DATABASE_URL", "127.0.0.1:1")),
    ),
    Case(
        "commands",
        "`run` with `DAGSTER_HOME` a file",
        run_with_home_a_file,
        Expect(2, names=("DAGSTER_HOME=<home> is a file, not a directory",)),
    ),
)

SOAK_START, SOAK_END = "<!-- kill-rerun-soak:start -->", "<!-- kill-rerun-soak:end -->"
SOAK_WHAT = "`kill -9` of `forex-assets run` at a random moment, then a rerun (bench/soak_kill_rerun.py)"
#: what the row says until the soak has written its section of bench/results.md (a placeholder for the lead)
SOAK_PENDING = "PLACEHOLDER: not measured yet (run bench/soak_kill_rerun.py; the row is read from bench/results.md)"


def soak_row() -> tuple[str, str, str, str]:
    """The kill-and-rerun soak's row: not a case run here (it takes many minutes) but its measured figures,
    read from its section of bench/results.md (written by bench/soak_kill_rerun.py)."""
    results = ROOT / "bench" / "results.md"
    text = results.read_text() if results.is_file() else ""
    if SOAK_START not in text or SOAK_END not in text:
        return ("soak", SOAK_WHAT, SOAK_PENDING, SOAK_PENDING)
    section = text[text.index(SOAK_START) : text.index(SOAK_END)]

    def figure(pattern: str) -> str:
        found = re.search(pattern, section)
        return found.group(1) if found else "?"

    iterations = figure(r"iterations: [*]*(\d+)")
    kills = figure(r"killed: [*]*(\d+)")
    held = figure(r"held the optimizer pool slot: [*]*(\d+)")
    failed = figure(r"failed reruns: [*]*(\d+)")
    median = figure(r"rerun wall time: median ([\d.]+ s)")
    happens = (
        f"{iterations} runs, each then rerun; {kills} killed (the others had completed first), {held} while a step "
        f"held the optimizer slot; failed reruns: {failed}"
    )
    sees = (
        f"rerun wall time median {median}; a rerun passes when it exits 0 in time, the killed run is marked failed, "
        "no pool claim is left, a decision per horizon is recorded and `git fsck` is clean (bench/results.md)"
    )
    return ("soak", SOAK_WHAT, happens, sees)


# ---------------------------------------------------------------------------------------------- rendering

_PLACEHOLDERS = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<run>"),
    (re.compile(r"\b(7d|15d|30d|90d)-[0-9a-f]{10}-\d{4}-\d{2}-\d{2}\b"), r"\1-<study>"),
    (re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}"), "<version>"),
    (re.compile(r"\d{8}T\d{6,12}Z"), "<stamp>"),
    (re.compile(r"\b[0-9a-f]{8}\b(?=\)|:|;|,| |$)"), "<commit>"),
    (re.compile(r"\d+\.\d+ s\b"), "<seconds> s"),
)


def normalise(text: str, directory: Path, home: Path | None) -> str:
    """``text`` without what depends on the run: the home -> <home>, the case directory -> <dir>, the repo ->
    <repo>, run ids, versions, stamps, commits, durations, today's date and the days after it."""
    if home is not None:
        text = text.replace(str(home), "<home>")
    text = text.replace(str(directory), "<dir>").replace(str(ROOT), "<repo>")
    for pattern, placeholder in _PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    today = today_in_chile()  # the contract's "today" (America/Santiago): from 00:00 to 03:00 UTC it is yesterday's
    for days in range(-1, 8):
        text = text.replace(f"{today + timedelta(days=days):%Y-%m-%d}", "<today>" if days in (-1, 0) else "<later>")
    return " ".join(text.split())


def _short(path: str) -> str:
    """A path of the case directory as the table names it: relative to the working area, else <home>/, <dir>/."""
    if path.startswith("home/forex_assets/"):
        return path.removeprefix("home/forex_assets/")
    if path.startswith("home/"):
        return "<home>/" + path.removeprefix("home/")
    return "<dir>/" + path


def written(o: Observed) -> list[str]:
    """What the command left behind, one item each, sorted: files, alert rows, decisions, forecasts, commits."""
    items = [f"wrote {_short(p)}" for p in o.created] + [f"changed {_short(p)}" for p in o.changed]
    items += [f"removed {_short(p)}" for p in o.removed] + [f"alert: {a}" for a in o.alerts]
    items += [f"trigger decision recorded ({h})" for h in o.decisions]
    items += [f"forecast recorded ({f})" for f in o.forecasts]
    items += [f"{o.commits} config store commit(s)"] if o.commits else []
    return sorted(items)


def _runs(statuses: list[str]) -> str:
    words = {FAILED: "failed", OK: "succeeded"}
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    return ", ".join(f"{n} run{'s' if n > 1 else ''} {words.get(s, s.lower())}" for s, n in counts.items())


@dataclass(frozen=True)
class Outcome:
    """A case's observation, normalised: what the table shows and what :class:`Expect` is checked against."""

    exit_code: int
    runs: tuple[str, ...]
    writes: tuple[str, ...]
    message: str
    output: str  # everything the command printed (normalised), for the test's failure messages

    @property
    def happens(self) -> str:
        parts = [f"exit {self.exit_code}"]
        if self.runs:
            parts.append(_runs(list(self.runs)))
        parts.append("; ".join(self.writes) if self.writes else "nothing written")
        return "; ".join(parts)


def run_case(case: Case) -> Outcome:
    """Provoke the case in a fresh directory, run its command, and return what was observed (normalised)."""
    with tempfile.TemporaryDirectory(prefix="forex_reliability_") as directory:
        d = Path(directory)
        provoked = case.provoke(d)
        o = observe(provoked.argv, d, provoked.home, provoked.env)
        shows = provoked.shows or said
        home = provoked.home

        def norm(text: str) -> str:
            return normalise(text, d, home)

        return Outcome(
            o.exit_code,
            tuple(sorted(o.runs)),
            tuple(sorted(norm(item) for item in written(o))),
            norm(shows(o)),
            f"$ {' '.join(o.argv)}\n--- stdout\n{o.stdout}\n--- stderr\n{o.stderr}",
        )


def render_table(outcomes: list[Outcome]) -> str:
    lines = [
        START,
        "| area | bad input or fault | what happens | what the user sees |",
        "|---|---|---|---|",
    ]
    for case, outcome in zip(CASES, outcomes, strict=True):
        cells = (case.area, case.what, outcome.happens, outcome.message)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines.append("| " + " | ".join(soak_row()) + " |")
    lines.append(END)
    return "\n".join(lines)


def readme_table() -> str:
    text = README.read_text()
    return text[text.index(START) : text.index(END) + len(END)]


def write_readme(table: str) -> None:
    text = README.read_text()
    README.write_text(text[: text.index(START)] + table + text[text.index(END) + len(END) :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-readme", action="store_true", help="rewrite the README's reliability table")
    args = parser.parse_args()
    table = render_table([run_case(case) for case in CASES])
    if args.write_readme:
        write_readme(table)
    print(table)


if __name__ == "__main__":
    main()
