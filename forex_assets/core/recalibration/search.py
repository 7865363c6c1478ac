"""Configuration search for one horizon: an Optuna study over the horizon's search space.

* GridSampler when the whole grid fits the trial budget, TPE (seeded) otherwise.
* The objective is the search space's ``objective``: the weighted quantile loss of the forecast
  distribution (``wql``, the default: the band is what carries information in an FX forecast, whose best
  median is the random walk's) or the median forecast's RMSE (``rmse``, CLP), on the search window; among
  equal scores the faster configuration wins (inference seconds per forecast).
* Where the study lives (one journal file per study, or the state database with heartbeats), its name
  (which pins horizon, search space, checkpoints and window, so an interrupted search resumes) and the
  repair of a torn journal: :mod:`forex_assets.core.recalibration.study_storage`.
* A trial left RUNNING by a killed process is marked failed and queued again (with heartbeats: once its
  heartbeat is older than the grace period; a trial still RUNNING within it is left alone, its process
  may be alive). The database lost in the middle of a search fails the search with a
  :class:`~forex_assets.core.storage.StateDatabaseError` naming it; the trial it interrupted is run
  again by the next search.
* A trial that raises (context longer than the history, a failing model, ...) is recorded as FAIL with
  its error in the trial's ``error`` attribute, and the search goes on.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.backtest.engine import run_backtest
from forex_assets.core.backtest.sample_bank import SampleBank, backtest_sampling
from forex_assets.core.backtest.windows import PriceSeries
from forex_assets.core.corrupt_files import collect_set_aside
from forex_assets.core.forecasting.config import SAMPLING_FAMILY, ChronosConfig
from forex_assets.core.horizons import horizon_steps
from forex_assets.core.recalibration.search_space import (
    Candidate,
    SearchSpace,
    candidate_label,
    context_options,
    enumerate_candidates,
    make_config,
)
from forex_assets.core.recalibration.study_storage import (
    MAX_RETRY,
    has_heartbeat,
    open_storage,
    study_database_errors,
    study_name,
)
from forex_assets.core.retries import is_transient
from forex_assets.core.storage import StateDatabaseError, complete_url

log = logging.getLogger(__name__)

#: Scores closer than this are a tie, decided by inference time.
RMSE_TIE_TOLERANCE = 1e-9

#: the trial metric each search objective minimises
OBJECTIVE_METRICS = {"wql": "weighted_quantile_loss", "rmse": "rmse_clp"}


class SearchError(RuntimeError):
    """No configuration of the search space could be evaluated."""


@dataclass(frozen=True)
class SearchOutcome:
    horizon: str
    study_name: str
    sampler: str
    best: ChronosConfig
    best_metrics: dict[str, Any]
    leaderboard: pd.DataFrame  # one row per trial, best first; failed trials last with their error
    search_origin_dates: tuple[str, str]
    trials_complete: int
    trials_failed: int
    trials_pruned: int = 0


def _sampler(space: SearchSpace, n_candidates: int, labels: list[str]) -> tuple[optuna.samplers.BaseSampler, str]:
    if n_candidates <= space.trial_budget:
        return optuna.samplers.GridSampler({"candidate": labels}, seed=space.seed), "grid"
    return optuna.samplers.TPESampler(seed=space.seed), "tpe"


def _suggest(
    trial: optuna.Trial, space: SearchSpace, sampler_kind: str, by_label: dict[str, ChronosConfig]
) -> ChronosConfig:
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


def _requeue_interrupted(study: optuna.Study, storage: optuna.storages.BaseStorage) -> int:
    """Trials an interrupted process left behind, queued again with the same parameters.

    A process killed outright leaves its trial RUNNING; one stopped by an exception that is not an
    error (Ctrl-C, a Dagster run termination) leaves it FAIL with an ``interrupted`` error. Either way
    the trial is marked failed-and-requeued so the grid point is evaluated on resume. ``storage`` is
    the one the study was opened on: its public ``BaseStorage`` API records the error on a trial this
    process did not start (``study.tell`` then fails it).

    With heartbeats (the state database's RDBStorage) a RUNNING trial is the heartbeat's: one whose
    heartbeat is older than the grace period is failed here and queued again by ``_RetryKilledTrial``;
    one within it is left alone (its process may be running it still).
    """
    count = 0
    heartbeat = has_heartbeat(storage)
    if heartbeat:
        waiting = (optuna.trial.TrialState.WAITING,)
        before = len(study.get_trials(deepcopy=False, states=waiting))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        count += len(study.get_trials(deepcopy=False, states=waiting)) - before
    trials = study.get_trials(deepcopy=False)
    already = {t.user_attrs.get("requeue_of") for t in trials}
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in trials:
        killed = trial.state == optuna.trial.TrialState.RUNNING and not heartbeat
        stopped = trial.state == optuna.trial.TrialState.FAIL and str(trial.user_attrs.get("error", "")).startswith(
            INTERRUPTED
        )
        if not (killed or stopped) or not trial.params or trial.number in already:
            continue
        if killed:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.set_trial_user_attr(trial_id, "error", f"{INTERRUPTED} (process killed)")
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
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
    storage_dir: Path,
    progress: Callable[[str], None] = log.info,
    database_url: str | None = None,
) -> SearchOutcome:
    """Run (or resume) the study and return the best configuration with the full leaderboard.

    ``storage_dir``: the study storage directory (the study's journal is ``<storage_dir>/<name>.journal``);
    ``database_url``: the state database, which holds the study instead (``storage_dir`` unused)."""
    window_end = series.date_text(int(search_origins[-1]))
    series_digest = hashlib.sha256(np.ascontiguousarray(series.values, dtype=np.float64).tobytes()).hexdigest()
    name = study_name(space, checkpoint_ids, window_end, series_digest)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with collect_set_aside() as repaired:
        storage = open_storage(storage_dir, name, database_url)
    for event in repaired:
        progress(f"{space.horizon}: WARNING: {event.message()}")
    database_errors: AbstractContextManager[None]
    if database_url is None:
        database_errors = nullcontext()
    else:  # the database lost during the search: an error naming it, not Optuna's "invalid data in the commit"
        database_errors = study_database_errors(complete_url(database_url), f"running the study {name} in")
    with database_errors:
        return _run_study(space, series, search_origins, load_pipeline, checkpoint_ids, cache, storage, name, progress)


def _run_study(
    space: SearchSpace,
    series: PriceSeries,
    search_origins: np.ndarray,
    load_pipeline: Callable[[str], object],
    checkpoint_ids: dict[str, str],
    cache: ForecastCache,
    storage: optuna.storages.BaseStorage,
    name: str,
    progress: Callable[[str], None],
) -> SearchOutcome:
    steps = horizon_steps(space.horizon)
    candidates = enumerate_candidates(space)
    by_label = {c.label: c.config for c in candidates}
    sampler, sampler_kind = _sampler(space, len(candidates), list(by_label))
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        direction="minimize",
        load_if_exists=True,
    )
    requeued = _requeue_interrupted(study, storage)
    bank = SampleBank()
    database_failures: list[Exception] = []  # the storage failed (not the configuration): the search stops

    def objective(trial: optuna.Trial) -> float:
        config = _suggest(trial, space, sampler_kind, by_label)
        trial.set_user_attr("label", candidate_label(config))
        trial.set_user_attr("config", config.model_dump(mode="json", exclude_none=True))
        try:
            pipeline = load_pipeline(config.checkpoint)
            checkpoint_id = checkpoint_ids[config.checkpoint]
            if config.family == SAMPLING_FAMILY:
                # the screening draws only the smallest count; any larger request draws the largest at once
                draw_to = None if config.num_samples == min(space.num_samples) else max(space.num_samples)
                result = backtest_sampling(
                    pipeline, config, series, search_origins, steps, bank, cache, checkpoint_id, draw_to
                )
            else:
                result = run_backtest(pipeline, config, series, search_origins, steps, cache, checkpoint_id)
        except Exception as error:
            if isinstance(error, StateDatabaseError) or is_transient(error):
                # the storage (a database down, a cache file locked too long), not the configuration: the search
                # stops and fails (a step retry, or the next search, runs this trial again)
                database_failures.append(error)
                trial.study.stop()
                with suppress(Exception):  # run again on resume (when the database can still record it)
                    trial.set_user_attr("error", f"{INTERRUPTED} ({type(error).__name__}: {error})")
                raise
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            progress(f"{space.horizon}: trial {trial.number} {candidate_label(config)} failed: {error}")
            raise
        except BaseException as stop:  # Ctrl-C, run termination: not the configuration's fault
            trial.set_user_attr("error", f"{INTERRUPTED} ({type(stop).__name__})")
            raise
        metrics = result.metrics().as_dict()
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("model_seconds", result.model_seconds)
        return float(metrics[OBJECTIVE_METRICS[space.objective]])

    if sampler_kind == "tpe":
        finished = [t for t in study.get_trials(deepcopy=False) if _counts(t)]
        remaining = max(0, space.trial_budget - len(finished))
        progress(
            f"{space.horizon}: study {name} (tpe, {len(candidates)} candidates): {len(finished)} trials on "
            f"record, {requeued} interrupted ones queued again, running {remaining} more"
        )
        if remaining:
            _optimize(study, objective, remaining, database_failures)
    else:
        # Grid: stage 1 runs every quantile-family candidate and the smallest num_samples of each
        # sampling group; stage 2 the larger sample counts of the groups that survived the screen.
        for _stage in range(2):
            trials = study.get_trials(deepcopy=False)
            done = {t.user_attrs.get("label"): t for t in trials if _counts(t)}
            waiting = {
                t.system_attrs.get("fixed_params", {}).get("candidate")
                for t in trials
                if t.state == optuna.trial.TrialState.WAITING
            }
            scores = {k: _score(t, space.objective) for k, t in done.items() if k is not None}
            to_run, pruned = grid_plan(space, candidates, scores)
            for label, reason in pruned.items():
                if label not in done:
                    _record_pruned(study, label, by_label, reason)
            todo = [label for label in to_run if label not in done]
            progress(
                f"{space.horizon}: study {name} (grid, {len(candidates)} candidates): {len(done)} trials on "
                f"record, {requeued} interrupted ones queued again, running {len(todo)} more"
            )
            for label in todo:
                if label not in waiting:
                    study.enqueue_trial({"candidate": label})
            if todo:
                _optimize(study, objective, len(todo), database_failures)
            requeued = 0
    return _outcome(study, space, sampler_kind, series, search_origins)


def _optimize(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    database_failures: list[Exception],
) -> None:
    try:
        study.optimize(objective, n_trials=n_trials, catch=(Exception,), gc_after_trial=False)
    except Exception:
        if database_failures:  # the study could not even record the failure: the first error says why
            raise database_failures[0] from None
        raise
    if database_failures:
        raise database_failures[0]


def _error(trial: optuna.trial.FrozenTrial) -> str:
    """The trial's error ('' when none). A trial FAIL without an error or metrics was failed by the
    heartbeat (its process was killed before it could record either): interrupted, unless it was queued
    again ``MAX_RETRY`` times already."""
    error = trial.user_attrs.get("error")
    if error is not None:
        return str(error)
    if trial.state == optuna.trial.TrialState.FAIL and "metrics" not in trial.user_attrs:
        runs = len(trial.system_attrs.get("retry_history", [])) + 1
        if runs > MAX_RETRY:
            return f"its process was killed {runs} times running this configuration (no heartbeat); not run again"
        return f"{INTERRUPTED} (process killed: no heartbeat)"
    return ""


def _counts(trial: optuna.trial.FrozenTrial) -> bool:
    """A finished trial that was not merely interrupted."""
    return trial.state.is_finished() and not _error(trial).startswith(INTERRUPTED)


def _score(trial: optuna.trial.FrozenTrial, objective: str) -> float:
    """The trial's value of the search objective (inf when it has none)."""
    value = trial.user_attrs.get("metrics", {}).get(OBJECTIVE_METRICS[objective])
    return float(value) if value is not None and np.isfinite(value) else float("inf")


def _record_pruned(study: optuna.Study, label: str, by_label: dict[str, ChronosConfig], reason: str) -> None:
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.PRUNED,
            params={"candidate": label},
            distributions={"candidate": optuna.distributions.CategoricalDistribution(list(by_label))},
            user_attrs={
                "label": label,
                "config": by_label[label].model_dump(mode="json", exclude_none=True),
                "error": reason,
            },
        )
    )


