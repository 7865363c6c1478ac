"""The replay report as a plain-text table for the terminal and the Dagster log: one row per horizon against
ADR-001's targets, then the deploys' realised win rate and the RMSE ratios with their intervals (pure, no
Dagster). Reads the report dict of :func:`forex_assets.core.replay.report_stats.build_report`.
"""

from __future__ import annotations

from typing import Any

from forex_assets.core.replay.engine import JUDGED_ORIGINS


def format_figure(value: float | str | None, digits: int = 2, pct: bool = False) -> str:
    """A figure of the report as text: ``n/a`` for None, a share as a whole percentage (``pct``)."""
    if value is None:
        return "n/a"
    if pct:
        return f"{value * 100:.0f} %"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_table(report: dict[str, Any]) -> str:
    lines = []
    if report["partial"]:
        lines += [
            f"PARTIAL REPORT: {report['partial_reason']}",
            "Every figure below covers the replayed days only.",
            "",
        ]
    lines.append(
        f"replay of {report['source']}, {report['range'][0]}..{report['range'][1]}: "
        f"{report['days_replayed']} of {report['days_planned']} business days in {report['seconds']:.0f} s"
    )
    header = (
        f"{'horizon':<8}{'perf':>5}{'drift':>6}{'sched':>6}{'optim':>6}{'appr':>5}{'depl':>5}{'rollb':>6}"
        f"{'autom':>7}{'improv':>7}{'FP rmse':>8}{'FP skill':>9}{'latency':>8}"
        f"{'RMSE live':>10}{'static':>8}{'RW':>8}{'DM p (static)':>14}"
    )
    lines += ["", header, "-" * len(header)]
    for h, r in report["horizons"].items():
        acc = r["accuracy"]
        rmse = (
            [acc.get(k, {}).get("rmse_clp") for k in ("live", "static", "random_walk")]
            if acc["origins"]
            else [None] * 3
        )
        dm = acc.get("diebold_mariano_vs_static", {}).get("p_value")
        lines.append(
            f"{h:<8}{r['triggers']['performance']:>5}{r['triggers']['drift']:>6}{r['triggers']['schedule']:>6}"
            f"{r['optimizations']:>6}{r['approvals']:>5}{r['deploys']:>5}{r['rollbacks']:>6}"
            f"{format_figure(r['automation_rate'], pct=True):>7}"
            f"{format_figure(r['improvement_share'], pct=True):>7}"
            f"{format_figure(r['false_positive_rate_rmse'], pct=True):>8}"
            f"{format_figure(r['false_positive_rate_skill'], pct=True):>9}"
            f"{format_figure(r['median_detection_latency_days']):>8}"
            f"{format_figure(rmse[0]):>10}{format_figure(rmse[1]):>8}{format_figure(rmse[2]):>8}"
            f"{format_figure(dm, 3):>14}"
        )
    lines += latency_notes(report)
    header = (
        f"{'horizon':<8}{'depl':>5}{'judged':>7}{'not':>5}{'win rate':>9}{'rollb/depl':>11}{'opt/yr':>8}"
        f"{'live/static [95 % CI]':>24}{'live/RW [95 % CI]':>24}"
    )
    lines += ["", header, "-" * len(header)]
    for h, r in report["horizons"].items():
        acc = r["accuracy"]
        lines.append(
            f"{h:<8}{r['deploys']:>5}"
            f"{format_figure(r.get('deploys_judged')):>7}{format_figure(r.get('deploys_not_judged')):>5}"
            f"{format_figure(r.get('realised_win_rate'), pct=True):>9}"
            f"{format_figure(r.get('rollbacks_per_deploy')):>11}"
            f"{format_figure(r.get('optimizations_per_year'), 1):>8}"
            f"{ratio_text(acc.get('rmse_ratio_vs_static')):>24}{ratio_text(acc.get('rmse_ratio_vs_random_walk')):>24}"
        )
    judged = report.get("judged_origins_per_deploy", JUDGED_ORIGINS)
    lines += [
        f"win rate: deploys whose RMSE beat the replaced configuration's on their first {judged} origins (those "
        "matured); not: deploys with no matured origin. CI: circular-block bootstrap, blocks of h origins.",
        "",
        "targets (ADR-001): " + ", ".join(f"{k} {v}" for k, v in report["targets"].items()),
    ]
    return "\n".join(lines)


def latency_notes(report: dict[str, Any]) -> list[str]:
    """One line per injected drift whose detection latency could not be measured, with the reason (the
    same for every horizon); nothing when every latency was measured."""
    reasons: dict[str, str] = {}
    for r in report["horizons"].values():
        for row in r.get("drift_latencies", []):
            if row.get("not_measurable"):
                reasons.setdefault(row["onset"], row["not_measurable"])
    return [f"latency of the drift from {onset}: not measurable ({reason})" for onset, reason in reasons.items()]


def ratio_text(ratio: dict[str, Any] | None) -> str:
    """``0.970 [0.912, 1.041]``: an RMSE ratio with its 95 % interval; the ratio alone without an interval."""
    if not ratio or ratio.get("ratio") is None:
        return "n/a"
    if ratio.get("ci_low") is None or ratio.get("ci_high") is None:
        return f"{ratio['ratio']:.3f}"
    return f"{ratio['ratio']:.3f} [{ratio['ci_low']:.3f}, {ratio['ci_high']:.3f}]"
