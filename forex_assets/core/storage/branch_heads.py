"""The head revision of each branch of the state database's migrations, read from the migration scripts
without Alembic: importing Alembic (its dialects, Mako, Pygments) and walking its script directory takes about
a fifth of a read-only command (`forex-assets status`, `history`, `forecasts`), which only needs to know
whether a database is at the heads.

Each script in ``migrations/versions/`` declares, at module level, ``revision``, ``down_revision`` (None or
one revision), ``branch_labels`` (a tuple, on a branch's first revision) and ``depends_on`` (None). A script in
any other form (a merge, a dependency, a label added later, a computed value) is not read here:
:func:`branch_heads` returns None and Alembic reads the scripts. ``forex_assets_tests/test_fast_cli.py``
checks that both find the same heads.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

DECLARED = ("revision", "down_revision", "branch_labels", "depends_on")


def _declarations(script: Path) -> dict[str, object] | None:
    """The four module-level declarations of a migration script; None when one is not a plain literal."""
    found: dict[str, object] = {}
    try:
        body = ast.parse(script.read_text(), str(script)).body
    except (SyntaxError, ValueError):  # Alembic says what is wrong with it
        return None
    for node in body:
        targets: list[ast.expr]
        value: ast.expr | None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in DECLARED and value is not None:
                try:
                    found[target.id] = ast.literal_eval(value)
                except (ValueError, TypeError):  # not a literal
                    return None
    return found if set(found) == set(DECLARED) else None


def branch_heads(versions_dir: Path) -> dict[str, str] | None:
    """branch label -> its head revision; None when a script is in a form not read here (Alembic reads it).
    Read again only when a script changed (its name, size or time)."""
    scripts = tuple(
        (script, script.stat().st_mtime_ns, script.stat().st_size)
        for script in sorted(versions_dir.glob("*.py"))
        if script.name != "__init__.py"
    )
    heads = _read_heads(scripts)
    return None if heads is None else dict(heads)


@lru_cache(maxsize=8)
def _read_heads(scripts: tuple[tuple[Path, int, int], ...]) -> tuple[tuple[str, str], ...] | None:
    parent: dict[str, str | None] = {}
    labels: dict[str, str] = {}
    for script, _, _ in scripts:
        declared = _declarations(script)
        if declared is None or declared["depends_on"] is not None:
            return None
        revision, down, branch = declared["revision"], declared["down_revision"], declared["branch_labels"]
        if not isinstance(revision, str) or not (down is None or isinstance(down, str)) or revision in parent:
            return None
        if (down is None) != (branch is not None):  # a label only, and always, on a branch's first revision
            return None
        if branch is not None:
            if not (isinstance(branch, tuple) and len(branch) == 1 and isinstance(branch[0], str)):
                return None
            labels[revision] = branch[0]
        parent[revision] = down
    children = {down for down in parent.values() if down is not None}
    if not children <= set(parent):
        return None
    heads: dict[str, str] = {}
    for revision in set(parent) - children:
        root, steps, up = revision, 0, parent[revision]
        while up is not None and steps <= len(parent):  # a loop of revisions: more steps than revisions
            root, steps, up = up, steps + 1, parent[up]
        if up is not None:
            return None
        if labels[root] in heads:  # two heads on one branch
            return None
        heads[labels[root]] = revision
    return tuple(sorted(heads.items())) if set(heads) == set(labels.values()) else None
