"""Configuration search for one horizon: an Optuna study over the horizon's search space.

* GridSampler when the whole grid fits the trial budget, TPE (seeded) otherwise.
* The objective is the median forecast's RMSE (CLP) on the search window; among equal RMSEs the
  faster configuration wins (inference seconds per forecast).
* The study name pins the horizon, the search space, the checkpoints and the window, so a search
  interrupted half-way resumes where it stopped.
* Study storage, embedded default (no state database URL, and the replay): a directory in the working
  area with one Optuna journal file per study (``<dir>/<study name>.journal``); a trial left RUNNING by
  a killed process is marked failed and queued again. Opening a study replays only its own journal, so
  the cost does not grow with the number of studies run before (one shared journal grew to tens of MB
  over a multi-year replay and was re-read on every search). Journals of the older single-file layout
  (``optuna_studies.journal``) are no longer read; they may be deleted.
* Study storage with a state database URL (production: the instance's PostgreSQL): Optuna's RDBStorage
  in that database, in its own schema ``forex_optuna`` (Optuna keeps its schema version in a table
  ``alembic_version``, the name of Dagster's own in ``public``; the project's tables are in ``forex``).
  A running trial records a heartbeat every ``HEARTBEAT_INTERVAL_S``; one whose heartbeat is older than
  ``GRACE_PERIOD_S`` (its process was killed) is marked FAIL by the next search of the study and queued
  again (at most ``MAX_RETRY`` times: a configuration that kills its process every time ends FAIL).
  A trial still RUNNING within the grace period is left alone: its process may be alive. The database
  lost in the middle of a search fails the search with a
  :class:`~forex_assets.core.storage.StateDatabaseError` naming it; the trial it interrupted is run
  again by the next search.
* A journal torn by a process killed mid-write (its last line cut short) would make every later search
  of the study fail, so it is repaired before the study opens: a copy of the whole file is set aside
  (``<name>.journal.corrupt-<UTC stamp>``, logged and recorded, see ``core/corrupt_files.py``) and the
  journal is cut back to its intact records; the trials lost with the cut are run again.
* A trial that raises (context longer than the history, a failing model, ...) is recorded as FAIL with
  its error in the trial's ``error`` attribute, and the search goes on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.backtest.engine import run_backtest
from forex_assets.core.backtest.sample_bank import SampleBank, backtest_sampling
from forex_assets.core.backtest.windows import PriceSeries
from forex_assets.core.corrupt_files import SetAside, collect_set_aside, truncate_journal
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
from forex_assets.core.retries import is_transient
from forex_assets.core.storage import (
    STATE_DATABASE_URL_ENV,
    StateDatabaseError,
    StateDatabaseUnavailable,
    complete_url,
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
    trials_pruned: int = 0


JOURNAL_SUFFIX = ".journal"


def study_journal_path(directory: Path, name: str) -> Path:
    """The journal file of study ``name`` in the storage ``directory``."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"study name {name!r} cannot name a journal file")
    return Path(directory) / f"{name}{JOURNAL_SUFFIX}"


def _journal_record(line: bytes) -> None:
    """Raise ValueError unless ``line`` is one Optuna journal record (a JSON object with an op code)."""
    record = json.loads(line)
    if not isinstance(record, dict) or "op_code" not in record:
        raise ValueError("not an Optuna journal record")


def repair_journal(path: Path) -> SetAside | None:
    """Cut a torn journal back to its intact records (a copy of the whole file is set aside first); None
    when it is whole. Runs under the journal's own write lock, so a record being appended right now by
    another process is never mistaken for a torn one."""
    from optuna.storages.journal import JournalFileSymlinkLock

    path = Path(path)
    if not path.is_file():
        return None
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        return truncate_journal(path, f"Optuna journal of study {path.name[: -len(JOURNAL_SUFFIX)]}", _journal_record)
    finally:
        lock.release()


