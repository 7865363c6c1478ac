"""Creating the config store (issue 14, item 1): atomic, a refused seed leaves nothing behind, a half-made store
is rebuilt on a writer's open (what was there kept aside), and a kill -9 at any moment of the creation leaves a
store that opens."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forex_assets.core.deployment.config_store import ConfigStore, UnusableStoreError
from forex_assets.core.forecasting.config import ConfigError, parse_config
from forex_assets.core.working_area import PROJECT_ROOT, SEED_CONFIGS_DIR
from forex_assets_tests.test_operator_view import invoke, one_line_error

HORIZONS = ("7d", "15d", "30d", "90d")


def _seeds(directory: Path, horizons=HORIZONS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for h in horizons:
        shutil.copy2(SEED_CONFIGS_DIR / f"chronos_{h}.json", directory / f"chronos_{h}.json")
    return directory


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_seeded(store: ConfigStore, seeds: Path, horizons=HORIZONS) -> None:
    for h in horizons:
        assert store.read(h) == parse_config(json.loads((seeds / f"chronos_{h}.json").read_text()))
    assert [v.record.action for v in store.history(horizons[0])] == ["initialise"]
    assert not store.repo.is_dirty(untracked_files=True)
    assert ConfigStore(store.root, read_only=True).damage == []


def test_a_refused_seed_leaves_no_store_and_the_fixed_seed_then_works(tmp_path):
    seeds = _seeds(tmp_path / "configs")
    good = (seeds / "chronos_7d.json").read_text()
    (seeds / "chronos_7d.json").write_text(json.dumps(json.loads(good) | {"context_length": 0}))
    root = tmp_path / "area" / "config_store"
    with pytest.raises(ConfigError) as refused:
        ConfigStore(root, seed_dir=seeds)
    assert str(refused.value).startswith(f"{seeds / 'chronos_7d.json'}: invalid Chronos configuration: ")
    assert "field 'context_length': Input should be greater than or equal to 16" in str(refused.value)
    assert "fix the file and run again" in str(refused.value)
    # nothing half-made: no store, no build directory beside it (only the creation lock file)
    assert [p.name for p in root.parent.iterdir()] == [".config_store.lock"]
    with pytest.raises(UnusableStoreError, match="no configuration store here"):
        ConfigStore(root, read_only=True)

    (seeds / "chronos_7d.json").write_text(good)  # the operator fixes the seed and runs again
    store = ConfigStore(root, seed_dir=seeds)
    assert store.created and store.repairs == []
    _assert_seeded(store, seeds)
    again = ConfigStore(root, seed_dir=seeds)  # every later run opens it
    assert not again.created and again.repairs == [] and again.current_version("7d") == store.current_version("7d")


def test_the_reproduction_through_the_operator_commands(tmp_path, monkeypatch):
    """As an operator meets it: a first run refused by a bad seed, `forex-assets status` and `history` answer in
    one line (no traceback), the seed is fixed, the next run creates the store and the commands work."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("FOREX_ASSETS_HOME", raising=False)
    monkeypatch.delenv("FOREX_CONFIG_STORE_DIR", raising=False)
    seeds = _seeds(tmp_path / "configs")
    good = (seeds / "chronos_7d.json").read_text()
    (seeds / "chronos_7d.json").write_text(good.replace('"context_length": 180', '"context_length": 0'))
    root = home / "forex_assets" / "config_store"  # where the working area keeps it
    with pytest.raises(ConfigError, match="context_length"):
        ConfigStore(root, seed_dir=seeds)
    line = one_line_error(invoke("status"))
    assert line.startswith(f"forex-assets status: no forex_assets config store at {root} (nothing has run")
    (seeds / "chronos_7d.json").write_text(good)
    ConfigStore(root, seed_dir=seeds)
    status = invoke("status")
    assert status.exit_code == 0 and "Traceback" not in status.output
    history = invoke("history", "--horizon", "7d")
    assert history.exit_code == 0 and " seed " in history.stdout and "initialise configuration store" in history.stdout


