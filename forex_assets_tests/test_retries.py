"""Retries where the world is flaky, and only there (ADR risk 2): the mindicador client retries 5xx and 429
itself (urllib3, honouring Retry-After), the steps' RetryPolicy rides out longer outages, and a 404, a document
that is not the series, a broken data contract, a bad configuration, a rejected candidate or a bug fail at
once. Against a real HTTP server on 127.0.0.1; the step retry delays are shrunk (``fast_step_retries``)."""

import shutil
import sqlite3
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pandas as pd
import pytest
import requests
import sqlalchemy
import sqlalchemy.exc

from forex_assets.core.backtest.windows import PriceSeries, split_windows
from forex_assets.core.forecasting.config import config_path, load_config
from forex_assets.core.horizons import horizon_steps
from forex_assets.core.prices.sources import MindicadorClient, PriceSourceError, PriceSourceUnavailable
from forex_assets.core.recalibration.search_space import load_search_space, search_space_path
from forex_assets.core.retries import is_transient, retry_after_s
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets.defs.partitions import pair_and_horizon, pair_horizon_partitions, series_key
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.prices.retries import PRICES_RETRY_POLICY
from forex_assets.defs.recalibration import assets as recalibration_assets
from forex_assets.defs.recalibration.assets import candidate_config, validation_report
from forex_assets.defs.recalibration.checks import approval_checks
from forex_assets.defs.recalibration.retries import OPTIMIZATION_RETRY_POLICY
from forex_assets.defs.resources import PriceSource, WorkingArea, code_location_resources
from forex_assets.defs.step_retries import retry_decision
from forex_assets_tests.conftest import policy_with
from forex_assets_tests.mindicador_server import FakeMindicador

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
YEAR = 2023
RETRIED = "only timeouts, connection errors and HTTP 408, 429, 500, 502, 503, 504 are"


@pytest.fixture
def api(request):
    """The fake mindicador.cl answering YEAR by the test's script (``indirect`` parametrization)."""
    server = FakeMindicador()
    server.script[YEAR] = list(request.param)
    yield server
    server.close()


@pytest.fixture
def fast_step_retries(monkeypatch):
    """The steps' retry policies as they are (attempts, backoff, jitter), their waits cut to 50 ms."""
    monkeypatch.setattr(dg.RetryPolicy, "calculate_delay", lambda self, attempt_num: 0.05)


def _materialize_prices(api, tmp_path, max_retries=3, **kwargs) -> dg.ExecuteInProcessResult:
    source = PriceSource(
        source="mindicador",
        mindicador_base_url=api.url,
        mindicador_start_year=YEAR,
        mindicador_end_year=YEAR,
        mindicador_cache_dir=str(tmp_path / "cache"),
        timeout_s=2.0,
        max_retries=max_retries,
        backoff_s=0.01,
        **kwargs,
    )
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [pair_prices],
            partition_key="USDCLP",
            instance=instance,
            resources={"price_source": source},
            raise_on_error=False,
            run_config=QUIET,
        )


def _step_attempts(result, step: str) -> tuple[int, int]:
    """(attempts, retries) of ``step`` in the run's events: starts and restarts, and "up for retry"."""
    kinds = [e.event_type for e in result.all_events if e.step_key == step]
    started = kinds.count(dg.DagsterEventType.STEP_START) + kinds.count(dg.DagsterEventType.STEP_RESTARTED)
    return started, kinds.count(dg.DagsterEventType.STEP_UP_FOR_RETRY)


def _failure(result) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.user_failure_data.description


# ---------------------------------------------------------------- the policies