def open_storage(directory: Path, name: str, database_url: str | None = None) -> optuna.storages.BaseStorage:
    """Study ``name``'s own append-only Optuna journal in ``directory``: persistent and resumable, far
    cheaper per trial than an SQLite RDB storage (which cost more than the bundled model's forecasts in
    the benchmark), and opened by replaying only this study's records, whatever else the directory holds.
    A torn journal is repaired first (``repair_journal``).

    With ``database_url`` (the state database): :func:`open_database_storage`, which holds every study
    (``directory`` and ``name`` are not used)."""
    if database_url is not None:
        return open_database_storage(database_url)
    from optuna.storages.journal import JournalFileBackend

    path = study_journal_path(directory, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_journal(path)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


# ------------------------------------------------------------------------------ studies in the state database

#: the PostgreSQL schema of Optuna's tables in the state database: their own, not ``forex``, since Optuna
#: keeps its schema version in a table named ``alembic_version``, which is Dagster's own (in ``public``)
STUDY_SCHEMA = "forex_optuna"
#: seconds between the heartbeats of a running trial
HEARTBEAT_INTERVAL_S = 30
#: a running trial whose last heartbeat is older than this (seconds) has lost its process: it is failed
GRACE_PERIOD_S = 120
#: times a trial failed by the heartbeat is queued again (then it stays FAIL: its configuration may be what
#: kills the process, e.g. out of memory)
MAX_RETRY = 3
#: the PostgreSQL advisory lock held while Optuna's schema and tables are made ("forexo" in ASCII)
STUDY_LOCK_KEY = 0x666F7265786F
POSTGRES_CONNECT_TIMEOUT_S = 10
STUDY_STORAGE = "Optuna study storage"


class _RetryKilledTrial(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a trial failed by the heartbeat, as this module queues trials again: the new trial
    records which one it runs again (``requeue_of``), and not an error of the dead one."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trial = copy.copy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != "error"} | {"requeue_of": trial.number}
        super().__call__(study, trial)


def describe_study_database(url) -> str:
    """How errors name the studies' database: its URL without the password, and the schema (PostgreSQL)."""
    if url.get_backend_name() == "sqlite":
        return str(Path(url.database)) if url.database else "sqlite (in memory)"
    return f"{url.render_as_string(hide_password=True)} (schema {STUDY_SCHEMA})"


def _study_database_error(url, error: BaseException, doing: str) -> StateDatabaseError:
    import sqlalchemy.exc

    database = describe_study_database(url)
    cause = error
    while not isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.__cause__ is not None:
        cause = cause.__cause__  # Optuna's StorageInternalError wraps the driver's error
    original = getattr(cause, "orig", None) or cause
    detail = " ".join(line.strip() for line in str(original).splitlines() if line.strip()) or type(original).__name__
    if url.password:
        detail = detail.replace(url.password, "***")
    lost = isinstance(cause, sqlalchemy.exc.DBAPIError) and (
        cause.connection_invalidated
        or (
            isinstance(cause, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
            and getattr(cause.orig, "pgcode", None) is None
        )
    )
    if lost and url.get_backend_name() == "postgresql":
        problem = f"the database cannot be reached or the connection was lost ({detail})"
        hint = (
            f" Check that PostgreSQL is running and reachable (and the URL: ${STATE_DATABASE_URL_ENV} or the "
            "working_area resource's state_database_url), then run again."
        )
    else:
        problem, hint = detail, ""
    kind = StateDatabaseUnavailable if lost or "database is locked" in detail else StateDatabaseError
    return kind(f"state database {database}: {doing} the {STUDY_STORAGE} failed: {problem}.{hint}", database)


@contextmanager
def _study_database_errors(url, doing: str) -> Iterator[None]:
    """The database's errors in the block (a driver's, or Optuna's wrapping of one) as a
    :class:`StateDatabaseError` naming the database, not a traceback."""
    import sqlalchemy.exc

    try:
        yield
    except StateDatabaseError:
        raise
    except (sqlalchemy.exc.DBAPIError, optuna.exceptions.StorageInternalError) as error:
        raise _study_database_error(url, error, doing) from None


@contextmanager
def _postgres_study_schema(url) -> Iterator[None]:
    """Hold the advisory lock that serializes the making of Optuna's tables (processes opening an empty
    database at once would race to create them) and make the schema ``forex_optuna``."""
    import sqlalchemy as sa
    import sqlalchemy.exc
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(
        url,
        poolclass=NullPool,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, "application_name": "forex_assets"},
    )
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": STUDY_LOCK_KEY})
            connection.execute(sa.schema.CreateSchema(STUDY_SCHEMA, if_not_exists=True))
            connection.commit()
            try:
                yield
            finally:
                with suppress(sqlalchemy.exc.DBAPIError):  # a lost connection took its lock with it
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": STUDY_LOCK_KEY})
                    connection.commit()
    finally:
        engine.dispose()


_database_storages: dict[tuple, optuna.storages.RDBStorage] = {}
_database_storages_lock = threading.Lock()


def _forget_inherited_storages() -> None:
    """In a forked child: drop the parent's storages without closing their connections (they are the
    parent's; closing them here would end its sessions). The child opens its own."""
    global _database_storages_lock
    _database_storages_lock = threading.Lock()  # another thread of the parent may have held it at the fork
    for storage in list(_database_storages.values()):
        storage.engine.dispose(close=False)
    _database_storages.clear()


os.register_at_fork(after_in_child=_forget_inherited_storages)


def open_database_storage(database_url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage in the state database ``database_url`` (PostgreSQL: schema ``forex_optuna``,
    made when missing), with heartbeats (``HEARTBEAT_INTERVAL_S``, ``GRACE_PERIOD_S``) and the retry of a
    trial whose process was killed (``MAX_RETRY``). One per database and process. A database that cannot
    be reached is a :class:`StateDatabaseError` naming it."""
    url = complete_url(database_url)
    key = (os.getpid(), url.render_as_string(hide_password=False), HEARTBEAT_INTERVAL_S, GRACE_PERIOD_S, MAX_RETRY)
    with _database_storages_lock:
        storage = _database_storages.get(key)
        if storage is None:
            storage = _database_storages[key] = _rdb_storage(url)
        return storage


def _rdb_storage(url) -> optuna.storages.RDBStorage:
    postgres = url.get_backend_name() == "postgresql"
    if postgres:
        try:
            import psycopg2  # noqa: F401 - the driver, from the production extra (dagster-postgres)
        except ModuleNotFoundError:
            database = describe_study_database(url)
            raise StateDatabaseError(
                f"state database {database}: PostgreSQL needs the psycopg2 driver, which is not installed: "
                "pip install -e '.[production]' (it comes with dagster-postgres)",
                database,
            ) from None
        engine_kwargs = {
            "pool_size": 2,
            "max_overflow": 4,
            "pool_pre_ping": True,  # a connection the server dropped (restart, failover) is replaced, not used
            "pool_recycle": 1800,
            "connect_args": {
                "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
                "application_name": "forex_assets",
                # Optuna's tables, unqualified, in its own schema (and only there: not Dagster's alembic_version)
                "options": f"-c search_path={STUDY_SCHEMA}",
            },
        }
    else:
        engine_kwargs = {"connect_args": {"timeout": 30}}
        if url.database:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # RDBStorage formats its URL ({SCHEMA_VERSION}): braces of a password are doubled to stay as they are
    text = url.render_as_string(hide_password=False).replace("{", "{{").replace("}", "}}")
    with _study_database_errors(url, "opening"), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are "experimental"
        with _postgres_study_schema(url) if postgres else nullcontext():
            return optuna.storages.RDBStorage(
                text,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_INTERVAL_S,
                grace_period=GRACE_PERIOD_S,
                heartbeat_stale_trial_callback=_RetryKilledTrial(max_retry=MAX_RETRY),
            )


def _heartbeat(storage: optuna.storages.BaseStorage) -> bool:
    return isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval() is not None


def stored_studies(directory: Path) -> list[str]:
    """Names of the studies with a journal in ``directory`` (sorted; none when it does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p.name[: -len(JOURNAL_SUFFIX)] for p in directory.glob(f"*{JOURNAL_SUFFIX}") if p.is_file())


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
    heartbeat = _heartbeat(storage)
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
    name = study_name(space, checkpoint_ids, window_end)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with collect_set_aside() as repaired:
        storage = open_storage(storage_dir, name, database_url)
    for event in repaired:
        progress(f"{space.horizon}: WARNING: {event.message()}")
    if database_url is None:
        database_errors = nullcontext()
    else:  # the database lost during the search: an error naming it, not Optuna's "invalid data in the commit"
        database_errors = _study_database_errors(complete_url(database_url), f"running the study {name} in")
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
        return metrics["rmse_clp"]

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
            to_run, pruned = grid_plan(space, candidates, {k: _rmse(t) for k, t in done.items()})
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


def _optimize(study: optuna.Study, objective, n_trials: int, database_failures: list[Exception]) -> None:
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


def _rmse(trial: optuna.trial.FrozenTrial) -> float:
    value = trial.user_attrs.get("metrics", {}).get("rmse_clp")
    return float(value) if value is not None and np.isfinite(value) else float("inf")


def _record_pruned(study: optuna.Study, label: str, by_label: dict, reason: str) -> None:
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
    space: SearchSpace, candidates: list[Candidate], rmse_by_label: dict[str, float]
) -> tuple[list[str], dict[str, str]]:
    """Labels to evaluate now and labels pruned (with the reason), given the RMSEs on record.

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
    if not all(label in rmse_by_label for label in screen):
        return rest + screen, {}
    ranked = sorted(screen, key=lambda label: rmse_by_label[label])
    keep = max(1, math.ceil(space.sampling_screen_keep * len(ranked)))
    survivors, dropped = ranked[:keep], ranked[keep:]
    cutoff = rmse_by_label[survivors[-1]]
    run = rest + screen + [c.label for g in survivors for c in groups[g] if c.label != g]
    pruned = {
        c.label: (
            f"pruned: its group scored RMSE {rmse_by_label[g]:.4f} CLP with {smallest} samples, worse than the "
            f"{keep} best of {len(ranked)} groups (cut-off {cutoff:.4f})"
        )
        for g in dropped
        for c in groups[g]
        if c.label != g
    }
    return run, pruned


def _leaderboard(study: optuna.Study) -> pd.DataFrame:
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
    complete["rmse_key"] = complete["rmse_clp"].map(
        lambda v: round(v / RMSE_TIE_TOLERANCE) * RMSE_TIE_TOLERANCE if np.isfinite(v) else np.inf
    )
    complete = complete.sort_values(["rmse_key", "seconds_per_forecast", "trial"]).drop(columns="rmse_key")
    complete = complete.drop_duplicates("label", keep="first")
    others = frame[frame["state"] != "COMPLETE"].sort_values(["state", "trial"])
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
        trials_pruned=int((board["state"] == "PRUNED").sum()),
    )