def _git_init_without_commit(root: Path) -> None:  # what the earlier code left when a seed was refused
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)
    (root / ".gitignore").write_text("backups/\n.locks/\n.*.tmp\n")
    (root / "chronos_7d.json").write_text('{"horizon": "7d"}')


def _interrupted_git_init(root: Path) -> None:  # a kill in the first milliseconds of `git init`
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/master\n")


def _files_without_git(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "chronos_7d.json").write_text("{}")


HALF_MADE = {
    "a repository without a commit": (
        _git_init_without_commit,
        "its git repository has no commit (an interrupted first set-up)",
    ),
    "an interrupted git init": (
        _interrupted_git_init,
        "its git repository has no commit (an interrupted first set-up)",
    ),
    "files without .git": (_files_without_git, "it is not a git repository (no .git)"),
}


@pytest.mark.parametrize("kind", list(HALF_MADE))
def test_a_half_made_store_is_rebuilt_on_a_writers_open_and_kept_aside(tmp_path, kind):
    make, detail = HALF_MADE[kind]
    root, seeds = tmp_path / "config_store", _seeds(tmp_path / "configs")
    make(root)
    before = _tree(root)
    with pytest.raises(UnusableStoreError) as refused:  # a reader says what is wrong, and changes nothing
        ConfigStore(root, read_only=True)
    assert str(refused.value).startswith(f"{root}: {detail}") and "nothing was changed" in str(refused.value)
    assert _tree(root) == before

    store = ConfigStore(root, seed_dir=seeds)
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("config_store.broken-")]
    assert store.created and store.repairs == [
        f"rebuilt the configuration store from {seeds}: {detail}; what was there is kept in {aside}"
    ]
    assert _tree(aside) == before  # kept as it was
    _assert_seeded(store, seeds)
    assert not [p for p in tmp_path.iterdir() if ".new-" in p.name]


@pytest.mark.parametrize("leftover", ["nothing", ".locks only"])
def test_an_empty_directory_is_simply_made_into_a_store(tmp_path, leftover):
    root, seeds = tmp_path / "config_store", _seeds(tmp_path / "configs", ("7d",))
    root.mkdir()
    if leftover == ".locks only":
        (root / ".locks").mkdir()
        (root / ".locks" / "store.lock").write_text("")
    store = ConfigStore(root, seed_dir=seeds)
    assert store.created and store.repairs == []  # nothing was there to keep
    assert sorted(p.name for p in tmp_path.iterdir()) == [".config_store.lock", "config_store", "configs"]
    _assert_seeded(store, seeds, ("7d",))


def test_a_store_with_history_that_git_cannot_read_is_refused_not_rebuilt(tmp_path):
    root, seeds = tmp_path / "config_store", _seeds(tmp_path / "configs", ("7d",))
    ConfigStore(root, seed_dir=seeds)
    (root / ".git" / "HEAD").unlink()
    before = _tree(root)
    for read_only in (True, False):
        with pytest.raises(UnusableStoreError, match="has history but git cannot read it") as refused:
            ConfigStore(root, seed_dir=seeds, read_only=read_only)
        assert "it is not rebuilt automatically" in str(refused.value)
    assert _tree(root) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        ".config_store.lock",
        "config_store",
        "configs",
    ]


def test_a_directory_that_is_not_a_store_is_never_moved_aside(tmp_path):
    root, seeds = tmp_path / "somewhere", _seeds(tmp_path / "configs", ("7d",))
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)  # even a git repository without a commit
    before = _tree(root)
    for read_only in (True, False):
        with pytest.raises(UnusableStoreError) as refused:
            ConfigStore(root, seed_dir=seeds, read_only=read_only)
        assert str(refused.value) == (
            f"{root}: not a configuration store: it holds files a store never has (notes.txt) and a git repository "
            "without a commit; left untouched. Point FOREX_CONFIG_STORE_DIR (or config_store_dir of the working_area "
            "resource) at another directory, or move notes.txt out of it"
        )
    assert _tree(root) == before and not [p for p in tmp_path.iterdir() if ".broken-" in p.name]