def test_the_flaky_steps_carry_exponential_jittered_retry_policies():
    assert pair_prices.op.retry_policy == PRICES_RETRY_POLICY
    assert candidate_config.op.retry_policy == validation_report.op.retry_policy == OPTIMIZATION_RETRY_POLICY
    for policy in (PRICES_RETRY_POLICY, OPTIMIZATION_RETRY_POLICY):
        assert policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter == dg.Jitter.PLUS_MINUS
    assert (PRICES_RETRY_POLICY.max_retries, PRICES_RETRY_POLICY.delay) == (3, 30)
    assert (OPTIMIZATION_RETRY_POLICY.max_retries, OPTIMIZATION_RETRY_POLICY.delay) == (2, 60)
    # exponential: (2^n - 1) x delay, +- delay of jitter
    waits = [[PRICES_RETRY_POLICY.calculate_delay(n) for _ in range(200)] for n in (1, 2, 3)]
    for n, sample in zip((1, 2, 3), waits, strict=True):
        centre = (2**n - 1) * 30
        assert centre - 30 <= min(sample) and max(sample) <= centre + 30 and max(sample) - min(sample) > 10


# ---------------------------------------------------------------- (a) a flaky source: the run succeeds on its own


@pytest.mark.parametrize("api", [["503", "503", "ok"]], indirect=True)
def test_two_503_then_200_the_client_retries_and_the_prices_materialize(api, tmp_path):
    result = _materialize_prices(api, tmp_path, max_retries=3)
    assert result.success
    assert len(api.requests) == 3
    assert _step_attempts(result, "pair_prices") == (1, 0)  # the client absorbed it: one step attempt
    assert len(result.output_for_node("pair_prices")) == len(pd.bdate_range(f"{YEAR}-01-01", f"{YEAR}-12-31"))


@pytest.mark.parametrize("api", [["503", "503", "ok"]], indirect=True)
def test_an_outage_longer_than_the_clients_retries_is_ridden_out_by_the_step_retry_policy(
    api, tmp_path, fast_step_retries
):
    result = _materialize_prices(api, tmp_path, max_retries=0)  # the client gives up at the first 503
    assert result.success
    assert len(api.requests) == 3
    assert _step_attempts(result, "pair_prices") == (3, 2)


# ---------------------------------------------------------------- (b) Retry-After is honoured


@pytest.mark.parametrize("api", [["429:2", "ok"]], indirect=True)
def test_a_429_with_retry_after_2_is_retried_2_s_later(api, tmp_path):
    client = MindicadorClient(api.url, tmp_path / "cache", timeout_s=5.0, max_retries=3, backoff_s=0.01)
    prices = client.prices(YEAR, YEAR, today=date(2024, 6, 14))
    assert len(prices) > 250
    assert len(api.requests) == 2
    gap = api.arrivals[1] - api.arrivals[0]
    assert 2.0 <= gap < 4.0  # server-side: the second request came after the asked-for 2 s, not at backoff_s


@pytest.mark.parametrize("api", [["503:30", "ok"]], indirect=True)
def test_a_retry_after_longer_than_the_client_waits_is_left_to_the_step(api, tmp_path):
    client = MindicadorClient(api.url, tmp_path / "cache", timeout_s=2.0, max_retries=3, max_retry_after_s=5.0)
    started = time.monotonic()
    with pytest.raises(PriceSourceUnavailable) as caught:
        client.prices(YEAR, YEAR, today=date(2024, 6, 14))
    assert time.monotonic() - started < 2.0 and len(api.requests) == 1  # no 30 s sleep inside the step
    assert str(caught.value) == (
        f"mindicador: {api.year_url(YEAR)} failed after 1 attempt (last error: HTTP 503, Retry-After 30 s is longer "
        "than the 5 s this client waits)"
    )
    assert is_transient(caught.value) and retry_after_s(caught.value) == 30.0
    # the step waits what the source asked for (its own delay being shorter) ...
    decision = retry_decision(caught.value, PRICES_RETRY_POLICY, retry_number=0, run_id="r")
    assert isinstance(decision, dg.RetryRequested) and decision.seconds_to_wait >= 30.0
    assert decision.max_retries == 3
    # ... up to 15 minutes; asked for longer, the step fails now and says why
    long = PriceSourceUnavailable("mindicador: x failed after 1 attempt (last error: HTTP 429)", 3600.0)
    refusal = retry_decision(long, PRICES_RETRY_POLICY, retry_number=0, run_id="r")
    assert isinstance(refusal, dg.Failure) and not refusal.allow_retries
    assert refusal.description == (
        "mindicador: x failed after 1 attempt (last error: HTTP 429)\n(not retried: the source asks to wait "
        "3600 s, longer than the 900 s a step waits; the next scheduled run tries again)"
    )


