"""A corrupt cache or journal set aside while an asset runs: the run goes on and succeeds, the corrupt file is
kept, and the operator learns of it (run log warning, asset metadata, an email) - against the real local SMTP
server."""

import re

import dagster as dg
import pytest

from forex_assets.cli.run import ALL_ASSETS
from forex_assets.core.alerting.messages import file_set_aside
from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.corrupt_files import SetAside
from forex_assets.defs.monitoring.assets import performance_report
from forex_assets.defs.partitions import series_key
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.recalibration.assets import candidate_config, validation_report
from forex_assets_tests.conftest import lenient_approval
from forex_assets_tests.smtp_server import alert_server

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
GARBAGE = b"this is not an SQLite database \x00\xff\xfe" * 300


@pytest.fixture
def smtp(tmp_path, monkeypatch):
    with alert_server(tmp_path / "smtp", monkeypatch) as pair:
        yield pair


def test_a_corrupt_backtest_cache_is_set_aside_the_run_succeeds_and_an_alert_names_the_file(
    smtp, forex_env, monkeypatch
):
    monkeypatch.delenv("FOREX_CACHE_DIR", raising=False)
    inbox, notifier = smtp
    instance, resources, working_area = forex_env
    resources = resources | {"alerts": notifier}
    cache = working_area.cache / "backtest_cache.sqlite"
    cache.write_bytes(GARBAGE)  # e.g. a disk that filled up under the cache, or a copy cut short
    dg.materialize([pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET)

    result = dg.materialize(
        ALL_ASSETS,
        selection=[performance_report],
        partition_key=series_key("7d"),
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config=QUIET,
    )

    assert result.success
    [kept] = cache.parent.glob("backtest_cache.sqlite.corrupt-*")
    assert kept.read_bytes() == GARBAGE  # the corrupt content is kept for a post mortem
    # a new, healthy cache took its place: no forecast has matured yet, so the report's backtest filled it
    assert result.output_for_node("performance_report")["source"] == "backtest"
    assert ForecastCache(cache).count() > 0

    # the email: one, naming the file, where it is kept, what was wrong and who found it
    assert inbox.subjects() == ["[forex][7d] corrupt file set aside: backtest_cache.sqlite"]
    text = inbox.text(inbox.messages[0])
    assert text.splitlines()[0] == f"7d: the backtest cache {cache} was corrupt; it was set aside and the work went on."
    assert re.search(rf"\nkept as +{re.escape(str(kept))}\n", text)
    assert re.search(r"\nproblem +file is not a database\n", text)
    assert re.search(r"\nfound by +performance_report\[7d\]\n", text) and result.run_id in text
    assert str(kept) in inbox.html(inbox.messages[0])
    [logged] = working_area.alert_log().entries("7d")
    assert (logged.event, logged.status, logged.subject) == ("file_set_aside", "sent", inbox.subjects()[0])

    # the run log has the warning and the materialization carries it
    warnings = [e.message for e in instance.all_logs(result.run_id) if e.level == 30]
    assert [w for w in warnings if str(kept) in w] == [w for w in warnings if "is corrupt" in w]
    assert len([w for w in warnings if str(kept) in w]) == 1
    event = instance.get_latest_materialization_event(dg.AssetKey("performance_report"))
    metadata = event.asset_materialization.metadata
    assert str(kept) in metadata["corrupt_files_set_aside"].value
    assert metadata["corrupt_files_kept_as"].value == [
        {"file": str(cache), "kept_as": str(kept), "problem": "file is not a database"}
    ]

    # a healthy cache the next time: nothing set aside, no alert, no metadata
    again = dg.materialize(
        ALL_ASSETS,
        selection=[performance_report],
        partition_key=series_key("7d"),
        instance=instance,
        resources=resources,
        run_config=QUIET,
    )
    assert again.success and len(inbox.messages) == 1
    assert len(list(cache.parent.glob("backtest_cache.sqlite.corrupt-*"))) == 1
    latest = instance.get_latest_materialization_event(dg.AssetKey("performance_report"))
    assert "corrupt_files_set_aside" not in latest.asset_materialization.metadata


def test_the_set_aside_alert_for_a_journal_names_the_journal_file(tmp_path):
    path = tmp_path / "optuna_studies" / "7d-3fa2c1d0aa-2024-01-05.journal"
    event = SetAside(
        "Optuna journal of study 7d-3fa2c1d0aa-2024-01-05",
        path,
        path.with_name(path.name + ".corrupt-20240105T020000Z"),
        "line 41 is cut short: 17 bytes and no end of line",
        "the journal was cut back to its first 40 record(s), which are intact; a trial whose records were cut runs "
        "again",
    )
    alert = file_set_aside(event, "7d", "candidate_config[7d]", "run-1")
    assert alert.subject == "[forex][7d] corrupt file set aside: 7d-3fa2c1d0aa-2024-01-05.journal"
    assert alert.event == "file_set_aside" and alert.horizon == "7d"
    assert alert.text.splitlines()[0] == (
        f"7d: the Optuna journal of study 7d-3fa2c1d0aa-2024-01-05 {path} was corrupt; it was set aside and the "
        "work went on."
    )
    assert "line 41 is cut short" in alert.text and "cut back to its first 40 record(s)" in alert.text


def test_the_optimization_job_alerts_for_a_corrupt_cache_and_a_torn_journal(smtp, forex_env, monkeypatch):
    """candidate_config meets both: the backtest cache when it opens it, the study's journal (its last record
    torn by a killed process) when it resumes the study; the search goes on, validation_report too."""
    monkeypatch.delenv("FOREX_CACHE_DIR", raising=False)
    inbox, notifier = smtp
    instance, resources, working_area = forex_env
    resources = resources | {"alerts": notifier, "policy": lenient_approval()}
    dg.materialize([pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET)

    def optimize(selection):
        return dg.materialize(
            ALL_ASSETS,
            selection=selection,
            partition_key=series_key("7d"),
            instance=instance,
            resources=resources,
            run_config=QUIET,
            tags={"forex/triggers": "drift", "forex/trigger_reasons": '{"drift": "test"}'},
        )

    assert optimize([candidate_config]).success
    [journal] = working_area.optuna_storage.glob("*.journal")
    intact = journal.read_bytes()
    journal.write_bytes(intact + b'{"op_code": 5, "worker_id": "killed-mid-wri')  # no end of line
    cache = working_area.cache / "backtest_cache.sqlite"
    cache.write_bytes(GARBAGE)
    inbox.messages.clear()

    result = optimize([candidate_config, validation_report])

    assert result.success
    repaired = journal.read_bytes()  # cut back to its intact records, then resumed
    assert repaired.startswith(intact) and b"killed-mid-wri" not in repaired
    [kept_journal] = journal.parent.glob(journal.name + ".corrupt-*")
    [kept_cache] = cache.parent.glob("backtest_cache.sqlite.corrupt-*")
    assert kept_cache.read_bytes() == GARBAGE and kept_journal.read_bytes().startswith(intact)
    subjects = inbox.subjects()
    assert subjects[0] == "[forex][7d] optimization triggered: drift"
    assert set(subjects[1:3]) == {
        "[forex][7d] corrupt file set aside: backtest_cache.sqlite",
        f"[forex][7d] corrupt file set aside: {journal.name}",
    }
    assert subjects[3].startswith("[forex][7d] validation passed") and len(subjects) == 4
    texts = {message["Subject"]: inbox.text(message) for message in inbox.messages}
    journal_text = texts[f"[forex][7d] corrupt file set aside: {journal.name}"]
    assert str(kept_journal) in journal_text and "is cut short" in journal_text
    assert "candidate_config[7d]" in journal_text
    assert str(kept_cache) in texts["[forex][7d] corrupt file set aside: backtest_cache.sqlite"]
    candidate = instance.get_latest_materialization_event(dg.AssetKey("candidate_config"))
    listed = candidate.asset_materialization.metadata["corrupt_files_set_aside"].value
    assert str(kept_cache) in listed and str(kept_journal) in listed
    report = instance.get_latest_materialization_event(dg.AssetKey("validation_report"))
    assert "corrupt_files_set_aside" not in report.asset_materialization.metadata  # its cache was healthy
    assert [e.event for e in working_area.alert_log().entries("7d")].count("file_set_aside") == 2
