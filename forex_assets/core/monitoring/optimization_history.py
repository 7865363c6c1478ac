"""What happened to a horizon: deploys, rollbacks, trigger decisions and validations on one timeline, and
the optimization metrics built from it (pure, no Dagster).

Sources: the config store's git history (deploys, rollbacks and their before/after figures) and its repair
log (what writers' opens put back or moved aside), the trigger decision log (why an optimization started, or
did not) and the validation reports in the working area.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forex_assets.core.deployment.config_store import ConfigStore
from forex_assets.core.deployment.history import message_fields, rollback_target
from forex_assets.core.monitoring.decision_log import DecisionLog

if TYPE_CHECKING:  # pandas only for the asset's tables: `forex-assets history` does without it
    import pandas as pd

TRIGGER_KINDS = ("performance", "drift", "schedule", "manual")
REPORT_NAME = re.compile(r"validation_(?P<horizon>\w+)_(?P<stamp>\d{8}T\d{6}Z)\.json$")


@dataclass(frozen=True)
class HistoryEvent:
    at: datetime  # UTC
    horizon: str
    kind: str  # seed, deploy, rollback, repair, decision, validation
    summary: str  # one line a person reads
    details: dict[str, Any] = field(default_factory=dict)


def store_events(store: ConfigStore, horizon: str) -> list[HistoryEvent]:
    events = []
    for version in reversed(store.history(horizon)):  # oldest first
        summary, fields = version.summary, message_fields(version.message)
        details: dict[str, Any] = {"version": version.id}
        if summary.startswith(f"[{horizon}] deploy"):
            kind = "deploy"
            details |= {
                "validation": fields.get("validation metrics", {}),
                "baseline": fields.get("validation baseline"),
            }
        elif summary.startswith(f"[{horizon}] rollback"):
            kind = "rollback"
            details["restored"] = rollback_target(summary)
        elif version.record.action == "repair":  # stores written before repairs stopped committing
            kind = "repair"
        else:
            kind = "seed"
        events.append(HistoryEvent(version.committed_at, horizon, kind, f"{version.id}  {summary}", details))
    return events + repair_events(store, horizon)


def repair_events(store: ConfigStore, horizon: str) -> list[HistoryEvent]:
    """What writers' opens of the store repaired for the horizon, or for the whole store (its repair log):
    what was done, what was discarded and where the copy is."""
    events = []
    for record in store.repair_log.entries():
        if record.horizon in (horizon, None):
            kept = {"kept": str(store.root / record.kept)} if record.kept else {}
            summary = f"config store {store.root}: {record.text}"
            events.append(HistoryEvent(record.at, horizon, "repair", summary, {"id": record.id} | kept))
    return events


def decision_events(log: DecisionLog, horizon: str) -> list[HistoryEvent]:
    events = []
    for recorded_at, decision in log.entries(horizon):
        at = recorded_at or datetime.combine(decision.decided_on, datetime.min.time(), tzinfo=UTC)
        verdict = f"optimize ({', '.join(decision.fired)})" if decision.optimize else "no optimization"
        reasons = "; ".join(f"{kind}: {reason}" for kind, reason in decision.reasons.items())
        details = {"optimize": decision.optimize, "fired": list(decision.fired), "reasons": decision.reasons}
        events.append(HistoryEvent(at, horizon, "decision", f"{verdict} - {reasons}", details))
    return events


def validation_events(reports_dir: Path, horizon: str) -> list[HistoryEvent]:
    events = []
    for path in sorted(Path(reports_dir).glob(f"validation_{horizon}_*.json")):
        match = REPORT_NAME.search(path.name)
        if not match:
            continue
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # an unreadable report is left out of the history, not fatal to it
        at = datetime.strptime(match["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        m = report.get("metrics", {})
        failed = report.get("failed_criteria", [])
        path = report.get("approved_by")
        approved = "approved" + (f" by the {path} path" if path else "")
        verdict = approved if report.get("approved") else f"rejected ({', '.join(failed)})"
        summary = f"validation {verdict}: RMSE change {m.get('rmse_improvement', float('nan')):+.2f} %"
        if m.get("wql_improvement") is not None:  # reports from before the distribution's path have none
            summary += f", WQL change {m['wql_improvement']:+.2f} %, 95 % coverage {m['ci95_coverage_new']:.3f}"
        events.append(
            HistoryEvent(at, horizon, "validation", summary, {"approved": bool(report.get("approved")), "path": path})
        )
    return events


def horizon_events(store: ConfigStore, log: DecisionLog, reports_dir: Path, horizon: str) -> list[HistoryEvent]:
    events = store_events(store, horizon) + decision_events(log, horizon) + validation_events(reports_dir, horizon)
    return sorted(events, key=lambda e: e.at)


@dataclass(frozen=True)
class DeployRecord:
    horizon: str
    version: str
    deployed_at: datetime
    rmse_before_clp: float | None
    rmse_after_clp: float | None
    hours_from_trigger: float | None

    @property
    def rmse_change_pct(self) -> float | None:
        if self.rmse_before_clp and self.rmse_after_clp is not None:
            return (self.rmse_after_clp - self.rmse_before_clp) / self.rmse_before_clp * 100.0
        return None


@dataclass(frozen=True)
class HorizonMetrics:
    horizon: str
    optimizations: int
    by_trigger: dict[str, int]
    validations: int
    validations_passed: int
    deploys: list[DeployRecord]
    rollbacks: int

    @property
    def validation_success_rate(self) -> float | None:
        return self.validations_passed / self.validations if self.validations else None

    @property
    def median_hours_trigger_to_deploy(self) -> float | None:
        hours = [d.hours_from_trigger for d in self.deploys if d.hours_from_trigger is not None]
        return statistics.median(hours) if hours else None


def horizon_metrics(events: list[HistoryEvent], horizon: str) -> HorizonMetrics:
    """Per-horizon optimization metrics from the horizon's time-ordered events."""
    by_trigger: Counter[str] = Counter()
    optimizations = validations = passed = rollbacks = 0
    deploys: list[DeployRecord] = []
    last_trigger: datetime | None = None
    previous_baseline: float | None = None
    for event in events:
        if event.kind == "decision" and event.details["optimize"]:
            optimizations += 1
            by_trigger.update(event.details["fired"])
            last_trigger = event.at
        elif event.kind == "validation":
            validations += 1
            passed += event.details["approved"]
        elif event.kind == "rollback":
            rollbacks += 1
        elif event.kind == "deploy":
            validation, baseline = event.details["validation"], event.details["baseline"] or {}
            after = validation.get("rmse_clp_after", baseline.get("rmse_clp"))
            before = validation.get("rmse_clp_before", previous_baseline)
            hours = (event.at - last_trigger).total_seconds() / 3600 if last_trigger else None
            deploys.append(DeployRecord(horizon, event.details["version"], event.at, before, after, hours))
            last_trigger = None  # one trigger leads to at most one deploy
            previous_baseline = after
    counts = {kind: by_trigger.get(kind, 0) for kind in TRIGGER_KINDS}
    return HorizonMetrics(horizon, optimizations, counts, validations, passed, deploys, rollbacks)