def grid_plan(
    space: SearchSpace, candidates: list[Candidate], score_by_label: dict[str, float]
) -> tuple[list[str], dict[str, str]]:
    """Labels to evaluate now and labels pruned (with the reason), given the objective's scores on record.

    Sampling groups (same checkpoint, contexts, preprocessing and temperature) are screened with
    their smallest ``num_samples``; only the best ``ceil(sampling_screen_keep x groups)`` groups go on
    to the larger sample counts. Quantile-family candidates are always evaluated.
    """
    labels = [c.label for c in candidates]
    sampling = [c for c in candidates if c.config.family == SAMPLING_FAMILY]
    if not sampling or space.sampling_screen_keep >= 1.0 or len(space.num_samples) < 2:
        return labels, {}
    smallest = min(space.num_samples)
    groups: dict[str, list[Candidate]] = {}
    for c in sampling:
        groups.setdefault(candidate_label(c.config.model_copy(update={"num_samples": smallest})), []).append(c)
    screen = list(groups)
    rest = [c.label for c in candidates if c.config.family != SAMPLING_FAMILY]
    if not all(label in score_by_label for label in screen):
        return rest + screen, {}
    ranked = sorted(screen, key=lambda label: score_by_label[label])
    keep = max(1, math.ceil(space.sampling_screen_keep * len(ranked)))
    survivors, dropped = ranked[:keep], ranked[keep:]
    cutoff = score_by_label[survivors[-1]]
    metric = "RMSE" if space.objective == "rmse" else "WQL"
    unit = " CLP" if space.objective == "rmse" else ""
    run = rest + screen + [c.label for g in survivors for c in groups[g] if c.label != g]
    pruned = {
        c.label: (
            f"pruned: its group scored {metric} {score_by_label[g]:.6g}{unit} with {smallest} samples, worse than "
            f"the {keep} best of {len(ranked)} groups (cut-off {cutoff:.6g})"
        )
        for g in dropped
        for c in groups[g]
        if c.label != g
    }
    return run, pruned


