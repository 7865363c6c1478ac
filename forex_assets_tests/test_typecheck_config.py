"""The type checker's configuration (``[tool.mypy]`` of pyproject.toml, run by ``make typecheck`` from ``make lint``):
strict on ``forex_assets/core``, relaxed to mypy's defaults on the Dagster and click layers only, third-party
modules without types named one by one. A test, so that loosening core's checking is a visible change."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
MAKEFILE = PYPROJECT.with_name("Makefile")
CI_RUN = PYPROJECT.parent / ".ci" / "run"
#: the flags of ``mypy --strict`` that a module section can turn off (mypy 1.x)
STRICT_FLAGS = {
    "disallow_any_generics",
    "disallow_subclassing_any",
    "disallow_untyped_calls",
    "disallow_untyped_defs",
    "disallow_incomplete_defs",
    "check_untyped_defs",
    "disallow_untyped_decorators",
    "warn_unused_ignores",
    "warn_return_any",
    "implicit_reexport",  # the inverse of no_implicit_reexport
    "strict_equality",
    "extra_checks",
    "strict_bytes",
}
CORE_MODULES = ["forex_assets.core", "forex_assets.core.policy", "forex_assets.core.storage.engine"]


def _mypy() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["mypy"]


def _covers(pattern: str, module: str) -> bool:
    """Whether a mypy section pattern (``a.b``, ``a.b.*``) applies to ``module``."""
    if pattern.endswith(".*"):
        return module == pattern[:-2] or fnmatch.fnmatchcase(module, pattern)
    return module == pattern


def test_the_whole_package_is_checked_in_strict_mode():
    config = _mypy()
    assert config["strict"] is True
    assert config["files"] == ["forex_assets"]
    assert "ignore_missing_imports" not in config  # never for every module: each untyped one is named


def test_no_section_relaxes_a_strict_flag_for_core():
    relaxed = [section for section in _mypy()["overrides"] if STRICT_FLAGS & set(section)]
    assert relaxed, "the Dagster and click layers are checked with mypy's defaults"
    for section in relaxed:
        patterns = section["module"] if isinstance(section["module"], list) else [section["module"]]
        assert sorted(patterns) == ["forex_assets.cli.*", "forex_assets.definitions", "forex_assets.defs.*"]
        assert not [m for m in CORE_MODULES for p in patterns if _covers(p, m)]


def test_only_third_party_modules_are_let_through_without_types():
    untyped = [s for s in _mypy()["overrides"] if s.get("ignore_missing_imports")]
    patterns = [p for section in untyped for p in section["module"]]
    assert patterns
    assert not [p for p in patterns if p.split(".")[0] == "forex_assets"]
    assert not [p for p in patterns if p in ("*", "")]


def test_make_lint_runs_the_type_checker_and_ci_runs_make_lint():
    makefile = MAKEFILE.read_text()
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.M)
    typecheck = re.search(r"^typecheck:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert lint is not None and typecheck is not None
    assert "typecheck" in lint.group(1)
    assert typecheck.group(1).strip() == "$(BIN)/mypy"
    assert re.search(r"^make lint$", CI_RUN.read_text(), re.M)


def test_mypy_is_a_dev_dependency_pinned_in_the_lock():
    dev = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["dev"]
    assert [d for d in dev if re.match(r"mypy\b", d)]
    assert re.search(r"^mypy==\d", PYPROJECT.with_name("requirements.lock").read_text(), re.M)
