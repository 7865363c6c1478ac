"""Email alerts against a real SMTP server on 127.0.0.1 (aiosmtpd, STARTTLS + AUTH)."""

import logging
import re

import dagster as dg
import pandas as pd
import pytest

from forex_assets.cli.run import ALL_ASSETS
from forex_assets.core.alerting import delivery as delivery_module
from forex_assets.core.alerting.delivery import SmtpSettings, deliver
from forex_assets.core.alerting.messages import rollback_executed
from forex_assets.core.prices.schema import validate_prices
from forex_assets.defs.alerting.sensors import run_failure_alert_sensor
from forex_assets.defs.deployment.assets import deployed_config
from forex_assets.defs.deployment.jobs import rollback_job
from forex_assets.defs.partitions import series_key
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.recalibration.assets import candidate_config, validation_report
from forex_assets.defs.resources import PriceSource
from forex_assets.defs.resources.alerts import AlertNotifier
from forex_assets_tests.conftest import lenient_approval, policy_with, random_walk_prices
from forex_assets_tests.smtp_server import PASSWORD, SMTP_ENV, USER, alert_server, free_port

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.fixture
def smtp(tmp_path, monkeypatch):
    """(inbox, notifier): a real STARTTLS + AUTH server and the resource configured for it."""
    with alert_server(tmp_path / "smtp", monkeypatch) as pair:
        yield pair


