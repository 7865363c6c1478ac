"""The store's git repository: gitpython to read, the real git binary to write (pure, no Dagster).

Writes go through the git binary, which writes objects and refs atomically, never through gitpython's
pure-Python object writer, which a kill can leave half-written. Callers serialise writers
(locking.py): the index is shared by every writer of the store.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import git

from forex_assets.core.files import write_text_atomically

IDENTITY = ("-c", "user.name=forex_assets", "-c", "user.email=forex-assets@localhost")


def error_line(error: git.GitCommandError) -> str:
    """The line of a failed git command that says why: its first ``fatal:``, ``error:`` or ``!`` line (a
    refused push), else its last line."""
    text = (error.stderr or error.stdout or "").strip()
    text = re.sub(r"^(stderr|stdout): '", "", text).removesuffix("'")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:", "!")):
            return line
    return lines[-1] if lines else str(error).strip().splitlines()[0]


def message_text(commit: git.Commit) -> str:
    """A commit's message as text (GitPython gives bytes only for a message in an encoding it cannot decode)."""
    message = commit.message
    return message if isinstance(message, str) else message.decode("utf-8", errors="replace")


def clean_message(message: str) -> str:
    """What ``git commit -m`` keeps of a message (its default "whitespace" clean-up), for a commit made with
    ``git commit-tree``: trailing spaces and surrounding blank lines gone, runs of blank lines made one."""
    lines = [line.rstrip() for line in message.splitlines()]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept) + "\n"


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

    def commits_touching(self, name: str, max_count: int | None = None, rev: str = "HEAD") -> Iterator[git.Commit]:
        """Commits reachable from ``rev`` that changed ``name``, newest first (at most ``max_count``)."""
        if max_count is None:
            return self.repo.iter_commits(rev, paths=name)
        return self.repo.iter_commits(rev, paths=name, max_count=max_count)

    def is_ancestor(self, ancestor: git.Commit, descendant: git.Commit) -> bool:
        return self.repo.is_ancestor(ancestor, descendant)

    def related(self, one: git.Commit, other: git.Commit) -> bool:
        """Whether the two commits share any history (a merge base)."""
        return bool(self.repo.merge_base(one.hexsha, other.hexsha))

    def roots(self, rev: str = "HEAD") -> list[git.Commit]:
        """The commits without a parent that ``rev`` descends from (one in a linear history)."""
        return [self.repo.commit(sha) for sha in self.run("rev-list", "--max-parents=0", rev, "--").split()]

    def describe(self, rev: str = "HEAD") -> str:
        """What the history of ``rev`` holds, for a person: ``1 commit by Ana Perez, files: README.md``, ``3 commits
        by Ana Perez, Luis Soto, no files``."""
        count = int(self.run("rev-list", "--count", rev, "--"))
        authors = list(dict.fromkeys(self.run("log", "--format=%an", rev, "--").splitlines()))
        names = [n for n in self.run("ls-tree", "--name-only", "-z", rev).split("\0") if n]
        who = ", ".join(authors[:3]) + (f" and {len(authors) - 3} more" if len(authors) > 3 else "")
        files = ", files: " + ", ".join(names[:5]) + (f", ... ({len(names)} entries)" if len(names) > 5 else "")
        return f"{count} commit{'s' if count != 1 else ''} by {who}{files if names else ', no files'}"

    def diff(self, old: git.Commit, new: git.Commit, name: str) -> str:
        return str(self.repo.git.diff(old.hexsha, new.hexsha, "--", name))

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

    def _feed(self, stdin: str, *args: str) -> str:
        """A git command reading ``stdin``; fails as the other commands do (GitCommandError)."""
        command = ["git", *IDENTITY, *args]
        done = subprocess.run(
            command, cwd=self.root, input=stdin, capture_output=True, text=True, encoding="utf-8", check=False
        )
        if done.returncode != 0:
            raise git.GitCommandError(command, done.returncode, done.stderr, done.stdout)
        return done.stdout.strip()

    def commit_file(self, parent: git.Commit, name: str, text: str, message: str) -> git.Commit:
        """A commit whose parent is ``parent`` and in which ``name`` (top level) holds ``text``, everything else
        as in ``parent``; made with git's plumbing, so that no branch, index or file of the working tree
        changes (the commit is not on any branch until it is pushed or adopted: :meth:`move_to`)."""
        blob = self._feed(text, "hash-object", "-w", "--stdin")
        entries = [e for e in self.run("ls-tree", "-z", parent.hexsha).split("\0") if e]
        entries = [e for e in entries if e.split("\t", 1)[1] != name] + [f"100644 blob {blob}\t{name}"]
        tree = self._feed("\0".join(entries) + "\0", "mktree", "-z")
        return self.repo.commit(self._feed(clean_message(message), "commit-tree", tree, "-p", parent.hexsha))

    def move_to(self, commit: git.Commit) -> list[str]:
        """The branch, index and working tree to ``commit`` (a fast-forward, or back to an earlier commit);
        each tracked file that changes is written atomically (a reader never sees a partial file). Files that
        differ from HEAD in the working tree are the caller's to keep first. Returns the names changed."""
        names = [n for n in self.run("diff", "--name-only", "-z", self.head.hexsha, commit.hexsha).split("\0") if n]
        for name in names:
            text = self.text_at(commit, name)
            if text is None:
                (self.root / name).unlink(missing_ok=True)
            else:
                write_text_atomically(self.root / name, text)
        self.run("reset", "--quiet", commit.hexsha)  # branch and index; the files are in place already
        return names