# ---------------------------------------------------------------- (c) bounded, and what is not worth a retry


@pytest.mark.parametrize("api", [["404", "ok"]], indirect=True)
def test_a_404_fails_at_once_naming_the_url(api, tmp_path):
    result = _materialize_prices(api, tmp_path)
    assert not result.success
    assert len(api.requests) == 1 and _step_attempts(result, "pair_prices") == (1, 0)
    assert _failure(result) == f"mindicador: {api.year_url(YEAR)} answered HTTP 404; not retried ({RETRIED})"


@pytest.mark.parametrize("api", [["garbage", "ok"]], indirect=True)
def test_a_malformed_payload_fails_at_once_naming_the_url(api, tmp_path):
    result = _materialize_prices(api, tmp_path)
    assert not result.success
    assert len(api.requests) == 1 and _step_attempts(result, "pair_prices") == (1, 0)
    assert _failure(result) == (
        f"mindicador: {api.year_url(YEAR)} returned an unexpected document "
        "(Expecting value: line 1 column 1 (char 0)); "
        'expected {"serie": [{"fecha": ..., "valor": ...}, ...]}; not retried'
    )


@pytest.mark.parametrize("api", [["503"]], indirect=True)
def test_a_source_that_never_recovers_is_tried_a_bounded_number_of_times(api, tmp_path, fast_step_retries):
    result = _materialize_prices(api, tmp_path, max_retries=1)
    assert not result.success
    assert _step_attempts(result, "pair_prices") == (4, 3)  # 1 + PRICES_RETRY_POLICY.max_retries
    assert len(api.requests) == 4 * 2  # each step attempt: 1 + max_retries requests
    assert _failure(result) == (
        f"mindicador: {api.year_url(YEAR)} failed after 2 attempts (last error: HTTP 503)\n"
        "(a transient error: gave up after 4 attempt(s) of the step)"
    )


@pytest.mark.parametrize("api", [["implausible"]], indirect=True)
def test_a_data_contract_failure_is_not_retried(api, tmp_path, fast_step_retries):
    result = _materialize_prices(api, tmp_path)
    assert not result.success
    assert len(api.requests) == 1 and _step_attempts(result, "pair_prices") == (1, 0)
    assert "rule 'plausible_price_range'" in _failure(result)


def test_an_unreachable_source_is_transient_and_names_the_url(tmp_path):
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound, then closed: nothing listens there
    client = MindicadorClient(f"http://127.0.0.1:{port}", tmp_path / "cache", timeout_s=1.0, max_retries=1)
    with pytest.raises(PriceSourceUnavailable) as caught:
        client.prices(YEAR, YEAR, today=date(2024, 6, 14))
    assert str(caught.value) == (
        f"mindicador: http://127.0.0.1:{port}/api/dolar/{YEAR} failed after 2 attempts "
        "(last error: connection failed (NewConnectionError))"
    )
    refused = r"could not be requested \(InvalidSchema: .*\); not retried: check mindicador_base_url"
    with pytest.raises(PriceSourceError, match=refused):
        MindicadorClient("127.0.0.1:1", tmp_path / "cache").prices(YEAR, YEAR, today=date(2024, 6, 14))


# ---------------------------------------------------------------- which errors are transient