def _recalibrate(instance, resources, tags=None):
    dg.materialize([pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET)
    return dg.materialize(
        ALL_ASSETS,
        selection=[candidate_config, validation_report, deployed_config],
        partition_key=series_key("7d"),
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config=QUIET,
        tags=tags,
    )


def _rollback(instance, resources, reason="operator test"):
    config = {"ops": {"restore_config": {"config": {"horizon": "7d", "to_version": "previous", "reason": reason}}}}
    return rollback_job.execute_in_process(
        run_config=config | QUIET, instance=instance, resources=resources, raise_on_error=False
    )


def _everything_recorded(instance, working_area) -> str:
    """Every event of every run (messages, metadata, errors) and the alert log, as one text."""
    texts = []
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            texts.append(repr(entry))
    texts.append((working_area.root / "alerts.sqlite").read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def test_a_deploy_and_a_rollback_send_one_alert_per_event_with_their_numbers(smtp, forex_env, capfd):
    inbox, notifier = smtp
    instance, resources, working_area = forex_env
    resources = resources | {"alerts": notifier, "policy": lenient_approval()}
    seed = working_area.config_store().current_version("7d")
    tags = {"forex/triggers": "drift", "forex/trigger_reasons": '{"drift": "severity HIGH: KS p=0.0004"}'}

    result = _recalibrate(instance, resources, tags)

    assert result.success
    deployed = working_area.config_store().current_version("7d")
    assert deployed.commit != seed.commit
    report = result.output_for_node("validation_report")
    m = report["metrics"]
    assert inbox.subjects() == [
        "[forex][7d] optimization triggered: drift",
        f"[forex][7d] validation passed (RMSE {m['rmse_improvement']:+.2f} %)",
        f"[forex][7d] deployed v{deployed.id}",
    ]
    triggered, validated, deploy = (inbox.text(message) for message in inbox.messages)
    assert "severity HIGH: KS p=0.0004" in triggered and result.run_id in triggered
    path = report["approved_by"]
    assert re.search(rf"approved by +the {path} path\n", validated)
    for criterion in report["criteria"]:
        assert criterion["description"] in validated
        if criterion["passed"]:
            assert f"PASS {criterion['name']}" in validated
        else:  # a criterion of the path that did not approve: shown, not blocking
            assert criterion["path"] not in ("both", path) and f"n/a  {criterion['name']}" in validated
    assert f"{m['rmse_new']:.3f} CLP candidate vs {m['rmse_current']:.3f} CLP deployed" in validated
    change = (m["rmse_new"] - m["rmse_current"]) / m["rmse_current"] * 100
    assert "RMSE" in deploy and f"{m['rmse_current']:.3f} -> {m['rmse_new']:.3f} CLP ({change:+.2f} %)" in deploy
    assert re.search(rf"previous version +v{seed.id}\n", deploy)
    assert f"{m['rmse_current']:.3f} -&gt; {m['rmse_new']:.3f}" in inbox.html(inbox.messages[2])
    assert all(message["To"] == "ops@example.org" for message in inbox.messages)

    rollback = _rollback(instance, resources, reason="forecasts failed three times")
    assert rollback.success
    restored = working_area.config_store().current_version("7d")
    assert len(inbox.messages) == 4
    assert inbox.subjects()[3] == f"[forex][7d] ROLLBACK v{deployed.id} -> v{seed.id}"
    rollback_text = inbox.text(inbox.messages[3])
    assert "forecasts failed three times" in rollback_text and f"v{restored.id}" in rollback_text

    assert inbox.logins == [USER] * 4  # the password was used for each message ...
    captured = capfd.readouterr()
    recorded = _everything_recorded(instance, working_area)
    for text in [recorded, captured.out, captured.err, *(m.as_string() for m in inbox.messages)]:
        assert PASSWORD not in text  # ... and appears nowhere
    logged = working_area.alert_log().entries("7d")
    assert [(e.event, e.status, e.attempts) for e in logged] == [
        ("optimization_triggered", "sent", 1),
        ("validation_passed", "sent", 1),
        ("deployed", "sent", 1),
        ("rollback", "sent", 1),
    ]


def test_a_rejected_candidate_alert_names_the_failed_criteria_and_nothing_deploys(smtp, forex_env, tmp_path):
    inbox, notifier = smtp
    instance, resources, working_area = forex_env
    strict = policy_with(tmp_path, "strict", approval={"min_coverage_95": 1.01})
    resources = resources | {"alerts": notifier, "policy": strict}
    seed = working_area.config_store().current_version("7d")

    result = _recalibrate(instance, resources)  # launched by hand: no trigger tags

    assert not result.success
    assert working_area.config_store().current_version("7d").commit == seed.commit
    report = result.output_for_node("validation_report")
    assert "coverage_95_sufficient" in report["failed_criteria"]
    assert len(inbox.messages) == 2
    assert inbox.subjects()[0] == "[forex][7d] optimization triggered: manual"
    assert inbox.subjects()[1].startswith("[forex][7d] validation FAILED: ")
    assert "coverage_95_sufficient" in inbox.subjects()[1]
    text = inbox.text(inbox.messages[1])
    coverage = report["metrics"]["ci95_coverage_new"]
    observed_then_rule = rf"95 % interval coverage {coverage:.3f}; needs 95 % interval coverage at least 1.01"
    assert re.search(rf"FAIL coverage_95_sufficient +{observed_then_rule}", text)
    assert "rejected: the deployed configuration stays" in text
    decision = working_area.decision_log().decisions("7d")[-1]
    assert decision.fired == ("manual",) and decision.optimize  # a manual optimization is recorded as one


def _second_version(working_area):
    store = working_area.config_store()
    config = store.read("7d").model_copy(update={"context_length": 90})
    store.deploy(config, "test deploy")


def _record_raised(monkeypatch) -> list[str]:
    """Every exception a delivery attempt raises, and the ones it was raised from or while handling, as
    ``str`` and ``repr`` (the delivery catches them: this is where their messages can be read)."""
    raised: list[str] = []
    send_once = delivery_module._send_once

    def recording(settings, message):
        try:
            send_once(settings, message)
        except BaseException as error:
            seen, chain = set(), error
            while chain is not None and id(chain) not in seen:
                seen.add(id(chain))
                raised.append(f"{type(chain).__name__}: {chain} {chain!r} {getattr(chain, 'args', '')!r}")
                chain = chain.__cause__ or chain.__context__
            raise

    monkeypatch.setattr(delivery_module, "_send_once", recording)
    return raised


def _assert_secret_nowhere(secret, instance, working_area, raised, capfd, caplog):
    captured = capfd.readouterr()
    places = {
        "Dagster event log and alert log": _everything_recorded(instance, working_area),
        "stdout": captured.out,
        "stderr": captured.err,
        "Python logs": "\n".join(  # all but the test server's own (aiosmtpd's "mail.log")
            f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records if not r.name.startswith("mail")
        ),
        "exception messages": "\n".join(raised),
        "alert log errors": "\n".join(e.error for e in working_area.alert_log().entries()),
    }
    for place, text in places.items():
        assert secret not in text, place


def test_a_down_server_does_not_fail_the_step_and_retries_a_bounded_number_of_times(
    forex_env, monkeypatch, capfd, caplog
):
    """A user and a password are configured (the password would be sent after STARTTLS); nothing listens."""
    caplog.set_level(logging.DEBUG)
    instance, resources, working_area = forex_env
    for name in SMTP_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOREX_SMTP_USER", USER)
    monkeypatch.setenv("FOREX_SMTP_PASSWORD", PASSWORD)
    port = free_port()  # nothing listens there
    down = AlertNotifier(smtp_host="127.0.0.1", smtp_port=port, recipients=["ops@example.org"], backoff_s=0.01)
    settings = down.settings()
    assert (settings.username, settings.password) == (USER, PASSWORD)  # the delivery holds the password
    raised = _record_raised(monkeypatch)
    _second_version(working_area)

    result = _rollback(instance, resources | {"alerts": down})

    assert result.success  # the rollback and the forecast refresh happened
    [logged] = working_area.alert_log().entries("7d")
    assert (logged.event, logged.status, logged.attempts) == ("rollback", "failed", 3)
    assert f"smtp 127.0.0.1:{port}" in logged.error and "Connection refused" in logged.error
    warnings = [
        e.message for e in instance.all_logs(result.run_id) if e.level == 30 and "alert not delivered" in e.message
    ]
    assert len(warnings) == 1 and "after 3 attempt(s)" in warnings[0] and "ROLLBACK" in warnings[0]
    assert len(raised) >= 3 and all("Connection refused" in text for text in raised)
    _assert_secret_nowhere(PASSWORD, instance, working_area, raised, capfd, caplog)


WRONG_PASSWORD = "wr0ng-Pa55-Kz4-not-the-server's"


@pytest.mark.parametrize(
    "case, password, attempts, error",
    [
        # the server refuses the password it was sent: no retry, the user is named, the password is not
        ("rejects auth", WRONG_PASSWORD, 1, "authentication refused for user 'forex-ops': 535"),
        # the password is accepted, then every message is refused: three logins, each with the password
        ("refuses the message", PASSWORD, 3, "SMTPDataError: (554, b'5.7.1 refused by policy')"),
    ],
)
def test_the_password_sent_to_a_failing_server_appears_nowhere(
    case, password, attempts, error, tmp_path, forex_env, monkeypatch, capfd, caplog
):
    caplog.set_level(logging.DEBUG)
    instance, resources, working_area = forex_env
    with alert_server(tmp_path / "smtp", monkeypatch) as (inbox, notifier):
        monkeypatch.setenv("FOREX_SMTP_PASSWORD", password)
        inbox.refuse_messages = "554 5.7.1 refused by policy" if case == "refuses the message" else None
        raised = _record_raised(monkeypatch)
        _second_version(working_area)

        result = _rollback(instance, resources | {"alerts": notifier})

    assert result.success
    # the password really went to the server, once per attempt (smtplib tries AUTH PLAIN, then LOGIN, when
    # the server refuses the first)
    assert set(inbox.credentials) == {(USER, password)} and len(inbox.credentials) >= attempts
    assert inbox.logins == ([USER] * attempts if password == PASSWORD else [])
    assert inbox.messages == []
    [logged] = working_area.alert_log().entries("7d")
    assert (logged.event, logged.status, logged.attempts) == ("rollback", "failed", attempts)
    assert error in logged.error, logged.error
    warnings = [e.message for e in instance.all_logs(result.run_id) if "alert not delivered" in e.message]
    assert len(warnings) == 1 and error in warnings[0]
    assert len(raised) >= attempts
    _assert_secret_nowhere(password, instance, working_area, raised, capfd, caplog)


def test_wrong_credentials_fail_at_once_and_the_password_is_not_in_the_error(smtp):
    inbox, notifier = smtp
    settings = notifier.settings()
    wrong = SmtpSettings(**{**settings.__dict__, "password": "not-" + PASSWORD})
    delivery = deliver(wrong, rollback_executed("30d", "test", "a", "b", "c"), sleep=lambda s: None)
    assert (delivery.status, delivery.attempts) == ("failed", 1)  # retrying cannot fix credentials
    assert "authentication refused for user 'forex-ops'" in delivery.error
    assert PASSWORD not in delivery.error and "not-" not in delivery.error
    assert PASSWORD not in repr(wrong) and inbox.messages == []


def test_ssl_security_without_a_tls_server_fails_cleanly(smtp):
    inbox, notifier = smtp
    settings = SmtpSettings(**{**notifier.settings().__dict__, "security": "ssl", "max_attempts": 2})
    delivery = deliver(settings, rollback_executed("30d", "test", "a", "b", "c"), sleep=lambda s: None)
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert "(ssl)" in delivery.error and PASSWORD not in delivery.error


def test_unconfigured_alerts_go_to_the_run_log_only(forex_env, monkeypatch):
    for name in SMTP_ENV:
        monkeypatch.delenv(name, raising=False)
    instance, resources, working_area = forex_env
    _second_version(working_area)
    result = _rollback(instance, resources | {"alerts": AlertNotifier()}, reason="manual check")
    assert result.success
    messages = [e.message for e in instance.all_logs(result.run_id) if "no SMTP configured" in e.message]
    assert len(messages) == 1 and "[forex][7d] ROLLBACK" in messages[0] and "manual check" in messages[0]
    assert [e.status for e in working_area.alert_log().entries("7d")] == ["logged"]


def test_the_run_failure_sensor_alerts_for_a_failed_run(smtp, forex_env, tmp_path):
    inbox, notifier = smtp
    instance, resources, working_area = forex_env
    prices = random_walk_prices(400)
    prices.loc[100, "date"] = pd.Timestamp("2020-05-23")  # a Saturday
    csv = tmp_path / "bad.csv"
    prices.assign(date=prices["date"].dt.strftime("%Y-%m-%d")).to_csv(csv, index=False)
    resources = resources | {"price_source": PriceSource(source="csv", csv_path=str(csv)), "alerts": notifier}
    failed = dg.materialize(
        [pair_prices],
        partition_key="USDCLP",
        instance=instance,
        resources=resources,
        raise_on_error=False,
        run_config=QUIET,
    )
    assert not failed.success

    with dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_instance=instance,
        dagster_run=failed.dagster_run,
        dagster_event=failed.get_run_failure_event(),
        resources={"alerts": notifier, "working_area": working_area},
    ).for_run_failure() as context:
        run_failure_alert_sensor(context)

    assert len(inbox.messages) == 1
    subject = inbox.subjects()[0]
    assert re.fullmatch(r"\[forex\]\[all\] run FAILED: pair_prices \([0-9a-f]{8}\)", subject)
    text = inbox.text(inbox.messages[0])
    assert "rule 'no_weekends'" in text and failed.run_id in text
    assert "line 102 (2020-05-23 Sat" in text
    assert f"http://127.0.0.1:3000/runs/{failed.run_id}" in text
    assert [e.event for e in working_area.alert_log().entries()] == ["run_failed"]


def _sensor_alert(instance, failed, notifier, working_area) -> None:
    """What run_failure_alert_sensor does on its tick for the failed run."""
    with dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_instance=instance,
        dagster_run=failed.dagster_run,
        dagster_event=failed.get_run_failure_event(),
        resources={"alerts": notifier, "working_area": working_area},
    ).for_run_failure() as context:
        run_failure_alert_sensor(context)


