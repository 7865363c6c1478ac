"""The seed configuration and the search space are read once per process while their files stay as they are,
and the configuration the search found travels to the store as one ChronosConfig (its files unchanged)."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.deployment.deploy import config_with_baseline, deploy_from_report
from forex_assets.core.forecasting.config import ChronosConfig, ConfigError, as_config, load_config, load_seed
from forex_assets.core.recalibration.search import SearchOutcome
from forex_assets.core.recalibration.search_space import SearchSpaceError, load_search_space
from forex_assets.core.recalibration.workflow import candidate_document, candidate_json
from forex_assets.core.working_area import SEED_CONFIGS_DIR


@pytest.fixture
def seeds(tmp_path):
    copied = tmp_path / "configs"
    shutil.copytree(SEED_CONFIGS_DIR, copied)
    return copied


def _rewrite(path, document: dict) -> None:
    """``path`` with new content and a later modification time (a hand edit)."""
    before = path.stat().st_mtime_ns
    path.write_text(json.dumps(document))
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_the_seed_configuration_is_read_once_until_its_file_changes(seeds):
    path = seeds / "chronos_7d.json"
    first = load_seed(path, "7d")
    assert load_config(path, "7d") is first and load_seed(path, "7d") is first  # one read, one validation
    document = json.loads(path.read_text()) | {"context_length": first.context_length + 10}
    _rewrite(path, document)
    edited = load_seed(path, "7d")
    assert edited is not first and edited.context_length == first.context_length + 10
    assert load_config(path, "7d") is edited


def test_a_bad_file_is_refused_every_time_until_fixed(seeds):
    path = seeds / "chronos_7d.json"
    good = json.loads(path.read_text())
    _rewrite(path, good | {"context_length": 4})
    for _ in range(2):  # errors are not cached
        with pytest.raises(ConfigError, match="context_length"):
            load_config(path, "7d")
    _rewrite(path, good)
    assert load_config(path, "7d").context_length == good["context_length"]
    with pytest.raises(ConfigError, match="is '7d' but the file is for horizon '30d'"):
        load_config(path, "30d")  # the horizon is checked on every call, cached or not


def test_the_search_space_is_read_once_until_its_file_changes(seeds):
    path = seeds / "search_space_30d.json"
    first = load_search_space(path, "30d")
    assert load_search_space(path, "30d") is first
    document = json.loads(path.read_text()) | {"trial_budget": first.trial_budget + 1}
    _rewrite(path, document)
    assert load_search_space(path, "30d").trial_budget == first.trial_budget + 1
    path.unlink()
    with pytest.raises(SearchSpaceError, match="search-space file not found"):
        load_search_space(path, "30d")


def _outcome(best: ChronosConfig) -> SearchOutcome:
    leaderboard = pd.DataFrame([{"trial": 0, "label": "x", "rmse_clp": 9.5, "state": "COMPLETE", "error": ""}])
    return SearchOutcome(
        horizon=best.horizon,
        study_name="study",
        sampler="grid",
        best=best,
        best_metrics={"rmse_clp": 9.5, "coverage_95": 0.95},
        leaderboard=leaderboard,
        search_origin_dates=("2026-01-02", "2026-03-31"),
        trials_complete=1,
        trials_failed=0,
    )


def test_the_candidate_travels_as_the_model_and_its_file_is_written_as_before():
    best = load_config(SEED_CONFIGS_DIR / "chronos_7d.json", "7d").model_copy(update={"shrinkage": 0.25})
    outcome = _outcome(best)
    space = load_search_space(SEED_CONFIGS_DIR / "search_space_7d.json", "7d")
    document = candidate_document(outcome, space)
    assert document["config"] is best  # not a dict to validate again downstream

    written = json.loads(candidate_json(document, outcome.leaderboard))
    # the seed file's fields, the searched change, and the model's non-null defaults spelled out (no nulls)
    seed = json.loads((SEED_CONFIGS_DIR / "chronos_7d.json").read_text())
    assert written["config"] == seed | {"shrinkage": 0.25, "ensemble_context_lengths": [], "seed": 0}
    assert list(written)[-2:] == ["created_at", "leaderboard"] and list(written)[0] == list(document)[0]
    assert written["leaderboard"] == json.loads(outcome.leaderboard.to_json(orient="records"))
    assert {k: written[k] for k in document if k != "config"} == json.loads(
        json.dumps({k: v for k, v in document.items() if k != "config"}, default=str)
    )


REPORT_METRICS = {
    "rmse_new": 9.0,
    "rmse_current": 10.0,
    "rmse_improvement": -10.0,
    "mape_new": 1.0,
    "mape_current": 1.1,
    "mape_improvement": -9.0,
    "ci95_coverage_new": 0.95,
    "ci95_coverage_current": 0.9,
    "bias_new": 0.1,
    "bias_current": 0.2,
    "inference_time_new": 0.02,
    "inference_time_current": 0.02,
    "skill_vs_random_walk_new": 0.97,
}


def test_the_deployed_configuration_is_the_searched_model_with_its_baseline(tmp_path):
    store = ConfigStore(tmp_path / "store", seed_dir=SEED_CONFIGS_DIR)
    searched = store.read("7d").without_baseline().model_copy(update={"context_length": 120, "shrinkage": 0.3})
    report = {
        "horizon": "7d",
        "candidate": searched,  # as validation_report hands it on (workflow.report_value)
        "metrics": REPORT_METRICS,
        "validation_window": ["2026-05-04", "2026-06-30"],
        "deployed_version": store.current_version("7d").id,
    }
    previous, version, deployed = deploy_from_report(store, report)
    assert version.commit != previous.commit
    assert deployed.without_baseline() == searched and deployed.baseline.rmse_clp == 9.0
    assert store.read("7d") == deployed  # what the store reads back is what was deployed
    assert store.path("7d").read_text() == deployed.to_json()  # the file's format: to_json, as ever

    legacy = report | {"candidate": searched.model_dump(mode="json", exclude_none=True)}  # an older stored report
    assert config_with_baseline(legacy) == deployed
    with pytest.raises(ConfigError, match="validation report 7d: candidate: invalid Chronos configuration"):
        as_config({"horizon": "7d"}, "validation report 7d: candidate")
