"""A remote whose `main` holds someone else's history (a README, one empty commit) is refused at first use, with
one message naming the remote, what its main holds and what to do; nothing is written locally or remotely
(issue 21, item 11). Real bare remotes on disk; the real `forex-assets run` in a subprocess."""

import subprocess
from pathlib import Path

import pytest

from forex_assets.core.deployment.config_store import ConfigStore, UnusableStoreError
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets_tests.cli_home import area, cli, instance_home, store_root

AUTHOR = ("-c", "user.name=Ana Perez", "-c", "user.email=ana@example.org")
WHAT_TO_DO = (
    "nothing was created or pushed. Point FOREX_CONFIG_STORE_REMOTE (or config_store_remote of the working_area "
    "resource) at the configuration store's remote, or at an empty repository (`git init --bare <path>`), which "
    "the first run seeds from the seed configurations"
)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()


def _foreign_remote(tmp_path: Path, name: str, files: dict[str, str], message: str) -> Path:
    """A bare repository whose main holds one commit by Ana Perez: ``files`` (none: an empty commit)."""
    remote, work = tmp_path / f"{name}.git", tmp_path / f"{name}-work"
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    _git("init", "--quiet", "--initial-branch=main", str(work))
    for file, text in files.items():
        (work / file).write_text(text)
    _git("-C", str(work), "add", "--all")
    _git("-C", str(work), *AUTHOR, "commit", "--quiet", "--allow-empty", "-m", message)
    _git("-C", str(work), "push", "--quiet", str(remote), "main")
    return remote


def _state(remote: Path) -> tuple[str, str]:
    """Every ref and every object of the remote."""
    objects = _git("-C", str(remote), "cat-file", "--batch-all-objects", "--batch-check")
    return _git("-C", str(remote), "for-each-ref"), objects


def test_run_refuses_a_remote_whose_main_holds_a_readme_and_writes_nothing(tmp_path):
    remote = _foreign_remote(tmp_path, "theirs", {"README.md": "# our project\n"}, "Add README")
    home = instance_home(tmp_path)
    before = _state(remote)
    refusal = (
        f"{remote}: its branch main holds someone else's history, not a configuration store's (1 commit by Ana "
        f"Perez, files: README.md; the first commit: 'Add README'); {WHAT_TO_DO}"
    )
    for _ in range(2):  # the same answer every time: nothing was left behind to change it
        run = cli(home, "run", "--no-recalibration", "--horizons", "7d", FOREX_CONFIG_STORE_REMOTE=str(remote))
        assert run.returncode == 1 and "Traceback" not in run.stdout + run.stderr
        [row] = [line for line in run.stdout.splitlines() if line.startswith("7d ")]
        assert row == f"7d      FAILED: forecast 7d: {refusal}"
        assert not store_root(home).exists()
        assert [p.name for p in area(home).iterdir() if "config_store" in p.name] == [".config_store.lock"]
        assert _state(remote) == before


def test_a_remote_whose_main_is_one_empty_commit_is_refused(tmp_path):
    remote = _foreign_remote(tmp_path, "empty", {}, "Initial commit")
    before = _state(remote)
    with pytest.raises(UnusableStoreError) as refused:
        ConfigStore(tmp_path / "store", seed_dir=SEED_CONFIGS_DIR, remote=str(remote))
    assert str(refused.value) == (
        f"{remote}: its branch main holds someone else's history, not a configuration store's (1 commit by Ana "
        f"Perez, no files; the first commit: 'Initial commit'); {WHAT_TO_DO}"
    )
    assert not (tmp_path / "store").exists() and not [p for p in tmp_path.iterdir() if ".new-" in p.name]
    assert _state(remote) == before


def test_a_remote_holding_a_stores_history_pushed_by_hand_is_cloned(tmp_path):
    local = ConfigStore(tmp_path / "old", seed_dir=SEED_CONFIGS_DIR)
    remote = tmp_path / "store.git"
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    _git("-C", str(local.root), "push", "--quiet", str(remote), "HEAD:main")  # README's move of a store's history
    clone = ConfigStore(tmp_path / "clone", seed_dir=SEED_CONFIGS_DIR, remote=str(remote))
    assert clone.created and clone.repo.head.commit == local.repo.head.commit
    assert clone.current_version("7d") == local.current_version("7d")
