"""Making a new store, atomically, and telling a usable store from a half-made one (pure, no Dagster).

A store is built in a directory beside its root (``.<name>.new-<x>``): a git repository, its .gitignore and
the seed configurations, every seed validated before anything is written, in one first commit; then the
directory is renamed to the root. A kill at any moment leaves either no store (the next writer's open
builds it) or a complete one, never a repository without a commit.

A store made before this (in place, not atomically) can be half-made: a directory without ``.git``, a
``.git`` whose ``git init`` was interrupted, or a repository without any commit (a seed that was refused,
or a kill). :func:`condition` tells these apart, reading only; :func:`ensure_store` (a writer's open, under
the creation lock) rebuilds a half-made store and keeps what was there, renamed aside.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import git
from filelock import FileLock

from forex_assets.core.deployment.git_repo import GitRepo, message_text
from forex_assets.core.deployment.history import INITIALISE_SUMMARY, is_store_root, with_trailers
from forex_assets.core.deployment.layout import (
    BACKUPS_DIR,
    GITIGNORE,
    LOCKS_DIR,
    TEMP_GLOB,
    UnusableStoreError,
    aside_path,
    building_prefix,
    config_file_name,
    creation_lock_path,
    utc_stamp,
)
from forex_assets.core.files import fsync_directory
from forex_assets.core.forecasting.config import load_seed
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.working_area import CONFIG_STORE_DIR_ENV

USABLE, ABSENT, EMPTY, HALF_MADE = "usable", "absent", "empty", "half-made"


@dataclass(frozen=True)
class Condition:
    state: str  # usable, absent, empty (nothing but lock files), half-made (rebuilt on a writer's open)
    detail: str = ""  # what is wrong, for half-made


def _has_branch(dot_git: Path) -> bool:
    """Whether any commit was ever made: a branch ref (git's own ``*.lock`` files are not refs)."""
    heads = dot_git / "refs" / "heads"
    if heads.is_dir() and any(p.is_file() and not p.name.endswith(".lock") for p in heads.rglob("*")):
        return True
    packed = dot_git / "packed-refs"
    return packed.is_file() and " refs/heads/" in packed.read_text(errors="replace")


def _store_like(name: str) -> bool:
    """A name a store directory holds (layout.py); anything else means the directory is not a store's."""
    patterns = ("chronos_*.json", TEMP_GLOB)
    return name in (".git", ".gitignore", LOCKS_DIR, BACKUPS_DIR) or any(fnmatch(name, p) for p in patterns)


def is_store_history(repo: GitRepo, rev: str = "HEAD") -> bool:
    """Whether ``rev``'s history is a configuration store's: it starts with the store's first commit
    (history.is_store_root), not with someone else's (a README, an empty commit)."""
    return any(is_store_root(message_text(root)) for root in repo.roots(rev))


def _listed(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")


def _not_a_store(root: Path, holds: str, foreign: list[str]) -> UnusableStoreError:
    """The refusal of a directory that is not a store: what it holds, and what to do (never: empty it)."""
    move = f"move {_listed(foreign)} out of it" if foreign else "move what is there out of it"
    return UnusableStoreError(
        f"{root}: not a configuration store: it holds {holds}; left untouched. Point {CONFIG_STORE_DIR_ENV} (or "
        f"config_store_dir of the working_area resource) at another directory, or {move}"
    )


def condition(root: Path) -> Condition:
    """What is at ``root`` (reads only). A repository with history that git cannot read is not half-made:
    it is refused (UnusableStoreError), never rebuilt, so that no history is put aside by a rebuild.

    A directory with the store's own history is a store whatever else it holds: a file the store never has
    (a ``chronos_7d.json.bak``, an editor's swap file) is damage that a writer's open moves to backups/
    (repair.py). A directory without that history and with such files, or with someone else's history, is
    not a store: refused, never moved aside or rebuilt (it may be anything)."""
    root = Path(root)
    if not root.exists():
        return Condition(ABSENT)
    if not root.is_dir():
        raise UnusableStoreError(f"{root}: is a file, not a configuration store directory")
    entries = [p for p in root.iterdir() if p.name != LOCKS_DIR]
    if not entries:
        return Condition(EMPTY)
    foreign = sorted(p.name for p in entries if not _store_like(p.name))
    dot_git = root / ".git"
    committed = dot_git.is_dir() and _has_branch(dot_git)
    if foreign and not committed:
        repository = "a git repository without a commit" if dot_git.is_dir() else "no git repository"
        raise _not_a_store(root, f"files a store never has ({_listed(foreign)}) and {repository}", foreign)
    if not dot_git.exists():
        return Condition(HALF_MADE, "it is not a git repository (no .git)")
    if not dot_git.is_dir():
        raise UnusableStoreError(f"{root}: .git is not a directory; not a configuration store this code made")
    if not committed:
        return Condition(HALF_MADE, "its git repository has no commit (an interrupted first set-up)")
    try:
        with git.Repo(root) as repo:
            head = repo.head.commit
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError, git.BadName, git.BadObject) as error:
        raise UnusableStoreError(
            f"{root}: its git repository has history but git cannot read it ({type(error).__name__}: {error}); "
            "it is not rebuilt automatically: repair it with git, or move it aside to start again from the seeds"
        ) from None
    if foreign or ".gitignore" not in head.tree:  # every store commits its .gitignore first: checked when odd
        store_repo = GitRepo(root)
        try:
            if not is_store_history(store_repo):
                loose = [name for name in foreign if name not in head.tree]
                extra = f", and files a store never has ({_listed(loose)})" if loose else ""
                described = store_repo.describe()
                holds = f"a git repository whose history is not a configuration store's ({described}){extra}"
                raise _not_a_store(root, holds, [])
        finally:
            store_repo.repo.close()
    return Condition(USABLE)


def read_seeds(seed_dir: Path | None) -> dict[str, str]:
    """The seed files of ``seed_dir`` by name, every one checked (JSON, schema, horizon) before any is used;
    a bad seed is a ConfigError naming the file, the position or field, and what to do."""
    seeds: dict[str, str] = {}
    if seed_dir is None:
        return seeds
    for horizon in HORIZONS:
        source = Path(seed_dir) / config_file_name(horizon)
        if source.is_file():
            load_seed(source, horizon)
            seeds[source.name] = source.read_text()
    return seeds


def build_store(root: Path, seeds: dict[str, str], seed_dir: Path | None) -> None:
    """A complete store at ``root`` (which must not exist) from ``seeds`` (read_seeds): built beside it in
    a directory of its own, then renamed into place; nothing is left behind when it fails."""
    building = Path(tempfile.mkdtemp(prefix=building_prefix(root), dir=root.parent))
    try:
        repo = GitRepo.init(building)
        (building / ".gitignore").write_text(GITIGNORE)
        for name, text in seeds.items():
            (building / name).write_text(text)
        message = with_trailers(f"{INITIALISE_SUMMARY}{seed_dir or 'nothing'}", "initialise")
        repo.commit_paths(message, ".gitignore", *seeds)
        repo.repo.close()
        os.rename(building, root)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    fsync_directory(root.parent)


def ensure_store(
    root: Path, seed_dir: Path | None, make: Callable[[Path], str] | None = None
) -> tuple[bool, list[str]]:
    """Make the store at ``root`` when there is none, or rebuild a half-made one; returns (made, repairs).

    Under the creation lock (beside the root), so one process builds while the others wait and then find
    the store made. Every seed is checked first: a bad one is refused (ConfigError) and nothing is moved.
    What a half-made store held is renamed aside (``<root>.broken-<stamp>``), never deleted.

    ``make`` (a store with a git remote, remote.py) makes a complete store at the path it is given, which must
    not exist, instead of the seeds' store, and returns what it made it from; it is built beside the root and
    renamed into place as the seeds' store is."""
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(creation_lock_path(root)):
        found = condition(root)
        if found.state == USABLE:
            return False, []
        seeds = read_seeds(seed_dir) if make is None else {}
        for stale in root.parent.glob(building_prefix(root) + "*"):  # left by a kill: a copy of seeds at most
            shutil.rmtree(stale, ignore_errors=True)
        if make is None and found.state == EMPTY:
            shutil.rmtree(root)  # nothing but lock files (a store without .git has no writer to hold them)
        if make is None and found.state in (ABSENT, EMPTY):
            build_store(root, seeds, seed_dir)
            return True, []
        ready = root.parent / f"{building_prefix(root)}{os.getpid()}-ready"
        if make is None:
            build_store(ready, seeds, seed_dir)
            source = str(seed_dir or "nothing")
        else:
            source = make(ready)
        if found.state in (ABSENT, EMPTY):
            if found.state == EMPTY:
                shutil.rmtree(root)
            os.rename(ready, root)
            fsync_directory(root.parent)
            return True, []
        aside = aside_path(root, utc_stamp())
        os.rename(root, aside)  # a kill between the two renames leaves no store: the next open builds it
        os.rename(ready, root)
        fsync_directory(root.parent)
        return True, [
            f"rebuilt the configuration store from {source}: {found.detail}; what was there is kept in {aside}"
        ]
