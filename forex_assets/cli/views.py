"""What `forex-assets status` and `forex-assets history` print (pure, no Dagster): one status row per horizon
and a horizon's timeline, from the working area's stores and the latest report metadata handed in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from forex_assets.core.alerting.delivery import AlertLog
from forex_assets.core.deployment.config_store import ConfigStore, ConfigStoreError
from forex_assets.core.monitoring.decision_log import DecisionLog
from forex_assets.core.monitoring.optimization_history import HistoryEvent

#: what every alert subject starts with (``[forex][7d] ``, ``[forex][EUR/CLP 7d] ``): the table has the pair
#: and horizon in their own columns
ALERT_PREFIX = re.compile(r"^\[forex\]\[[^\]]*\] ")


def next_weekly_run(now: datetime, cron: str, timezone: str, due_from: date | None) -> datetime:
    """The first tick of a weekly cron ``"M H * * D"`` (D: 0 = Sunday) after ``now`` on or after ``due_from``."""
    minute, hour, _, _, weekday = cron.split()
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    cron_weekday = int(weekday) % 7  # cron: 0 = Sunday; Python: 6 = Sunday
    python_weekday = (cron_weekday - 1) % 7
    candidate = local.replace(hour=int(hour), minute=int(minute), second=0, microsecond=0)
    candidate += timedelta(days=(python_weekday - candidate.weekday()) % 7)
    while candidate <= local or (due_from is not None and candidate.date() < due_from):
        candidate += timedelta(days=7)
    return candidate


@dataclass(frozen=True)
class StatusRow:
    horizon: str
    version: str
    deployed_at: str
    drift: str
    degradation: str
    band: str
    last_optimization: str
    next_scheduled: str
    last_alert: str
    pair: str = ""  # shown as a column when the table holds several pairs


def _age(then: datetime, now: datetime) -> str:
    seconds = (now - then).total_seconds()
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def status_row(
    horizon: str,
    store: ConfigStore,
    log: DecisionLog | None,
    alerts: AlertLog | None,
    drift: dict | None,
    performance: dict | None,
    now: datetime,
    schedule: tuple[str, str, int],
    pair: str = "",
) -> StatusRow:
    """``drift`` and ``performance``: metadata of the latest reports ({} when none, None when the instance could
    not be read); ``schedule``: (cron, timezone, days between scheduled optimizations). ``log``, ``alerts``: None
    when nothing was recorded. ``pair``: the pair's label, for a table of several pairs."""
    try:
        version = store.current_version(horizon)
        version_id, deployed_at = version.id, f"{version.committed_at:%Y-%m-%d %H:%M} UTC"
    except ConfigStoreError:  # the store was seeded without this horizon
        version_id, deployed_at = "none committed", "-"
    if drift is None:
        drift_text = "unavailable"
    else:
        drift_text = f"{drift['severity']} ({drift.get('as_of', '?')})" if "severity" in drift else "no report"
    if performance is None:
        degradation = "unavailable"
    elif "degradation_rmse_pct" in performance:
        degradation = f"{performance['degradation_rmse_pct']:+.1f} % RMSE"
    elif performance:
        degradation = "no baseline yet"
    else:
        degradation = "no report"
    band = band_text(performance)
    last_optimization, last_day = last_optimization_text(log, horizon)
    cron, timezone, days = schedule
    due = last_day + timedelta(days=days) if last_day else None
    next_run = next_weekly_run(now, cron, timezone, due)
    last = alerts.last(horizon) if alerts is not None else None
    if last:
        subject = ALERT_PREFIX.sub("", last.subject, count=1)
        subject = subject if len(subject) <= 60 else subject[:57] + "..."
        last_alert = f"{subject} [{last.status}, {_age(last.sent_at, now)}]"
    else:
        last_alert = "none"
    return StatusRow(
        horizon,
        version_id,
        deployed_at,
        drift_text,
        degradation,
        band,
        last_optimization,
        f"{next_run:%Y-%m-%d %H:%M %Z}",
        last_alert,
        pair,
    )


