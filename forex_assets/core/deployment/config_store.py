"""Versioned configuration store: one schema-validated JSON per horizon in a directory that is its own git
repository (pure, no Dagster). This module is the facade; the parts are beside it:

* layout.py: the files of a store directory, ConfigStoreError;
* git_repo.py: the git plumbing (gitpython reads, the git binary writes);
* locking.py: the per-horizon and store-wide locks that serialise writers across processes;
* creation.py: a new store from the seed configurations;
* repair.py: what a crash, a hand edit or a stray file left, found (read-only) and repaired (on a writer's open);
* repair_log.py: the log of every repair, and which were alerted;
* history.py: Version and the deploy history, kept as git trailers in the commit messages;
* remote.py: a git remote as the source of truth, where the store has no shared filesystem (optional).

* Deploy = timestamped backup copy of the current file, atomic write (temp file in the same directory,
  fsync, rename, directory fsync), git commit whose message names horizon, reason, candidate metrics
  and validation baseline.
* A version id is readable: ``<UTC time of the commit>-<short commit>``, e.g. ``20261126T071502Z-3fa2c1d0``.
* Open a store once per run or sensor tick and hand it on: a writer's open takes the store lock, repairs and
  fetches the remote each time. Where nothing is written, :meth:`ConfigStore.for_reading` opens it without any
  of that.
* A writer's open (the default) creates the store when there is none, atomically (creation.py), rebuilds a
  half-made one (keeping it aside), and repairs what a crash, a hand edit or a stray file left (repair.py),
  listed in ``ConfigStore.repairs`` (one line each) and ``ConfigStore.repaired`` (with horizon and the copy
  kept), and logged in ``ConfigStore.repair_log`` (repair_log.py: read by ``history --kind repair`` and
  ``make run``; whoever holds an alert channel alerts each logged repair once). A hand edit that a deploy or
  rollback finds after the open is put back and logged the same way. A read-only open writes nothing: it
  lists what a writer would repair in ``ConfigStore.damage``, reads the committed configurations, and refuses
  deploy and rollback.
* A deploy given the version its candidate was validated against (``expected_version``) is refused
  (StaleValidationError) when the deployed version moved since. A rollback to the content already
  deployed is refused (AlreadyOnConfigurationError). Neither leaves anything behind.
* With a ``remote`` (a bare repository or a git server; remote.py has the rules), the root is a local clone
  of it: a writer's open clones it (or seeds the empty remote and pushes) and fetches; a read-only open
  fetches and reads the remote's head; a deploy or rollback is done only once pushed, never forced, decided
  again on the remote's new head when another writer pushed first, and refused (StaleValidationError) when
  that writer changed the same horizon. Without a remote, nothing of this happens.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import git

from forex_assets.core.deployment.creation import HALF_MADE, USABLE, condition, ensure_store
from forex_assets.core.deployment.git_repo import GitRepo
from forex_assets.core.deployment.history import Version, commit_message, commit_of, version_of
from forex_assets.core.deployment.layout import (
    BACKUPS_DIR,
    AlreadyOnConfigurationError,
    ConfigStoreError,
    RemoteError,
    StaleValidationError,
    UnusableStoreError,
    config_file_name,
    discarded_name,
    utc_stamp,
)
from forex_assets.core.deployment.locking import StoreLocks
from forex_assets.core.deployment.remote import TRACKING, PushOutcomeUnknown, Remote, reconcile
from forex_assets.core.deployment.repair import Finding, Repair, repair, survey
from forex_assets.core.deployment.repair_log import RepairLog
from forex_assets.core.files import write_text_atomically
from forex_assets.core.forecasting.config import ChronosConfig, ConfigError, parse_config

__all__ = [  # Version: what its methods return; the errors: what they raise
    "AlreadyOnConfigurationError",
    "ConfigStore",
    "ConfigStoreError",
    "RemoteError",
    "StaleValidationError",
    "UnusableStoreError",
    "Version",
    "config_file_name",
]

log = logging.getLogger(__name__)

PUSH_ATTEMPTS = 25  # a deploy or rollback pushed this many times, each refused because another writer pushed first
READER_LOCK_TIMEOUT_S = 30.0  # a read-only open waits this long for the store lock to fetch, then reads what it has


class ConfigStore:
    def __init__(
        self,
        root: Path | str,
        seed_dir: Path | str | None = None,
        *,
        read_only: bool = False,
        remote: str | Path | None = None,
        fetch_remote: bool = True,
    ):
        """A writer's open (the default), or with ``read_only`` a reader's (see the module's docstring);
        ``fetch_remote=False``: a reader's open with a remote reads the local clone as it is, fetching nothing
        (:meth:`for_reading`)."""
        self.root = Path(root)
        self.read_only = read_only
        self.remote = Remote(remote) if remote else None  # None: the local repository is the store
        self.repaired: list[Repair] = []  # what a writer's open repaired (rebuilt, restored, kept aside)
        self.damage: list[Finding] = []  # what a read-only open found and left
        self.warnings: list[str] = []  # what a person should know and nothing repairs (an unreachable remote)
        self.created = False  # whether this open made the store (or rebuilt a half-made one)
        self._tip: str | None = None  # what reads start from (read-only with a remote: its fetched head); None: HEAD
        if read_only:
            found = condition(self.root)
            if found.state == HALF_MADE:
                raise UnusableStoreError(
                    f"{self.root}: {found.detail}; nothing was changed (a writer's open, e.g. the next run, "
                    "rebuilds the store from the seed configurations and keeps what is there aside)"
                )
            if found.state != USABLE:
                clone = f"; a writer's open clones it from {self.remote.shown}" if self.remote else ""
                raise UnusableStoreError(f"{self.root}: no configuration store here (none was created yet{clone})")
            self._git = GitRepo(self.root)
            self.damage = survey(self._git)
            if self.remote is not None and fetch_remote:
                self._fetch_for_reading(self.remote)
            return
        if condition(self.root).state != USABLE:
            seeds = Path(seed_dir) if seed_dir else None
            store_remote = self.remote
            make = (lambda target: store_remote.create(target, seeds)) if store_remote else None
            self.created, rebuilt = ensure_store(self.root, seeds, make)
            self.repaired += [Repair(text) for text in rebuilt]
        self._locks = StoreLocks(self.root)
        with self._locks.store:
            self._git = GitRepo(self.root)
            self.repaired += repair(self._git)
            if self.remote is not None:
                try:
                    self.repaired += reconcile(self._git, self.remote, self.remote.fetch(self._git))
                    self.remote.attach(self._git)
                except RemoteError as error:
                    self._warn(
                        f"{error}; the local clone {self.root} is read as it is (version "
                        f"{version_of(self._git.head).id}), and deploys and rollbacks are refused until the "
                        "remote can be reached"
                    )
            self.repair_log.append(self.repaired)

    @classmethod
    def for_reading(
        cls, root: Path | str, remote: str | Path | None = None, *, fetch_remote: bool = False
    ) -> ConfigStore:
        """The store opened only to read: no lock, no repair, no write (what a writer would repair is listed in
        ``damage``; deploy and rollback are refused), and an UnusableStoreError when there is no usable store.
        With a ``remote``, the local clone is read as it is, unless ``fetch_remote``: then the remote's head is
        fetched (under the store lock, at most READER_LOCK_TIMEOUT_S) and read, as the operator's commands do."""
        return cls(root, read_only=True, remote=remote, fetch_remote=fetch_remote)

    def _warn(self, text: str) -> None:
        self.warnings.append(text)
        log.warning("config store %s: %s", self.root, text)

    def _fetch_for_reading(self, remote: Remote) -> None:
        """Fetch the remote's head and read from it from now on; when that fails, read the last fetched state
        (or the clone's HEAD), with a warning."""
        try:
            with StoreLocks(self.root).store.acquire(timeout=READER_LOCK_TIMEOUT_S):
                remote.fetch(self._git)
        except (RemoteError, TimeoutError, OSError) as error:
            why = str(error) if isinstance(error, RemoteError) else f"{self.root}: store lock ({error})"
            where = "the last fetched state" if self._git.commit(TRACKING) else "the local clone's HEAD"
            self._warn(f"{why}; reading {where}")
        self._tip = TRACKING if self._git.commit(TRACKING) is not None else None

    def refresh(self) -> list[Repair]:
        """Catch up with the remote (nothing without one): a writer's store fetches and fast-forwards its clone
        (returns what that set aside); a read-only store fetches and reads the remote's new head. An
        unreachable remote is a RemoteError here."""
        if self.remote is None:
            return []
        if self.read_only:
            with StoreLocks(self.root).store.acquire(timeout=READER_LOCK_TIMEOUT_S):
                self.remote.fetch(self._git)
            self._tip = TRACKING if self._git.commit(TRACKING) is not None else None
            return []
        with self._locks.store:
            done = reconcile(self._git, self.remote, self.remote.fetch(self._git))
        self._note(done)
        return done

    def _note(self, repairs: list[Repair]) -> None:
        """Repairs made after the open (the caller holds the store lock): kept, logged, warned."""
        self.repaired += repairs
        self.repair_log.append(repairs)
        for done in repairs:
            log.warning("config store %s: %s", self.root, done.text)

    @property
    def repair_log(self) -> RepairLog:
        """Every repair of this store (directory), whoever made it; a read-only open only reads it."""
        return RepairLog(self.root)

    @property
    def repairs(self) -> list[str]:
        """What a writer's open repaired, one line each."""
        return [r.text for r in self.repaired]

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
        if version is None and self.read_only and (self.damage or self._tip):  # the committed file is the live one
            version = self._tip_commit().hexsha
        if version is None:
            if not self.path(horizon).exists():
                raise ConfigStoreError(f"{self.path(horizon)}: no configuration deployed for {horizon}")
            text, source = self.path(horizon).read_text(), str(self.path(horizon))
        else:
            committed = self._git.text_at(self._commit(version), name)
            if committed is None:
                raise ConfigStoreError(f"version {version} has no configuration for {horizon}")
            text = committed
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

    def _tip_commit(self) -> git.Commit:
        """The commit reads start from: HEAD, or the remote's fetched head for a read-only store with a remote."""
        return (self._tip and self._git.commit(self._tip)) or self._git.head

    def history(self, horizon: str) -> list[Version]:
        """Commits that changed the horizon's file, newest first."""
        return [version_of(c) for c in self._git.commits_touching(config_file_name(horizon), rev=self._tip or "HEAD")]

    def current_version(self, horizon: str) -> Version:
        """The latest commit of the horizon's file (git stops at the first match: constant cost)."""
        name, rev = config_file_name(horizon), self._tip or "HEAD"
        versions = [version_of(c) for c in self._git.commits_touching(name, max_count=1, rev=rev)]
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
        metrics: dict[str, Any] | None = None,
        validation: dict[str, Any] | None = None,
        action: str = "deploy",
        expected_version: str | None = None,
    ) -> Version:
        """Write ``config`` as its horizon's configuration and commit it; returns the new version.

        ``metrics`` (the candidate's search-window metrics) and ``validation`` (before/after figures on the
        validation window) are kept in the commit message: ``Version.record`` reads them back.
        ``expected_version``: the version the candidate was validated against; when the deployed version is
        another one now (a rollback or another deploy since), the deploy is refused (StaleValidationError).
        Deploying the configuration that is already deployed changes nothing and returns its version."""
        self._writable()
        horizon = config.horizon
        text = config.to_json()
        parse_config(json.loads(text), "candidate")  # never write what could not be read back
        message = commit_message(
            action, reason, horizon, metrics=metrics, validation=validation, baseline=config.baseline
        )

        def decide() -> Version | tuple[str, str]:
            if self._committed_text(horizon) == text:  # already deployed: nothing to write or commit
                self._put_back_committed(horizon)
                return self.current_version(horizon)
            if expected_version is not None:
                self._check_still_deployed(horizon, expected_version)
            return text, message

        return self._change(horizon, action, decide)

    def _check_still_deployed(self, horizon: str, expected: str) -> None:
        current = self.current_version(horizon)
        commit = self._git.commit(commit_of(expected))
        if commit is None:
            raise StaleValidationError(
                f"{horizon}: deploy refused: the candidate was validated against version {expected}, which this "
                f"store does not know (the deployed version is {current.id}); validate the candidate again"
            )
        if commit.hexsha != current.commit:
            raise StaleValidationError(
                f"{horizon}: deploy refused: the candidate was validated against version {expected}, but the "
                f"deployed version is now {current.id} ({current.summary}); deploying would undo that change "
                "unvalidated: validate the candidate again against the deployed version"
            )

    def rollback(
        self,
        horizon: str,
        to_version: str = "previous",
        reason: str = "manual rollback",
        expected_version: str | None = None,
    ) -> Version:
        """Restore an earlier version of the horizon's configuration as a new commit. Restoring the content
        that is deployed already is refused (AlreadyOnConfigurationError). ``expected_version``: the version
        being rolled back from (the deploy judged); when the deployed version is another one now (someone
        rolled it back or deployed since), the rollback is refused (StaleValidationError), decided under the
        store lock: a late rollback never puts the judged version back."""
        self._writable()
        config_file_name(horizon)  # an unknown horizon is refused before any lock file is made

        def decide() -> tuple[str, str]:
            versions = self.history(horizon)
            if expected_version is not None:
                self._check_rolling_back_from(horizon, expected_version, versions[0] if versions else None)
            if to_version == "previous":
                if len(versions) < 2:
                    raise ConfigStoreError(f"{horizon} has no previous version to roll back to")
                target = versions[1]
            else:
                target = version_of(self._commit(to_version))
            config = self.read(horizon, target.commit)
            if versions and self.read(horizon, versions[0].commit) == config:
                same = (
                    "it is the deployed version"
                    if target.commit == versions[0].commit
                    else f"the deployed version {versions[0].id} has the same content"
                )
                raise AlreadyOnConfigurationError(
                    f"{horizon} is already on that configuration (version {target.id}): {same}; nothing to roll back"
                )
            message = commit_message(
                "rollback",
                reason,
                horizon,
                baseline=config.baseline,
                rolled_back_from=versions[0].id if versions else None,
                restored=target.id,
            )
            return config.to_json(), message

        return self._change(horizon, "rollback", decide)

    def _check_rolling_back_from(self, horizon: str, expected: str, current: Version | None) -> None:
        commit = self._git.commit(commit_of(expected))
        if current is None or commit is None or commit.hexsha != current.commit:
            raise StaleValidationError(
                f"{horizon}: rollback refused: the deployed version is now {current.id if current else 'none'}, "
                f"not {expected} (the version judged); nothing was changed"
            )

    def _change(self, horizon: str, action: str, decide: Callable[[], Version | tuple[str, str]]) -> Version:
        """Under the horizon's lock and the store lock: ``decide()`` on the store as it is (a Version: nothing
        to change; else the new file's text and the commit message), then commit. With a remote, the commit is
        done only once pushed; see :meth:`_change_on_remote`."""
        with self._locks.horizon(horizon), self._locks.store:
            if self.remote is not None:
                return self._change_on_remote(self.remote, horizon, action, decide)
            decided = decide()
            if isinstance(decided, Version):
                return decided
            return self._write_and_commit(horizon, *decided)

    def _change_on_remote(
        self, remote: Remote, horizon: str, action: str, decide: Callable[[], Version | tuple[str, str]]
    ) -> Version:
        """Fetch and fast-forward, decide, commit on the remote's head (plumbing: nothing local changes) and
        push, never forced. When another writer pushed first, fetch and decide again: the horizon unchanged
        (another horizon moved), commit again on the new head; the horizon moved, refuse. Only a pushed commit
        changes the clone (backup, atomic write, branch moved); a refusal or a failure leaves nothing behind."""
        name, based_on = config_file_name(horizon), None
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            try:
                self._note(reconcile(self._git, remote, remote.fetch(self._git)))
            except RemoteError as error:
                raise RemoteError(f"{horizon}: {action} not done: {error}; nothing was changed") from None
            decided = decide()
            if isinstance(decided, Version):
                return decided
            head = self._git.head
            current = next(self._git.commits_touching(name, max_count=1), None)
            if based_on is not None and (current and current.hexsha) != based_on.commit:
                raise StaleValidationError(self._moved_message(remote, horizon, action, based_on, current))
            based_on = version_of(current) if current is not None else None
            commit = self._git.commit_file(head, name, *decided)
            try:
                pushed = remote.push(self._git, commit, head)
            except PushOutcomeUnknown as error:
                raise RemoteError(
                    f"{horizon}: {action} uncertain: {error}; the local clone was left as it was: the next open of "
                    f"the store shows whether version {version_of(commit).id} is deployed"
                ) from None
            except RemoteError as error:
                raise RemoteError(f"{horizon}: {action} not done: {error}; nothing was changed") from None
            if pushed:
                self._adopt(horizon, commit)
                return version_of(commit)
            time.sleep(random.uniform(0, 0.02 * attempt))  # another writer pushed first: let it finish its turn
        raise ConfigStoreError(
            f"{horizon}: {action} not done: the push to {remote.shown} was refused {PUSH_ATTEMPTS} times "
            "in a row, each time because another writer had pushed first; nothing was changed: try again"
        )

    def _moved_message(
        self, remote: Remote, horizon: str, action: str, based_on: Version | None, current: git.Commit | None
    ) -> str:
        now = version_of(current) if current is not None else None
        deployed = f"{now.id} ({now.summary})" if now is not None else "none"
        return (
            f"{horizon}: {action} refused: while it was being pushed to {remote.shown}, another writer changed "
            f"{horizon} there: the {action} was decided against version {based_on.id if based_on else 'none'}, but "
            f"the deployed version is now {deployed}; it would undo that change unexamined: nothing was changed; "
            "decide again against the deployed version"
        )

    def _adopt(self, horizon: str, commit: git.Commit) -> None:
        """The clone to a commit just pushed on top of its HEAD: backup of the replaced file, atomic write of the
        new one, branch and index moved."""
        path = self.path(horizon)
        self._put_back_committed(horizon)  # a hand edit since the open is kept aside, not in the backup
        if path.exists():
            backup = self.root / BACKUPS_DIR / f"chronos_{horizon}_{utc_stamp()}.json"
            backup.parent.mkdir(exist_ok=True)
            shutil.copy2(path, backup)
        self._git.move_to(commit)

    # ------------------------------------------------------------------------------ the file and its commit

    def _committed_text(self, horizon: str) -> str | None:
        return self._git.text_at(self._git.head, config_file_name(horizon))

    def _put_back_committed(self, horizon: str) -> None:
        """The file back to its committed content when it was changed since the open (kept in backups/, logged
        as a repair)."""
        path, committed = self.path(horizon), self._committed_text(horizon)
        if committed is None or (path.exists() and path.read_text(errors="replace") == committed):
            return
        kept = None
        if path.exists():
            kept = discarded_name(path.name, utc_stamp())
            (self.root / kept).parent.mkdir(exist_ok=True)
            shutil.copy2(path, self.root / kept)
        self._git.restore_from_head(path.name)
        what = "changed" if kept else "deleted"
        where = f"; the discarded file is in {kept}" if kept else ""
        text = (
            f"restored {path.name} from the committed version {self._git.head.hexsha[:8]}: it was {what} after the "
            f"store was opened (by hand), and a configuration goes live only through a validated deploy or a "
            f"rollback{where}"
        )
        self._note([Repair(text, horizon, kept)])

    def _write_and_commit(self, horizon: str, text: str, message: str) -> Version:
        """Backup, atomic write, commit; when the commit fails, the file is put back and the backup removed
        (nothing changed)."""
        path = self.path(horizon)
        self._put_back_committed(horizon)  # a hand edit since the open is kept aside, not in the backup
        backup = None
        if path.exists():
            backup = self.root / BACKUPS_DIR / f"chronos_{horizon}_{utc_stamp()}.json"
            backup.parent.mkdir(exist_ok=True)
            shutil.copy2(path, backup)
        try:
            write_text_atomically(path, text)
            return version_of(self._git.commit_paths(message, path.name))
        except git.GitCommandError as error:
            if self._committed_text(horizon) is not None:
                self._git.restore_from_head(path.name)
            else:
                path.unlink(missing_ok=True)
                self._git.reset_index()
            if backup is not None:
                backup.unlink(missing_ok=True)
            detail = (error.stderr or error.stdout or str(error)).strip().splitlines()
            raise ConfigStoreError(
                f"{path}: git commit failed ({detail[-1] if detail else error}); nothing was changed"
            ) from None
