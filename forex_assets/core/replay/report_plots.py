"""The replay report's figures (matplotlib): the timeline of prices, optimizations and rollbacks per horizon,
and the accuracy of the live policy against the static configuration and the random walk. Drawn from the
report dict; :mod:`forex_assets.core.replay.report_html` embeds them in the page (pure, no Dagster).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

import forex_assets.core.plots  # noqa: F401 - the headless (Agg) backend, before any figure is drawn
from forex_assets.core.calendar import DateScalar
from forex_assets.core.working_area import pair_label, pair_unit

EVENT_KINDS = ("approved", "rejected", "error", "rollback")
EVENT_STYLE = {  # marker, colour
    "approved": ("^", "tab:green"),
    "rejected": ("x", "tab:orange"),
    "error": ("s", "tab:red"),
    "rollback": ("v", "tab:purple"),
}
DRIFT_COLOUR = "tab:blue"
MARKERS_UP_TO_DAYS = 200  # a range up to this many calendar days shows one marker per event ...
MONTHS_UP_TO_DAYS = 3 * 366  # ... up to this many, events counted per month; beyond, per quarter


def timeline_frequency(start: DateScalar, end: DateScalar) -> str | None:
    """How the timeline shows a range: ``None`` one marker per event (short ranges), ``"M"`` or ``"Q"``
    events counted per month or per quarter (long ranges, where markers would merge into one band)."""
    span = (pd.Timestamp(end) - pd.Timestamp(start)).days
    if span <= MARKERS_UP_TO_DAYS:
        return None
    return "M" if span <= MONTHS_UP_TO_DAYS else "Q"


def timeline_events(horizon: dict[str, Any]) -> pd.DataFrame:
    """One horizon's events (columns day, kind): each optimization under its verdict, each rollback."""
    rows = [(pd.Timestamp(e["day"]), str(e["verdict"])) for e in horizon.get("events", [])]
    for reason in horizon.get("rollback_reasons", []):  # "YYYY-MM-DD: reason"
        day = pd.to_datetime(str(reason).split(":", 1)[0], errors="coerce")
        if not pd.isna(day):
            rows.append((day, "rollback"))
    return pd.DataFrame(rows, columns=["day", "kind"])


def event_counts(events: pd.DataFrame, start: DateScalar, end: DateScalar, freq: str) -> pd.DataFrame:
    """Events per period of ``freq`` over start..end: one row per period (indexed by its first day, empty
    periods included), one column per kind."""
    periods = pd.period_range(pd.Timestamp(start), pd.Timestamp(end), freq=freq)
    kinds = list(EVENT_KINDS) + sorted(set(events["kind"]) - set(EVENT_KINDS))
    period = events["day"].dt.to_period(freq) if not events.empty else pd.Series(dtype=f"period[{freq}]")
    counts = (
        pd.crosstab(period, events["kind"]).reindex(index=periods, columns=kinds, fill_value=0)
        if not events.empty
        else pd.DataFrame(0, index=periods, columns=kinds)
    )
    counts.index = periods.start_time
    return counts.astype(int)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _style(kind: str) -> tuple[str, str]:
    return EVENT_STYLE.get(kind, ("o", "tab:grey"))


def _event_markers(ax: Axes, events: pd.DataFrame) -> None:
    kinds = list(EVENT_KINDS) + sorted(set(events["kind"]) - set(EVENT_KINDS))
    for lane, kind in enumerate(kinds):
        days = events.loc[events["kind"] == kind, "day"]
        if len(days):
            marker, colour = _style(kind)
            ax.scatter(days, [lane] * len(days), marker=marker, color=colour, s=28, zorder=3)
    ax.set_yticks(range(len(kinds)), kinds, fontsize=7)
    ax.set_ylim(len(kinds) - 0.4, -0.6)