@pytest.mark.parametrize(
    "error, transient",
    [
        (PriceSourceUnavailable("503"), True),
        (ConnectionResetError(104, "reset"), True),
        (TimeoutError("lock"), True),
        (requests.ConnectionError("down"), True),
        (requests.ReadTimeout("slow"), True),
        (sqlite3.OperationalError("database is locked"), True),
        (OSError(11, "Resource temporarily unavailable"), True),
        (PriceSourceError("mindicador: x answered HTTP 404; not retried"), False),
        (sqlite3.OperationalError("no such table: trials"), False),
        (FileNotFoundError(2, "No such file"), False),
        (KeyError("missing"), False),
        (ValueError("bad"), False),
    ],
)
def test_which_errors_are_transient(error, transient):
    assert is_transient(error) is transient


def test_an_error_raised_from_a_transient_one_is_transient_unless_the_project_raised_it():
    class StorageInternalError(Exception):  # as Optuna wraps SQLAlchemy's OperationalError
        pass

    try:
        try:
            raise sqlite3.OperationalError("database is locked")
        except sqlite3.OperationalError as locked:
            raise StorageInternalError("An exception was raised during the commit") from locked
    except StorageInternalError as wrapped:
        assert is_transient(wrapped)
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError:
            raise PriceSourceError("mindicador: x returned an unexpected document") from None
    except PriceSourceError as refused:
        assert not is_transient(refused)


# ---------------------------------------------------------------- the optimization steps


def _optimization(working_area, tmp_path, selection, extra=(), **resources):
    resources = code_location_resources(working_area, **resources)
    with dg.instance_for_test() as instance:
        dg.materialize([pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET)
        return dg.materialize(
            [pair_prices, candidate_config, validation_report, *approval_checks, *extra],
            selection=selection,
            partition_key=series_key("7d"),
            instance=instance,
            resources=resources,
            raise_on_error=False,
            run_config=QUIET,
        )


@pytest.fixture
def working_area(tmp_path):
    return WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))


def test_a_config_error_in_candidate_config_is_not_retried(tmp_path, fast_step_retries):
    configs = tmp_path / "configs"
    shutil.copytree(SEED_CONFIGS_DIR, configs)
    (configs / "search_space_7d.json").write_text('{"horizon": "7d", "trial_budget": "many"}')
    area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(configs))
    result = _optimization(area, tmp_path, [candidate_config])
    assert not result.success
    assert _step_attempts(result, "candidate_config") == (1, 0)
    assert _failure(result).startswith(f"candidate_config 7d: {configs / 'search_space_7d.json'}")


@pytest.mark.parametrize(
    "error, attempts, expected",
    [
        (
            sqlite3.OperationalError("database is locked"),
            (3, 2),
            "OperationalError: database is locked (traceback in the event log of run {run_id})\n"
            "(a transient error: gave up after 3 attempt(s) of the step)",
        ),
        (KeyError("best"), (1, 0), "KeyError: 'best' (traceback in the event log of run {run_id})"),
    ],
    ids=["locked-sqlite", "bug"],
)
def test_candidate_config_retries_a_locked_study_but_not_a_bug(
    working_area, tmp_path, monkeypatch, fast_step_retries, error, attempts, expected
):
    calls = []

    def find_candidate(*args, **kwargs):
        calls.append(1)
        raise error

    monkeypatch.setattr(recalibration_assets, "find_candidate", find_candidate)
    result = _optimization(working_area, tmp_path, [candidate_config])
    assert not result.success
    assert _step_attempts(result, "candidate_config") == attempts and len(calls) == attempts[0]
    assert _failure(result) == expected.format(run_id=result.run_id)
    # every attempt is the same optimization: the operator hears of it once, not once per attempt
    started = [a for a in working_area.alert_log().entries("7d") if a.event == "optimization_triggered"]
    assert len(started) == 1


