"""Alert messages for the events an operator must learn of without watching a screen (pure, no Dagster).

Every alert has a subject that sorts well in an inbox (``[forex][30d] deployed v20261126T071502Z-3fa2c1d0``),
a plain-text body and an HTML body (``templates/alert.html.j2``, autoescaped) carrying the same facts
and numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from forex_assets.core.corrupt_files import SetAside
from forex_assets.core.templates import render
from forex_assets.core.working_area import pair_label

ALL_HORIZONS = "all"


@dataclass(frozen=True)
class Alert:
    # optimization_triggered, validation_passed, validation_failed, deployed, rollback, run_failed, file_set_aside
    event: str
    horizon: str  # 7d, 15d, 30d, 90d or "all"
    subject: str
    text: str
    html: str


def _subject(horizon: str, title: str) -> str:
    return f"[forex][{horizon}] {title}"


def for_pair(alert: Alert, pair: str, primary: str = "USDCLP") -> Alert:
    """``alert`` about the currency pair ``pair``: its subject and HTML name the pair (``[forex][EUR/CLP 7d]``);
    an alert about ``primary`` (USD/CLP) reads as a single-pair instance's always did (``[forex][7d]``)."""
    if pair == primary:
        return alert
    old = f"[forex][{alert.horizon}]"
    new = f"[forex][{pair_label(pair)} {alert.horizon}]"
    return replace(alert, subject=alert.subject.replace(old, new, 1), html=alert.html.replace(old, new, 1))


def _render(
    event: str, horizon: str, title: str, intro: str, rows: Sequence[tuple[str, str]], notes: Sequence[str] = ()
) -> Alert:
    """One alert from an intro line, a table of (field, value) rows and optional free-text notes."""
    width = max((len(k) for k, _ in rows), default=0)
    text_lines = [intro, ""] + [f"{k.ljust(width)}  {v}" for k, v in rows]
    if notes:
        text_lines += [""] + list(notes)
    subject = _subject(horizon, title)
    body = render("alert.html.j2", subject=subject, intro=intro, rows=rows, notes=list(notes))
    return Alert(event, horizon, subject, "\n".join(text_lines) + "\n", body)


def optimization_triggered(horizon: str, fired: Sequence[str], reasons: Mapping[str, str], run_id: str = "") -> Alert:
    kinds = ", ".join(fired) or "manual"
    rows = [(kind, reasons.get(kind, "")) for kind in fired] or [("manual", reasons.get("manual", "launched by hand"))]
    if run_id:
        rows.append(("run", run_id))
    return _render(
        "optimization_triggered",
        horizon,
        f"optimization triggered: {kinds}",
        f"{horizon}: a re-optimization of the Chronos inference configuration started ({kinds}).",
        rows,
    )


def validation_result(report: Mapping[str, Any]) -> Alert:
    """From ``ValidationReport.to_dict()``: which criteria passed or failed, with their numbers."""
    horizon, m = report["horizon"], report["metrics"]
    failed = list(report["failed_criteria"])
    title = "validation passed" if not failed else f"validation FAILED: {', '.join(failed)}"
    title += f" (RMSE {m['rmse_improvement']:+.2f} %)"
    path = report.get("approved_by")  # a criterion of the other path does not block an approved report
    rows = [
        (
            f"{'PASS' if c['passed'] else ('n/a ' if path and c.get('path') not in (None, 'both', path) else 'FAIL')}"
            f" {c['name']}",
            c["description"]
            if c["passed"] or not path
            else f"not needed: approved by the {path} path; {c['description']}",
        )
        for c in report.get("criteria", [])
    ]
    if path:
        rows.insert(0, ("approved by", f"the {path} path"))
    if m.get("wql_improvement") is not None:
        rows.append(
            ("WQL", f"{m['wql_new']:.5f} candidate vs {m['wql_current']:.5f} deployed ({m['wql_improvement']:+.2f} %)")
        )
    rows += [
        ("RMSE", f"{m['rmse_new']:.3f} CLP candidate vs {m['rmse_current']:.3f} CLP deployed"),
        ("MAPE", f"{m['mape_new']:.3f} % vs {m['mape_current']:.3f} %"),
        ("validation window", " .. ".join(report["validation_window"])),
        ("deployed version", report.get("deployed_version", "")),
    ]
    dm = report.get("diebold_mariano") or {}
    if "p_value" in dm:
        rows.append(("Diebold-Mariano p", f"{dm['p_value']:.4f}"))
    verdict = "approved: it will be deployed" if not failed else "rejected: the deployed configuration stays"
    return _render(
        "validation_passed" if not failed else "validation_failed",
        horizon,
        title,
        f"{horizon}: the candidate configuration was {verdict}.",
        rows,
    )


