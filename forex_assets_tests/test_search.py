import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.backtest.windows import PriceSeries, split_windows
from forex_assets.core.models.loading import checkpoint_identity, load_pipeline
from forex_assets.core.recalibration.search import _leaderboard, grid_plan, run_search
from forex_assets.core.recalibration.search_space import (
    SearchSpace,
    SearchSpaceError,
    enumerate_candidates,
    load_search_space,
    search_space_path,
)
from forex_assets.core.recalibration.study_storage import open_storage, stored_studies
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets_tests.conftest import random_walk_prices

BUNDLED = {"checkpoint": "bundled:usdclp-chronos2-mini", "family": "chronos2"}


def _space(**fields):
    base = {
        "horizon": "7d",
        "checkpoints": [BUNDLED],
        "context_length": [60, 120],
        "preprocessing": ["none", "log"],
        "search_origins": 10,
        "validation_origins": 10,
    }
    return SearchSpace.model_validate(base | fields)


@pytest.fixture(scope="module")
def series():
    return PriceSeries.from_frame(random_walk_prices(400, seed=5))


def _search(space, series, tmp_path, loader=load_pipeline):
    windows = split_windows(len(series.values), 7, space.search_origins, space.validation_origins)
    ids = {c.checkpoint: checkpoint_identity(c.checkpoint) for c in space.checkpoints}
    return run_search(
        space,
        series,
        windows.search,
        loader,
        ids,
        ForecastCache(tmp_path / "cache.sqlite"),
        tmp_path / "optuna",
        progress=lambda message: None,
    )


@pytest.mark.parametrize("horizon", ["7d", "15d", "30d", "90d"])
def test_shipped_search_spaces_follow_adr_appendix_b(horizon):
    space = load_search_space(search_space_path(SEED_CONFIGS_DIR, horizon), expected_horizon=horizon)
    expected = {"7d": (90, 180, 270), "15d": (90, 180, 365), "30d": (180, 365, 540), "90d": (365, 540, 730)}
    assert space.context_length == expected[horizon]
    assert not space.num_samples and not space.temperature  # the bundled model is not a sampling model
    assert len(enumerate_candidates(space)) <= space.trial_budget  # the grid fits: GridSampler


def test_sampling_parameters_only_for_the_sampling_family(tiny_t5_dir):
    t5 = {"checkpoint": str(tiny_t5_dir), "family": "chronos-t5"}
    space = _space(checkpoints=[BUNDLED, t5], num_samples=[10, 20], temperature=[0.8, 1.0])
    candidates = enumerate_candidates(space)
    quantile = [c for c in candidates if c.config.family == "chronos2"]
    sampling = [c for c in candidates if c.config.family == "chronos-t5"]
    assert len(quantile) == 2 * 2 and len(sampling) == 2 * 2 * 2 * 2
    assert all(c.config.num_samples is None for c in quantile)


def test_grid_search_picks_the_lowest_wql_and_records_every_trial(series, tmp_path):
    """The default objective is the distribution's weighted quantile loss; each trial's value is it."""
    outcome = _search(_space(context_ensembles=[[60, 120]]), series, tmp_path)
    assert outcome.sampler == "grid"
    board = outcome.leaderboard
    assert outcome.trials_complete == len(board) == 6 and outcome.trials_failed == 0
    assert board["wql"].is_monotonic_increasing
    assert board.iloc[0]["wql"] == pytest.approx(outcome.best_metrics["weighted_quantile_loss"])
    assert board.iloc[0]["label"].endswith(f"prep={outcome.best.preprocessing}")
    study = optuna.load_study(
        study_name=outcome.study_name,
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna" / f"{outcome.study_name}.journal"))
        ),
    )
    assert study.best_value == pytest.approx(board.iloc[0]["wql"])


def test_the_rmse_objective_stays_selectable(series, tmp_path):
    outcome = _search(_space(context_ensembles=[[60, 120]], objective="rmse"), series, tmp_path)
    board = outcome.leaderboard
    assert board["rmse_clp"].is_monotonic_increasing
    assert board.iloc[0]["rmse_clp"] == pytest.approx(outcome.best_metrics["rmse_clp"])
    # a different objective is a different study: both are kept, neither resumes the other
    assert outcome.study_name != _search(_space(context_ensembles=[[60, 120]]), series, tmp_path).study_name


def test_tpe_when_the_grid_exceeds_the_budget(series, tmp_path):
    outcome = _search(_space(context_length=[40, 60, 80, 100, 120], trial_budget=4), series, tmp_path)
    assert outcome.sampler == "tpe"
    assert outcome.trials_complete + outcome.trials_failed == 4


