"""Corrupt files on disk, made for real: a garbage and a truncated SQLite file, a cut-short model.safetensors,
an Optuna journal torn by a killed writer. A cache or journal is set aside (kept, logged, recorded) and the
work goes on; the forecast history (state) and a checkpoint fail with the file named and what to do."""

import logging
import shutil
import sqlite3

import numpy as np
import optuna
import pandas as pd
import pytest

from forex_assets.core import corrupt_files
from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.corrupt_files import CorruptFileError, collect_set_aside, is_corrupt_sqlite
from forex_assets.core.forecasting.history import ForecastHistory, ForecastRecord
from forex_assets.core.forecasting.quantiles import FORECAST_QUANTILES
from forex_assets.core.models import loading
from forex_assets.core.models.loading import MODELS_DIR, ModelLoadError, load_pipeline
from forex_assets.core.recalibration.study_storage import open_storage, study_journal_path

GARBAGE = b"this is not an SQLite database, whatever its name says\n" * 40


def _aside(path):
    """The files a set-aside left next to ``path``."""
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


def _row(key="k1", steps=3):
    quantiles = np.arange(steps * len(FORECAST_QUANTILES), dtype=np.float64).reshape(steps, -1)
    return (key, "ckpt@sha256:0", "2024-01-02", quantiles, 0.5)


# ------------------------------------------------------------------------------------------ backtest cache


def test_garbage_backtest_cache_is_set_aside_and_rebuilt(tmp_path, caplog):
    path = tmp_path / "cache" / "backtest_cache.sqlite"
    path.parent.mkdir()
    path.write_bytes(GARBAGE)

    with caplog.at_level(logging.WARNING, logger=corrupt_files.__name__), collect_set_aside() as events:
        cache = ForecastCache(path)
        cache.put_many([_row()])

    assert cache.count() == 1 and set(cache.get_many(["k1"])) == {"k1"}  # carries on, empty then filled
    [kept] = _aside(path)
    assert kept.read_bytes() == GARBAGE  # kept for a post mortem, not deleted
    [event] = events
    assert (event.path, event.kept_as, event.problem) == (path, kept, "file is not a database")
    message = event.message()
    assert str(path) in message and str(kept) in message and "file is not a database" in message
    assert message in caplog.text  # a WARNING naming both files


def test_backtest_cache_that_goes_bad_later_is_set_aside_on_next_use(tmp_path):
    path = tmp_path / "backtest_cache.sqlite"
    cache = ForecastCache(path)
    cache.put_many([_row("a"), _row("b")])
    path.write_bytes(GARBAGE)  # damaged between two uses
    for sidecar in ("-wal", "-shm"):
        path.with_name(path.name + sidecar).unlink(missing_ok=True)

    with collect_set_aside() as events:
        assert cache.get_many(["a", "b"]) == {}  # a miss: the backtests are computed again
    assert len(events) == 1 and len(_aside(path)) == 1
    cache.put_many([_row("a")])
    assert cache.count() == 1


def test_sqlite_sidecars_go_aside_with_their_database(tmp_path):
    """A stale WAL left next to the new, empty database would be replayed into it."""
    path = tmp_path / "backtest_cache.sqlite"
    path.write_bytes(GARBAGE)
    path.with_name(path.name + "-wal").write_bytes(b"wal")
    kept = corrupt_files.move_aside(path, corrupt_files.SQLITE_SIDECARS)
    assert kept.name.startswith("backtest_cache.sqlite.corrupt-") and kept.read_bytes() == GARBAGE
    assert kept.with_name(kept.name + "-wal").read_bytes() == b"wal"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([kept.name, kept.name + "-wal"])
    assert corrupt_files.move_aside(path) is None  # already gone (another process was first)


def test_a_locked_cache_is_not_mistaken_for_a_corrupt_one():
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert not is_corrupt_sqlite(locked)
    assert is_corrupt_sqlite(pd.errors.DatabaseError("Execution failed")) is False


# ---------------------------------------------------------------------------------------- forecast history


def _record(origin: str) -> ForecastRecord:
    dates = list(pd.bdate_range(origin, periods=4)[1:])
    quantiles = np.tile(np.linspace(890.0, 910.0, len(FORECAST_QUANTILES)), (3, 1))
    return ForecastRecord("7d", pd.Timestamp(origin), 900.0, dates, quantiles, "v1", "bundled:x", {}, 0.1)


def test_garbage_forecast_history_is_an_error_naming_the_file_and_is_left_alone(tmp_path):
    path = tmp_path / "forecast_history.sqlite"
    path.write_bytes(GARBAGE)

    with collect_set_aside() as events, pytest.raises(CorruptFileError) as raised:
        ForecastHistory(path)

    message = str(raised.value)
    assert message.startswith(f"{path}: the forecast history is corrupt (file is not a database)")
    assert "state, not a cache" in message and "Restore it from a backup" in message
    assert f"move {path.name} and its -wal and -shm files" in message
    assert raised.value.path == path
    assert path.read_bytes() == GARBAGE and _aside(path) == [] and events == []  # nothing discarded


