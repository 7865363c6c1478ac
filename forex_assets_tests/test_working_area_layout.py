"""One working-area layout: every path and name of the working area resolved in one place
(core/working_area.py), in one order of fallbacks, and spelled nowhere else in the package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import forex_assets
from forex_assets.core import working_area as layout_module
from forex_assets.core.working_area import (
    CACHE_DIR_ENV,
    CONFIG_STORE_DIR_ENV,
    CONFIG_STORE_REMOTE_ENV,
    DAGSTER_HOME_ENV,
    ENVIRONMENT_VARIABLES,
    HOME_ENV,
    PROJECT_DAGSTER_HOME,
    SEED_CONFIGS_DIR,
    STATE_DATABASE_URL_ENV,
    WorkingAreaLayout,
    dagster_home,
)
from forex_assets.defs.resources import WorkingArea

PACKAGE = Path(forex_assets.__file__).parent
LAYOUT_MODULE = Path(layout_module.__file__)


def test_the_root_falls_back_from_the_setting_to_the_two_variables_then_the_instance_then_the_cwd(tmp_path):
    every = {HOME_ENV: str(tmp_path / "home"), DAGSTER_HOME_ENV: str(tmp_path / "dagster")}
    explicit = WorkingAreaLayout.from_environment(tmp_path / "given", environ=every)
    assert explicit.root == tmp_path / "given"
    assert WorkingAreaLayout.from_environment(environ=every).root == tmp_path / "home"
    only_dagster = {DAGSTER_HOME_ENV: str(tmp_path / "dagster"), HOME_ENV: ""}  # empty counts as unset
    assert WorkingAreaLayout.from_environment(environ=only_dagster).root == tmp_path / "dagster" / "forex_assets"
    assumed = WorkingAreaLayout.from_environment(environ={}, instance_home=tmp_path / "instance")
    assert assumed.root == tmp_path / "instance" / "forex_assets"
    assert WorkingAreaLayout.from_environment(environ={}).root == Path.cwd() / ".forex_assets"
    assert WorkingAreaLayout.from_environment("~/area", environ={}).root == Path.home() / "area"


def test_each_part_falls_back_from_its_setting_to_its_variable_to_the_root(tmp_path):
    root = tmp_path / "area"
    environ = {
        CONFIG_STORE_DIR_ENV: str(tmp_path / "store-env"),
        CONFIG_STORE_REMOTE_ENV: "/srv/store.git",
        CACHE_DIR_ENV: str(tmp_path / "cache-env"),
        STATE_DATABASE_URL_ENV: " postgresql://forex@db/dagster ",
    }
    given = WorkingAreaLayout.from_environment(
        root,
        configs_dir=tmp_path / "seeds",
        config_store_dir=tmp_path / "store",
        config_store_remote="/srv/other.git",
        cache_dir=tmp_path / "cache",
        state_database_url="sqlite:///x.sqlite",
        environ=environ,
    )
    assert (given.configs, given.config_store, given.config_store_remote) == (
        tmp_path / "seeds",
        tmp_path / "store",
        "/srv/other.git",
    )
    assert (given.cache, given.state_database_url) == (tmp_path / "cache", "sqlite:///x.sqlite")

    from_env = WorkingAreaLayout.from_environment(root, environ=environ)
    assert (from_env.config_store, from_env.config_store_remote) == (tmp_path / "store-env", "/srv/store.git")
    assert (from_env.cache, from_env.state_database_url) == (tmp_path / "cache-env", "postgresql://forex@db/dagster")

    defaults = WorkingAreaLayout.from_environment(root, environ={name: "  " for name in environ})
    assert defaults == WorkingAreaLayout(root, SEED_CONFIGS_DIR, root / "config_store", None, root, None)


def test_the_parts_have_their_names_in_the_root_or_the_cache(tmp_path):
    area = WorkingAreaLayout.from_environment(tmp_path / "a", cache_dir=tmp_path / "c", environ={})
    assert area.forecast_history == tmp_path / "a" / "forecast_history.sqlite"
    assert area.decision_log == tmp_path / "a" / "trigger_decisions.sqlite"
    assert area.alert_log == tmp_path / "a" / "alerts.sqlite"
    assert area.backtest_cache == tmp_path / "c" / "backtest_cache.sqlite"
    assert area.optuna_studies == tmp_path / "c" / "optuna_studies"
    assert area.reports_for("7d") == tmp_path / "a" / "reports" / "7d"
    assert area.replays == tmp_path / "a" / "replays"
    assert area.mindicador_cache == tmp_path / "a" / "mindicador"
    assert area.candidate_file("30d") == tmp_path / "a" / "candidates" / "candidate_30d.json"
    assert not (tmp_path / "a").exists()  # the layout names paths, it makes nothing


def test_a_replays_working_area_is_sealed_from_the_environment(tmp_path, monkeypatch):
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.setenv(name, str(tmp_path / name))
    area = WorkingAreaLayout.in_directory(tmp_path / "replay")
    assert area == WorkingAreaLayout(
        tmp_path / "replay", SEED_CONFIGS_DIR, tmp_path / "replay" / "config_store", None, tmp_path / "replay", None
    )


def test_the_cli_instance_is_dagster_home_else_the_projects(tmp_path):
    assert dagster_home({DAGSTER_HOME_ENV: str(tmp_path)}) == tmp_path
    assert dagster_home({}) == PROJECT_DAGSTER_HOME == layout_module.PROJECT_ROOT / ".dagster_home"


def test_the_resource_takes_its_paths_from_the_layout(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_STORE_DIR_ENV, str(tmp_path / "store-env"))
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache-env"))
    monkeypatch.delenv(STATE_DATABASE_URL_ENV, raising=False)
    resource = WorkingArea(path=str(tmp_path / "area"), cache_dir=str(tmp_path / "cache"))
    assert resource.layout == WorkingAreaLayout.from_environment(tmp_path / "area", cache_dir=tmp_path / "cache")
    assert resource.layout.config_store == tmp_path / "store-env"
    assert resource.optuna_storage == tmp_path / "cache" / "optuna_studies"
    assert resource.candidate_file("7d") == tmp_path / "area" / "candidates" / "candidate_7d.json"
    resource.forecast_history()
    assert (tmp_path / "area" / "forecast_history.sqlite").is_file()


# ------------------------------------------------------------------------------ spelled once


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def spellings(source: str) -> list[tuple[int, str]]:
    """Where ``source`` spells the working area itself: a string that is one of its environment variables'
    names (what ``os.environ`` is read with), a string that holds one of its SQLite file names, or one of its
    directory names joined to a path (``/ "reports"``, ``joinpath("reports")``). Docstrings, and messages
    that name a variable for the operator ("set DAGSTER_HOME ..."), are not spellings."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    files = re.compile("|".join(re.escape(name) for name in layout_module.FILE_NAMES))
    names = set(layout_module.FILE_NAMES) | set(layout_module.DIRECTORY_NAMES)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if node.value in ENVIRONMENT_VARIABLES or files.search(node.value):
                found.append((node.lineno, node.value))
        joined = []
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            joined = [node.right]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "joinpath",
            "join",
            "Path",
        ):
            joined = node.args[1:] if getattr(node.func, "id", None) == "Path" else node.args
        for part in joined:
            if isinstance(part, ast.Constant) and part.value in names:
                found.append((part.lineno, part.value))
    return found


def test_the_scan_finds_what_it_looks_for():
    source = '''
import os
def f(root):
    """Reads $FOREX_ASSETS_HOME and root / "reports": documentation."""
    message = "set DAGSTER_HOME to the instance"
    return os.environ.get("FOREX_CACHE_DIR"), root / "config_store", root.joinpath("candidates"), "x/alerts.sqlite"
'''
    found = sorted(name for _, name in spellings(source))
    assert found == ["FOREX_CACHE_DIR", "candidates", "config_store", "x/alerts.sqlite"]


@pytest.mark.parametrize("module", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_other_module_spells_the_working_area(module):
    if module == LAYOUT_MODULE:
        return
    assert spellings(module.read_text()) == [], (
        f"{module.relative_to(PACKAGE.parent)} spells a working-area name or variable; take it from "
        "forex_assets.core.working_area (WorkingAreaLayout, or the *_ENV constants)"
    )
