"""Self-contained HTML validation report (inline CSS and base64 PNG plots; no external files), rendered from
``templates/validation_report.html.j2``."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from forex_assets.core.backtest.engine import BacktestResult
from forex_assets.core.plots import figure_png_base64
from forex_assets.core.recalibration.validation import ValidationReport
from forex_assets.core.templates import render


def error_by_step_figure(candidate: BacktestResult, deployed: BacktestResult) -> Figure:
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


def _paths_figure(candidate: BacktestResult, deployed: BacktestResult) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 3))
    last = -1
    dates = np.arange(1, candidate.actuals.shape[1] + 1)
    ax.plot(dates, candidate.actuals[last], color="black", label="observed")
    for result, name, colour in ((candidate, "candidate", "tab:blue"), (deployed, "deployed", "tab:orange")):
        ax.plot(dates, result.median[last], color=colour, label=f"{name} median")
        ax.fill_between(dates, result.quantiles[last, :, 0], result.quantiles[last, :, -1], color=colour, alpha=0.15)
    ax.set_xlabel(f"business days after {candidate.origin_dates[last]:%Y-%m-%d}")
    ax.set_ylabel("price (quote currency per base)")
    ax.set_title("Latest validation origin: forecasts and 95 % intervals")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


METRIC_KEYS = (
    "rmse_clp",
    "mae_clp",
    "mape_pct",
    "bias_clp",
    "error_std_clp",
    "coverage_95",
    "interval_width_95_clp",
    "weighted_quantile_loss",
    "interval_score_95_clp",
    "coverage_80",
    "width_95_pct",
    "mase",
    "skill_vs_random_walk",
    "seconds_per_forecast",
)


def render_validation_html(report: ValidationReport, candidate: BacktestResult, deployed: BacktestResult) -> str:
    """The page from ``templates/validation_report.html.j2`` (every value from the report autoescaped)."""
    document = report.to_dict()
    return render(
        "validation_report.html.j2",
        report=report,
        metrics=[(k, report.candidate_window[k], report.deployed_window[k]) for k in METRIC_KEYS],
        dm=report.diebold_mariano,
        images=[
            ("RMSE by forecast step", figure_png_base64(error_by_step_figure(candidate, deployed))),
            ("latest validation origin", figure_png_base64(_paths_figure(candidate, deployed))),
        ],
        configs=[(name, json.dumps(document[name], indent=2)) for name in ("candidate", "deployed")],
    )