def test_a_seed_for_another_horizon_is_refused(tmp_path):
    seeds = _seeds(tmp_path / "configs", ("7d",))
    shutil.copy2(SEED_CONFIGS_DIR / "chronos_30d.json", seeds / "chronos_15d.json")
    with pytest.raises(ConfigError, match=r"chronos_15d.json: field 'horizon': is '30d' but the file is for"):
        ConfigStore(tmp_path / "store", seed_dir=seeds)
    assert not (tmp_path / "store").exists()


# Forks one creator per line read (a directory), each in a process group of its own, making stores in that
# directory one after another until it is killed: the interpreter and the imports start once, not 50 times.
CREATORS = """
import os, sys
from pathlib import Path
from forex_assets.core.deployment.config_store import ConfigStore
seeds = Path(sys.argv[1])
for line in sys.stdin:
    command, _, argument = line.strip().partition(" ")
    if command == "reap":
        os.waitpid(int(argument), 0)
        print("reaped", flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            for i in range(10_000):
                ConfigStore(Path(argument) / f"store_{i:04d}", seed_dir=seeds)
        finally:
            os._exit(0)
    try:
        os.setpgid(pid, pid)  # in the parent too: the group exists before its id is handed out
    except OSError:
        pass
    print(pid, flush=True)
"""


def _index(name: str) -> int | None:
    """store_0007 -> 7; .store_0007.new-xyz (a build directory) -> 7; anything else -> None."""
    stem = name.lstrip(".").split(".")[0]
    return int(stem[6:]) if stem.startswith("store_") and stem[6:].isdigit() else None


def test_kill_9_at_any_moment_of_the_creation_leaves_a_store_that_opens(tmp_path):
    """50 creators, each killed (SIGKILL, with the git it runs) 0-300 ms after it starts making stores one after
    another; then every store it made or was making opens, seeded, with nothing to repair."""
    seeds = _seeds(tmp_path / "configs", ("7d", "30d"))  # a small seed set: more creations per second
    rng = random.Random(14)
    interrupted, stores = 0, 0
    server = subprocess.Popen(
        [sys.executable, "-c", CREATORS, str(seeds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )

    def ask(line: str) -> str:
        server.stdin.write(line + "\n")
        server.stdin.flush()
        return server.stdout.readline().strip()

    try:
        for trial in range(50):
            base = tmp_path / f"trial_{trial:02d}"
            base.mkdir()
            pid = int(ask(f"create {base}"))
            time.sleep(rng.uniform(0.0, 0.3))
            os.killpg(pid, signal.SIGKILL)  # as in a crash
            assert ask(f"reap {pid}") == "reaped"
            left = [p.name for p in base.iterdir()]
            interrupted += any(".new-" in name for name in left)  # killed while building
            indices = [i for i in map(_index, left) if i is not None]
            for i in range(max(indices, default=0) + 1):  # each store made, and the one being made at the kill
                store = ConfigStore(base / f"store_{i:04d}", seed_dir=seeds)
                where = (trial, i)
                assert store.read("7d").context_length == 180 and store.read("30d").context_length == 365, where
                assert store.repairs == [], (where, store.repairs)  # never half-made: nothing to rebuild
                assert not store.repo.is_dirty(untracked_files=True), where
                stores += 1
            assert not [name for name in os.listdir(base) if ".new-" in name], trial  # build leftovers cleaned
    finally:
        server.stdin.close()
        server.wait(timeout=30)
        server.stdout.close()
    assert stores > 50, stores  # some creators made several stores before their kill
    assert interrupted >= 10, interrupted  # many kills did land in the middle of a build
