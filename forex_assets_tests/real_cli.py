"""The real commands in subprocesses, as an operator runs them, and what a command did.

``forex-assets ...`` (and Dagster's own ``dagster asset materialize``, for what only resource configuration can
reach) run on a Dagster instance home of their own: :func:`prepared_instance` is one made by
``forex-assets run --no-recalibration --horizons 7d`` once per process, which a case copies before it writes;
:func:`searched_instance` adds a (tiny) search and validation of 7d. :func:`observe` runs a command and returns
:class:`Observed`: exit status, output, and what it changed, read from the files themselves: files created,
changed or removed (the directory tree before and after, by content), runs recorded in the instance (with their
status), alert rows, trigger decisions, forecasts recorded and config store commits.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FOREX_ASSETS = BIN / "forex-assets"
DAGSTER = BIN / "dagster"
DEFINITIONS = ("-m", "forex_assets.definitions")

#: settings of the developer's shell that must not reach a command under test (production database, remote, SMTP)
CLEARED = (
    "DAGSTER_HOME",
    "FOREX_ASSETS_HOME",
    "FOREX_CACHE_DIR",
    "FOREX_CONFIG_STORE_DIR",
    "FOREX_CONFIG_STORE_REMOTE",
    "FOREX_STATE_DATABASE_URL",
    "FOREX_PAIRS_FILE",
    "FOREX_SMTP_HOST",
    "FOREX_ALERT_TO",
    "FOREX_ASSETS_ALLOW_DOWNLOAD",
    "FOREX_POLICY_FILE",
)
#: Dagster's own part of an instance home (run and event storage, IO manager values, logs): summarised as the
#: runs recorded, not listed file by file
DAGSTER_PARTS = ("history", "storage", "schedules", "logs", ".logs_queue", ".telemetry", ".nux")
#: the project's state databases: summarised as the rows added, not as "file changed"
STATE_FILES = ("alerts.sqlite", "trigger_decisions.sqlite", "forecast_history.sqlite")
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def environment(home: Path | None, **env: str) -> dict[str, str]:
    """The command's environment: this one without :data:`CLEARED`, no downloads, DAGSTER_HOME=home, ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    base |= {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if home is not None:
        base["DAGSTER_HOME"] = str(home)
    return base | env