def test_truncated_forecast_history_is_an_error_on_read(tmp_path):
    path = tmp_path / "forecast_history.sqlite"
    history = ForecastHistory(path)
    for origin in pd.bdate_range("2023-01-02", periods=300):
        history.record(_record(origin.strftime("%Y-%m-%d")))
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    with open(path, "r+b") as handle:  # a copy cut short: the header is fine, the pages are gone
        handle.truncate(size // 3)

    with pytest.raises(CorruptFileError, match="the forecast history is corrupt") as raised:
        history.steps("7d")
    assert str(path) in str(raised.value) and "malformed" in str(raised.value)


# --------------------------------------------------------------------------------------------- checkpoints


def _truncated_copy(target, keep_bytes=100_000):
    source = MODELS_DIR / "usdclp-chronos2-mini"
    shutil.copytree(source, target)
    weights = target / "model.safetensors"
    weights.write_bytes((source / "model.safetensors").read_bytes()[:keep_bytes])
    return weights


def test_truncated_weights_of_a_local_checkpoint_name_the_file(tmp_path):
    weights = _truncated_copy(tmp_path / "checkpoint")

    with pytest.raises(ModelLoadError) as raised:
        load_pipeline(str(tmp_path / "checkpoint"))

    message = str(raised.value)
    assert message.startswith(f"{weights}: checkpoint ")
    assert "truncated or corrupt weights file" in message and "file not fully covered" in message
    assert f"Copy the checkpoint directory {tmp_path / 'checkpoint'} again" in message


def test_truncated_bundled_weights_say_how_to_restore_them(tmp_path, monkeypatch):
    models = tmp_path / "models"
    weights = _truncated_copy(models / "usdclp-chronos2-mini", keep_bytes=10)
    monkeypatch.setattr(loading, "MODELS_DIR", models)  # the shipped file itself stays intact

    with pytest.raises(ModelLoadError) as raised:
        load_pipeline("bundled:usdclp-chronos2-mini")

    message = str(raised.value)
    assert message.startswith(f"{weights}: checkpoint 'bundled:usdclp-chronos2-mini' has a truncated or corrupt")
    assert "git checkout -- forex_assets/core/models/usdclp-chronos2-mini" in message
    assert "pip install --force-reinstall --no-deps forex_assets" in message


# ---------------------------------------------------------------------------------------------- journals


def _study(storage, name="7d-abc-2024-01-31"):
    return optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True)


def _objective(trial):
    return (trial.suggest_float("x", -1, 1) - 0.25) ** 2


@pytest.fixture
def torn_journal(tmp_path):
    """A study with 3 finished trials whose writer was killed in the middle of its next record."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = "7d-abc-2024-01-31"
    _study(open_storage(tmp_path, name), name).optimize(_objective, n_trials=3)
    path = study_journal_path(tmp_path, name)
    with open(path, "ab") as handle:
        handle.write(b'{"op_code":4,"worker_id":"w","study_id":0,"datetime_st')  # no end of line
    return path


def test_a_torn_journal_breaks_optuna_on_its_own(torn_journal):
    """Why the repair exists: Optuna skips the torn line, appends the next record onto it, and from then on
    every open of the study fails."""
    from optuna.storages.journal import JournalFileBackend

    def plain():
        return optuna.storages.JournalStorage(JournalFileBackend(str(torn_journal)))

    with pytest.raises(ValueError):  # json.JSONDecodeError or "Invalid log format."
        for _ in range(2):
            _study(plain()).optimize(_objective, n_trials=1)


def test_a_torn_journal_is_cut_back_and_the_study_carries_on(torn_journal, caplog):
    torn = torn_journal.read_bytes()

    with caplog.at_level(logging.WARNING, logger=corrupt_files.__name__), collect_set_aside() as events:
        storage = open_storage(torn_journal.parent, "7d-abc-2024-01-31")
    study = _study(storage)
    assert len([t for t in study.trials if t.state.is_finished()]) == 3  # the intact trials are kept
    study.optimize(_objective, n_trials=2)
    again = _study(open_storage(torn_journal.parent, "7d-abc-2024-01-31"))  # and later opens work
    assert len(again.trials) == 5

    [kept] = _aside(torn_journal)
    assert kept.read_bytes() == torn  # the torn file, as it was
    [event] = events
    assert event.path == torn_journal and event.kept_as == kept
    assert "is cut short" in event.problem and "no end of line" in event.problem
    assert str(torn_journal) in caplog.text and str(kept) in caplog.text


def test_a_journal_already_merged_past_the_tear_is_cut_at_the_bad_line(torn_journal):
    """A process appended after the torn line (as Optuna does): the merged line and everything after it go;
    the study keeps what came before."""
    first_record = torn_journal.read_bytes().splitlines(keepends=True)[0]
    with open(torn_journal, "ab") as handle:
        handle.write(first_record + first_record)  # the merged line, then one more whole record

    with collect_set_aside() as events:
        study = _study(open_storage(torn_journal.parent, "7d-abc-2024-01-31"))
    assert len(study.trials) == 3 and "is not a valid record" in events[0].problem
    study.optimize(_objective, n_trials=1)
    assert len(_study(open_storage(torn_journal.parent, "7d-abc-2024-01-31")).trials) == 4


def test_a_whole_journal_is_left_alone(tmp_path):
    name = "7d-abc-2024-01-31"
    _study(open_storage(tmp_path, name), name).optimize(_objective, n_trials=2)
    with collect_set_aside() as events:
        assert len(_study(open_storage(tmp_path, name), name).trials) == 2
    assert events == [] and _aside(study_journal_path(tmp_path, name)) == []
