"""Several pairs replayed on the same range: one row per pair and horizon of the figures the distribution
issue judges a policy by (pure, no Dagster): optimizations, deploys, rollbacks, live WQL over the RiskMetrics
EWMA band's and over the static seed's (with their block-bootstrap intervals), live RMSE over the random
walk's, and the live 95 % coverage with its interval. Each figure is read from the pair's own replay report
(:func:`forex_assets.core.replay.report.build_report`), never recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _ratio(block: Mapping[str, Any] | None) -> dict[str, Any]:
    block = block or {}
    return {k: block.get(k) for k in ("ratio", "ci_low", "ci_high")}


def pairs_summary(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``{"pairs": {pair: {horizon: figures}}}`` from each pair's replay report, in the order given."""
    out: dict[str, Any] = {}
    for pair, report in reports.items():
        rows = {}
        for horizon, r in report["horizons"].items():
            accuracy = r.get("accuracy", {})
            coverage = accuracy.get("coverage_95_live_interval") or {}
            rows[horizon] = {
                "days_replayed": report["days_replayed"],
                "origins_scored": accuracy.get("origins", 0),
                "optimizations": r.get("optimizations", 0),
                "deploys": r.get("deploys", 0),
                "rollbacks": r.get("rollbacks", 0),
                "wql_live_vs_ewma_band": _ratio(accuracy.get("wql_ratio_vs_ewma_band")),
                "wql_live_vs_static": _ratio(accuracy.get("wql_ratio_vs_static")),
                "rmse_live_vs_random_walk": _ratio(accuracy.get("rmse_ratio_vs_random_walk")),
                "coverage_95": {
                    "coverage": coverage.get("coverage"),
                    "ci_low": coverage.get("ci_low"),
                    "ci_high": coverage.get("ci_high"),
                },
            }
        out[pair] = {"source": report["source"], "calendar": report.get("calendar"), "horizons": rows}
    return {"pairs": out}


def _figure(block: Mapping[str, Any], key: str = "ratio") -> str:
    value = block.get(key)
    if value is None:
        return "n/a"
    if block.get("ci_low") is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{block['ci_low']:.3f}, {block['ci_high']:.3f}]"


def format_pairs_summary(summary: Mapping[str, Any]) -> str:
    """The summary as a text table, one line per pair and horizon."""
    header = (
        f"{'pair':<8}{'h':<5}{'origins':>8}{'optim':>6}{'depl':>5}{'rollb':>6}  {'WQL live/EWMA band [95 % CI]':<28}"
        f"  {'WQL live/static':<15}  {'RMSE live/RW':<12}  coverage 95 [95 % CI]"
    )
    lines = [header, "-" * len(header)]
    for pair, block in summary["pairs"].items():
        for horizon, row in block["horizons"].items():
            lines.append(
                f"{pair:<8}{horizon:<5}{row['origins_scored']:>8}{row['optimizations']:>6}{row['deploys']:>5}"
                f"{row['rollbacks']:>6}  {_figure(row['wql_live_vs_ewma_band']):<28}"
                f"  {_figure({'ratio': row['wql_live_vs_static']['ratio']}):<15}"
                f"  {_figure({'ratio': row['rmse_live_vs_random_walk']['ratio']}):<12}"
                f"  {_figure(row['coverage_95'], 'coverage')}"
            )
    return "\n".join(lines)