def _event_bars(ax: Axes, counts: pd.DataFrame, freq: str) -> None:
    """Optimizations per period stacked above the line by verdict, rollbacks below it."""
    width = 0.8 * (25 if freq == "M" else 80)  # days
    bottom = np.zeros(len(counts))
    for kind in counts.columns:
        if kind == "rollback" or not counts[kind].any():
            continue
        ax.bar(counts.index, counts[kind], width=width, bottom=bottom, align="edge", color=_style(kind)[1])
        bottom += counts[kind].to_numpy()
    if "rollback" in counts and counts["rollback"].any():
        ax.bar(counts.index, -counts["rollback"], width=width, align="edge", color=_style("rollback")[1])
    ax.axhline(0, color="black", lw=0.6)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):g}"))
    ax.set_ylabel("per month" if freq == "M" else "per quarter", fontsize=8)


def timeline_figure(prices: pd.DataFrame, report: dict[str, Any]) -> Figure:
    """The prices over the replay on top, then one small panel per horizon with its optimizations (by
    verdict) and rollbacks: one marker per event on a short range, counts per month or quarter on a long
    one (:func:`timeline_frequency`). Axes: the price panel first, then the horizons in report order."""
    start, end = (pd.Timestamp(d) for d in report["range"])
    freq = timeline_frequency(start, end)
    horizons = list(report["horizons"])
    heights = [1.7] + [1.0] * len(horizons)
    fig, grid = plt.subplots(
        len(heights),
        1,
        figsize=(10, 0.4 + 1.15 * sum(heights)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    axes: list[Axes] = list(grid[:, 0])
    first = start - pd.offsets.BDay(60) if freq is None else start
    shown = prices[(prices["date"] >= first) & (prices["date"] <= end)]
    axes[0].plot(shown["date"], shown["usdclp"], lw=1, color="black")
    pair = str(report.get("pair") or "USDCLP")
    axes[0].set_ylabel(pair_unit(pair), fontsize=8)
    title = f"{pair_label(pair)} over the replay"
    if freq is None:
        axes[0].axvline(start, color="grey", lw=0.8)
        title += " (grey line: first replay day); below, each horizon's optimizations by verdict and rollbacks"
    else:
        period = "month" if freq == "M" else "quarter"
        title += f"; below, per horizon and {period}: optimizations by verdict above the line, rollbacks below"
    axes[0].set_title(title, fontsize=9, loc="left")
    for ax, h in zip(axes[1:], horizons, strict=True):
        events = timeline_events(report["horizons"][h])
        n = events["kind"].value_counts()
        optimizations = int(n.drop("rollback", errors="ignore").sum())
        ax.set_title(
            f"{h}: {_count(optimizations, 'optimization')} ({n.get('approved', 0)} approved, "
            f"{n.get('rejected', 0)} rejected, {_count(n.get('error', 0), 'error')}), "
            f"{_count(n.get('rollback', 0), 'rollback')}",
            fontsize=9,
            loc="left",
        )
        if freq is None:
            _event_markers(ax, events)
        else:
            _event_bars(ax, event_counts(events, start, end, freq), freq)
    for ax in axes:
        for onset in report["injected_drifts"]:
            ax.axvline(pd.Timestamp(onset), color=DRIFT_COLOUR, ls="--", lw=1)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[-1].set_xlim(first - pd.Timedelta(days=2), end + pd.Timedelta(days=2 if freq is None else 20))
    handles: list[Artist]
    if freq is None:
        handles = [Line2D([], [], marker=_style(k)[0], color=_style(k)[1], ls="", label=k) for k in EVENT_KINDS]
    else:
        handles = [Patch(color=_style(k)[1], label=k) for k in EVENT_KINDS]
    handles.append(Line2D([], [], color=DRIFT_COLOUR, ls="--", lw=1, label="injected drift"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.035, 1, 1))
    return fig


def accuracy_figure(report: dict[str, Any]) -> Figure:
    horizons = [h for h, r in report["horizons"].items() if r["accuracy"]["origins"]]
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(horizons))
    for i, (key, label) in enumerate(
        (("live", "live policy"), ("static", "static initial"), ("random_walk", "random walk"))
    ):
        values = [report["horizons"][h]["accuracy"][key]["rmse_clp"] for h in horizons]
        ax.bar(x + (i - 1) * 0.27, values, width=0.27, label=label)
    ax.set_xticks(x, horizons)
    ax.set_ylabel("RMSE (CLP)")
    ax.set_title("forecast RMSE over the replay (matured origins)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig
