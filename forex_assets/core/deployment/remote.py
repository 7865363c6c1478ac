"""The store's git remote: the source of truth where the store has no shared filesystem (pure, no Dagster).

In production each process (a Dagster run, the daemon's sensors) may run on a machine of its own: each keeps a
local clone (the store root) of one git remote (a bare repository on a volume, or a git server), and the
remote's branch ``main`` is what is deployed. Without a remote the local repository is the store, as before.

* Creating (a writer's open where there is no store): the remote has ``main`` holding a store's history
  (its first commit is the store's own, history.is_store_root): clone it; the remote has no branch: make
  the store from the seeds and push it (when another writer pushed first, clone theirs instead); a remote
  with branches but no ``main``, or whose ``main`` holds someone else's history (a README, an empty
  commit), is refused, naming what it holds, and nothing is made locally or pushed. The clone is made
  beside the root and renamed into place once complete (creation.py).
* A writer's open fetches and brings the clone to the remote's ``main`` (:func:`reconcile`): a fast-forward;
  local commits the remote lacks (a commit never pushed, e.g. by a tool or an older version of this code)
  are set aside under ``refs/forex/unpublished/<stamp>`` and reported as a repair; a clone whose history is
  unrelated to the remote's is refused. A remote that cannot be reached is a warning: the clone is read as
  it is, and deploys and rollbacks are refused until it can be reached.
* A read-only open fetches (only ``.git`` changes, under the store lock) and reads the remote-tracking head
  ``refs/remotes/origin/main``, never the working tree; when the fetch fails it reads the last fetched state,
  with a warning.
* A deploy or rollback (config_store.py), under the horizon and store locks: fetch and fast-forward, decide
  (already deployed? validated against the deployed version? roll back to what?), commit with git's plumbing
  on top of the remote's head (nothing in the working tree changes) and push, never forced. Pushed: the
  clone adopts the commit (backup, atomic write, branch moved). Refused because the remote's ``main`` moved
  (another writer pushed first): fetch and decide again; when the horizon's deployed version is still the
  one the first attempt was based on (the other writer changed another horizon), commit again on the new
  head and push again; when the horizon moved, refuse (StaleValidationError). No push is ever forced, so no
  other writer's commit is lost, and the history stays linear: every commit has one parent, the remote's
  head it was pushed onto.

The remote's URL is anything git accepts (a path, ``file://``, ``ssh://``, ``user@host:path``, ``https://``);
a local path is made absolute. Credentials in a URL never appear in a message. Network commands never
prompt (``GIT_TERMINAL_PROMPT=0``) and are killed after ``NETWORK_TIMEOUT_S``.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import git

from forex_assets.core.deployment.creation import build_store, is_store_history, read_seeds
from forex_assets.core.deployment.git_repo import IDENTITY, GitRepo, error_line
from forex_assets.core.deployment.history import parse_message, version_of
from forex_assets.core.deployment.layout import RemoteError, UnusableStoreError, discarded_name, utc_stamp
from forex_assets.core.deployment.repair import Repair
from forex_assets.core.working_area import CONFIG_STORE_REMOTE_ENV

REMOTE_NAME = "origin"
BRANCH = "main"
BRANCH_REF = f"refs/heads/{BRANCH}"
TRACKING = f"refs/remotes/{REMOTE_NAME}/{BRANCH}"
UNPUBLISHED = "refs/forex/unpublished"
NETWORK_TIMEOUT_S = 120.0
NETWORK_ENV = {"GIT_TERMINAL_PROMPT": "0"}

log = logging.getLogger(__name__)


class PushOutcomeUnknown(RemoteError):
    """A push failed and the remote could not be read after it: whether the commit reached it is unknown."""


def _is_local_path(url: str) -> bool:
    """git's rule: a URL has ``://``, or a colon before its first slash (``host:path``); anything else is a path."""
    return "://" not in url and ":" not in url.split("/", 1)[0]


def redact(text: str) -> str:
    """``text`` without the credentials of any URL in it (``https://user:token@host`` -> ``https://host``)."""
    return re.sub(r"://[^/@\s']*@", "://", text)


