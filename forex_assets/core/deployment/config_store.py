"""Versioned configuration store: one schema-validated JSON per horizon in a directory that is its own git
repository (gitpython).

* Deploy = timestamped backup copy of the current file, atomic write (temp file in the same directory,
  fsync, rename, directory fsync), git commit whose message names horizon, reason, candidate metrics
  and validation baseline.
* A version id is readable: ``<UTC time of the commit>-<short commit>``, e.g. ``20261126T071502Z-3fa2c1d0``.
* Writers are serialised across processes: a per-horizon lock for the whole deploy and a store-wide
  lock around git operations (the index is shared).
* Opening the store repairs what a crash can leave: stray temp files, a stale ``index.lock``, a
  deployed file written but not committed (committed if it validates, restored from HEAD if not). The
  repairs are listed in ``ConfigStore.repairs``.
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import git

from forex_assets.core.files import write_text_atomically
from forex_assets.core.forecasting.config import ChronosConfig, ConfigError, parse_config
from forex_assets.core.horizons import HORIZONS

BACKUPS_DIR = "backups"
LOCKS_DIR = ".locks"
IDENTITY = ("-c", "user.name=forex_assets", "-c", "user.email=forex-assets@localhost")


class ConfigStoreError(RuntimeError):
    """A store operation was refused; the message says what and why. Nothing was changed."""


@dataclass(frozen=True)
class Version:
    id: str  # readable: 20261126T071502Z-3fa2c1d0
    commit: str  # full sha
    committed_at: datetime
    message: str

    @property
    def summary(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


def config_file_name(horizon: str) -> str:
    if horizon not in HORIZONS:
        raise ConfigStoreError(f"unknown horizon {horizon!r}; horizons are {', '.join(HORIZONS)}")
    return f"chronos_{horizon}.json"


def _version(commit: git.Commit) -> Version:
    at = datetime.fromtimestamp(commit.committed_date, tz=UTC)
    return Version(f"{at:%Y%m%dT%H%M%SZ}-{commit.hexsha[:8]}", commit.hexsha, at, commit.message.strip())


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def rollback_target(summary: str) -> str | None:
    """The version a rollback commit restored ("... (from A to B)" -> B), None for other commits."""
    match = re.search(r"\(from (\S+) to (\S+)\)$", summary) if "] rollback:" in summary else None
    return match.group(2) if match else None


def message_fields(message: str) -> dict[str, dict]:
    """The JSON lines of a commit message ("candidate metrics", "validation metrics", "validation baseline")."""
    fields = {}
    for line in message.splitlines()[1:]:
        name, _, value = line.partition(": ")
        if value.startswith("{"):
            try:
                fields[name] = json.loads(value)
            except json.JSONDecodeError:
                continue
    return fields


class ConfigStore:
    def __init__(self, root: Path | str, seed_dir: Path | str | None = None):
        self.root = Path(root)
        self.repairs: list[str] = []
        self.root.mkdir(parents=True, exist_ok=True)
        with self._git_lock():
            if not (self.root / ".git").exists():
                self._initialise(Path(seed_dir) if seed_dir else None)
            self.repo = git.Repo(self.root)
            self._repair()

    # ------------------------------------------------------------------------------ locking

    def _git_lock(self):
        return _flock(self.root / LOCKS_DIR / "store.lock")

    def _horizon_lock(self, horizon: str):
        return _flock(self.root / LOCKS_DIR / f"{horizon}.lock")

    # ------------------------------------------------------------------------------ set-up and repair

    def _git(self, *args: str) -> str:
        """The real git binary (objects and refs written atomically), never gitpython's pure-Python
        object writer, which a kill can leave half-written."""
        return git.Git(self.root).execute(["git", *IDENTITY, *args])

    def _commit_paths(self, message: str, *names: str) -> None:
        self._git("add", "--", *names)
        self._git("commit", "--quiet", "--no-verify", "-m", message, "--", *names)

    def _initialise(self, seed_dir: Path | None) -> None:
        git.Repo.init(self.root)
        (self.root / ".gitignore").write_text(f"{BACKUPS_DIR}/\n{LOCKS_DIR}/\n.*.tmp\n")
        names = [".gitignore"]
        if seed_dir is not None:
            for horizon in HORIZONS:
                source = seed_dir / config_file_name(horizon)
                if source.is_file():
                    parse_config(json.loads(source.read_text()), str(source))  # refuse a bad seed
                    shutil.copy2(source, self.root / source.name)
                    names.append(source.name)
        self._commit_paths(f"initialise configuration store from {seed_dir or 'nothing'}", *names)

    def _repair(self) -> None:
        """Undo or finish what an interrupted writer left. Called under the store lock."""
        for stray in self.root.glob(".*.tmp"):
            stray.unlink(missing_ok=True)
            self.repairs.append(f"removed stray temp file {stray.name}")
        for lock in sorted((self.root / ".git").rglob("*.lock")):  # we hold the store lock: no live writer
            lock.unlink(missing_ok=True)
            self.repairs.append(f"removed stale {lock.relative_to(self.root)}")
        head_tree = self.repo.head.commit.tree
        for horizon in HORIZONS:
            name = config_file_name(horizon)
            path = self.root / name
            tracked = name in head_tree
            if not path.exists():
                if tracked:
                    self.repo.git.checkout("HEAD", "--", name)
                    self.repairs.append(f"restored missing {name} from HEAD")
                continue
            committed = head_tree[name].data_stream.read().decode() if tracked else None
            current = path.read_text()
            if committed == current:
                continue
            try:
                parse_config(json.loads(current), name)
            except (json.JSONDecodeError, ConfigError):
                if tracked:
                    self.repo.git.checkout("HEAD", "--", name)
                    self.repairs.append(f"restored {name} from HEAD: the uncommitted file was not a valid config")
                continue
            self._commit_paths(
                f"[{horizon}] repair: commit the configuration an interrupted deploy left uncommitted", name
            )
            self.repairs.append(f"committed {name} left uncommitted by an interrupted deploy")
        # the index may still list changes staged by a killed writer
        if self.repo.is_dirty(index=True, working_tree=False, untracked_files=False):
            self._git(
                "commit", "--quiet", "--no-verify", "-m", "repair: commit changes staged by an interrupted writer"
            )
            self.repairs.append("committed changes staged by an interrupted writer")

    # ------------------------------------------------------------------------------ reading

    def path(self, horizon: str) -> Path:
        return self.root / config_file_name(horizon)

    def _commit(self, version: str) -> git.Commit:
        sha = version.rsplit("-", 1)[-1] if "-" in version else version
        try:
            return self.repo.commit(sha)
        except (git.BadName, ValueError):
            raise ConfigStoreError(f"unknown configuration version {version!r}") from None

    def read(self, horizon: str, version: str | None = None) -> ChronosConfig:
        """The horizon's configuration now, or at ``version``; a corrupt file is a clear error."""
        name = config_file_name(horizon)
        if version is None:
            if not self.path(horizon).exists():
                raise ConfigStoreError(f"{self.path(horizon)}: no configuration deployed for {horizon}")
            text, source = self.path(horizon).read_text(), str(self.path(horizon))
        else:
            commit = self._commit(version)
            if name not in commit.tree:
                raise ConfigStoreError(f"version {version} has no configuration for {horizon}")
            text, source = commit.tree[name].data_stream.read().decode(), f"{name}@{version}"
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{source}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
            ) from None
        config = parse_config(document, source)
        if config.horizon != horizon:
            raise ConfigError(f"{source}: field 'horizon': is {config.horizon!r} but the file is for {horizon!r}")
        return config

    def history(self, horizon: str) -> list[Version]:
        """Commits that changed the horizon's file, newest first."""
        return [_version(c) for c in self.repo.iter_commits(paths=config_file_name(horizon))]

    def current_version(self, horizon: str) -> Version:
        versions = self.history(horizon)
        if not versions:
            raise ConfigStoreError(f"no configuration of {horizon} has ever been committed")
        return versions[0]

    def diff(self, horizon: str, old: str, new: str) -> str:
        name = config_file_name(horizon)
        return self.repo.git.diff(self._commit(old).hexsha, self._commit(new).hexsha, "--", name)

    # ------------------------------------------------------------------------------ writing

    def deploy(
        self,
        config: ChronosConfig,
        reason: str,
        metrics: dict | None = None,
        validation: dict | None = None,
        action: str = "deploy",
    ) -> Version:
        """Write ``config`` as its horizon's configuration and commit it; returns the new version.

        ``metrics`` (the candidate's search-window metrics) and ``validation`` (before/after figures on the
        validation window) are kept in the commit message, readable with :func:`message_fields`."""
        horizon = config.horizon
        text = config.to_json()
        parse_config(json.loads(text), "candidate")  # never write what could not be read back
        message = self._message(horizon, action, reason, config, metrics, validation)
        with self._horizon_lock(horizon), self._git_lock():
            if self.path(horizon).exists() and self.path(horizon).read_text() == text:
                return self.current_version(horizon)  # already deployed: nothing to write or commit
            return self._write_and_commit(horizon, text, message)

    def rollback(self, horizon: str, to_version: str = "previous", reason: str = "manual rollback") -> Version:
        """Restore an earlier version of the horizon's configuration as a new commit."""
        with self._horizon_lock(horizon), self._git_lock():
            versions = self.history(horizon)
            if to_version == "previous":
                if len(versions) < 2:
                    raise ConfigStoreError(f"{horizon} has no previous version to roll back to")
                target = versions[1]
            else:
                commit = self._commit(to_version)
                target = _version(commit)
            config = self.read(horizon, target.commit)
            current = versions[0].id if versions else "none"
            message = self._message(horizon, "rollback", f"{reason} (from {current} to {target.id})", config, None)
            return self._write_and_commit(horizon, config.to_json(), message)

    def _write_and_commit(self, horizon: str, text: str, message: str) -> Version:
        name = config_file_name(horizon)
        path = self.path(horizon)
        if path.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            backup = self.root / BACKUPS_DIR / f"chronos_{horizon}_{stamp}.json"
            backup.parent.mkdir(exist_ok=True)
            shutil.copy2(path, backup)
        write_text_atomically(path, text)
        self._commit_paths(message, name)
        return _version(self.repo.head.commit)

    @staticmethod
    def _message(
        horizon: str, action: str, reason: str, config: ChronosConfig, metrics: dict | None, validation=None
    ) -> str:
        lines = [f"[{horizon}] {action}: {reason}", ""]
        if metrics:
            lines.append("candidate metrics: " + json.dumps(metrics, sort_keys=True, default=float))
        if validation:
            lines.append("validation metrics: " + json.dumps(validation, sort_keys=True, default=float))
        if config.baseline is not None:
            lines.append("validation baseline: " + config.baseline.model_dump_json(exclude_none=True))
        return "\n".join(lines).strip() + "\n"