def summary_frame(metrics: list[HorizonMetrics]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for m in metrics:
        last = m.deploys[-1] if m.deploys else None
        rows.append(
            {
                "horizon": m.horizon,
                "optimizations": m.optimizations,
                **{f"by_{kind}": m.by_trigger[kind] for kind in TRIGGER_KINDS},
                "validations": m.validations,
                "validation_success_rate": m.validation_success_rate,
                "deploys": len(m.deploys),
                "rollbacks": m.rollbacks,
                "median_hours_trigger_to_deploy": m.median_hours_trigger_to_deploy,
                "last_deploy_rmse_before_clp": last.rmse_before_clp if last else None,
                "last_deploy_rmse_after_clp": last.rmse_after_clp if last else None,
            }
        )
    return pd.DataFrame(rows)


def deploys_frame(metrics: list[HorizonMetrics]) -> pd.DataFrame:
    import pandas as pd

    rows = [
        {
            "horizon": d.horizon,
            "version": d.version,
            "deployed_at": d.deployed_at.strftime("%Y-%m-%d %H:%M UTC"),
            "rmse_before_clp": d.rmse_before_clp,
            "rmse_after_clp": d.rmse_after_clp,
            "rmse_change_pct": d.rmse_change_pct,
            "hours_from_trigger": d.hours_from_trigger,
        }
        for m in metrics
        for d in m.deploys
    ]
    columns = ["horizon", "version", "deployed_at", "rmse_before_clp", "rmse_after_clp", "rmse_change_pct"]
    return pd.DataFrame(rows, columns=columns + ["hours_from_trigger"])
