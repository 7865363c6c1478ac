"""The replay report as a plain-text table for the terminal and the Dagster log: one row per horizon against
ADR-001's targets, then the deploys' realised win rate and the RMSE ratios with their intervals, then per
horizon the scores of the whole distribution (one row per forecaster, the WQL ratios with their intervals and
the live band's breach tests) (pure, no Dagster). Reads the report dict of
:func:`forex_assets.core.replay.report_stats.build_report`.
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
        f"replay of {report.get('pair', 'USDCLP')} from {report['source']}, "
        f"{report['range'][0]}..{report['range'][1]}: "
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
    ]
    for h, r in report["horizons"].items():
        if r["accuracy"]["origins"]:
            lines += ["", *distribution_table(h, r["accuracy"])]
    lines += [
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


#: the forecasters of a horizon's accuracy block, in the order shown, with their labels
FORECASTERS = {
    "live": "live policy",
    "static": "static initial",
    "random_walk": "random walk",
    "ewma_band": "EWMA band",
    "garch_band": "GARCH band",
    "historical_band": "historical band",
}


def coverage_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def distribution_table(horizon: str, accuracy: dict[str, Any]) -> list[str]:
    """One horizon's scores of the whole distribution: one row per forecaster (origins scored, RMSE, WQL,
    95 % interval score, 95 % and 80 % coverage, 95 % width), the live WQL ratios with their intervals and the
    live 95 % band's breach tests."""
    header = (
        f"{'forecaster':<17}{'origins':>8}{'RMSE':>9}{'WQL':>10}{'IS 95':>9}{'cov 95':>9}{'cov 80':>9}{'width 95':>10}"
    )
    lines = [f"{horizon}: the whole distribution on {accuracy['origins']} matured origins", header, "-" * len(header)]
    spaced = []
    for key, label in FORECASTERS.items():
        row = accuracy.get(key)
        if not row:
            continue
        if row.get("origin_spacing_days", 1) > 1:
            spaced.append(f"{label}: one origin every {row['origin_spacing_days']} replay days")
        width = row.get("width_95_pct")
        lines.append(
            f"{label:<17}{format_figure(row.get('origins_scored')):>8}{format_figure(row.get('rmse_clp')):>9}"
            f"{format_figure(row.get('wql'), 5):>10}{format_figure(row.get('interval_score_95')):>9}"
            f"{coverage_text(row.get('coverage_95')):>9}{coverage_text(row.get('coverage_80')):>9}"
            f"{'n/a' if width is None else f'{width:.2f} %':>10}"
        )
    ratios = [
        f"live / {FORECASTERS[k.removeprefix('wql_ratio_vs_')]} {ratio_text(v)}"
        for k, v in accuracy.items()
        if k.startswith("wql_ratio_vs_") and k.removeprefix("wql_ratio_vs_") in FORECASTERS
    ]
    if ratios:
        lines.append("WQL ratio [95 % CI]: " + "; ".join(ratios))
    interval = accuracy.get("coverage_95_live_interval")
    if interval and interval.get("ci_low") is not None:
        lines.append(
            f"live 95 % coverage {coverage_text(interval['coverage'])} "
            f"[{coverage_text(interval['ci_low'])}, {coverage_text(interval['ci_high'])}] (block bootstrap, "
            f"{interval['origins']} origins)"
        )
    tests = accuracy.get("breach_tests_95_live")
    if tests:
        lines.append(
            f"live 95 % band, step 1: {tests['breaches']} of {tests['observations']} actuals outside "
            f"({coverage_text(tests['breach_rate'])}); Kupiec POF p {format_figure(tests['kupiec_pof_p_value'], 3)}, "
            f"Christoffersen independence p {format_figure(tests['christoffersen_independence_p_value'], 3)}"
        )
    if spaced:
        lines.append("; ".join(spaced) + " (its cost), its WQL ratio on those origins only")
    return lines