def test_the_failure_alert_carries_every_line_of_the_error_a_step_raised(smtp, forex_env):
    """A step that lets the data contract's error through (not a dagster.Failure): Dagster wraps it in
    "Error occurred while executing op ..."; the alert shows the contract's own message, every rule and row."""
    inbox, notifier = smtp
    instance, _, working_area = forex_env
    prices = random_walk_prices(300)
    prices.loc[150, "usdclp"] = round(prices.loc[149, "usdclp"] * 1.5, 2)
    prices.loc[220, "date"] = pd.Timestamp("2020-11-07")  # a Saturday, and out of order

    @dg.asset
    def checked_prices():
        return validate_prices(prices, source="csv:usdclp.csv")

    failed = dg.materialize([checked_prices], instance=instance, raise_on_error=False, run_config=QUIET)
    assert not failed.success
    [failure] = [e for e in failed.all_events if e.is_step_failure]
    assert failure.step_failure_data.error.message.startswith(
        "dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op"
    )

    _sensor_alert(instance, failed, notifier, working_area)

    [message] = inbox.messages
    text = inbox.text(message)
    lines = text.splitlines()
    assert "error: checked_prices: csv:usdclp.csv: USD/CLP series failed validation (300 rows):" in lines
    day = prices.loc[150, "date"].strftime("%Y-%m-%d %a")
    assert (
        "- rule 'max_daily_move' (no single-day move above 15%) on column 'usdclp' failed on 2 row(s): "
        f"row 150 ({day}, {prices.loc[150, 'usdclp']}), row 151 ("
    ) in text
    assert "- rule 'no_weekends' (dates must be business days (Monday to Friday)) on column 'date' failed on 1 " in text
    assert "row 220 (2020-11-07 Sat, " in text and "rule 'strictly_increasing_dates'" in text
    assert "Error occurred while executing" not in text and "DagsterExecutionStepExecutionError" not in text
    assert "PriceValidationError" not in text and "Traceback" not in text
    html = inbox.html(message)
    assert "rule &#39;max_daily_move&#39;" in html and f"row 150 ({day}" in html


