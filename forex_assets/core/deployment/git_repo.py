"""The store's git repository: gitpython to read, the real git binary to write (pure, no Dagster).

Writes go through the git binary, which writes objects and refs atomically, never through gitpython's
pure-Python object writer, which a kill can leave half-written. Callers serialise writers
(locking.py): the index is shared by every writer of the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import git

IDENTITY = ("-c", "user.name=forex_assets", "-c", "user.email=forex-assets@localhost")


class GitRepo:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.repo = git.Repo(self.root)

    @classmethod
    def init(cls, root: Path) -> GitRepo:
        """An empty repository at ``root`` (no commit yet)."""
        git.Repo.init(root)
        return cls(root)

    # ------------------------------------------------------------------------------ reading

    @property
    def head(self) -> git.Commit:
        return self.repo.head.commit

    def commit(self, rev: str) -> git.Commit | None:
        """The commit ``rev`` names, None when it names none."""
        try:
            return self.repo.commit(rev)
        except (git.BadName, ValueError):
            return None

    def text_at(self, commit: git.Commit, name: str) -> str | None:
        """The file ``name`` as committed in ``commit``; None when it is not tracked there."""
        return commit.tree[name].data_stream.read().decode() if name in commit.tree else None

    def commits_touching(self, name: str, max_count: int | None = None) -> Iterator[git.Commit]:
        """Commits that changed ``name``, newest first (at most ``max_count``)."""
        if max_count is None:
            return self.repo.iter_commits(paths=name)
        return self.repo.iter_commits(paths=name, max_count=max_count)

    def diff(self, old: git.Commit, new: git.Commit, name: str) -> str:
        return self.repo.git.diff(old.hexsha, new.hexsha, "--", name)

    def index_dirty(self) -> bool:
        """Whether the index holds changes that are not committed (staged by a writer that was killed)."""
        return self.repo.is_dirty(index=True, working_tree=False, untracked_files=False)

    def staged(self) -> dict[str, bytes | None]:
        """What the index holds that HEAD does not: path -> the staged content (None: staged as deleted)."""
        names = self.run("diff", "--cached", "--name-only", "-z").split("\0")
        entries = self.repo.index.entries
        staged = {}
        for name in filter(None, names):
            entry = entries.get((name, 0))
            staged[name] = entry.to_blob(self.repo).data_stream.read() if entry is not None else None
        return staged

    def lock_files(self) -> list[Path]:
        """git's own lock files (index.lock, refs/heads/master.lock, ...): stale once no writer runs."""
        return sorted((self.root / ".git").rglob("*.lock"))

    # ------------------------------------------------------------------------------ writing

    def run(self, *args: str) -> str:
        return git.Git(self.root).execute(["git", *IDENTITY, *args])

    def commit_paths(self, message: str, *names: str) -> git.Commit:
        """Stage and commit exactly ``names`` (whatever else is staged stays staged)."""
        self.run("add", "--", *names)
        self.run("commit", "--quiet", "--no-verify", "-m", message, "--", *names)
        return self.head

    def commit_staged(self, message: str) -> git.Commit:
        self.run("commit", "--quiet", "--no-verify", "-m", message)
        return self.head

    def restore_from_head(self, name: str) -> None:
        """Working tree and index of ``name`` back to HEAD."""
        self.run("checkout", "HEAD", "--", name)

    def reset_index(self) -> None:
        """The index back to HEAD; the working tree is left as it is."""
        self.run("reset", "--quiet")