def test_an_announcement_that_failed_transiently_is_made_by_the_retry(
    working_area, tmp_path, monkeypatch, fast_step_retries
):
    announce, calls = recalibration_assets.announce_optimization, []

    def flaky_announce(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")  # e.g. the alert log, before anything was sent
        return announce(*args, **kwargs)

    def find_candidate(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")  # and the search too, on every attempt

    monkeypatch.setattr(recalibration_assets, "announce_optimization", flaky_announce)
    monkeypatch.setattr(recalibration_assets, "find_candidate", find_candidate)
    result = _optimization(working_area, tmp_path, [candidate_config])
    assert _step_attempts(result, "candidate_config") == (3, 2)
    assert len(calls) == 2  # attempt 1 failed before announcing, attempt 2 announced, attempt 3 did not again
    started = [a for a in working_area.alert_log().entries("7d") if a.event == "optimization_triggered"]
    manual = [d for d in working_area.decision_log().decisions("7d") if "manual" in d.fired]
    assert len(started) == 1 and len(manual) == 1


def test_a_state_database_that_cannot_be_reached_is_transient_and_a_refusal_is_not(tmp_path):
    from forex_assets.core.storage import StateDatabase, StateDatabaseError, StateDatabaseUnavailable

    with pytest.raises(StateDatabaseUnavailable, match="cannot be reached") as unreachable:
        StateDatabase("decisions", tmp_path / "d.sqlite", "postgresql://u@127.0.0.1:1/db", what="log")
    assert is_transient(unreachable.value)  # a step's retry policy tries again: PostgreSQL may be restarting
    sqlite = StateDatabase("decisions", tmp_path / "d.sqlite", None, what="log")
    locked = sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    assert is_transient(sqlite._failure(locked, "writing", writing=True))
    refused = sqlalchemy.exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    failure = sqlite._failure(refused, "writing", writing=True)
    assert type(failure) is StateDatabaseError and not is_transient(failure)


@dg.asset(partitions_def=pair_horizon_partitions, name="candidate_config")
def seed_as_candidate(context: dg.AssetExecutionContext, pair_prices: pd.DataFrame) -> dict:
    """Stands in for candidate_config (no search): the seed configuration, with the windows a search of the
    horizon's search space would have used."""
    _, horizon = pair_and_horizon(context.partition_key)
    space = load_search_space(search_space_path(SEED_CONFIGS_DIR, horizon), expected_horizon=horizon)
    seed = load_config(config_path(SEED_CONFIGS_DIR, horizon), expected_horizon=horizon)
    series = PriceSeries.from_frame(pair_prices)
    windows = split_windows(
        len(series.values), horizon_steps(horizon), space.search_origins, space.validation_origins, space.origin_spacing
    )
    return {
        "horizon": horizon,
        "config": seed.model_dump(mode="json", exclude_none=True),
        "search_window": [series.date_text(int(windows.search[0])), series.date_text(int(windows.search[-1]))],
        "search_origins": space.search_origins,
        "validation_origins": space.validation_origins,
        "origin_spacing": space.origin_spacing,
    }


def test_a_rejected_candidate_is_a_verdict_not_retried(working_area, tmp_path, fast_step_retries):
    approval = {"min_rmse_improvement_pct": 50.0, "min_mape_improvement_pct": 50.0}
    resources = code_location_resources(working_area, policy=policy_with(tmp_path, "demanding", approval=approval))
    with dg.instance_for_test() as instance:
        dg.materialize([pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET)
        result = dg.materialize(
            [pair_prices, seed_as_candidate, validation_report, *approval_checks],
            selection=[seed_as_candidate, validation_report, *approval_checks],
            partition_key=series_key("7d"),
            instance=instance,
            resources=resources,
            raise_on_error=False,
            run_config=QUIET,
        )
        assert instance.get_latest_materialization_event(dg.AssetKey("validation_report")) is not None
    report = result.output_for_node("validation_report")
    assert not report["approved"] and "accuracy_improves" in report["failed_criteria"]
    assert not result.success  # the blocking check failed the run ...
    assert _step_attempts(result, "validation_report") == (1, 0)  # ... and nothing was tried again
    assert not any(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)