def test_the_failure_alert_of_a_bug_keeps_its_class_and_points_to_the_run(smtp, forex_env):
    inbox, notifier = smtp
    instance, _, working_area = forex_env

    @dg.asset
    def buggy():
        return {}["missing"]

    failed = dg.materialize([buggy], instance=instance, raise_on_error=False, run_config=QUIET)
    _sensor_alert(instance, failed, notifier, working_area)

    text = inbox.text(inbox.messages[0])
    assert f"error: buggy: KeyError: 'missing' (traceback in the event log of run {failed.run_id})" in text


def test_the_error_text_reads_a_plain_exception_chain_too():
    """core/error_text.py needs no Dagster: the same unwrapping on a Python exception chain."""
    from forex_assets.core.error_text import describe_error, error_record
    from forex_assets.core.forecasting.config import ConfigError

    class DagsterLikeWrapper(Exception):
        pass

    try:
        try:
            raise ConfigError("configs/chronos_7d.json: invalid:\nfield 'x': bad")
        except ConfigError as error:
            raise DagsterLikeWrapper("Error occurred while executing op") from error
    except DagsterLikeWrapper as wrapped:
        record = error_record(wrapped)
    assert record.cls_name == "DagsterLikeWrapper" and record.cause.cls_name == "ConfigError"
    assert describe_error(record) == "configs/chronos_7d.json: invalid:\nfield 'x': bad"
    assert describe_error(error_record(KeyError("missing")), "r1") == (
        "KeyError: 'missing' (traceback in the event log of run r1)"
    )


