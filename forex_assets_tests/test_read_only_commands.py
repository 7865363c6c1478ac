"""The read-only commands (`forex-assets status`, `history`, `forecasts`) on a real instance (one cycle of
`forex-assets run --horizons 7d`: forecasts, the drift report, trigger decisions, an alert):

* a $FOREX_STATE_DATABASE_URL that names nothing (not a URL, a server that does not answer, a SQLite file that
  is not there) is one line naming the variable and the URL, exit status 2, and nothing is created on disk;
* a read-only copy of the instance (a read-only bind mount where this machine allows one, else files without
  write permission for a user who is not root) answers exactly as the instance does, and afterwards the copy
  is the same to the byte and to the modification time;
* `forecasts --output` to a place that cannot be written is one line naming it, and leaves no partial file.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa

from forex_assets.core.horizons import horizon_steps
from forex_assets.core.storage.tables import PARTS
from forex_assets_tests.cli_home import CLEARED, FOREX_ASSETS, area, instance_home

COMMANDS = (("status",), ("history", "--horizon", "7d"), ("forecasts", "--horizon", "7d"))
VARIABLE = "$FOREX_STATE_DATABASE_URL"
# the sh script run in a private mount namespace: $1 bound read-only on $2, then the command that follows
READ_ONLY_VIEW = 'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && shift 2 && exec "$@"'


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in CLEARED} | {"DAGSTER_HOME": str(home)} | extra


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)


def _in_parallel(calls) -> list[subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda call: _run(*call), calls))


def _one_line(done: subprocess.CompletedProcess) -> str:
    """The refusal: exit status 2, nothing on stdout, one line on stderr (no traceback)."""
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout, done.stderr)
    [line] = done.stderr.splitlines()
    return line


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every directory and file under ``root``, a file with its bytes and modification time (not its mode: the
    fallback of :func:`_read_only` changes it)."""
    return {
        str(path.relative_to(root)): "dir" if path.is_dir() else (path.read_bytes(), path.lstat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> Path:
    """One real cycle on a fresh instance (~30 s): every store status, history and forecasts read has rows."""
    home = instance_home(tmp_path_factory.mktemp("read_only_commands"))
    done = _run([str(FOREX_ASSETS), "run", "--horizons", "7d"], _env(home))
    assert done.returncode == 0, done.stdout + done.stderr
    names = {p.name for p in area(home).iterdir()}
    assert {"forecast_history.sqlite", "trigger_decisions.sqlite", "alerts.sqlite"} <= names
    return home


def _private_mounts() -> list[str]:
    """The command prefix of a private mount namespace (as root, or in a user namespace of one's own)."""
    return ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])


