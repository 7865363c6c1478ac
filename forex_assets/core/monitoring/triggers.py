"""Should a horizon be re-optimized now? Performance, drift and schedule triggers with their guards
(docs/decisions.md, Triggers).

* performance, one of three rules (``performance_metric``):
  - ``rmse`` (the decision record's rule) or ``skill`` (RMSE / random-walk RMSE): degradation of the
    matured-forecast metric against the deployed configuration's validation baseline above 15 %;
  - ``random_walk``: the deployed version's latest matured forecasts are significantly worse than the
    random walk's (one-sided Diebold-Mariano p below ``performance_p_value``; at least 20 of them);
  - ``distribution`` (the default): the ``random_walk`` rule (the median), or the band on the same matured
    forecasts: its weighted quantile loss more than ``band_test_margin_pct`` worse than the RiskMetrics EWMA
    band's (one-sided Diebold-Mariano p below ``band_p_value``), or Kupiec's test rejecting its 95 % band's
    step-1 breach rate, too many or too few (p below ``kupiec_p_value``). A configuration whose median is
    the random walk's can only fire through its band;
* drift: severity MEDIUM or HIGH;
* schedule: no optimization of the horizon in the last 14 days (or never);
* guard: drift and schedule respect 14 days between optimizations of a horizon; a performance
  trigger may override it, at most once every 3 days.

What the guard counts (one rule, for the replay, the sensors and `make run`): an optimization **that reached
a verdict** (:data:`VERDICTS`): its validation approved or rejected the candidate, or it failed for a reason
that waiting does not cure (:func:`failure_concludes`: a broken configuration, a search with no usable trial).
It counts from the day of the decision that launched it, and a performance override counts the same way.
An optimization whose run died or was killed, or gave up on a transient error, has no verdict: it does not
hold the horizon back, and the next decision may launch it again. The verdicts are recorded with the
decisions (:meth:`~forex_assets.core.monitoring.decision_log.DecisionLog.record_verdict`): by the replay
after each optimization, and in Dagster by ``validation_report`` (or the step that failed), whoever launched
the run.

Every decision, fired or not, keeps every trigger's reason, and :class:`DecisionLog` persists them
(SQLite in the working area), so "why did / didn't it optimize" has an answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from forex_assets.core.monitoring.severity import Severity
from forex_assets.core.retries import is_transient

#: the band test's fields in the random-walk test's dict (``performance.band_test``), as the performance
#: report's metadata carries them (``band_test_<key>``) for the sensor's decision
BAND_TEST_KEYS = (
    "wql",
    "wql_ewma_band",
    "p_worse_than_ewma_band",
    "band_margin_pct",
    "coverage_95",
    "step1_breaches_95",
    "kupiec_p_95",
)


@dataclass(frozen=True)
class TriggerPolicy:
    performance_threshold_pct: float = 15.0
    performance_metric: Literal["rmse", "skill", "random_walk", "distribution"] = "distribution"
    performance_p_value: float = 0.05  # the random_walk rule's significance level
    # the distribution rule's band tests, each at 0.01: with the median's test at 0.05 the three together
    # stay within the 10 % false positives a stationary random walk may cause (docs/decisions.md)
    band_p_value: float = 0.01
    kupiec_p_value: float = 0.01
    drift_min_severity: Severity = Severity.MEDIUM
    schedule_days: int = 14
    min_days_between_optimizations: int = 14
    performance_override_min_days: int = 3
    drift_enabled: bool = True
    schedule_enabled: bool = True


@dataclass(frozen=True)
class TriggerInputs:
    horizon: str
    today: date
    drift_severity: Severity | None = None
    drift_summary: str = ""
    degradation_pct: dict[str, float] = field(default_factory=dict)  # {"rmse": .., "skill": ..}
    random_walk_test: dict[str, Any] | None = None  # PerformanceSnapshot.random_walk_test
    last_optimization: date | None = None
    last_performance_override: date | None = None


@dataclass(frozen=True)
class TriggerDecision:
    horizon: str
    decided_on: date
    optimize: bool
    fired: tuple[str, ...]  # kinds that fired and were not blocked
    blocked: tuple[str, ...]  # kinds that fired but the guard held back
    reasons: dict[str, str]  # every kind, fired or not
    performance_override: bool

    def summary(self) -> str:
        verdict = f"optimize ({', '.join(self.fired)})" if self.optimize else "no optimization"
        return f"{self.horizon} {self.decided_on}: {verdict}; " + "; ".join(
            f"{k}: {v}" for k, v in self.reasons.items()
        )


def decide(inputs: TriggerInputs, policy: TriggerPolicy = TriggerPolicy()) -> TriggerDecision:
    reasons: dict[str, str] = {}
    fired: list[str] = []

    performance_fired, reasons["performance"] = _performance(inputs, policy)
    if performance_fired:
        fired.append("performance")

    if not policy.drift_enabled:
        reasons["drift"] = "drift trigger disabled"
    elif inputs.drift_severity is None:
        reasons["drift"] = "no drift report"
    elif inputs.drift_severity >= policy.drift_min_severity:
        fired.append("drift")
        reasons["drift"] = f"severity {inputs.drift_severity.name}: {inputs.drift_summary}".rstrip(": ")
    else:
        reasons["drift"] = f"severity {inputs.drift_severity.name} below {policy.drift_min_severity.name}"

    since = (inputs.today - inputs.last_optimization).days if inputs.last_optimization else None
    if not policy.schedule_enabled:
        reasons["schedule"] = "schedule trigger disabled"
    elif since is None:
        fired.append("schedule")
        reasons["schedule"] = "never optimized"
    elif since >= policy.schedule_days:
        fired.append("schedule")
        reasons["schedule"] = f"{since} days since the last optimization (every {policy.schedule_days})"
    else:
        reasons["schedule"] = f"last optimized {since} days ago"

    blocked: list[str] = []
    override = False
    if since is not None and since < policy.min_days_between_optimizations:
        blocked = [k for k in fired if k in ("drift", "schedule")]
        fired = [k for k in fired if k not in blocked]
        guard = f"last optimization {since} days ago (minimum {policy.min_days_between_optimizations})"
        for kind in blocked:
            reasons[kind] += f"; held back: {guard}"
        if "performance" in fired:
            last = inputs.last_performance_override
            if last is not None and (inputs.today - last).days < policy.performance_override_min_days:
                fired.remove("performance")
                blocked.append("performance")
                reasons["performance"] += (
                    f"; held back: {guard}, and the last performance override was {(inputs.today - last).days} "
                    f"days ago (at most one every {policy.performance_override_min_days})"
                )
            else:
                override = True
                reasons["performance"] += f"; overrides the guard ({guard})"
    return TriggerDecision(inputs.horizon, inputs.today, bool(fired), tuple(fired), tuple(blocked), reasons, override)


def _performance(inputs: TriggerInputs, policy: TriggerPolicy) -> tuple[bool, str]:
    """Whether the performance rule fires, and why (or why not)."""
    metric = policy.performance_metric
    if metric in ("random_walk", "distribution"):
        test = inputs.random_walk_test
        if policy.performance_threshold_pct == float("inf"):
            return False, "performance trigger disabled"
        if not test:
            return False, "too few matured forecasts of the deployed configuration for the random-walk test"
        verdict = (
            f"RMSE {test['skill_vs_random_walk']:.3f} x the random walk's over {test['origins']} matured forecasts, "
            f"p {test['p_worse_than_random_walk']:.4f} that it is worse (fires below {policy.performance_p_value:g})"
        )
        fired = test["p_worse_than_random_walk"] < policy.performance_p_value
        if metric == "random_walk":
            return fired, verdict
        band_fired, band_verdict = _band(test, policy)
        return fired or band_fired, f"{verdict}; {band_verdict}"
    degradation = inputs.degradation_pct.get(metric)
    if degradation is None:
        return False, f"no {metric} degradation measured yet"
    if degradation > policy.performance_threshold_pct:
        return True, f"{metric} degraded {degradation:+.1f} % (threshold {policy.performance_threshold_pct:g} %)"
    return False, f"{metric} change {degradation:+.1f} % within {policy.performance_threshold_pct:g} %"


def _band(test: dict[str, Any], policy: TriggerPolicy) -> tuple[bool, str]:
    """The distribution rule's band tests on the matured forecasts (``band_test`` of the monitoring)."""
    if "p_worse_than_ewma_band" not in test:
        return False, "no band test (too little history for the EWMA band, or a test from before it existed)"
    wql_fired = test["p_worse_than_ewma_band"] < policy.band_p_value
    kupiec_fired = test["kupiec_p_95"] < policy.kupiec_p_value
    ratio = test["wql"] / test["wql_ewma_band"] if test["wql_ewma_band"] else float("inf")
    return wql_fired or kupiec_fired, (
        f"band WQL {ratio:.3f} x the EWMA band's, p {test['p_worse_than_ewma_band']:.4f} that it is more than "
        f"{test['band_margin_pct']:g} % worse (fires below {policy.band_p_value:g}); 95 % band breached "
        f"{test['step1_breaches_95']} times of {test['origins']} at step 1, Kupiec p {test['kupiec_p_95']:.4f} "
        f"(fires below {policy.kupiec_p_value:g})"
    )


