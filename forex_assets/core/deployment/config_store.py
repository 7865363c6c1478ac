"""Versioned configuration store: one schema-validated JSON per horizon in a directory that is its own git
repository (pure, no Dagster). This module is the facade; the parts are beside it:

* layout.py: the files of a store directory, ConfigStoreError;
* git_repo.py: the git plumbing (gitpython reads, the git binary writes);
* locking.py: the per-horizon and store-wide locks that serialise writers across processes;
* creation.py: a new store from the seed configurations;
* repair.py: what a crash left, found (read-only) and repaired (on a writer's open);
* history.py: Version and the deploy history, kept as git trailers in the commit messages.

* Deploy = timestamped backup copy of the current file, atomic write (temp file in the same directory,
  fsync, rename, directory fsync), git commit whose message names horizon, reason, candidate metrics
  and validation baseline.
* A version id is readable: ``<UTC time of the commit>-<short commit>``, e.g. ``20261126T071502Z-3fa2c1d0``.
* A writer's open (the default) creates the store when there is none and repairs what a crash can
  leave, listed in ``ConfigStore.repairs``. A read-only open writes nothing: it lists what a writer
  would repair in ``ConfigStore.damage`` and refuses deploy and rollback.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import git

from forex_assets.core.deployment.creation import create_store
from forex_assets.core.deployment.git_repo import GitRepo
from forex_assets.core.deployment.history import Version, commit_message, commit_of, version_of
from forex_assets.core.deployment.layout import BACKUPS_DIR, ConfigStoreError, config_file_name
from forex_assets.core.deployment.locking import StoreLocks
from forex_assets.core.deployment.repair import Finding, repair, survey
from forex_assets.core.files import write_text_atomically
from forex_assets.core.forecasting.config import ChronosConfig, ConfigError, parse_config

__all__ = ["ConfigStore", "ConfigStoreError", "Version", "config_file_name"]  # Version: what its methods return


class ConfigStore:
    def __init__(self, root: Path | str, seed_dir: Path | str | None = None, *, read_only: bool = False):
        self.root = Path(root)
        self.read_only = read_only
        self.repairs: list[str] = []  # what a writer's open repaired
        self.damage: list[Finding] = []  # what a read-only open found and left
        if read_only:
            if not GitRepo.exists(self.root):
                raise ConfigStoreError(f"{self.root}: no configuration store here")
            self._git = GitRepo(self.root)
            self.damage = survey(self._git)
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._locks = StoreLocks(self.root)
        with self._locks.store:
            if GitRepo.exists(self.root):
                self._git = GitRepo(self.root)
            else:
                self._git = create_store(self.root, Path(seed_dir) if seed_dir else None)
            self.repairs = repair(self._git)

    @property
    def repo(self) -> git.Repo:
        return self._git.repo

    # ------------------------------------------------------------------------------ reading

    def path(self, horizon: str) -> Path:
        return self.root / config_file_name(horizon)

    def _commit(self, version: str) -> git.Commit:
        commit = self._git.commit(commit_of(version))
        if commit is None:
            raise ConfigStoreError(f"unknown configuration version {version!r}")
        return commit

    def read(self, horizon: str, version: str | None = None) -> ChronosConfig:
        """The horizon's configuration now, or at ``version``; a corrupt file is a clear error."""
        name = config_file_name(horizon)
        if version is None:
            if not self.path(horizon).exists():
                raise ConfigStoreError(f"{self.path(horizon)}: no configuration deployed for {horizon}")
            text, source = self.path(horizon).read_text(), str(self.path(horizon))
        else:
            text = self._git.text_at(self._commit(version), name)
            if text is None:
                raise ConfigStoreError(f"version {version} has no configuration for {horizon}")
            source = f"{name}@{version}"
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
        return [version_of(c) for c in self._git.commits_touching(config_file_name(horizon))]

    def current_version(self, horizon: str) -> Version:
        """The latest commit of the horizon's file (git stops at the first match: constant cost)."""
        versions = [version_of(c) for c in self._git.commits_touching(config_file_name(horizon), max_count=1)]
        if not versions:
            raise ConfigStoreError(f"no configuration of {horizon} has ever been committed")
        return versions[0]

    def diff(self, horizon: str, old: str, new: str) -> str:
        return self._git.diff(self._commit(old), self._commit(new), config_file_name(horizon))

    # ------------------------------------------------------------------------------ writing

    def _writable(self) -> None:
        if self.read_only:
            raise ConfigStoreError(f"{self.root}: the store was opened read-only; nothing was changed")

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
        validation window) are kept in the commit message: ``Version.record`` reads them back."""
        self._writable()
        horizon = config.horizon
        text = config.to_json()
        parse_config(json.loads(text), "candidate")  # never write what could not be read back
        message = commit_message(
            action, reason, horizon, metrics=metrics, validation=validation, baseline=config.baseline
        )
        with self._locks.horizon(horizon), self._locks.store:
            if self.path(horizon).exists() and self.path(horizon).read_text() == text:
                return self.current_version(horizon)  # already deployed: nothing to write or commit
            return self._write_and_commit(horizon, text, message)

    def rollback(self, horizon: str, to_version: str = "previous", reason: str = "manual rollback") -> Version:
        """Restore an earlier version of the horizon's configuration as a new commit."""
        self._writable()
        config_file_name(horizon)  # an unknown horizon is refused before any lock file is made
        with self._locks.horizon(horizon), self._locks.store:
            versions = self.history(horizon)
            if to_version == "previous":
                if len(versions) < 2:
                    raise ConfigStoreError(f"{horizon} has no previous version to roll back to")
                target = versions[1]
            else:
                target = version_of(self._commit(to_version))
            config = self.read(horizon, target.commit)
            message = commit_message(
                "rollback",
                reason,
                horizon,
                baseline=config.baseline,
                rolled_back_from=versions[0].id if versions else None,
                restored=target.id,
            )
            return self._write_and_commit(horizon, config.to_json(), message)

    def _write_and_commit(self, horizon: str, text: str, message: str) -> Version:
        path = self.path(horizon)
        if path.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            backup = self.root / BACKUPS_DIR / f"chronos_{horizon}_{stamp}.json"
            backup.parent.mkdir(exist_ok=True)
            shutil.copy2(path, backup)
        write_text_atomically(path, text)
        return version_of(self._git.commit_paths(message, path.name))