def band_text(performance: dict | None) -> str:
    """The band of the latest performance report: its weighted quantile loss against the EWMA band's on the
    deployed version's matured forecasts (the distribution rule's test) and its 95 % coverage; without that
    test, the window's WQL and coverage."""
    if performance is None:
        return "unavailable"
    if "band_test_wql" in performance and performance.get("band_test_wql_ewma_band"):
        ratio = float(performance["band_test_wql"]) / float(performance["band_test_wql_ewma_band"])
        coverage = float(performance["band_test_coverage_95"])
        kupiec = float(performance["band_test_kupiec_p_95"])
        return f"WQL {ratio:.2f}x EWMA, 95 % cov {coverage:.2f} (Kupiec p {kupiec:.2f})"
    if "wql" in performance and "coverage_95" in performance:
        return f"WQL {float(performance['wql']):.4f}, 95 % cov {float(performance['coverage_95']):.2f}"
    return "no report" if not performance else "no band scores"


def last_optimization_text(log: DecisionLog | None, horizon: str) -> tuple[str, date | None]:
    """The horizon's latest optimization that reached a verdict, as ``status`` shows it ("2026-11-30 (drift):
    rejected"), and its decision day (what the guard counts); a later decision to optimize whose run has no
    verdict (in progress, or its run died) is named after it. A log from before verdicts were recorded
    (read-only, not migrated): the latest decision to optimize."""
    if log is None:
        return "never", None
    optimizations = [d for _, d in log.entries(horizon) if d.optimize]
    try:
        verdicts = log.verdicts(horizon)
    except sa.exc.SQLAlchemyError as error:  # a read-only log still at its first revision has no verdict table
        if "optimization_verdicts" not in str(error):
            raise
        verdicts = None
    if verdicts is None:
        if not optimizations:
            return "never", None
        decision = optimizations[-1]
        return f"{decision.decided_on} ({', '.join(decision.fired)})", decision.decided_on
    fired = {d.decided_on: d.fired for d in optimizations}
    text, last_day = "never", None
    if verdicts:
        latest = max(reversed(verdicts), key=lambda v: v.decided_on)  # the guard's: the latest decision day
        why = fired.get(latest.decided_on, ("performance",) if latest.performance_override else ())
        because = f" ({', '.join(why)})" if why else ""
        text = f"{latest.decided_on}{because}: {latest.verdict}"
        last_day = latest.decided_on
    pending = [d for d in optimizations if last_day is None or d.decided_on > last_day]
    if pending:
        decision = pending[-1]
        text += f"; {decision.decided_on} ({', '.join(decision.fired)}): no verdict (running, or its run died)"
        text = text.removeprefix("never; ")
    return text, last_day


STATUS_COLUMNS = (
    ("horizon", "horizon"),
    ("version", "deployed version"),
    ("deployed_at", "deployed at"),
    ("drift", "last drift"),
    ("degradation", "performance"),
    ("band", "band"),
    ("last_optimization", "last optimization"),
    ("next_scheduled", "next scheduled"),
    ("last_alert", "last alert"),
)


def format_table(rows: list[StatusRow]) -> str:
    """One line per row; a ``pair`` column first when the rows are of several pairs (the pair x horizon grid)."""
    columns: tuple[tuple[str, str], ...] = STATUS_COLUMNS
    if len({r.pair for r in rows}) > 1:
        columns = (("pair", "pair"), *STATUS_COLUMNS)
    cells = [[label for _, label in columns]] + [[getattr(r, f) for f, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_history(events: list[HistoryEvent], kinds: set[str] | None = None) -> str:
    shown = [e for e in events if kinds is None or e.kind in kinds]
    if not shown:
        return "(nothing recorded)"
    return "\n".join(f"{e.at:%Y-%m-%d %H:%M} UTC  {e.kind:<10}  {e.summary}" for e in shown)


def format_damage(store: ConfigStore) -> str:
    """What a read-only open of ``store`` found and left ("" when nothing), after a blank line: the command
    changed nothing; the next writer's open (any run) repairs it, keeping a copy of what it discards."""
    if not store.damage:
        return ""
    lines = [
        "",
        "",
        f"config store {store.root}: {len(store.damage)} problem(s) found, left as they are (this command only "
        "reads); the committed configurations are the live ones:",
    ]
    return "\n".join(lines + [f"  - {finding.describe()}" for finding in store.damage])