@cache
def _read_only_view() -> list[str] | None:
    """The command prefix that runs ``PREFIX SRC MNT COMMAND...`` with MNT a read-only bind mount of SRC in a
    private mount namespace, if this machine allows it; else None."""
    prefix = [*_private_mounts(), "sh", "-c", READ_ONLY_VIEW, "sh"]
    probe = Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        done = subprocess.run(
            [*prefix, str(probe), str(probe), "sh", "-c", '! touch "$0/.read_only_probe" 2>/dev/null', str(probe)],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if done.returncode == 0 else None


def _read_only(copy: Path, mount_point: Path):
    """(home to point DAGSTER_HOME at, argv prefix) that make ``copy`` read-only for the commands: a read-only
    bind mount of it on ``mount_point``, else (not root) its files without write permission."""
    view = _read_only_view()
    if view is not None:
        mount_point.mkdir()
        return mount_point, [*view, str(copy), str(mount_point)]
    if os.geteuid() == 0:
        pytest.skip("no read-only bind mount here (unshare --mount refused) and root ignores permission bits")
    subprocess.run(["chmod", "-R", "a-w", str(copy)], check=True)
    return copy, []


def _normalized(text: str, home: Path) -> str:
    """Output without what differs between two runs a few seconds apart: the home, status's time and ages."""
    text = text.replace(str(home), "HOME")
    text = re.sub(r"\(HOME, \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", "(HOME, NOW)", text)
    return re.sub(r"\d+ (min|h|d) ago", "AGE ago", text)


# --------------------------------------------------------------------------- a state database URL that names nothing


def test_a_state_database_url_that_names_nothing_is_one_line_and_creates_nothing(instance, tmp_path):
    before = _snapshot(instance)
    mistyped = tmp_path / "typo" / "state" / "state.db"
    urls = {
        "not a url": "is not a database URL",
        "postgresql://forex:s3cret@127.0.0.1:1/dagster": "cannot connect",
        "sqlite:////proc/state.db": "/proc/state.db: no such database file",
        f"sqlite:///{mistyped}": f"{mistyped}: no such database file",
    }
    calls = [
        ([str(FOREX_ASSETS), *command], _env(instance, FOREX_STATE_DATABASE_URL=url))
        for url in urls
        for command in COMMANDS
    ]
    for (argv, env), done in zip(calls, _in_parallel(calls), strict=True):
        line = _one_line(done)
        url = env["FOREX_STATE_DATABASE_URL"]
        shown = url.replace(":s3cret@", ":***@")
        assert line.startswith(f"forex-assets {argv[1]}: {VARIABLE} ({shown}): "), line
        assert urls[url] in line and "s3cret" not in line, line
    assert not (tmp_path / "typo").exists()  # no directory, no database made where the URL points
    assert not Path("/proc/state.db").exists()
    assert _snapshot(instance) == before  # and nothing written in the instance


def test_a_postgresql_state_database_is_only_read(instance, tmp_path):
    """Production's state database, read in read-only sessions: one where forex_assets never ran has nothing
    recorded and is left without a schema of ours (no migration on a read); one with forecasts exports them."""
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
        pytest.skip("PostgreSQL's server binaries are not installed (apt-get install postgresql)")
    from forex_assets.core.forecasting.history import ForecastHistory
    from forex_assets_tests.postgres_cluster import PostgresCluster, query

    cluster = PostgresCluster().start()
    try:
        fresh, recorded = cluster.new_database("fresh"), cluster.new_database("recorded")
        source = f"file:{area(instance) / 'forecast_history.sqlite'}?mode=ro"
        writer = ForecastHistory(tmp_path / "unused.sqlite", database_url=recorded)  # migrates, as a run would
        with closing(sqlite3.connect(source, uri=True)) as local, writer.database.write() as db:
            for table in PARTS["forecast_history"]:
                cursor = local.execute(f"SELECT * FROM {table.name}")
                names = [column[0] for column in cursor.description]
                db.execute(sa.insert(table), [dict(zip(names, row, strict=True)) for row in cursor])
        calls = [([str(FOREX_ASSETS), *c], _env(instance, FOREX_STATE_DATABASE_URL=fresh)) for c in COMMANDS]
        calls.append(([str(FOREX_ASSETS), *COMMANDS[2]], _env(instance, FOREX_STATE_DATABASE_URL=recorded)))
        status, history, nothing, exported = _in_parallel(calls)
        assert status.returncode == 0 and history.returncode == 0, status.stderr + history.stderr
        row_7d = next(line for line in status.stdout.splitlines() if line.startswith("7d "))
        assert "HIGH (" in row_7d and "never" in row_7d and row_7d.endswith("none")  # no decision, no alert there
        assert "decision" not in history.stdout
        assert _one_line(nothing) == "forex-assets forecasts: no 7d forecasts recorded in the state database"
        assert query(fresh, "SELECT schema_name FROM information_schema.schemata WHERE schema_name = 'forex'") == []
        assert exported.returncode == 0, exported.stderr
        local = _run([str(FOREX_ASSETS), *COMMANDS[2]], _env(instance))
        assert exported.stdout == local.stdout and exported.stdout.count("\n7d,") == horizon_steps("7d")
    finally:
        cluster.stop()


# --------------------------------------------------------------------------- a read-only copy of the instance


def test_a_read_only_copy_answers_as_the_instance_and_is_left_as_it_was(instance, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(instance, copy, symlinks=True)
    before = _snapshot(copy)
    home, prefix = _read_only(copy, tmp_path / "read_only_view")
    try:
        calls = [([str(FOREX_ASSETS), *c], _env(instance)) for c in COMMANDS]
        calls += [([*prefix, str(FOREX_ASSETS), *c], _env(home)) for c in COMMANDS]
        results = _in_parallel(calls)
    finally:
        if not prefix:  # the fallback's permissions, for the cleanup
            subprocess.run(["chmod", "-R", "u+w", str(copy)], check=True)
    originals, copies = results[: len(COMMANDS)], results[len(COMMANDS) :]
    for command, original, read_only in zip(COMMANDS, originals, copies, strict=True):
        assert original.returncode == 0, original.stderr
        assert read_only.returncode == 0 and read_only.stderr == "", (command, read_only.stderr)
        assert _normalized(read_only.stdout, home) == _normalized(original.stdout, instance), command
    status = copies[0].stdout.splitlines()
    row_7d = next(line for line in status if line.startswith("7d "))
    assert "HIGH (" in row_7d and "(drift, schedule)" in row_7d and "validation FAILED" in row_7d  # real reports
    assert "decision    optimize (drift, schedule)" in copies[1].stdout
    assert copies[2].stdout.count("\n7d,") == horizon_steps("7d")  # each step of the 7d forecast
    assert _snapshot(copy) == before  # the same files, bytes and times: nothing created, nothing written


def _live_copy(history: Path, directory: Path, with_shm: bool) -> None:
    """``history`` copied as a backup of a live instance is: while a process has rows in the -wal not yet folded
    into the file (another origin: 2026-11-06)."""
    directory.mkdir()
    shutil.copy(history, directory / history.name)
    with closing(sqlite3.connect(directory / history.name, isolation_level=None)) as db:
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("INSERT INTO forecast_runs SELECT pair, horizon, '2026-11-06', last_price, config_version, "
                   "checkpoint, config_json, inference_seconds, created_at FROM forecast_runs")  # fmt: skip
        db.execute("INSERT INTO forecast_steps SELECT pair, horizon, '2026-11-06', step, target_date, q0_025, q0_1, "
                   "q0_5, q0_9, q0_975 FROM forecast_steps")  # fmt: skip
        backup = directory.with_name(directory.name + "_backup")
        backup.mkdir()
        for suffix in ("", "-wal") + (("-shm",) if with_shm else ()):
            shutil.copy(directory / (history.name + suffix), backup / (history.name + suffix))
    shutil.rmtree(directory)
    backup.rename(directory)


def test_a_backup_with_rows_still_in_the_wal_exports_them_and_is_left_as_it_was(instance, tmp_path):
    """A WAL needs its -shm file to be read. With one, the -wal is read in place by a read-only connection
    (which never folds it into the file: a read-write reader closing last would); without one, from a private
    copy (never by skipping its rows). On a writable copy, and on a read-only mount (where SQLite cannot make a
    -shm file) where this machine allows one."""
    backups = tmp_path / "backups"
    backups.mkdir()
    history = area(instance) / "forecast_history.sqlite"
    names = ("wal_and_shm", "wal_only")
    for name in names:
        _live_copy(history, backups / name, with_shm=name == "wal_and_shm")
    before = _snapshot(backups)
    forecasts = [str(FOREX_ASSETS), "forecasts", "--horizon", "7d", "--since", "2026-01-01"]
    calls = [(forecasts, _env(instance, FOREX_ASSETS_HOME=str(backups / name))) for name in names]
    view = _read_only_view()
    if view is not None:
        mount_point = tmp_path / "view"
        mount_point.mkdir()
        prefix = [*view, str(backups), str(mount_point)]
        calls += [([*prefix, *forecasts], _env(instance, FOREX_ASSETS_HOME=str(mount_point / n))) for n in names]
    steps = horizon_steps("7d")
    for done in _in_parallel(calls):
        assert done.returncode == 0, done.stderr
        assert [line.split(",")[1] for line in done.stdout.splitlines()[1:]] == ["2026-10-30"] * steps + [
            "2026-11-06"
        ] * steps

    # the same files, the database and its -wal to the byte (the -shm, SQLite's index of the -wal, is shared
    # memory that a reader of a writable copy updates, as any reader does)
    def shm_present(snapshot):
        return {name: "present" if name.endswith("-shm") else kept for name, kept in snapshot.items()}

    assert shm_present(_snapshot(backups)) == shm_present(before)


def test_files_of_an_older_version_are_read_as_they_are_not_upgraded(instance, tmp_path):
    """The state files as the first versions wrote them (no migration version; decisions without recorded_at):
    what can be read is (the forecasts), what cannot says which command upgrades them; nothing is written."""
    from forex_assets_tests.test_state_storage_common import write_legacy_files

    copy = tmp_path / "copy"
    shutil.copytree(instance, copy, symlinks=True)
    for name in ("forecast_history.sqlite", "trigger_decisions.sqlite", "alerts.sqlite"):
        (area(copy) / name).unlink()
    write_legacy_files(area(copy))
    before = _snapshot(area(copy))
    exported, history, status = _in_parallel([([str(FOREX_ASSETS), *c], _env(copy)) for c in reversed(COMMANDS)])
    assert exported.returncode == 0, exported.stderr
    assert [line.split(",")[:3] for line in exported.stdout.splitlines()[1:]] == [
        ["7d", "2023-05-02", str(step)] for step in (1, 2, 3)
    ]
    for done in (status, history):
        line = _one_line(done)
        assert str(area(copy) / "trigger_decisions.sqlite") in line and "no such column: decisions.recorded_at" in line
        assert line.endswith(
            "Its tables were written by an older version of forex_assets and this command only reads them: "
            "`forex-assets run` (or any run of the instance) upgrades them in place; then run this again."
        )
    assert _snapshot(area(copy)) == before


# --------------------------------------------------------------------------- forecasts --output


def test_an_output_that_cannot_be_written_is_one_line_naming_it(instance, tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "f.csv"
    calls = [
        ([str(FOREX_ASSETS), "forecasts", "--horizon", "7d", "--output", str(target)], _env(instance))
        for target in ("/nonexistent/dir/f.csv", missing, "/dev/full")
    ]
    lines = [_one_line(done) for done in _in_parallel(calls)]
    assert lines == [
        "forex-assets forecasts: cannot write --output /nonexistent/dir/f.csv: No such file or directory",
        f"forex-assets forecasts: cannot write --output {missing}: No such file or directory",
        "forex-assets forecasts: cannot write --output /dev/full: No space left on device",
    ]
    assert not (tmp_path / "no").exists()


def test_a_full_disk_leaves_no_partial_output_file(instance, tmp_path):
    """--output on a full file system (a tmpfs of one page, filled): no truncated export is left behind."""
    if _read_only_view() is None:
        pytest.skip("no private mount namespace here (unshare --mount refused)")
    full = tmp_path / "full"
    full.mkdir()
    script = (
        'mount -t tmpfs -o size=4k tmpfs "$0" && head -c 4096 /dev/zero > "$0/filler" && '
        '"$@" --output "$0/f.csv"; echo "exit=$?"; ls -A "$0"'
    )
    argv = [*_private_mounts(), "sh", "-c", script, str(full), str(FOREX_ASSETS), "forecasts", "--horizon", "7d"]
    done = _run(argv, _env(instance))
    assert done.stdout.splitlines() == ["exit=2", "filler"], done.stdout + done.stderr
    assert done.stderr == f"forex-assets forecasts: cannot write --output {full}/f.csv: No space left on device\n"