class Remote:
    def __init__(self, url: str | Path):
        url = str(url).strip()
        if not url:
            raise ValueError("the config store's remote is empty")
        self.url = str(Path(url).expanduser().absolute()) if _is_local_path(url) else url

    @property
    def shown(self) -> str:
        """The URL as messages show it (no credentials)."""
        return redact(self.url)

    def __repr__(self) -> str:
        return f"Remote({self.shown!r})"

    def _git(self, cwd: Path | None, *args: str) -> str:
        try:
            return git.Git(cwd).execute(
                ["git", *IDENTITY, *args], env=NETWORK_ENV, kill_after_timeout=NETWORK_TIMEOUT_S
            )
        except git.GitCommandError as error:
            raise RemoteError(f"{self.shown}: git {args[0]} failed ({redact(error_line(error))})") from None

    # ------------------------------------------------------------------------------ reading

    def heads(self) -> dict[str, str]:
        """The remote's branches: ref -> commit."""
        listed = self._git(None, "ls-remote", "--heads", self.url)
        return {ref: sha for sha, ref in (line.split("\t", 1) for line in listed.splitlines() if "\t" in line)}

    def fetch(self, repo: GitRepo) -> git.Commit | None:
        """Fetch the remote's branches into ``refs/remotes/origin/``; returns the remote's ``main`` (None when
        it has none). Only ``.git`` changes; callers hold the store lock."""
        refspec = f"+refs/heads/*:refs/remotes/{REMOTE_NAME}/*"  # forced: the tracking refs follow the remote
        self._git(repo.root, "fetch", "--quiet", "--no-tags", "--prune", self.url, refspec)
        return repo.commit(TRACKING)

    # ------------------------------------------------------------------------------ writing

    def attach(self, repo: GitRepo) -> None:
        """``origin`` of the clone names this remote (for a person's ``git log origin/main``; the store's own
        commands name the URL)."""
        urls = {r.name: r.url for r in repo.repo.remotes}
        if urls.get(REMOTE_NAME) != self.url:
            repo.run("remote", "set-url" if REMOTE_NAME in urls else "add", REMOTE_NAME, self.url)

    def push(self, repo: GitRepo, commit: git.Commit, base: git.Commit | None) -> bool:
        """Push ``commit`` as the remote's ``main``, never forced. True: the remote has it now. False: refused
        because the remote's ``main`` is no longer ``base`` (the head ``commit`` was made on; None: no main):
        another writer pushed first; fetch and decide again. RemoteError: unreachable, or refused for another
        reason (permissions, a hook)."""
        try:
            self._git(repo.root, "push", "--quiet", self.url, f"{commit.hexsha}:{BRANCH_REF}")
        except RemoteError as failed:
            try:
                tip = self.fetch(repo)
            except RemoteError as unread:
                raise PushOutcomeUnknown(f"{failed}, and then {unread}") from None
            if tip is not None and tip.hexsha == commit.hexsha:
                return True  # it arrived; only the answer was lost
            moved = (tip.hexsha if tip else None) != (base.hexsha if base else None)
            if moved or "cannot lock ref" in str(failed):  # a concurrent push held the branch
                return False
            raise
        repo.run("update-ref", TRACKING, commit.hexsha)
        return True

    def create(self, target: Path, seed_dir: Path | None) -> str:
        """A complete store at ``target`` (which must not exist): a clone of the remote's ``main``, or, when the
        remote has no branch, the seeds' store pushed to it. Returns what it is made from, for messages.

        A remote that is a local path where nothing exists is refused, not made: an empty remote is seeded from
        configs/, so making one silently where an operator mistyped the path, or forgot to move an existing
        store's history there, would put production back on the seed configurations."""
        if _is_local_path(self.url) and not Path(self.url).exists():
            raise UnusableStoreError(
                f"{self.shown}: no git repository there; nothing was created. A new installation: `git init "
                f"--bare {self.url}`. To keep the history of an existing store: `git init --bare {self.url}` "
                f"and `git -C <that store> push {self.url} HEAD:{BRANCH}`"
            )
        heads = self.heads()
        if BRANCH_REF not in heads and heads:
            names = ", ".join(sorted(ref.removeprefix("refs/heads/") for ref in heads))
            raise UnusableStoreError(
                f"{self.shown}: the remote has branches ({names}) but no {BRANCH}, the branch of a configuration "
                f"store; nothing was created: point the store at another remote, or push the store's history to "
                f"{BRANCH} there"
            )
        if BRANCH_REF not in heads:
            build_store(target, read_seeds(seed_dir), seed_dir)
            try:
                repo = GitRepo(target)
                self.attach(repo)
                pushed = self.push(repo, repo.head, None)
                repo.repo.close()
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            if pushed:
                return f"{seed_dir or 'nothing'} (pushed to {self.shown})"
            shutil.rmtree(target)  # another writer made the remote's store first: use theirs
        try:
            self._git(target.parent, "clone", "--quiet", "--no-tags", "--branch", BRANCH, self.url, str(target))
            self._check_store_history(GitRepo(target))
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return f"the remote {self.shown}"

    def _check_store_history(self, clone: GitRepo) -> None:
        """Refuse a ``main`` (just cloned) whose history is not a configuration store's: cloned as it is, every
        forecast would find no configuration, and a seed pushed on top would mix the store into another
        history."""
        try:
            if is_store_history(clone):
                return
            first = clone.roots()[0].summary
            holds = clone.describe()
        finally:
            clone.repo.close()
        raise UnusableStoreError(
            f"{self.shown}: its branch {BRANCH} holds someone else's history, not a configuration store's ({holds}; "
            f"the first commit: {first!r}); nothing was created or pushed. Point {CONFIG_STORE_REMOTE_ENV} (or "
            f"config_store_remote of the working_area resource) at the configuration store's remote, or at an "
            "empty repository (`git init --bare <path>`), which the first run seeds from the seed configurations"
        )