def _before_after(label: str, before: float | None, after: float | None, unit: str, digits: int = 3) -> tuple[str, str]:
    fmt = f"{{:.{digits}f}}"
    b = "n/a" if before is None else fmt.format(before)
    a = "n/a" if after is None else fmt.format(after)
    change = ""
    if before is not None and before != 0 and after is not None:
        change = f" ({(after - before) / before * 100:+.2f} %)"
    return (label, f"{b} -> {a} {unit}{change}".rstrip())


def config_deployed(horizon: str, version: str, previous: str, report: Mapping[str, Any], reason: str = "") -> Alert:
    """Metrics before (the previously deployed configuration) and after (the new one), on the validation window."""
    m = report["metrics"]
    rows = [
        ("version", f"v{version}"),
        ("previous version", f"v{previous}"),
        _before_after("RMSE", m["rmse_current"], m["rmse_new"], "CLP"),
        _before_after("MAPE", m["mape_current"], m["mape_new"], "%"),
        _before_after("95 % coverage", m["ci95_coverage_current"], m["ci95_coverage_new"], ""),
        _before_after("bias", m["bias_current"], m["bias_new"], "CLP", 2),
        _before_after("inference", m["inference_time_current"] * 1000, m["inference_time_new"] * 1000, "ms", 1),
        ("validation window", " .. ".join(report["validation_window"])),
    ]
    return _render(
        "deployed",
        horizon,
        f"deployed v{version}",
        f"{horizon}: a new inference configuration is live (before -> after on the validation window).",
        rows,
        [reason] if reason else (),
    )


def rollback_executed(horizon: str, reason: str, from_version: str, to_version: str, new_version: str) -> Alert:
    return _render(
        "rollback",
        horizon,
        f"ROLLBACK v{from_version} -> v{to_version}",
        f"{horizon}: the configuration was rolled back.",
        [
            ("reason", reason),
            ("from version", f"v{from_version}"),
            ("restored version", f"v{to_version}"),
            ("recorded as", f"v{new_version}"),
        ],
    )


def run_failed(
    job_name: str, run_id: str, horizon: str | None, errors: Sequence[str], what: str = "", link: str = ""
) -> Alert:
    target = what or job_name
    rows = [("job", job_name), ("run", run_id)]
    if what:
        rows.append(("selection", what))
    if link:
        rows.append(("open", link))
    return _render(
        "run_failed",
        horizon or ALL_HORIZONS,
        f"run FAILED: {target} ({run_id[:8]})",
        f"A Dagster run failed: {target}.",
        rows,
        _error_notes(errors) or ["error: (no step failure recorded)"],
    )


def _error_notes(errors: Sequence[str]) -> list[str]:
    """``error: <first line>`` then every further line of each error as a note of its own (the HTML body
    keeps one paragraph per line; the text body is the same lines)."""
    notes = []
    for error in errors:
        first, *rest = error.strip().splitlines() or [""]
        notes += [f"error: {first}", *rest]
    return notes


def file_set_aside(event: SetAside, horizon: str, found_by: str = "", run_id: str = "", link: str = "") -> Alert:
    """A corrupt cache or journal was renamed out of the way and the work went on: which file, where its
    content is kept, what was wrong and what was done. ``found_by``: the asset (and partition) that met it."""
    rows = [
        ("file", str(event.path)),
        ("kept as", str(event.kept_as)),
        ("problem", event.problem),
        ("what was done", event.action),
        ("at", event.at.strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    if found_by:
        rows.append(("found by", found_by))
    if run_id:
        rows.append(("run", run_id))
    if link:
        rows.append(("open", link))
    return _render(
        "file_set_aside",
        horizon,
        f"corrupt file set aside: {event.path.name}",
        f"{horizon}: the {event.what} {event.path} was corrupt; it was set aside and the work went on.",
        rows,
        ["Nothing else is needed; delete the kept file once it is no longer wanted."],
    )
