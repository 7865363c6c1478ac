"""Small matplotlib figures embedded inline (base64 PNG) in Dagster metadata and HTML reports."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def figure_png_base64(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def markdown_image(fig, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{figure_png_base64(fig)})"


def price_history_figure(prices: pd.DataFrame, last_n: int = 750, title: str = "USD/CLP"):
    recent = prices.tail(last_n)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(recent["date"], recent["usdclp"], lw=1, color="tab:blue")
    ax.set_ylabel("CLP per USD")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig


def forecast_fan_figure(prices: pd.DataFrame, forecast: pd.DataFrame, horizon: str, last_n: int = 180):
    """Recent prices and the forecast fan: median, 80 % and 95 % intervals."""
    recent = prices.tail(last_n)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(recent["date"], recent["usdclp"], lw=1, color="black", label="observed")
    dates = forecast["target_date"]
    ax.fill_between(dates, forecast["q0_025"], forecast["q0_975"], color="tab:blue", alpha=0.18, label="95 %")
    ax.fill_between(dates, forecast["q0_1"], forecast["q0_9"], color="tab:blue", alpha=0.30, label="80 %")
    ax.plot(dates, forecast["q0_5"], color="tab:blue", lw=1.5, label="median")
    ax.set_title(f"USD/CLP forecast, {horizon}")
    ax.set_ylabel("CLP per USD")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig
