"""The verdict of an optimization run, recorded in the decision log: what the guard counts
(``forex_assets.core.monitoring.triggers``, "What the guard counts").

``validation_report`` records "approved" or "rejected"; ``candidate_config`` and ``validation_report`` record
"failed" when they fail for a reason waiting does not cure (:func:`failure_verdict`). A run that dies, is
killed or canceled, or gives up on a transient error records nothing: the optimization does not count, and
the next decision may launch it again. The verdict carries the day and the override flag of the decision
that launched the run, which the sensors, the weekly schedule and `make run` put in its tags
(:func:`decision_tags`); a run launched by hand has none and is dated like its manual decision.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date

import dagster as dg

from forex_assets.core.monitoring.triggers import TriggerDecision, failure_concludes
from forex_assets.defs.partitions import context_series
from forex_assets.defs.resources import WorkingArea

DECIDED_ON_TAG = "forex/decided_on"
OVERRIDE_TAG = "forex/performance_override"
DETAIL_CHARS = 1000


def decision_tags(decision: TriggerDecision) -> dict[str, str]:
    """Run tags naming the decision that launches an optimization (its day, whether it overrode the guard)."""
    return {DECIDED_ON_TAG: decision.decided_on.isoformat(), OVERRIDE_TAG: str(int(decision.performance_override))}


def launching_decision(tags: Mapping[str, str], as_of: date) -> tuple[date, bool]:
    """(day, performance override) of the decision that launched a run with ``tags``; a run launched by hand:
    ``as_of`` (the day of the latest price, as its manual decision is dated) and no override."""
    day = tags.get(DECIDED_ON_TAG)
    return (date.fromisoformat(day) if day else as_of), tags.get(OVERRIDE_TAG) == "1"


def record_verdict(
    context: dg.AssetExecutionContext, working_area: WorkingArea, as_of: date, verdict: str, detail: str = ""
) -> None:
    """Record the verdict of this run's optimization of ``context.partition_key`` (one pair's horizon)."""
    decided_on, override = launching_decision(context.run.tags, as_of)
    pair, horizon = context_series(context)
    working_area.decision_log(pair).record_verdict(
        horizon,
        decided_on,
        verdict,
        performance_override=override,
        detail=detail[:DETAIL_CHARS],
        run_id=context.run.run_id,
    )


def _detail(error: Exception) -> str:
    if isinstance(error, dg.Failure) and error.description:
        return error.description
    return f"{type(error).__name__}: {error}"


@contextmanager
def failure_verdict(context: dg.AssetExecutionContext, working_area: WorkingArea, as_of: date) -> Iterator[None]:
    """A failure of the block that concludes the optimization (``failure_concludes``: not transient) is
    recorded as its verdict "failed", then raised as it was; a transient one is only raised."""
    try:
        yield
    except Exception as error:
        if failure_concludes(error):
            try:
                record_verdict(context, working_area, as_of, "failed", _detail(error))
            except Exception as recording:  # noqa: BLE001 - the step's own failure is the error to report
                context.log.warning(
                    f"the verdict of this failed optimization could not be recorded ({recording}): the guard does "
                    "not count it, and the next decision may launch it again"
                )
        raise