def invoke(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``argv`` (its first word "forex-assets" or "dagster": this virtualenv's) in a subprocess, text output."""
    program = {"forex-assets": FOREX_ASSETS, "dagster": DAGSTER}[argv[0]]
    return subprocess.run(
        [str(program), *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


# ---------------------------------------------------------------------------------------------- prepared instances

_KEEP = Path(tempfile.mkdtemp(prefix="forex_prepared_"))
atexit.register(shutil.rmtree, _KEEP, True)

#: a search space small enough for a search of seconds (2 trials, 3 origins) and an approval policy every
#: candidate passes: what the searched instance and the cases that search again run with
TINY_SEARCH = {
    "trial_budget": 2,
    "context_length": [90, 180],
    "preprocessing": ["none"],
    "context_ensembles": [],
    "search_origins": 3,
    "validation_origins": 3,
}
LENIENT_APPROVAL = {
    "min_rmse_improvement_pct": -1e6,
    "min_mape_improvement_pct": -1e6,
    "max_error_std_growth_pct": 1e6,
    "max_inference_time_ratio": 1e6,
    "min_coverage_95": 0.0,
    "max_inference_excess_seconds": 1e6,
    "max_abs_bias_clp": 1e6,
    "max_bias_growth_pct": 1e6,
    "max_improvement_p_value": 1.0,
}


def _checked(done: subprocess.CompletedProcess, what: str) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"preparing {what} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


@functools.cache
def prepared_instance() -> Path:
    """An instance home after ``forex-assets run --no-recalibration --horizons 7d`` (made once per process; copy
    it before writing: :func:`copy_instance`)."""
    home = _KEEP / "prepared"
    _checked(
        invoke(["forex-assets", "run", "--no-recalibration", "--horizons", "7d"], environment(home), _KEEP),
        "the instance",
    )
    return home


def seed_copy(directory: Path, search_space: dict | None = None) -> Path:
    """The repository's seed configurations and search spaces copied to ``directory/configs`` (the 7d search
    space updated with ``search_space``), for ``configs_dir`` of the working_area resource."""
    configs = directory / "configs"
    shutil.copytree(ROOT / "configs", configs)
    if search_space:
        path = configs / "search_space_7d.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | search_space, indent=2) + "\n")
    return configs


def run_config(configs: Path, approval: dict | None = None) -> str:
    """--config-json of `dagster asset materialize`: the working area's seed configurations from ``configs``
    (and a policy file with ``approval``'s thresholds, when given)."""
    resources: dict = {"working_area": {"config": {"configs_dir": str(configs)}}}
    if approval:  # a policy file with these approval thresholds, next to ``configs``
        policy = configs.parent / "approval_policy.json"
        policy.write_text(json.dumps({"name": "approval", "approval": approval}))
        resources["policy"] = {"config": {"policy_file": str(policy)}}
    return json.dumps({"resources": resources})


@functools.cache
def searched_configs() -> Path:
    """The seeds with :data:`TINY_SEARCH` as the 7d search space (kept for the whole process)."""
    return seed_copy(_KEEP / "tiny", TINY_SEARCH)


@functools.cache
def searched_instance() -> Path:
    """:func:`prepared_instance` after a search and a validation of 7d with :data:`TINY_SEARCH` and an approval
    policy every candidate passes (not deployed): a backtest cache, an Optuna journal, a validated report."""
    home = _KEEP / "searched"
    copy_instance(prepared_instance(), home)
    argv = [
        "dagster",
        "asset",
        "materialize",
        *DEFINITIONS,
        "--select",
        "candidate_config,validation_report",
        "--partition",
        "7d|USDCLP",
        "--config-json",
        run_config(searched_configs(), LENIENT_APPROVAL),
    ]
    _checked(invoke(argv, environment(home), _KEEP), "the searched instance")
    return home


def copy_instance(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


def working_area(home: Path) -> Path:
    return home / "forex_assets"


def store_root(home: Path) -> Path:
    return working_area(home) / "config_store"


# ------------------------------------------------------------------------------------------------ observation


def _ignored(relative: Path) -> bool:
    parts = relative.parts
    name = relative.name
    return (
        ".git" in parts
        or ".locks" in parts
        or "__pycache__" in parts
        or name.endswith(".lock")
        or name.endswith(SQLITE_SIDE_FILES)
    )


def _rows(path: Path, query: str) -> frozenset | None:
    """The rows of ``query`` in the SQLite file ``path`` (read only); None when it cannot be read."""
    if not path.is_file() or path.stat().st_size == 0:
        return frozenset()
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            return frozenset(connection.execute(query).fetchall())
    except sqlite3.Error:
        return None


def _commits(store: Path) -> int:
    if not (store / ".git").exists():
        return 0
    done = subprocess.run(["git", "-C", str(store), "rev-list", "--count", "--all"], capture_output=True, text=True)
    return int(done.stdout.strip() or 0) if done.returncode == 0 else 0


@dataclass(frozen=True)
class Snapshot:
    files: dict[str, str]  # path relative to the case directory -> content digest
    runs: dict[str, str]  # run id -> status
    alerts: frozenset | None
    decisions: frozenset | None
    forecasts: frozenset | None
    commits: int


def snapshot(directory: Path, home: Path | None) -> Snapshot:
    """What is in ``directory`` (the case's own directory, the instance home under it): every file by content
    (Dagster's part of the home and the state databases aside), the runs, alerts, decisions, forecasts, commits."""
    files = {}
    dagster_parts = {home / part for part in DAGSTER_PARTS} if home is not None else set()
    state = {working_area(home) / name for name in STATE_FILES} if home is not None else set()
    for path in sorted(directory.rglob("*")) if directory.is_dir() else []:
        relative = path.relative_to(directory)
        if path.is_symlink() or not path.is_file() or _ignored(relative):
            continue
        if any(part == path or part in path.parents for part in dagster_parts):
            continue
        if path in state and _rows(path, "SELECT name FROM sqlite_master") is not None:
            continue  # a readable state database: its rows are compared below
        files[str(relative)] = hashlib.sha1(path.read_bytes()).hexdigest()
    if home is None:
        return Snapshot(files, {}, frozenset(), frozenset(), frozenset(), 0)
    area = working_area(home)
    runs = _rows(home / "history" / "runs.db", "SELECT run_id, status FROM runs") or frozenset()
    return Snapshot(
        files,
        dict(runs),
        _rows(area / "alerts.sqlite", "SELECT id, event, horizon FROM alerts"),
        _rows(area / "trigger_decisions.sqlite", "SELECT id, horizon FROM decisions"),
        _rows(area / "forecast_history.sqlite", "SELECT horizon, origin_date, created_at FROM forecast_runs"),
        _commits(store_root(home)),
    )


def _added(before: frozenset | None, after: frozenset | None) -> list:
    return sorted((after or frozenset()) - (before or frozenset()))


@dataclass(frozen=True)
class Observed:
    """What one command did. Paths are relative to the case directory (the home is ``home/`` in it)."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    created: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    runs: tuple[str, ...]  # the status of each run the command recorded in the instance
    alerts: tuple[str, ...]  # "event horizon" of each alert row it added
    decisions: tuple[str, ...]  # the horizon of each trigger decision it recorded
    forecasts: tuple[str, ...]  # "horizon origin" of each forecast it recorded (or recorded again)
    commits: int  # config store commits it added

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def wrote_nothing(self) -> bool:
        return not (
            self.created
            or self.changed
            or self.removed
            or self.alerts
            or self.decisions
            or self.forecasts
            or self.commits
        )


def observe(
    argv: list[str], directory: Path, home: Path | None, env: dict[str, str] | None = None, timeout: float = 300
) -> Observed:
    """Run ``argv`` with DAGSTER_HOME=home (None: unset) and ``env`` in ``directory`` and compare before/after."""
    before = snapshot(directory, home)
    done = invoke(argv, environment(home, **(env or {})), directory, timeout)
    after = snapshot(directory, home)
    return Observed(
        argv=tuple(argv),
        exit_code=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr,
        created=tuple(sorted(set(after.files) - set(before.files))),
        changed=tuple(sorted(p for p in set(after.files) & set(before.files) if after.files[p] != before.files[p])),
        removed=tuple(sorted(set(before.files) - set(after.files))),
        runs=tuple(status for run, status in sorted(after.runs.items()) if run not in before.runs),
        alerts=tuple(f"{event} {horizon}" for _, event, horizon in _added(before.alerts, after.alerts)),
        decisions=tuple(horizon for _, horizon in _added(before.decisions, after.decisions)),
        forecasts=tuple(f"{horizon} {origin}" for horizon, origin, _ in _added(before.forecasts, after.forecasts)),
        commits=after.commits - before.commits,
    )
