"""The replay's report against ADR-001's success metrics, in three forms: the report dict (JSON), a text
table and a self-contained HTML page. This module composes them; each has its own module:

* :mod:`~forex_assets.core.replay.report_stats`: the figures, computed from the replay (``build_report``;
  its docstring defines each figure);
* :mod:`~forex_assets.core.replay.report_text`: the text table (``format_table``);
* :mod:`~forex_assets.core.replay.report_html` and :mod:`~forex_assets.core.replay.report_plots`: the HTML
  page (``render_html``) and its figures.

Pure, no Dagster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from forex_assets.core.replay.report_html import render_html
from forex_assets.core.replay.report_stats import build_report
from forex_assets.core.replay.report_text import format_table

__all__ = ["build_report", "format_table", "render_html", "write_report"]


def write_report(report: dict[str, Any], prices: pd.DataFrame, directory: Path) -> tuple[Path, Path]:
    from forex_assets.core.files import write_text_atomically

    directory.mkdir(parents=True, exist_ok=True)
    json_path, html_path = directory / "replay_report.json", directory / "replay_report.html"
    write_text_atomically(json_path, json.dumps(report, indent=2, default=str) + "\n")
    write_text_atomically(html_path, render_html(report, prices))
    return json_path, html_path