def _keep_edits(repo: GitRepo, tip: git.Commit, stamp: str) -> list[Repair]:
    """Files that the move to ``tip`` replaces and that differ from HEAD (edited since the open): copied under
    backups/ first."""
    head, done = repo.head, []
    for name in filter(None, repo.run("diff", "--name-only", "-z", head.hexsha, tip.hexsha).split("\0")):
        path = repo.root / name
        if path.is_file() and path.read_text(errors="replace") != repo.text_at(head, name):
            kept = discarded_name(name, stamp)
            (repo.root / kept).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, repo.root / kept)
            text = f"kept {name}, changed by hand, in {kept} before updating it from the remote"
            done.append(Repair(text, None, kept))
    return done


def reconcile(repo: GitRepo, remote: Remote, tip: git.Commit | None) -> list[Repair]:
    """Bring the clone to the remote's ``main`` ``tip`` (just fetched; None: the remote has none, and this
    store's history is pushed to it). Returns what it set aside, as repairs. Callers hold the store lock."""
    head = repo.head
    if tip is None:
        if remote.push(repo, head, None):
            log.info("config store %s: pushed its history to the empty remote %s", repo.root, remote.shown)
            return []
        tip = repo.commit(TRACKING)  # another writer pushed first (push fetched it)
    if tip is None or tip.hexsha == head.hexsha:
        return []
    if repo.is_ancestor(head, tip):
        done = _keep_edits(repo, tip, utc_stamp())
        repo.move_to(tip)
        return done
    if not repo.related(head, tip):
        raise UnusableStoreError(
            f"{repo.root}: its history is unrelated to that of the remote {remote.shown} (another store's); "
            "nothing was changed: move this directory aside (a writer's open then clones the remote), or "
            "configure the remote this store belongs to"
        )
    stamp = utc_stamp()
    unpublished = [version_of(c) for c in repo.repo.iter_commits(f"{tip.hexsha}..{head.hexsha}")]
    ref = f"{UNPUBLISHED}/{stamp}"
    repo.run("update-ref", ref, head.hexsha)
    done = _keep_edits(repo, tip, stamp)
    repo.move_to(tip)
    horizons = {parse_message(v.message).horizon for v in unpublished}
    count = f"{len(unpublished)} local commit{'s' if len(unpublished) > 1 else ''}"
    summaries = "; ".join(v.summary for v in unpublished)
    text = (
        f"set aside {count} that the remote {remote.shown} does not have ({summaries}): "
        f"a deploy or rollback takes effect only once pushed; kept as {ref} (git log {ref}); the store is at the "
        f"remote's version {version_of(tip).id}"
    )
    return [*done, Repair(text, horizons.pop() if len(horizons) == 1 else None, ref)]
