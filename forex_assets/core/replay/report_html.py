"""The replay report as a self-contained HTML page (``templates/replay_report.html.j2``): headline figures per
horizon first, then the timeline and accuracy figures (``report_plots``, inline PNG), then one section of tables
per horizon; every value is a table cell, autoescaped, never a serialized structure (pure, no Dagster).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forex_assets.core.plots import figure_png_base64
from forex_assets.core.replay.report_plots import accuracy_figure, timeline_figure
from forex_assets.core.replay.report_stats import TARGETS
from forex_assets.core.replay.report_text import FORECASTERS, coverage_text, format_figure, ratio_text
from forex_assets.core.templates import render


@dataclass
class Cell:
    """One table cell: text, a short list, or a nested table (never a serialized structure)."""

    text: str = ""
    css: str = ""
    items: list[str] | None = None
    table: Table | None = None


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]]
    row_headers: bool = True  # the first cell of each row is a header


HORIZON_KEYS_SHOWN = {  # rendered by the sections below; anything else goes to "other figures"
    "horizon", "triggers", "held_back_by_guard", "decisions", "optimizations", "optimization_errors",
    "approvals", "rejections", "deploys", "zero_downtime_share", "rollbacks", "rollback_reasons",
    "forecast_failures", "automation_rate", "improvement_share", "false_positive_rate_rmse",
    "false_positive_rate_skill", "false_positive_detail", "trigger_to_deploy_days", "median_optimization_seconds",
    "drift_latencies", "median_detection_latency_days", "accuracy", "events", "realised_win_rate", "deploy_wins",
    "deploys_judged", "deploys_not_judged", "deploy_judgements", "rollbacks_per_deploy", "optimizations_per_year",
}  # fmt: skip


LABELS = {
    "rmse_clp": "RMSE (CLP)",
    "mape_pct": "MAPE",
    "coverage_95": "95 % coverage",
    "p_value": "p-value",
    "rmse": "on RMSE",
    "skill": "on skill (RMSE / random-walk RMSE)",
    "detection_latency_days": "detection latency (business days)",
    "optimization_latency_days": "optimization latency (business days)",
    "not_measurable": "latency not measurable because",
    "rmse_change_pct": "RMSE change",
    "rmse_deploy_clp": "RMSE deploy (CLP)",
    "rmse_replaced_clp": "RMSE replaced (CLP)",
    "deployed_on": "deployed on",
    "ci_low": "95 % CI low",
    "ci_high": "95 % CI high",
    "block": "block (origins)",
}


def _label(key: str) -> str:
    return LABELS.get(key, str(key).replace("_", " "))


def _is_share(key: str) -> bool:
    """Figures that are shares of a count (automation_rate, false_positive_rate_rmse, zero_downtime_share)."""
    words = key.split("_")
    return "rate" in words or "share" in words


def _scalar(value: object, key: str = "") -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if _is_share(key):
            return format_figure(value, pct=True)
        if key == "coverage_95":
            return f"{value * 100:.1f} %"
        if key.endswith("_pct"):
            return f"{value:+.2f} %" if "change" in key or "improvement" in key else f"{value:.3f} %"
        return f"{value:.3f}" if key in ("statistic", "p_value", "ratio", "ci_low", "ci_high") else f"{value:.2f}"
    return str(value)


def _meets(key: str, value: Any) -> str:
    """CSS class for a figure with an ADR-001 target: met (pass), missed (fail), no target or no value."""
    if key not in TARGETS or value is None:
        return ""
    op, threshold = TARGETS[key]
    return "pass" if (value >= threshold if op == ">=" else value <= threshold) else "fail"


def _cell(value: Any, key: str = "") -> Cell:
    """A value of the report as a cell: mappings and lists of mappings become nested tables, lists of
    scalars a list, scalars formatted text."""
    if isinstance(value, dict):
        return Cell(table=_mapping_table(value), css="nested")
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, dict) for v in value):
            return Cell(table=_records_table(value), css="nested")
        if not value:
            return Cell(text="none", css="muted")
        return Cell(items=[_scalar(v) for v in value])
    css = ("num " if isinstance(value, int | float) and not isinstance(value, bool) else "") + _meets(key, value)
    return Cell(text=_scalar(value, key), css=css.strip())


def _mapping_table(mapping: dict[str, Any]) -> Table:
    """Rows of (key, value); a mapping of mappings becomes one row per key with the inner keys as columns."""
    if mapping and all(isinstance(v, dict) for v in mapping.values()):
        columns = list(dict.fromkeys(k for v in mapping.values() for k in v))
        rows = [[Cell(_label(k))] + [_cell(v.get(c), c) for c in columns] for k, v in mapping.items()]
        return Table(["", *map(_label, columns)], rows)
    return Table([], [[Cell(_label(k)), _cell(v, k)] for k, v in mapping.items()])


def _records_table(records: Sequence[Mapping[str, Any]]) -> Table:
    columns = list(dict.fromkeys(k for r in records for k in r))
    rows = [[_cell(r.get(c), c) for c in columns] for r in records]
    return Table([_label(c) for c in columns], rows, row_headers=False)


def _headline(report: dict[str, Any]) -> Table:
    """One row per horizon: accuracy against the static configuration and the random walk, then what the
    policy did, with the ADR-001 targets marked."""
    headers = [
        "horizon", "matured origins", "RMSE live (CLP)", "RMSE static", "RMSE random walk", "live vs static",
        "95 % coverage (live)", "DM p vs static", "optimizations", "deploys", "rollbacks", "automation",
        "improvement", "false positives (RMSE)", "detection latency (days)", "live / static [95 % CI]",
        "live / random walk [95 % CI]", "deploys judged", "realised win rate", "rollbacks per deploy",
        "optimizations per year",
    ]  # fmt: skip
    rows = []
    for h, r in report["horizons"].items():
        acc = r["accuracy"]
        rmse = [
            (acc.get(k) or {}).get("rmse_clp") if acc["origins"] else None for k in ("live", "static", "random_walk")
        ]
        change = (rmse[0] - rmse[1]) / rmse[1] if None not in rmse[:2] and rmse[1] else None
        coverage = (acc.get("live") or {}).get("coverage_95") if acc["origins"] else None
        rows.append(
            [
                Cell(h),
                _cell(acc["origins"]),
                *(_cell(v, "rmse_clp") for v in rmse),
                Cell("n/a" if change is None else f"{change * 100:+.1f} %", "num"),
                _cell(coverage, "coverage_95"),
                _cell((acc.get("diebold_mariano_vs_static") or {}).get("p_value"), "p_value"),
                _cell(r["optimizations"]),
                _cell(r["deploys"]),
                _cell(r["rollbacks"]),
                _cell(r["automation_rate"], "automation_rate"),
                _cell(r["improvement_share"], "improvement_share"),
                _cell(r["false_positive_rate_rmse"], "false_positive_rate_rmse"),
                _cell(r["median_detection_latency_days"], "median_detection_latency_days"),
                Cell(ratio_text(acc.get("rmse_ratio_vs_static")), "num"),
                Cell(ratio_text(acc.get("rmse_ratio_vs_random_walk")), "num"),
                _cell(r.get("deploys_judged")),
                _cell(r.get("realised_win_rate"), "realised_win_rate"),
                _cell(r.get("rollbacks_per_deploy"), "rollbacks_per_deploy"),
                _cell(r.get("optimizations_per_year")),
            ]
        )
    return Table(headers, rows)


def _activity(r: dict[str, Any]) -> Table:
    facts = [
        ("trigger decisions", "decisions"),
        ("optimizations started", "optimizations"),
        ("approved", "approvals"),
        ("rejected", "rejections"),
        ("deploys", "deploys"),
        ("zero-downtime share of deploys", "zero_downtime_share"),
        ("rollbacks", "rollbacks"),
        ("rollbacks per deploy", "rollbacks_per_deploy"),
        ("optimizations per year (business days replayed / 252)", "optimizations_per_year"),
        ("deploys judged against the configuration they replaced", "deploys_judged"),
        ("deploys not judged (no matured origin)", "deploys_not_judged"),
        ("deploys that beat the configuration they replaced", "deploy_wins"),
        ("realised win rate", "realised_win_rate"),
        ("forecast failures", "forecast_failures"),
        ("automation rate", "automation_rate"),
        ("improvement share", "improvement_share"),
        ("false-positive rate (RMSE)", "false_positive_rate_rmse"),
        ("false-positive rate (skill)", "false_positive_rate_skill"),
        ("trigger to deploy (replay days)", "trigger_to_deploy_days"),
        ("median optimization time (s)", "median_optimization_seconds"),
        ("median detection latency (business days)", "median_detection_latency_days"),
    ]
    return Table([], [[Cell(label), _cell(r.get(key), key)] for label, key in facts if key in r])


def _triggers(r: dict[str, Any]) -> Table:
    fired, held = r.get("triggers", {}), r.get("held_back_by_guard", {})
    kinds = list(dict.fromkeys([*fired, *held]))
    return Table(
        ["kind", "fired", "held back by the guard"], [[Cell(k), _cell(fired.get(k)), _cell(held.get(k))] for k in kinds]
    )


def _distribution(acc: dict[str, Any]) -> Table:
    """One row per forecaster: origins scored, RMSE, MAPE, WQL, 95 % interval score, 95 % and 80 % coverage,
    95 % width (n/a: a forecaster without a band)."""
    headers = [
        "forecaster", "origins scored", "RMSE (CLP)", "MAPE", "WQL", "interval score 95 % (CLP)",
        "95 % coverage", "80 % coverage", "95 % width",
    ]  # fmt: skip
    rows = []
    for key, label in FORECASTERS.items():
        row = acc.get(key)
        if not row:
            continue
        spacing = row.get("origin_spacing_days", 1)
        origins = f"{row.get('origins_scored')}" + (f" (every {spacing} days)" if spacing > 1 else "")
        width, mape, wql, score = (row.get(k) for k in ("width_95_pct", "mape_pct", "wql", "interval_score_95"))
        rows.append(
            [
                Cell(label),
                Cell(origins, "num"),
                _cell(row.get("rmse_clp"), "rmse_clp"),
                Cell("n/a" if mape is None else f"{mape:.3f} %", "num"),
                Cell("n/a" if wql is None else f"{wql:.5f}", "num"),
                Cell("n/a" if score is None else f"{score:.2f}", "num"),
                Cell(coverage_text(row.get("coverage_95")), "num"),
                Cell(coverage_text(row.get("coverage_80")), "num"),
                Cell("n/a" if width is None else f"{width:.2f} %", "num"),
            ]
        )
    return Table(headers, rows)


def _wql_ratios(acc: dict[str, Any]) -> Table | None:
    rows = [
        [
            Cell(f"live / {FORECASTERS[k.removeprefix('wql_ratio_vs_')]}"),
            Cell(ratio_text(v), "num"),
            _cell(v.get("origins")),
            _cell(v.get("block")),
            Cell(v.get("note") or "", "muted"),
        ]
        for k, v in acc.items()
        if k.startswith("wql_ratio_vs_") and k.removeprefix("wql_ratio_vs_") in FORECASTERS
    ]
    return Table(["", "WQL ratio [95 % CI]", "origins", "block (origins)", ""], rows) if rows else None


def _breach_tests(tests: dict[str, Any] | None) -> Table | None:
    if not tests:
        return None
    facts = [
        ("step", str(tests["step"])),
        ("actuals outside the band", f"{tests['breaches']} of {tests['observations']}"),
        ("breach rate (nominal 5 %)", coverage_text(tests["breach_rate"])),
        ("Kupiec proportion of failures, p-value", _scalar(tests["kupiec_pof_p_value"], "p_value")),
        ("Christoffersen independence, p-value", _scalar(tests["christoffersen_independence_p_value"], "p_value")),
    ]
    return Table([], [[Cell(label), Cell(value, "num")] for label, value in facts])


def _accuracy_tables(acc: dict[str, Any]) -> dict[str, Any]:
    tests = {k: v for k, v in acc.items() if k.startswith("diebold_mariano_")}
    ratios = {k: v for k, v in acc.items() if k.startswith("rmse_ratio_")}
    wql_ratios = {k for k in acc if k.startswith("wql_ratio_vs_")}
    shown = {"origins", "note", "breach_tests_95_live", *FORECASTERS, *tests, *ratios, *wql_ratios}
    return {
        "origins": acc["origins"],
        "note": acc.get("note"),
        "models": _distribution(acc) if acc["origins"] else None,
        "wql_ratios": _wql_ratios(acc),
        "breaches": _breach_tests(acc.get("breach_tests_95_live")),
        "tests": _mapping_table({_label(k.removeprefix("diebold_mariano_")): v for k, v in tests.items()})
        if tests
        else None,
        "ratios": _mapping_table({_label(k.removeprefix("rmse_ratio_")): v for k, v in ratios.items()})
        if ratios
        else None,
        "other": _mapping_table({k: v for k, v in acc.items() if k not in shown}),
    }


def _events(r: dict[str, Any]) -> Table:
    rows = []
    for e in r.get("events", []):
        verdict = str(e.get("verdict"))
        css = {"approved": "pass", "error": "fail"}.get(verdict, "")
        rows.append(
            [
                Cell(str(e.get("day"))),
                Cell(", ".join(e.get("fired") or []) or "manual"),
                Cell(verdict, css),
                _cell(e.get("rmse_change_pct"), "rmse_change_pct"),
                Cell(e.get("deployed") or "", "muted" if not e.get("deployed") else ""),
            ]
        )
    return Table(["day", "triggers fired", "verdict", "RMSE change", "deployed version"], rows, row_headers=False)


def _section(h: str, r: dict[str, Any]) -> dict[str, Any]:
    return {
        "horizon": h,
        "activity": _activity(r),
        "triggers": _triggers(r),
        "accuracy": _accuracy_tables(r["accuracy"]),
        "false_positives": _mapping_table(r["false_positive_detail"]) if r.get("false_positive_detail") else None,
        "latencies": _records_table(
            [{**row, "not_measurable": row.get("not_measurable") or ""} for row in r["drift_latencies"]]
        )
        if r.get("drift_latencies")
        else None,
        "errors": list(r.get("optimization_errors", [])),
        "rollback_reasons": list(r.get("rollback_reasons", [])),
        "judgements": _records_table(r["deploy_judgements"]) if r.get("deploy_judgements") else None,
        "events": _events(r),
        "other": _mapping_table({k: v for k, v in r.items() if k not in HORIZON_KEYS_SHOWN}),
    }


def render_html(report: dict[str, Any], prices: pd.DataFrame) -> str:
    """The page from ``templates/replay_report.html.j2``: headline figures per horizon first, then the
    timeline and accuracy plots, then one section of tables per horizon (every value autoescaped)."""
    images = [("timeline", figure_png_base64(timeline_figure(prices, report)))]
    if any(r["accuracy"]["origins"] for r in report["horizons"].values()):
        images.append(("accuracy", figure_png_base64(accuracy_figure(report))))
    return render(
        "replay_report.html.j2",
        report=report,
        headline=_headline(report),
        images=images,
        sections=[_section(h, r) for h, r in report["horizons"].items()],
    )
