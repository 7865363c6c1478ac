"""Costs that must not grow with the history a working area accumulates (issue 13): the Optuna study
storage (one journal per study), the decision log's daily look-ups (indexed), and the validation report's
HTML (rendered only when asked for)."""

import sqlite3
from datetime import date, timedelta

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.backtest.windows import PriceSeries, split_windows
from forex_assets.core.forecasting.config import load_config
from forex_assets.core.monitoring.decision_log import FLAG_INDEXES, VERDICT_INDEXES, DecisionLog
from forex_assets.core.monitoring.triggers import TriggerDecision
from forex_assets.core.recalibration.study_storage import open_storage, stored_studies, study_journal_path
from forex_assets.core.recalibration.validation import ApprovalThresholds
from forex_assets.core.recalibration.workflow import validate_candidate
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets_tests.conftest import random_walk_prices

# ------------------------------------------------------------------------------ study storage


def _study_with_trials(directory, name: str, values: list[float]) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=open_storage(directory, name), load_if_exists=True)
    for value in values:
        study.add_trial(
            optuna.trial.create_trial(
                value=value,
                params={"x": value},
                distributions={"x": optuna.distributions.FloatDistribution(0.0, 100.0)},
            )
        )


def test_each_study_has_its_own_journal_file(tmp_path):
    storage = tmp_path / "optuna_studies"
    _study_with_trials(storage, "7d-aaaa-2024-01-05", [1.0, 2.0])
    _study_with_trials(storage, "7d-aaaa-2024-02-09", [3.0])
    first, second = study_journal_path(storage, "7d-aaaa-2024-01-05"), study_journal_path(storage, "7d-aaaa-2024-02-09")
    assert first.is_file() and second.is_file() and first != second
    assert stored_studies(storage) == ["7d-aaaa-2024-01-05", "7d-aaaa-2024-02-09"]
    # each storage holds its own study only
    assert optuna.get_all_study_names(open_storage(storage, "7d-aaaa-2024-02-09")) == ["7d-aaaa-2024-02-09"]
    study = optuna.load_study(study_name="7d-aaaa-2024-01-05", storage=open_storage(storage, "7d-aaaa-2024-01-05"))
    assert sorted(t.value for t in study.trials) == [1.0, 2.0]
    assert stored_studies(tmp_path / "nothing here") == []


def test_opening_a_study_does_not_read_the_other_journals(tmp_path):
    storage = tmp_path / "optuna_studies"
    _study_with_trials(storage, "7d-old-2020-01-03", [float(v) for v in range(50)])
    other = study_journal_path(storage, "7d-old-2020-01-03")
    other.write_bytes(b"{ this is not a journal \x00\xff\n" * 1000)  # corrupt: reading it would raise
    before = other.stat()

    _study_with_trials(storage, "7d-new-2024-01-05", [4.0])
    _study_with_trials(storage, "7d-new-2024-01-05", [5.0])  # reopened: resumes its own journal
    study = optuna.load_study(study_name="7d-new-2024-01-05", storage=open_storage(storage, "7d-new-2024-01-05"))

    assert sorted(t.value for t in study.trials) == [4.0, 5.0]
    after = other.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    # the file left alone is really unreadable: Optuna by itself fails on it (open_storage would set it aside)
    with pytest.raises(Exception):  # noqa: B017 - whatever Optuna raises
        optuna.storages.JournalStorage(JournalFileBackend(str(other)))
    assert other.read_bytes() == b"{ this is not a journal \x00\xff\n" * 1000


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden"])
def test_a_study_name_that_cannot_be_a_file_name_is_refused(tmp_path, name):
    with pytest.raises(ValueError, match="cannot name a journal file"):
        study_journal_path(tmp_path, name)


# ------------------------------------------------------------------------------ decision log


