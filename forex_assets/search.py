"""Configuration search for one horizon: an Optuna study over the horizon's search space.

* GridSampler when the whole grid fits the trial budget, TPE (seeded) otherwise.
* The objective is the median forecast's RMSE (CLP) on the search window; among equal RMSEs the
  faster configuration wins (inference seconds per forecast).
* Study storage is an SQLite file in the working area and the study name pins the search space, the
  checkpoints and the window, so a search interrupted half-way resumes where it stopped; a trial left
  RUNNING by a killed process is marked failed and queued again.
* A trial that raises (context longer than the history, a failing model, ...) is recorded as FAIL with
  its error in the trial's ``error`` attribute, and the search goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from forex_assets.backtest import ForecastCache, PriceSeries, backtest_sampling_group, run_backtest
from forex_assets.chronos_config import SAMPLING_FAMILY, ChronosConfig
from forex_assets.horizons import horizon_steps
from forex_assets.search_space import (
    SearchSpace,
    candidate_label,
    context_options,
    enumerate_candidates,
    make_config,
)

log = logging.getLogger(__name__)

#: RMSEs closer than this (relative) are a tie, decided by inference time.
RMSE_TIE_TOLERANCE = 1e-9


class SearchError(RuntimeError):
    """No configuration of the search space could be evaluated."""


@dataclass(frozen=True)
class SearchOutcome:
    horizon: str
    study_name: str
    sampler: str
    best: ChronosConfig
    best_metrics: dict
    leaderboard: pd.DataFrame  # one row per trial, best first; failed trials last with their error
    search_origin_dates: tuple[str, str]
    trials_complete: int
    trials_failed: int


def study_name(space: SearchSpace, checkpoint_ids: dict[str, str], window_end: str) -> str:
    checkpoints = "+".join(sorted(checkpoint_ids.values()))
    digest = hashlib.sha256(f"{space.digest()}|{checkpoints}".encode()).hexdigest()[:10]
    return f"{space.horizon}-{digest}-{window_end}"


def _sampler(space: SearchSpace, n_candidates: int, labels: list[str]) -> tuple[optuna.samplers.BaseSampler, str]:
    if n_candidates <= space.trial_budget:
        return optuna.samplers.GridSampler({"candidate": labels}, seed=space.seed), "grid"
    return optuna.samplers.TPESampler(seed=space.seed), "tpe"


def _suggest(trial: optuna.Trial, space: SearchSpace, sampler_kind: str, by_label: dict) -> ChronosConfig:
    if sampler_kind == "grid":
        return by_label[trial.suggest_categorical("candidate", list(by_label))]
    checkpoints = {c.checkpoint: c for c in space.checkpoints}
    choice = checkpoints[trial.suggest_categorical("checkpoint", list(checkpoints))]
    options = {"+".join(map(str, o)): o for o in context_options(space)}
    contexts = options[trial.suggest_categorical("context", list(options))]
    preprocessing = trial.suggest_categorical("preprocessing", list(space.preprocessing))
    if choice.family == SAMPLING_FAMILY:
        n = trial.suggest_categorical("num_samples", list(space.num_samples))
        t = trial.suggest_categorical("temperature", list(space.temperature))
        return make_config(space, choice, contexts, preprocessing, n, t)
    return make_config(space, choice, contexts, preprocessing)


INTERRUPTED = "interrupted"


def _requeue_interrupted(study: optuna.Study) -> int:
    """Trials an interrupted process left behind, queued again with the same parameters.

    A process killed outright leaves its trial RUNNING; one stopped by an exception that is not an
    error (Ctrl-C, a Dagster run termination) leaves it FAIL with an ``interrupted`` error. Either way
    the trial is marked failed-and-requeued so the grid point is evaluated on resume.
    """
    trials = study.get_trials(deepcopy=False)
    already = {t.user_attrs.get("requeue_of") for t in trials}
    count = 0
    for trial in trials:
        killed = trial.state == optuna.trial.TrialState.RUNNING
        stopped = trial.state == optuna.trial.TrialState.FAIL and str(trial.user_attrs.get("error", "")).startswith(
            INTERRUPTED
        )
        if not (killed or stopped) or not trial.params or trial.number in already:
            continue
        if killed:
            study._storage.set_trial_user_attr(trial._trial_id, "error", f"{INTERRUPTED} (process killed)")
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"requeue_of": trial.number}, skip_if_exists=False)
        count += 1
    return count


def run_search(
    space: SearchSpace,
    series: PriceSeries,
    search_origins: np.ndarray,
    load_pipeline: Callable[[str], object],
    checkpoint_ids: dict[str, str],
    cache: ForecastCache,
    storage_path: Path,
    progress: Callable[[str], None] = log.info,
) -> SearchOutcome:
    """Run (or resume) the study and return the best configuration with the full leaderboard."""
    steps = horizon_steps(space.horizon)
    candidates = enumerate_candidates(space)
    by_label = {c.label: c.config for c in candidates}
    sampler, sampler_kind = _sampler(space, len(candidates), list(by_label))
    window_end = series.date_text(int(search_origins[-1]))
    name = study_name(space, checkpoint_ids, window_end)
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name,
        storage=f"sqlite:///{storage_path}",
        sampler=sampler,
        direction="minimize",
        load_if_exists=True,
    )
    requeued = _requeue_interrupted(study)
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and not str(t.user_attrs.get("error", "")).startswith(INTERRUPTED)
    ]
    target = min(space.trial_budget, len(candidates)) if sampler_kind == "grid" else space.trial_budget
    remaining = max(0, target - len(finished))
    progress(
        f"{space.horizon}: study {name} ({sampler_kind}, {len(candidates)} candidates): "
        f"{len(finished)} trials on record, {requeued} interrupted ones queued again, running {remaining} more"
    )

    def objective(trial: optuna.Trial) -> float:
        config = _suggest(trial, space, sampler_kind, by_label)
        trial.set_user_attr("label", candidate_label(config))
        trial.set_user_attr("config", config.model_dump(mode="json", exclude_none=True))
        try:
            pipeline = load_pipeline(config.checkpoint)
            checkpoint_id = checkpoint_ids[config.checkpoint]
            if config.family == SAMPLING_FAMILY:
                group = [config.model_copy(update={"num_samples": n}) for n in space.num_samples]
                results = backtest_sampling_group(pipeline, group, series, search_origins, steps, cache, checkpoint_id)
                result = results[list(space.num_samples).index(config.num_samples)]
            else:
                result = run_backtest(pipeline, config, series, search_origins, steps, cache, checkpoint_id)
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            progress(f"{space.horizon}: trial {trial.number} {candidate_label(config)} failed: {error}")
            raise
        except BaseException as stop:  # Ctrl-C, run termination: not the configuration's fault
            trial.set_user_attr("error", f"{INTERRUPTED} ({type(stop).__name__})")
            raise
        metrics = result.metrics().as_dict()
        trial.set_user_attr("metrics", metrics)
        return metrics["rmse_clp"]

    if remaining:
        study.optimize(objective, n_trials=remaining, catch=(Exception,), gc_after_trial=False)
    return _outcome(study, space, sampler_kind, series, search_origins)


def _leaderboard(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state == optuna.trial.TrialState.RUNNING:
            continue
        metrics = trial.user_attrs.get("metrics", {})
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name,
                "label": trial.user_attrs.get("label", ""),
                "rmse_clp": metrics.get("rmse_clp", np.nan),
                "mape_pct": metrics.get("mape_pct", np.nan),
                "coverage_95": metrics.get("coverage_95", np.nan),
                "bias_clp": metrics.get("bias_clp", np.nan),
                "skill_vs_random_walk": metrics.get("skill_vs_random_walk", np.nan),
                "seconds_per_forecast": metrics.get("seconds_per_forecast", np.nan),
                "error": trial.user_attrs.get("error", ""),
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # Interrupted-and-requeued attempts are noise once their rerun finished.
    frame = frame[~((frame["state"] == "FAIL") & frame["error"].str.startswith(INTERRUPTED))]
    complete = frame[frame["state"] == "COMPLETE"].copy()
    complete["rmse_key"] = complete["rmse_clp"].map(
        lambda v: round(v / RMSE_TIE_TOLERANCE) * RMSE_TIE_TOLERANCE if np.isfinite(v) else np.inf
    )
    complete = complete.sort_values(["rmse_key", "seconds_per_forecast", "trial"]).drop(columns="rmse_key")
    complete = complete.drop_duplicates("label", keep="first")
    others = frame[frame["state"] != "COMPLETE"].sort_values("trial")
    board = pd.concat([complete, others], ignore_index=True)
    board.insert(0, "rank", [i + 1 if s == "COMPLETE" else None for i, s in enumerate(board["state"])])
    return board


def _outcome(study, space, sampler_kind, series, search_origins) -> SearchOutcome:
    board = _leaderboard(study)
    complete = board[board["state"] == "COMPLETE"] if not board.empty else board
    if complete.empty:
        errors = "; ".join(sorted(set(board["error"]))) if not board.empty else "no trial ran"
        raise SearchError(f"{space.horizon}: no configuration of the search space could be evaluated ({errors})")
    best_trial = next(t for t in study.get_trials(deepcopy=False) if t.number == int(complete.iloc[0]["trial"]))
    best = ChronosConfig.model_validate(best_trial.user_attrs["config"])
    return SearchOutcome(
        horizon=space.horizon,
        study_name=study.study_name,
        sampler=sampler_kind,
        best=best,
        best_metrics=best_trial.user_attrs["metrics"],
        leaderboard=board,
        search_origin_dates=(series.date_text(int(search_origins[0])), series.date_text(int(search_origins[-1]))),
        trials_complete=int((board["state"] == "COMPLETE").sum()),
        trials_failed=int((board["state"] == "FAIL").sum()),
    )