def manual_decision(horizon: str, today: date, run_id: str) -> TriggerDecision:
    """An optimization launched by hand (from the UI or a backfill): recorded like a fired trigger."""
    reason = f"launched by hand (run {run_id[:8]})"
    return TriggerDecision(horizon, today, True, ("manual",), (), {"manual": reason}, False)


def as_record(decision: TriggerDecision) -> dict[str, Any]:
    d = asdict(decision)
    d["decided_on"] = decision.decided_on.isoformat()
    return d


# ------------------------------------------------------------------------------ verdicts

#: how an optimization concludes; the guard counts the optimizations with one of them recorded
VERDICTS = ("approved", "rejected", "failed")


def failure_concludes(error: BaseException) -> bool:
    """Whether an optimization that failed with ``error`` reached a verdict ("failed", counted by the guard):
    yes, unless waiting may cure the error (:func:`forex_assets.core.retries.is_transient`: a locked file, a
    database out of reach), which leaves it like an optimization whose run died, to launch again."""
    return not is_transient(error)


@dataclass(frozen=True)
class OptimizationVerdict:
    """How one optimization concluded, with the day and override flag of the decision that launched it."""

    horizon: str
    decided_on: date
    verdict: str  # one of VERDICTS ("assumed": a decision logged before verdicts were recorded)
    performance_override: bool = False
    detail: str = ""
    run_id: str | None = None
    recorded_at: datetime | None = None
