"""Small matplotlib figures embedded inline (base64 PNG) in Dagster metadata and HTML reports.

Every figure an asset shows in the UI is drawn here (prices, forecast fan, drift distributions, search
leaderboard, optimization metrics); the Dagster layer only attaches them (``markdown_image``). The replay
report's figures are in ``core/replay/report_plots.py``, the validation report's in
``core/recalibration/report_html.py``. Headless: the Agg backend.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

#: Colours of the PNGs: the figures are flat plots (lines, translucent bands on white), so a 256-colour palette
#: looks the same and is about 2.5x smaller (a fan chart: 36 KB in RGBA, 13 KB in the palette). Each one is stored
#: in Dagster's event log with every materialization (twice: the step's output and the materialization), where
#: the figures were two thirds of the bytes a pair's day adds (bench/bench_pairs_daemon.py).
PNG_COLOURS = 256


class _DeployPoint(Protocol):
    """What :func:`optimization_metrics_figure` reads of a deploy (``optimization_history.DeployRecord``)."""

    @property
    def deployed_at(self) -> datetime: ...
    @property
    def rmse_before_clp(self) -> float | None: ...
    @property
    def rmse_after_clp(self) -> float | None: ...


class _HorizonCounts(Protocol):
    """What :func:`optimization_metrics_figure` reads of a horizon (``optimization_history.HorizonMetrics``)."""

    @property
    def horizon(self) -> str: ...
    @property
    def by_trigger(self) -> Mapping[str, int]: ...
    @property
    def deploys(self) -> Sequence[_DeployPoint]: ...
    @property
    def rollbacks(self) -> int: ...


def figure_png_base64(fig: Figure) -> str:
    """The figure as a base64 PNG of :data:`PNG_COLOURS` colours, 90 dpi; closes the figure."""
    rendered = io.BytesIO()
    fig.savefig(rendered, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    rendered.seek(0)
    with Image.open(rendered) as image:
        palette = image.convert("RGB").quantize(colors=PNG_COLOURS, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _concise_dates(ax: Axes) -> None:
    """Date ticks that do not run into each other (``2021``, ``Feb``, ``Mar`` ... instead of full dates)."""
    locator = mdates.AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def markdown_image(fig: Figure, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{figure_png_base64(fig)})"


def price_history_figure(
    prices: pd.DataFrame, last_n: int = 750, label: str = "USD/CLP", unit: str = "CLP per USD"
) -> Figure:
    """The pair's recent prices (``label``: the pair as people read it, ``unit``: quote per base)."""
    recent = prices.tail(last_n)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(recent["date"], recent["usdclp"], lw=1, color="tab:blue")
    ax.set_ylabel(unit)
    ax.set_title(label)
    _concise_dates(ax)
    ax.grid(alpha=0.3)
    return fig


def forecast_fan_figure(
    prices: pd.DataFrame,
    forecast: pd.DataFrame,
    horizon: str,
    last_n: int = 180,
    label: str = "USD/CLP",
    unit: str = "CLP per USD",
) -> Figure:
    """Recent prices and the forecast fan: median, 80 % and 95 % intervals (``label``, ``unit``: the pair's)."""
    recent = prices.tail(last_n)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(recent["date"], recent["usdclp"], lw=1, color="black", label="observed")
    dates = forecast["target_date"]
    ax.fill_between(dates, forecast["q0_025"], forecast["q0_975"], color="tab:blue", alpha=0.18, label="95 %")
    ax.fill_between(dates, forecast["q0_1"], forecast["q0_9"], color="tab:blue", alpha=0.30, label="80 %")
    ax.plot(dates, forecast["q0_5"], color="tab:blue", lw=1.5, label="median")
    ax.set_title(f"{label} forecast, {horizon}")
    ax.set_ylabel(unit)
    _concise_dates(ax)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def returns_distribution_figure(prices: pd.DataFrame, baseline_window: int, test_window: int, horizon: str) -> Figure:
    """Histograms of the daily log returns (%) of the drift check's baseline window and its test window (the
    last ``test_window`` returns), on the same bins."""
    returns = np.diff(np.log(prices["usdclp"].to_numpy()))[-(baseline_window + test_window) :] * 100
    baseline, test = returns[:baseline_window], returns[baseline_window:]
    fig, ax = plt.subplots(figsize=(7, 3))
    bins = np.linspace(returns.min(), returns.max(), 25).tolist()
    ax.hist(baseline, bins=bins, density=True, alpha=0.5, label=f"baseline ({baseline_window})")
    ax.hist(test, bins=bins, density=True, alpha=0.5, label=f"test ({test_window})")
    ax.set_xlabel("daily log return (%)")
    ax.set_title(f"{horizon}: baseline vs test returns")
    ax.legend(fontsize=8)
    return fig


def leaderboard_figure(board: pd.DataFrame, horizon: str) -> Figure:
    """The search's 20 best complete configurations by search-window RMSE (CLP), best at the top."""
    complete = board[board["state"] == "COMPLETE"].head(20)
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.3 * len(complete) + 1)))
    labels = [label.split("|", 1)[-1] for label in complete["label"]]
    ax.barh(labels[::-1], complete["rmse_clp"].to_numpy()[::-1], color="tab:blue")
    ax.set_xlabel("search-window RMSE (CLP)")
    ax.set_title(f"{horizon}: configurations, best at the top")
    ax.grid(alpha=0.3, axis="x")
    return fig


def optimization_metrics_figure(metrics: Sequence[_HorizonCounts], trigger_kinds: Sequence[str]) -> Figure:
    """The operator's month at a glance: RMSE (CLP) before and after each deploy per horizon (left), and
    optimizations per horizon stacked by trigger kind with deploys and rollbacks (right). ``metrics``: one
    :class:`~forex_assets.core.monitoring.optimization_history.HorizonMetrics` per horizon."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.4))
    for m in metrics:
        if m.deploys:
            at = [d.deployed_at for d in m.deploys]
            line = left.plot(at, [d.rmse_after_clp for d in m.deploys], marker="o", label=f"{m.horizon} after")[0]
            before = [d.rmse_before_clp for d in m.deploys]
            left.scatter(at, before, facecolors="none", edgecolors=line.get_color(), label=f"{m.horizon} before")
    left.set_title("RMSE before (hollow) and after each deploy")
    left.set_ylabel("CLP")
    left.grid(alpha=0.3)
    if any(m.deploys for m in metrics):
        left.legend(fontsize=7, ncol=2)
        fig.autofmt_xdate()
    else:
        left.text(0.5, 0.5, "no deploy yet", ha="center", va="center", transform=left.transAxes)
    x = np.arange(len(metrics))
    bottom = np.zeros(len(metrics))
    for kind in trigger_kinds:
        counts = np.array([m.by_trigger[kind] for m in metrics], dtype=float)
        right.bar(x, counts, bottom=bottom, label=kind)
        bottom += counts
    right.plot(x, [len(m.deploys) for m in metrics], "k^", label="deploys")
    right.plot(x, [m.rollbacks for m in metrics], "rv", label="rollbacks")
    right.set_xticks(x, [m.horizon for m in metrics])
    right.set_title("optimizations by trigger")
    right.legend(fontsize=7)
    right.grid(alpha=0.3, axis="y")
    return fig