def _leaderboard(study: optuna.Study, objective: str = "rmse") -> pd.DataFrame:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if not trial.state.is_finished():  # running elsewhere, or queued
            continue
        metrics = trial.user_attrs.get("metrics", {})
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name,
                "label": trial.user_attrs.get("label", ""),
                "rmse_clp": metrics.get("rmse_clp", np.nan),
                "wql": metrics.get("weighted_quantile_loss", np.nan),
                "interval_score_95_clp": metrics.get("interval_score_95_clp", np.nan),
                "mape_pct": metrics.get("mape_pct", np.nan),
                "coverage_95": metrics.get("coverage_95", np.nan),
                "bias_clp": metrics.get("bias_clp", np.nan),
                "skill_vs_random_walk": metrics.get("skill_vs_random_walk", np.nan),
                "seconds_per_forecast": metrics.get("seconds_per_forecast", np.nan),
                "error": _error(trial),
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # Interrupted-and-requeued attempts are noise once their rerun finished.
    frame = frame[~((frame["state"] == "FAIL") & frame["error"].str.startswith(INTERRUPTED))]
    complete = frame[frame["state"] == "COMPLETE"].copy()
    ranked_by = {"wql": "wql", "rmse": "rmse_clp"}[objective]
    complete["score_key"] = complete[ranked_by].map(
        lambda v: round(v / RMSE_TIE_TOLERANCE) * RMSE_TIE_TOLERANCE if np.isfinite(v) else np.inf
    )
    complete = complete.sort_values(["score_key", "seconds_per_forecast", "trial"]).drop(columns="score_key")
    complete = complete.drop_duplicates("label", keep="first")
    others = frame[frame["state"] != "COMPLETE"].sort_values(["state", "trial"])
    board = pd.concat([complete, others], ignore_index=True)
    board.insert(0, "rank", [i + 1 if s == "COMPLETE" else None for i, s in enumerate(board["state"])])
    return board


def _outcome(
    study: optuna.Study, space: SearchSpace, sampler_kind: str, series: PriceSeries, search_origins: np.ndarray
) -> SearchOutcome:
    board = _leaderboard(study, space.objective)
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
        trials_pruned=int((board["state"] == "PRUNED").sum()),
    )