def test_a_failing_trial_is_recorded_and_the_search_goes_on(series, tmp_path):
    outcome = _search(_space(context_length=[60, 5000], preprocessing=["none"]), series, tmp_path)
    board = outcome.leaderboard
    failed = board[board["state"] == "FAIL"]
    assert len(failed) == 1 and "context length 5000 is longer than the history" in failed.iloc[0]["error"]
    assert outcome.best.context_length == 60


def test_an_interrupted_search_resumes_where_it_stopped(series, tmp_path):
    space = _space(context_ensembles=[[60, 120]])
    calls = {"n": 0}

    def dies_on_the_fourth_trial(reference):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return load_pipeline(reference)

    with pytest.raises(KeyboardInterrupt):
        _search(space, series, tmp_path, loader=dies_on_the_fourth_trial)
    [name] = stored_studies(tmp_path / "optuna")
    study = optuna.load_study(study_name=name, storage=open_storage(tmp_path / "optuna", name))
    before = {t.number: t.user_attrs["label"] for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(before) == 3

    resumed_calls = {"n": 0}

    def counting(reference):
        resumed_calls["n"] += 1
        return load_pipeline(reference)

    outcome = _search(space, series, tmp_path, loader=counting)
    assert resumed_calls["n"] == 3  # only the interrupted trial and the two never started
    assert outcome.trials_complete == 6
    labels = outcome.leaderboard["label"].tolist()
    assert sorted(labels) == sorted(c.label for c in enumerate_candidates(space))
    again = _search(space, series, tmp_path, loader=counting)  # a finished study runs nothing more
    assert resumed_calls["n"] == 3 and again.best == outcome.best


def test_a_storage_that_stays_locked_stops_the_search_and_the_trial_runs_again_later(series, tmp_path):
    """A backtest cache locked too long (sqlite "database is locked") is the storage's failure, not the
    configuration's: the search stops with that error (the step's retry policy tries again) and the trial is
    not recorded as a failed configuration: the next search runs it."""
    space = _space(context_ensembles=[[60, 120]])
    calls = {"n": 0}

    def locked_on_the_second_trial(reference):
        calls["n"] += 1
        if calls["n"] == 2:
            raise sqlite3.OperationalError("database is locked")
        return load_pipeline(reference)

    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        _search(space, series, tmp_path, loader=locked_on_the_second_trial)
    outcome = _search(space, series, tmp_path)
    assert outcome.trials_complete == 6 and outcome.trials_failed == 0
    assert sorted(outcome.leaderboard["label"]) == sorted(c.label for c in enumerate_candidates(space))


def test_ties_are_broken_by_inference_time():
    study = optuna.create_study()
    for number, (rmse, seconds) in enumerate([(2.0, 0.5), (1.0, 0.9), (1.0, 0.2), (3.0, 0.1)]):
        study.add_trial(
            optuna.trial.create_trial(
                value=rmse,
                params={},
                distributions={},
                user_attrs={"label": f"c{number}", "metrics": {"rmse_clp": rmse, "seconds_per_forecast": seconds}},
            )
        )
    assert _leaderboard(study)["label"].tolist() == ["c2", "c1", "c0", "c3"]
    # ranked by the objective's metric: by WQL the order is another one
    wql = {"c0": 0.1, "c1": 0.3, "c2": 0.2, "c3": 0.05}
    for trial in study.get_trials(deepcopy=False):
        trial.user_attrs["metrics"]["weighted_quantile_loss"] = wql[trial.user_attrs["label"]]
    assert _leaderboard(study, "wql")["label"].tolist() == ["c3", "c0", "c2", "c1"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"context_length": [4]}, "key '(document)': Value error, context length 4 is outside 16..8192"),
        ({"num_samples": [50]}, "apply only to the sampling family"),
        ({"preprocessing": ["boxcox"]}, "key 'preprocessing.0'"),
        ({"context_ensembles": [[90, 90]]}, "needs at least two distinct lengths"),
        ({"trial_budget": 0}, "key 'trial_budget'"),
        ({"checkpoints": []}, "key 'checkpoints'"),
        ({"contxt_length": [1]}, "key 'contxt_length': Extra inputs are not permitted"),
    ],
)
def test_invalid_search_space_names_the_file_and_the_key(tmp_path, change, message):
    document = json.loads(search_space_path(SEED_CONFIGS_DIR, "7d").read_text()) | change
    path = tmp_path / "search_space_7d.json"
    path.write_text(json.dumps(document))
    with pytest.raises(SearchSpaceError) as caught:
        load_search_space(path, expected_horizon="7d")
    assert str(caught.value).startswith(f"{path}: invalid search space: ")
    assert message in str(caught.value)


