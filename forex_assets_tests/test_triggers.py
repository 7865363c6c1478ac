from datetime import date

from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.drift import Severity
from forex_assets.core.monitoring.triggers import TriggerInputs, TriggerPolicy
from forex_assets.core.monitoring.triggers import decide as _decide

# these tests exercise the decision record's RMSE-degradation rule and the guards (the random-walk rule,
# the default, has its own tests in test_random_walk_trigger.py)
RMSE_RULE = TriggerPolicy(performance_metric="rmse")


def decide(inputs, policy=RMSE_RULE):
    return _decide(inputs, policy)


TODAY = date(2026, 11, 26)


def _inputs(**fields):
    return TriggerInputs(**({"horizon": "30d", "today": TODAY} | fields))


def test_nothing_fires_keeps_every_reason():
    d = decide(
        _inputs(drift_severity=Severity.LOW, degradation_pct={"rmse": 4.0}, last_optimization=date(2026, 11, 20))
    )
    assert not d.optimize and d.fired == ()
    assert set(d.reasons) == {"performance", "drift", "schedule"}
    assert "within 15 %" in d.reasons["performance"] and "below MEDIUM" in d.reasons["drift"]


def test_drift_and_schedule_fire_after_the_cooldown():
    d = decide(_inputs(drift_severity=Severity.HIGH, drift_summary="KS 0.4", last_optimization=date(2026, 11, 1)))
    assert d.optimize and set(d.fired) == {"drift", "schedule"}
    assert decide(_inputs()).reasons["schedule"] == "never optimized"


def test_guard_holds_drift_and_schedule_back_for_14_days():
    d = decide(_inputs(drift_severity=Severity.HIGH, last_optimization=date(2026, 11, 20)))
    assert not d.optimize and d.blocked == ("drift",)
    assert "held back: last optimization 6 days ago (minimum 14)" in d.reasons["drift"]


def test_performance_overrides_the_guard_at_most_once_every_three_days():
    first = decide(_inputs(degradation_pct={"rmse": 22.0}, last_optimization=date(2026, 11, 20)))
    assert first.optimize and first.fired == ("performance",) and first.performance_override
    again = decide(
        _inputs(
            degradation_pct={"rmse": 22.0},
            last_optimization=date(2026, 11, 25),
            last_performance_override=date(2026, 11, 24),
        )
    )
    assert not again.optimize and "at most one every 3" in again.reasons["performance"]
    later = decide(
        _inputs(
            degradation_pct={"rmse": 22.0},
            last_optimization=date(2026, 11, 23),
            last_performance_override=date(2026, 11, 23),
        )
    )
    assert later.optimize


def test_performance_metric_is_configurable():
    inputs = _inputs(degradation_pct={"rmse": 25.0, "skill": 3.0}, last_optimization=date(2026, 11, 25))
    assert decide(inputs).optimize
    assert not decide(inputs, TriggerPolicy(performance_metric="skill")).optimize


def test_decisions_are_persisted_with_their_reasons(tmp_path):
    log = DecisionLog(tmp_path / "decisions.sqlite")
    log.record(first := decide(_inputs(degradation_pct={"rmse": 22.0}, last_optimization=date(2026, 11, 20))))
    log.record(decide(_inputs(drift_severity=Severity.NONE, last_optimization=date(2026, 11, 26))))
    assert log.last_optimization("30d") is None  # decided, not concluded: the guard counts verdicts only
    log.record_verdict("30d", first.decided_on, "rejected", performance_override=first.performance_override)
    reopened = DecisionLog(tmp_path / "decisions.sqlite")
    decisions = reopened.decisions("30d")
    assert [d.optimize for d in decisions] == [True, False]
    assert reopened.last_optimization("30d") == TODAY
    assert reopened.last_performance_override("30d") == TODAY
    assert "degraded +22.0 %" in decisions[0].reasons["performance"]
