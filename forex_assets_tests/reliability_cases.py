"""Every bad input and fault tried, provoked for real, with the message the user sees.

Each case builds its bad input or fault in a fresh directory (a real file, a real git store, a real
SQLite file, a real Optuna journal, the real CLI) and returns what the user reads. The README's
reliability table is rendered from these messages: ``test_reliability_table.py`` fails when the table
and the code disagree, and ``python -m forex_assets_tests.reliability_cases --write-readme`` rewrites it.
Paths, versions and time stamps are replaced by placeholders so the table does not depend on the run.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"

GOOD_ROWS = ["date,usdclp", "2024-01-02,878.01", "2024-01-03,879.50", "2024-01-04,881.20", "2024-01-05,880.00"]


@dataclass(frozen=True)
class Case:
    area: str
    what: str  # the bad input or fault, as a user would describe it
    outcome: str  # what happens to state: nothing written, set aside, refused ...
    provoke: Callable[[Path], str]  # returns the message the user sees


def _csv(directory: Path, text: str | bytes, name: str = "usdclp.csv") -> Path:
    path = directory / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _price_error(path: Path) -> str:
    """What the price source says about ``path`` (reading, then the data contract), as the asset reports it."""
    from forex_assets.core.prices.schema import PriceRules, validate_prices
    from forex_assets.core.prices.sources import PriceSourceError, read_price_csv

    try:
        frame = read_price_csv(path)
        validate_prices(frame, PriceRules(), source=f"csv:{path}")
    except (PriceSourceError, ValueError) as error:
        return str(error)
    return "(loaded)"


def empty_csv(d: Path) -> str:
    return _price_error(_csv(d, ""))


def header_only_csv(d: Path) -> str:
    return _price_error(_csv(d, "date,usdclp\n"))


def decimal_comma_unquoted(d: Path) -> str:
    return _price_error(_csv(d, "date,usdclp\n2024-01-02,878,01\n2024-01-03,879,50\n"))


def ambiguous_number(d: Path) -> str:
    return _price_error(_csv(d, "date;usdclp\n2024-01-02;878,010\n2024-01-03;879,500\n"))


def chilean_export(d: Path) -> str:
    from forex_assets.core.prices.sources import read_price_csv

    text = "Fecha;Dolar observado\n02-01-2024;878,01\n03-01-2024;1.012,50\n"
    frame = read_price_csv(_csv(d, text.encode("latin-1")), "Fecha", "Dolar observado")
    return f"loaded: {', '.join(f'{v:.2f}' for v in frame['usdclp'])}"


def torn_last_line(d: Path) -> str:
    return _price_error(_csv(d, "\n".join(GOOD_ROWS[:-1] + ["2024-01-05,880.0"])))


def prices_100x(d: Path) -> str:
    rows = ["date,usdclp"] + [f"{r.split(',')[0]},{float(r.split(',')[1]) * 100:.1f}" for r in GOOD_ROWS[1:]]
    return _price_error(_csv(d, "\n".join(rows) + "\n"))


def duplicate_date(d: Path) -> str:
    return _price_error(_csv(d, "\n".join(GOOD_ROWS + ["2024-01-05,880.10"]) + "\n"))


def long_gap(d: Path) -> str:
    return _price_error(_csv(d, "date,usdclp\n2024-01-02,878.01\n2024-02-01,879.01\n"))


def not_a_number(d: Path) -> str:
    return _price_error(_csv(d, "date,usdclp\n2024-01-02,878.01\n2024-01-03,NaN\n2024-01-04,881.20\n"))


def _seeds(d: Path) -> Path:
    seeds = d / "configs"
    shutil.copytree(ROOT / "configs", seeds)
    return seeds


def invalid_seed_json(d: Path) -> str:
    from forex_assets.core.forecasting.config import ConfigError, load_seed

    seeds = _seeds(d)
    (seeds / "chronos_7d.json").write_text('{"horizon": "7d"\n  "context_length": 180}\n')
    try:
        load_seed(seeds / "chronos_7d.json", "7d")
    except ConfigError as error:
        return str(error)
    return "(loaded)"


def _store_error(action: Callable[[], object]) -> str:
    from forex_assets.core.deployment.config_store import ConfigStoreError
    from forex_assets.core.forecasting.config import ConfigError

    try:
        action()
    except (ConfigStoreError, ConfigError) as error:
        return str(error)
    return "(no error)"


def seed_out_of_range(d: Path) -> str:
    from forex_assets.core.deployment.config_store import ConfigStore

    seeds = _seeds(d)
    path = seeds / "chronos_7d.json"
    path.write_text(path.read_text().replace('"context_length": 180', '"context_length": 0'))
    message = _store_error(lambda: ConfigStore(d / "store", seed_dir=seeds))
    left = "nothing left on disk" if not (d / "store").exists() else "A STORE WAS LEFT"
    return f"{message} [{left}]"


def half_made_store_read(d: Path) -> str:
    import git

    from forex_assets.core.deployment.config_store import ConfigStore

    git.Repo.init(d / "store")  # an interrupted first set-up: a repository with no commit
    return _store_error(lambda: ConfigStore(d / "store", read_only=True).read("7d"))


def hand_edit_on_writer_open(d: Path) -> str:
    from forex_assets.core.deployment.config_store import ConfigStore

    seeds = _seeds(d)
    store = ConfigStore(d / "store", seed_dir=seeds)
    path = store.root / "chronos_7d.json"
    path.write_text(path.read_text().replace('"context_length": 180', '"context_length": 90'))
    reopened = ConfigStore(d / "store", seed_dir=seeds)
    return "; ".join(reopened.repairs)


def stale_validation(d: Path) -> str:
    from forex_assets.core.deployment.config_store import ConfigStore
    from forex_assets.core.deployment.deploy import deploy_from_report
    from forex_assets_tests.test_config_store_guards import _report

    store = ConfigStore(d / "store", seed_dir=_seeds(d))
    v1 = store.current_version("7d")
    _, v2, _ = deploy_from_report(store, _report(90, v1.id))
    candidate = _report(270, v2.id)
    store.rollback("7d", to_version=v1.id, reason="operator")
    return _store_error(lambda: deploy_from_report(store, candidate))


def rollback_to_same_content(d: Path) -> str:
    from forex_assets.core.deployment.config_store import ConfigStore

    store = ConfigStore(d / "store", seed_dir=_seeds(d))
    current = store.current_version("7d")
    return _store_error(lambda: store.rollback("7d", to_version=current.id, reason="operator"))


GARBAGE = b"this is not an SQLite database, whatever its name says\n" * 40


def corrupt_backtest_cache(d: Path) -> str:
    from forex_assets.core.backtest.cache import ForecastCache
    from forex_assets.core.corrupt_files import collect_set_aside

    path = d / "backtest_cache.sqlite"
    path.write_bytes(GARBAGE)
    with collect_set_aside() as events:
        ForecastCache(path).count()
    return " | ".join(e.message() for e in events)


def corrupt_forecast_history(d: Path) -> str:
    from forex_assets.core.corrupt_files import CorruptFileError
    from forex_assets.core.forecasting.history import ForecastHistory

    path = d / "forecast_history.sqlite"
    path.write_bytes(GARBAGE)
    try:
        ForecastHistory(path)
    except CorruptFileError as error:
        return str(error)
    return "(opened)"


def torn_optuna_journal(d: Path) -> str:
    import optuna

    from forex_assets.core.corrupt_files import collect_set_aside
    from forex_assets.core.recalibration.search import open_storage, study_journal_path

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = "7d-abc-2024-01-31"
    study = optuna.create_study(study_name=name, storage=open_storage(d, name), load_if_exists=True)
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=3)
    with open(study_journal_path(d, name), "ab") as handle:
        handle.write(b'{"op_code":4,"worker_id":"w","study_id":0,"datetime_st')
    with collect_set_aside() as events:
        open_storage(d, name)
    return " | ".join(e.message() for e in events)


def truncated_weights(d: Path) -> str:
    from forex_assets.core.models.loading import MODELS_DIR, ModelLoadError, load_pipeline

    target = d / "checkpoint"
    shutil.copytree(MODELS_DIR / "usdclp-chronos2-mini", target)
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100_000])
    try:
        load_pipeline(str(target))
    except ModelLoadError as error:
        return str(error)
    return "(loaded)"


def invalid_search_space(d: Path) -> str:
    from forex_assets.core.recalibration.search_space import SearchSpaceError, load_search_space

    path = d / "search_space_7d.json"
    document = json.loads((ROOT / "configs" / "search_space_7d.json").read_text())
    path.write_text(json.dumps(document | {"context_length": [5, 180]}))
    try:
        load_search_space(path, expected_horizon="7d")
    except SearchSpaceError as error:
        return str(error)
    return "(loaded)"


def _cli(*args: str) -> str:
    from click.testing import CliRunner

    from forex_assets.cli.main import cli

    result = CliRunner().invoke(cli, list(args))
    return f"exit {result.exit_code}: {result.stderr.strip()}"


def replay_csv_without_path(d: Path) -> str:
    return _cli("replay", "--source", "csv")


def replay_header_only_csv(d: Path) -> str:
    path = _csv(d, "date,usdclp\n")
    return _cli("replay", "--source", "csv", "--csv-path", str(path), "--out", str(d / "out"))


def replay_unwritable_out(d: Path) -> str:
    blocker = d / "not_a_directory"
    blocker.write_text("a file where the output directory should go\n")
    return _cli("replay", "--out", str(blocker / "report"))


CASES: tuple[Case, ...] = (
    Case("prices", "empty CSV file", "refused, nothing written", empty_csv),
    Case("prices", "CSV with a header and no rows", "refused, nothing written", header_only_csv),
    Case("prices", "decimal commas in a comma-separated CSV (`878,01` unquoted)", "refused", decimal_comma_unquoted),
    Case(
        "prices",
        "ambiguous number (`878,010`: 878.01 or 878010?)",
        "refused until csv_decimal is set",
        ambiguous_number,
    ),
    Case("prices", "Chilean export: `;`, `dd-mm-yyyy`, `1.012,50`, Latin-1", "loaded as written", chilean_export),
    Case("prices", "last line torn (file cut mid-write)", "refused", torn_last_line),
    Case("prices", "prices 100 times too high", "refused by the data contract", prices_100x),
    Case("prices", "duplicate date", "refused by the data contract", duplicate_date),
    Case("prices", "a gap of more than 10 business days", "refused by the data contract", long_gap),
    Case("prices", "a price that is not a number (`NaN`)", "refused", not_a_number),
    Case("configuration", "seed JSON with a syntax error", "refused, no store created", invalid_seed_json),
    Case("configuration", "seed with `context_length: 0` on first set-up", "refused, no store left", seed_out_of_range),
    Case("configuration", "search space with an invalid context length", "refused", invalid_search_space),
    Case(
        "config store",
        "`status`/`history` on a half-made store (interrupted set-up)",
        "read only: nothing changed",
        half_made_store_read,
    ),
    Case(
        "config store",
        "hand edit of a live configuration file",
        "put back on the next writer's open, edit kept, alerted",
        hand_edit_on_writer_open,
    ),
    Case(
        "config store",
        "deploy of a report validated against a version no longer deployed",
        "refused, nothing changed, alerted",
        stale_validation,
    ),
    Case(
        "config store",
        "rollback to the configuration already deployed",
        "refused, no backup left",
        rollback_to_same_content,
    ),
    Case(
        "state files",
        "corrupt `backtest_cache.sqlite`",
        "set aside, rebuilt empty, work goes on",
        corrupt_backtest_cache,
    ),
    Case(
        "state files",
        "corrupt `forecast_history.sqlite`",
        "refused (state, not a cache), file left as it is",
        corrupt_forecast_history,
    ),
    Case(
        "state files",
        "Optuna journal torn by a killed search",
        "copy kept, journal cut to its intact records",
        torn_optuna_journal,
    ),
    Case("model", "truncated `model.safetensors`", "refused, file named", truncated_weights),
    Case(
        "replay", "`replay --source csv` without `--csv-path`", "exit 2 before the first day", replay_csv_without_path
    ),
    Case("replay", "`replay` on a header-only CSV", "exit 2 before the first day, no output", replay_header_only_csv),
    Case("replay", "`replay --out` not writable", "exit 2 before the first day", replay_unwritable_out),
)

_PLACEHOLDERS = (
    (re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}"), "<version>"),
    (re.compile(r"\d{8}T\d{6,12}Z"), "<stamp>"),
    (re.compile(r"\b[0-9a-f]{8}\b(?=\)|:|;|,| )"), "<commit>"),
)


def normalise(message: str, directory: Path) -> str:
    message = message.replace(str(directory.resolve()), "<dir>").replace(str(directory), "<dir>")
    message = message.replace(str(ROOT), "<repo>")
    for pattern, placeholder in _PLACEHOLDERS:
        message = pattern.sub(placeholder, message)
    return " ".join(message.split())


def observe(case: Case) -> str:
    """The case's message, normalised."""
    with tempfile.TemporaryDirectory(prefix="forex_reliability_") as directory:
        path = Path(directory)
        return normalise(case.provoke(path), path)


def render_table(messages: list[str]) -> str:
    lines = [
        START,
        "| area | bad input or fault | what happens | what the user sees |",
        "|---|---|---|---|",
    ]
    for case, message in zip(CASES, messages, strict=True):
        shown = message.replace("|", "\\|")
        lines.append(f"| {case.area} | {case.what} | {case.outcome} | {shown} |")
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
    table = render_table([observe(case) for case in CASES])
    if args.write_readme:
        write_readme(table)
    print(table)


if __name__ == "__main__":
    main()