def test_a_candidate_refused_by_the_blocking_checks_sends_no_run_failure_alert(smtp, forex_env):
    """An optimization whose candidate the blocking approval checks refuse ends FAILURE by design; the validation
    alert already named every criterion, so the run failure sensor stays quiet (two emails a rejection, else).
    A run with a real error besides is still alerted."""
    inbox, notifier = smtp
    instance, _, working_area = forex_env

    @dg.asset(check_specs=[dg.AssetCheckSpec("accuracy_improves", asset="candidate", blocking=True)])
    def candidate():
        yield dg.Output(1)
        yield dg.AssetCheckResult(check_name="accuracy_improves", passed=False)

    @dg.asset(deps=["candidate"])
    def downstream():
        return 2

    refused = dg.materialize([candidate, downstream], instance=instance, raise_on_error=False, run_config=QUIET)
    assert not refused.success
    [failure] = [e for e in refused.all_events if e.is_step_failure]
    assert failure.step_failure_data.error.cls_name == "DagsterAssetCheckFailedError"
    _sensor_alert(instance, refused, notifier, working_area)
    assert inbox.messages == [] and working_area.alert_log().entries() == []

    @dg.asset
    def broken():
        raise ValueError("the search space is empty")

    both = dg.materialize([candidate, broken], instance=instance, raise_on_error=False, run_config=QUIET)
    assert not both.success
    _sensor_alert(instance, both, notifier, working_area)
    assert len(inbox.messages) == 1 and "the search space is empty" in inbox.text(inbox.messages[0])
