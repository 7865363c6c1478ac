"""Self-contained HTML validation report (inline CSS and base64 PNG plots; no external files)."""

from __future__ import annotations

import html
import json

import matplotlib.pyplot as plt
import numpy as np

from forex_assets.core.backtest.engine import BacktestResult
from forex_assets.core.plots import figure_png_base64
from forex_assets.core.recalibration.validation import ValidationReport


def error_by_step_figure(candidate: BacktestResult, deployed: BacktestResult):
    steps = np.arange(1, candidate.actuals.shape[1] + 1)
    fig, ax = plt.subplots(figsize=(7, 3))
    for result, name in ((candidate, "candidate"), (deployed, "deployed")):
        ax.plot(steps, np.sqrt(np.mean((result.median - result.actuals) ** 2, axis=0)), label=name)
    random_walk = np.sqrt(np.mean((candidate.last_prices[:, None] - candidate.actuals) ** 2, axis=0))
    ax.plot(steps, random_walk, "--", color="grey", label="random walk")
    ax.set_xlabel("business days ahead")
    ax.set_ylabel("RMSE (CLP)")
    ax.set_title("Validation window: RMSE by forecast step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _paths_figure(candidate: BacktestResult, deployed: BacktestResult):
    fig, ax = plt.subplots(figsize=(7, 3))
    last = -1
    dates = np.arange(1, candidate.actuals.shape[1] + 1)
    ax.plot(dates, candidate.actuals[last], color="black", label="observed")
    for result, name, colour in ((candidate, "candidate", "tab:blue"), (deployed, "deployed", "tab:orange")):
        ax.plot(dates, result.median[last], color=colour, label=f"{name} median")
        ax.fill_between(dates, result.quantiles[last, :, 0], result.quantiles[last, :, -1], color=colour, alpha=0.15)
    ax.set_xlabel(f"business days after {candidate.origin_dates[last]:%Y-%m-%d}")
    ax.set_ylabel("CLP per USD")
    ax.set_title("Latest validation origin: forecasts and 95 % intervals")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _img(fig) -> str:
    return f'<img alt="plot" src="data:image/png;base64,{figure_png_base64(fig)}">'


def render_validation_html(report: ValidationReport, candidate: BacktestResult, deployed: BacktestResult) -> str:
    verdict = "APPROVED" if report.approved else "REJECTED"
    colour = "#1a7f37" if report.approved else "#cf222e"
    criteria_rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td style='color:{'#1a7f37' if c.passed else '#cf222e'}'>"
        f"{'pass' if c.passed else 'FAIL'}</td><td>{html.escape(c.description)}</td></tr>"
        for c in report.criteria
    )
    keys = [
        "rmse_clp",
        "mae_clp",
        "mape_pct",
        "bias_clp",
        "error_std_clp",
        "coverage_95",
        "interval_width_95_clp",
        "weighted_quantile_loss",
        "mase",
        "skill_vs_random_walk",
        "seconds_per_forecast",
    ]
    metric_rows = "".join(
        f"<tr><td>{k}</td><td>{report.candidate_window[k]:.4g}</td><td>{report.deployed_window[k]:.4g}</td></tr>"
        for k in keys
    )
    dm = report.diebold_mariano
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Validation {report.horizon}: {verdict}</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
pre{{background:#f6f8fa;padding:8px;overflow:auto}}</style></head><body>
<h1>Validation report, horizon {report.horizon}: <span style="color:{colour}">{verdict}</span></h1>
<p>Search window origins {report.search_window[0]} .. {report.search_window[1]};
validation window origins {report.validation_window[0]} .. {report.validation_window[1]} (disjoint, most recent).
Deployed version <code>{html.escape(report.deployed_version)}</code>.</p>
<h2>Approval criteria</h2>
<table><tr><th>criterion</th><th>result</th><th>detail</th></tr>{criteria_rows}</table>
<h2>Metrics on the validation window</h2>
<table><tr><th>metric</th><th>candidate</th><th>deployed</th></tr>{metric_rows}</table>
<p>Diebold-Mariano (HLN-corrected, squared error over the path, candidate minus deployed):
statistic {dm.statistic:.3f}, p-value {dm.p_value:.3f}, {dm.origins} origins, {dm.lags} HAC lags.</p>
{_img(error_by_step_figure(candidate, deployed))}
{_img(_paths_figure(candidate, deployed))}
<h2>Configurations</h2>
<h3>candidate</h3><pre>{html.escape(json.dumps(report.to_dict()["candidate"], indent=2))}</pre>
<h3>deployed</h3><pre>{html.escape(json.dumps(report.to_dict()["deployed"], indent=2))}</pre>
</body></html>
"""
