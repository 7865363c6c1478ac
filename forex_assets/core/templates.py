"""The Jinja2 environment that the HTML renderers share: validation reports, replay reports and alert e-mails
(pure, no Dagster).

Templates live in ``forex_assets/templates/`` (package data). Autoescape is on for every template, so any
value from data (a horizon, a reason, an error message, a source's name) is escaped; the only markup passed
in is the templates' own. Reports stay self-contained: the CSS is inline (``base.html.j2``) and plots are
base64 PNGs in ``data:`` URIs.
"""

from __future__ import annotations

import math
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined


def number(value: object, spec: str = ".2f") -> str:
    """A figure for a table cell: ``n/a`` for a missing value, floats with ``spec``, anything else as text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def percent(value: float | None, digits: int = 0) -> str:
    """A share (0.81) as a percentage (``81 %``); ``n/a`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value * 100:.{digits}f} %"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("forex_assets", "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a misspelt name fails the render instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = number
    env.filters["pct"] = percent
    return env


def render(template: str, **context: object) -> str:
    """Render ``forex_assets/templates/<template>`` with ``context`` (every value autoescaped)."""
    return environment().get_template(template).render(**context)