def test_search_space_horizon_must_match_and_json_must_parse(tmp_path):
    path = tmp_path / "search_space_30d.json"
    path.write_text(search_space_path(SEED_CONFIGS_DIR, "7d").read_text())
    with pytest.raises(SearchSpaceError, match="key 'horizon': is '7d' but the file is for horizon '30d'"):
        load_search_space(path, expected_horizon="30d")
    path.write_text("{")
    with pytest.raises(SearchSpaceError, match="not valid JSON"):
        load_search_space(path)


KILLED_SEARCH = """
import sys, time
from pathlib import Path
from forex_assets.core.models.loading import load_pipeline
from forex_assets_tests.test_search import _space, _search
from forex_assets.core.backtest.windows import PriceSeries
from forex_assets_tests.conftest import random_walk_prices
calls = {"n": 0}
def hangs_on_the_third_trial(reference):
    calls["n"] += 1
    if calls["n"] == 3:
        time.sleep(600)
    return load_pipeline(reference)
_search(_space(context_ensembles=[[60, 120]]), PriceSeries.from_frame(random_walk_prices(400, seed=5)),
        Path(sys.argv[1]), loader=hangs_on_the_third_trial)
"""


def test_a_search_killed_with_sigkill_resumes(series, tmp_path):
    process = subprocess.Popen([sys.executable, "-c", KILLED_SEARCH, str(tmp_path)])
    deadline = time.monotonic() + 120
    running = []
    while time.monotonic() < deadline and not running:
        time.sleep(0.5)
        try:
            [name] = stored_studies(tmp_path / "optuna")
            study = optuna.load_study(study_name=name, storage=open_storage(tmp_path / "optuna", name))
        except Exception:  # the child has not created the study yet
            continue
        running = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING and t.params]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert running, "the child never reached its third trial"
    space = _space(context_ensembles=[[60, 120]])
    outcome = _search(space, series, tmp_path)
    assert outcome.trials_complete == 6
    assert sorted(outcome.leaderboard["label"]) == sorted(c.label for c in enumerate_candidates(space))


def _t5_space(tiny_t5_dir, **fields):
    t5 = {"checkpoint": str(tiny_t5_dir), "family": "chronos-t5"}
    base = {
        "horizon": "7d",
        "checkpoints": [t5],
        "context_length": [32, 64],
        "preprocessing": ["none"],
        "num_samples": [5, 10, 20],
        "temperature": [0.8, 1.2],
        "search_origins": 6,
        "validation_origins": 6,
        "sampling_screen_keep": 0.5,
    }
    return SearchSpace.model_validate(base | fields)


def test_grid_plan_screens_sampling_groups_with_their_smallest_sample_count(tiny_t5_dir):
    space = _t5_space(tiny_t5_dir)
    candidates = enumerate_candidates(space)
    to_run, pruned = grid_plan(space, candidates, {})
    assert len(to_run) == 4 and all("|ns=5|" in label for label in to_run) and not pruned
    scores = {label: float(i) for i, label in enumerate(sorted(to_run))}  # the first two sorted labels win
    to_run, pruned = grid_plan(space, candidates, scores)
    winners = sorted(scores)[:2]
    survivors = [label for label in to_run if "|ns=5|" not in label]
    assert len(survivors) == 4 and len(pruned) == 4
    for label in survivors:
        assert label.replace("|ns=10|", "|ns=5|").replace("|ns=20|", "|ns=5|") in winners
    assert all(reason.startswith("pruned: its group scored WQL") for reason in pruned.values())  # the objective
    rmse_space = space.model_copy(update={"objective": "rmse"})
    assert all(
        r.startswith("pruned: its group scored RMSE") for r in grid_plan(rmse_space, candidates, scores)[1].values()
    )
    assert grid_plan(space.model_copy(update={"sampling_screen_keep": 1.0}), candidates, {})[0] == [
        c.label for c in candidates
    ]


def test_sampling_grid_search_draws_once_and_records_pruned_groups(tiny_t5_dir, series, tmp_path):
    space = _t5_space(tiny_t5_dir)
    draws = []
    pipeline = load_pipeline(str(tiny_t5_dir))
    original = pipeline.predict

    def counting_predict(inputs, prediction_length=None, **kwargs):
        draws.append(kwargs["num_samples"] * len(inputs))
        return original(inputs, prediction_length=prediction_length, **kwargs)

    pipeline.predict = counting_predict
    try:
        outcome = _search(space, series, tmp_path, loader=lambda reference: pipeline)
    finally:
        pipeline.predict = original
    assert (outcome.trials_complete, outcome.trials_pruned) == (8, 4)
    # 4 groups x 6 origins x 5 paths to screen, then 2 groups x 6 origins x 15 more paths
    assert sum(draws) == 4 * 6 * 5 + 2 * 6 * 15
    assert outcome.best.num_samples in (5, 10, 20)
    board = outcome.leaderboard
    assert (board[board["state"] == "PRUNED"]["error"].str.startswith("pruned:")).all()