def _bulk_decisions(log: DecisionLog, count: int) -> dict[str, dict[str, date | None]]:
    """``count`` decisions over four horizons (inserted in one transaction, as ``record`` would store them),
    each optimization with its verdict, and the expected last optimization / performance override per horizon."""
    horizons, start = ("7d", "15d", "30d", "90d"), date(2000, 1, 3)
    rows, verdicts, expected = [], [], {h: {"optimize": None, "performance_override": None} for h in horizons}
    for i in range(count):
        horizon, day = horizons[i % 4], start + timedelta(days=i // 4)
        override = horizon == "30d" and (i // 4) % 401 == 5
        optimize = ((i // 4) % 97 == 0 and day < date(2026, 1, 1)) or override
        rows.append((horizon, day.isoformat(), int(optimize), "[]", "[]", "{}", int(override), None))
        if optimize:
            verdicts.append((horizon, day.isoformat(), int(override), "rejected", "", day.isoformat()))
        for flag, on in (("optimize", optimize), ("performance_override", override)):
            if on:
                expected[horizon][flag] = day
    with sqlite3.connect(log.path) as db:
        db.executemany(
            "INSERT INTO decisions (horizon, decided_on, optimize, fired, blocked, reasons, performance_override, "
            "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.executemany(
            "INSERT INTO optimization_verdicts (horizon, decided_on, performance_override, verdict, detail, "
            "recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
            verdicts,
        )
    db.close()
    return expected


def test_last_optimization_and_override_use_the_index_with_10000_decisions(tmp_path):
    log = DecisionLog(tmp_path / "trigger_decisions.sqlite")
    expected = _bulk_decisions(log, 10_000)
    log.record(TriggerDecision("7d", date(2030, 6, 3), False, (), (), {}, False))  # the real write path, unflagged
    with sqlite3.connect(log.path) as db:
        for flag, index in VERDICT_INDEXES.items():
            plan = " ".join(
                row[-1] for row in db.execute("EXPLAIN QUERY PLAN " + log.last_flagged_query(flag), ("USDCLP", "7d"))
            )
            assert index in plan, plan
            assert "SCAN" not in plan, plan
    db.close()
    for horizon, flags in expected.items():
        assert log.last_optimization(horizon) == flags["optimize"]
        assert log.last_performance_override(horizon) == flags["performance_override"]
        # the same answer as the full read they replace
        decisions = log.decisions(horizon)
        assert flags["optimize"] == max(d.decided_on for d in decisions if d.optimize)
    assert log.last_performance_override("7d") is None and expected["30d"]["performance_override"] is not None
    assert log.last_optimization("1y") is None

    log.record(TriggerDecision("7d", date(2030, 6, 4), True, ("schedule",), (), {}, True))
    assert log.last_optimization("7d") != date(2030, 6, 4)  # decided, no verdict yet: not counted
    log.record_verdict("7d", date(2030, 6, 4), "approved", performance_override=True)
    assert log.last_optimization("7d") == log.last_performance_override("7d") == date(2030, 6, 4)


def test_a_log_written_before_the_index_gets_it_when_opened(tmp_path):
    path = tmp_path / "trigger_decisions.sqlite"
    with sqlite3.connect(path) as db:  # the schema of the first versions: no recorded_at, no index
        db.execute(
            "CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, horizon TEXT NOT NULL, "
            "decided_on TEXT NOT NULL, optimize INTEGER NOT NULL, fired TEXT NOT NULL, blocked TEXT NOT NULL, "
            "reasons TEXT NOT NULL, performance_override INTEGER NOT NULL)"
        )
        db.execute("INSERT INTO decisions VALUES (NULL, '15d', '2021-03-04', 1, '[]', '[]', '{}', 0)")
    db.close()
    log = DecisionLog(path)
    with sqlite3.connect(path) as db:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    db.close()
    assert set(FLAG_INDEXES.values()) | set(VERDICT_INDEXES.values()) <= indexes
    assert log.last_optimization("15d") == date(2021, 3, 4)  # its decision to optimize counts, as it did then
    assert log.last_performance_override("15d") is None


# ------------------------------------------------------------------------------ validation report


def test_validate_candidate_writes_the_html_only_when_asked(tmp_path):
    prices = random_walk_prices(400, seed=11)
    series = PriceSeries.from_frame(prices)
    windows = split_windows(len(series.values), 7, search_origins=4, validation_origins=4)
    seed = load_config(SEED_CONFIGS_DIR / "chronos_7d.json", expected_horizon="7d")
    candidate = seed.model_copy(update={"context_length": 60})
    document = {
        "horizon": "7d",
        "config": candidate.model_dump(mode="json", exclude_none=True),
        "search_window": [series.date_text(int(windows.search[0])), series.date_text(int(windows.search[-1]))],
        "search_origins": 4,
        "validation_origins": 4,
    }
    cache = ForecastCache(tmp_path / "cache.sqlite")

    thresholds = ApprovalThresholds()
    quiet = validate_candidate(document, seed, "v1", prices, cache, tmp_path / "quiet", thresholds, render_html=False)
    assert quiet.html_path is None and quiet.json_path.is_file()
    assert not list((tmp_path / "quiet").glob("*.html"))
    assert [p.suffix for p in (tmp_path / "quiet").iterdir()] == [".json"]

    shown = validate_candidate(document, seed, "v1", prices, cache, tmp_path / "shown", thresholds)  # production
    assert shown.html_path is not None and shown.html_path.is_file() and shown.json_path.is_file()
    assert shown.report.metrics.rmse_new == quiet.report.metrics.rmse_new  # the same validation either way
