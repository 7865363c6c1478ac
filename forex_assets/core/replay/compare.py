"""Policies side by side: the same replay (same days, same prices) under several policy files, and one
comparison of their reports (pure, no Dagster).

``forex-assets replay --policy A.json --policy B.json`` and ``replay_job`` (run config ``policies``) use it:

* :func:`load_policies` reads the files (``core/policy_file.py``) and refuses a bad file, a name used twice
  or a name that cannot be a directory, before anything is replayed;
* :func:`report_directories` and :func:`check_writable` make sure the output directories can be written,
  also before the first day;
* :func:`replay_policies` replays each policy in its own working area and builds its report (the report
  carries the policy's document under ``"policy"``);
* :func:`compare_reports` turns the reports into one comparison: per horizon, one row per policy, in the
  order given, with what each policy did and how accurate it was (read from each report's
  ``horizons[h]``), and the settings in which the policies differ;
* :func:`format_comparison` (a text table), :func:`render_comparison_html`
  (``templates/replay_comparison.html.j2``) and :func:`write_comparison` (``replay_comparison.json`` and
  ``.html``) show it.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from forex_assets.core.policy_file import PolicyFileError, load_policy, policy_document
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.replay.engine import PriceProvider, ReplayResult, ReplaySettings, run_replay
from forex_assets.core.replay.report import build_report
from forex_assets.core.templates import render

COMPARISON_JSON, COMPARISON_HTML = "replay_comparison.json", "replay_comparison.html"
DEFAULT_POLICY_NAME = "default"  # the name of PolicySettings() when no policy file is given
POLICY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a name is a directory of the output

# the comparison's row per policy and horizon: (key, heading in the text table, width, format)
COLUMNS = (
    ("days_replayed", "days", 6, "d"),
    ("optimizations", "optim", 7, "d"),
    ("deploys", "depl", 6, "d"),
    ("rollbacks", "rollb", 7, "d"),
    ("matured_origins", "origins", 9, "d"),
    ("rmse_live_clp", "RMSE live", 11, ".2f"),
    ("live_vs_static", "live/static", 13, ".3f"),
    ("live_vs_random_walk", "live/RW", 9, ".3f"),
    ("wql_live_vs_static", "WQL l/static", 14, ".3f"),
    ("wql_live_vs_ewma_band", "WQL l/EWMA", 12, ".3f"),
    ("coverage_95_live", "cov 95", 8, "pct1"),
    ("false_positive_rate_rmse", "FP rmse", 9, "pct"),
    ("false_positive_rate_skill", "FP skill", 10, "pct"),
    ("dm_p_vs_static", "DM p (static)", 15, ".3f"),
)


# ----------------------------------------------------------------------------- before the first day


def load_policies(paths: Iterable[Path | str]) -> dict[str, PolicySettings]:
    """name -> settings of each policy file, in the order given; a PolicyFileError naming the file and the
    key for a file that is invalid, a name that is not usable as a directory or a name used twice."""
    policies: dict[str, PolicySettings] = {}
    origin: dict[str, str] = {}
    for path in paths:
        try:
            name, settings = load_policy(path)
        except PolicyFileError:
            raise
        except OSError as error:  # a directory, a file without read permission
            raise PolicyFileError(f"{path}: cannot read the policy file: {error.strerror or error}") from None
        except (ValueError, TypeError) as error:  # a check of a settings dataclass itself
            raise PolicyFileError(f"{path}: {' '.join(str(error).split())}") from None
        where = f"{path}: key 'name' (or the file's name when it has none)"
        if not POLICY_NAME.fullmatch(name) or name in (COMPARISON_JSON, COMPARISON_HTML):
            raise PolicyFileError(
                f"{where}: {name!r} cannot name the policy's report directory; use letters, digits, '.', '_' "
                "and '-' (64 at most, starting with a letter or digit)"
            )
        if name in policies:
            raise PolicyFileError(
                f"{where}: the policy name {name!r} is also the name of {origin[name]}; policy names must be unique"
            )
        policies[name], origin[name] = settings, str(path)
    return policies


def check_writable(directory: Path | str) -> Path:
    """Create ``directory`` (and its parents) and write and remove a probe file in it, so that a replay
    does not find out at its end that it cannot write its report. Raises OSError naming the directory."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-probe-"):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise OSError(error.errno, f"cannot write the report to {directory}: {reason}") from None
    return directory


def report_directories(out: Path | str, names: Iterable[str]) -> dict[str, Path]:
    """Where each policy's report goes: ``out`` itself for a single policy (as without policy files),
    ``out/<name>`` for each of several (the comparison goes to ``out``). Every directory is created and
    checked with :func:`check_writable` (an OSError naming it otherwise)."""
    out, names = Path(out), list(names)
    directories = {name: out / name if len(names) > 1 else out for name in names}
    for directory in dict.fromkeys([out, *directories.values()]):
        check_writable(directory)
    return directories


# ----------------------------------------------------------------------------- one replay per policy


@dataclass
class PolicyReplay:
    name: str
    settings: ReplaySettings
    result: ReplayResult
    report: dict[str, Any]
    prices: pd.DataFrame  # the prices known on the last replayed day (the report's figures use no later one)


def replay_policy(
    provider: PriceProvider,
    settings: ReplaySettings,
    name: str,
    workdir: Path,
    progress: Callable[[int, int, pd.Timestamp], None] | None = None,
) -> PolicyReplay:
    """Replay ``settings`` (whose ``policy`` is the policy called ``name``) in ``workdir`` and build its
    report. Raises what :func:`run_replay` raises (ReplayError before the first day)."""
    result = run_replay(provider, settings, workdir, progress)
    known = provider.visible(result.days[-1]) if result.days else provider.prices.iloc[:0]
    report = build_report(result, known, settings.policy.triggers)
    report["policy"] = policy_document(name, settings.policy)
    return PolicyReplay(name, settings, result, report, known)


def replay_policies(
    provider: PriceProvider,
    settings: ReplaySettings,
    policies: Mapping[str, PolicySettings],
    progress: Callable[[str], Callable[[int, int, pd.Timestamp], None] | None] | None = None,
    state_dirs: Mapping[str, Path] | None = None,
) -> dict[str, PolicyReplay]:
    """Each policy replayed on the same days and prices (``settings`` with its policy), one after the
    other, each in its own working area: ``state_dirs[name]`` (kept), or a temporary directory removed once
    the policy's report is built. ``progress(name)``: the progress callback of that policy's replay."""
    replays = {}
    for name, policy in policies.items():
        step = progress(name) if progress is not None else None
        policy_settings = replace(settings, policy=policy)
        if state_dirs is not None:
            replays[name] = replay_policy(provider, policy_settings, name, Path(state_dirs[name]), step)
        else:
            with tempfile.TemporaryDirectory(prefix="forex_replay_") as state:
                replays[name] = replay_policy(provider, policy_settings, name, Path(state), step)
    return replays


# ----------------------------------------------------------------------------- the comparison


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def comparison_row(policy: str, report: dict[str, Any], horizon: str) -> dict[str, Any]:
    """One policy's row for one horizon, read from ``report["horizons"][horizon]``."""
    r = report["horizons"][horizon]
    accuracy = r["accuracy"]
    matured = accuracy.get("origins", 0)

    def rmse(model: str) -> float | None:
        return (accuracy.get(model) or {}).get("rmse_clp") if matured else None

    def wql(model: str) -> float | None:
        return (accuracy.get(model) or {}).get("wql") if matured else None

    live, static, walk = rmse("live"), rmse("static"), rmse("random_walk")
    return {
        "policy": policy,
        "days_replayed": report["days_replayed"],
        "partial": report["partial"],
        "optimizations": r["optimizations"],
        "approvals": r["approvals"],
        "deploys": r["deploys"],
        "rollbacks": r["rollbacks"],
        "matured_origins": matured,
        "rmse_live_clp": live,
        "rmse_static_clp": static,
        "rmse_random_walk_clp": walk,
        "live_vs_static": _ratio(live, static),  # RMSE ratio: below 1, the live policy forecast better
        "live_vs_random_walk": _ratio(live, walk),
        # WQL ratios (the whole distribution): below 1, the live forecasts' quantiles scored better
        "wql_live_vs_static": _ratio(wql("live"), wql("static")),
        "wql_live_vs_ewma_band": _ratio(wql("live"), wql("ewma_band")),
        "coverage_95_live": (accuracy.get("live") or {}).get("coverage_95") if matured else None,
        "false_positive_rate_rmse": r["false_positive_rate_rmse"],
        "false_positive_rate_skill": r["false_positive_rate_skill"],
        "dm_p_vs_static": (accuracy.get("diebold_mariano_vs_static") or {}).get("p_value"),
    }


def _flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in document.items():
        if isinstance(value, Mapping) and value:
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def settings_differences(documents: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, object]]:
    """``section.field`` -> {policy: value} for every setting whose value is not the same in every policy
    document (``None``: the document does not set it, e.g. ``levers`` left to the search-space files)."""
    flat = {name: _flatten({k: v for k, v in doc.items() if k != "name"}) for name, doc in documents.items()}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    differences = {}
    for key in keys:
        values = {name: f.get(key) for name, f in flat.items()}
        if len({json.dumps(v, sort_keys=True, default=str) for v in values.values()}) > 1:
            differences[key] = values
    return differences


def compare_reports(named_reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The comparison of replay reports of the same range and source, one per policy (name -> report, in
    the order to show): per horizon, one row per policy (:func:`comparison_row`); each policy's days and
    whether its report is partial; and the settings in which the policies differ (from each report's
    ``"policy"`` document, when the reports carry one). A ValueError when the reports are not of the same
    range and source (their figures would not be comparable)."""
    if not named_reports:
        raise ValueError("no report to compare")
    names = list(named_reports)
    first = named_reports[names[0]]
    for name, report in named_reports.items():
        for key in ("source", "range"):
            if report[key] != first[key]:
                raise ValueError(
                    f"the reports are not of the same replay: {key} {report[key]!r} ({name}) vs {first[key]!r} "
                    f"({names[0]})"
                )
    horizons = list(dict.fromkeys(h for report in named_reports.values() for h in report["horizons"]))
    documents = {name: report["policy"] for name, report in named_reports.items() if "policy" in report}
    return {
        "source": first["source"],
        "range": list(first["range"]),
        "days_planned": first["days_planned"],
        "injected_drifts": list(first.get("injected_drifts", [])),
        "policies": names,
        "days_replayed": {name: report["days_replayed"] for name, report in named_reports.items()},
        "same_days": len({report["days_replayed"] for report in named_reports.values()}) == 1,
        "partial": {name: report["partial_reason"] for name, report in named_reports.items() if report["partial"]},
        "settings": documents,
        "differences": settings_differences(documents) if len(documents) > 1 else {},
        "horizons": {
            h: [comparison_row(name, report, h) for name, report in named_reports.items() if h in report["horizons"]]
            for h in horizons
        },
    }


def _text(value: float | None, spec: str) -> str:
    if value is None:
        return "n/a"
    if spec == "pct":
        return f"{value * 100:.0f} %"
    if spec == "pct1":
        return f"{value * 100:.1f} %"
    return format(value, spec)


def _setting(value: object) -> str:
    if value is None:
        return "(not set)"
    return json.dumps(value) if isinstance(value, list | dict | bool) else str(value)


def format_comparison(comparison: dict[str, Any]) -> str:
    """The comparison as text: per horizon, one row per policy."""
    lines = []
    if comparison["partial"]:
        lines += [f"PARTIAL REPORT ({name}): {reason}" for name, reason in comparison["partial"].items()]
        lines += ["The figures of a partial report cover its replayed days only.", ""]
    lines.append(
        f"{len(comparison['policies'])} policies replayed on {comparison['source']}, "
        f"{comparison['range'][0]}..{comparison['range'][1]} ({comparison['days_planned']} business days)"
    )
    width = max([6, *(len(name) + 2 for name in comparison["policies"])])
    header = f"{'policy':<{width}}" + "".join(f"{title:>{w}}" for _, title, w, _ in COLUMNS)
    for horizon, rows in comparison["horizons"].items():
        lines += ["", horizon, header, "-" * len(header)]
        for row in rows:
            lines.append(f"{row['policy']:<{width}}" + "".join(f"{_text(row[k], s):>{w}}" for k, _, w, s in COLUMNS))
    lines += [
        "",
        "live/static, live/RW: RMSE of the live forecasts over the static initial configuration's and the random "
        "walk's on the same matured origins (below 1: better); WQL l/static, WQL l/EWMA: the live forecasts' "
        "weighted quantile loss over the static configuration's and the RiskMetrics EWMA band's; FP: "
        "false-positive rate of the optimizations; DM p: Diebold-Mariano, live vs static.",
    ]
    if comparison["differences"]:
        lines += ["", "settings that differ:"]
        key_width = max(len(k) for k in comparison["differences"]) + 2
        for key, values in comparison["differences"].items():
            shown = ", ".join(f"{name} {_setting(v)}" for name, v in values.items())
            lines.append(f"  {key:<{key_width}}{shown}")
    return "\n".join(lines)


def render_comparison_html(comparison: dict[str, Any], reports: Mapping[str, str] | None = None) -> str:
    """The page from ``templates/replay_comparison.html.j2`` (every value autoescaped); ``reports``: policy
    name -> a link to its own report (relative to the page)."""
    return render(
        "replay_comparison.html.j2",
        comparison=comparison,
        columns=[(key, title, spec) for key, title, _, spec in COLUMNS],
        reports=dict(reports or {}),
        setting=_setting,
    )


def write_comparison(
    comparison: dict[str, Any], directory: Path, reports: Mapping[str, str] | None = None
) -> tuple[Path, Path]:
    """``replay_comparison.json`` and ``.html`` in ``directory``."""
    from forex_assets.core.files import write_text_atomically

    directory.mkdir(parents=True, exist_ok=True)
    json_path, html_path = directory / COMPARISON_JSON, directory / COMPARISON_HTML
    write_text_atomically(json_path, json.dumps(comparison, indent=2, default=str) + "\n")
    write_text_atomically(html_path, render_comparison_html(comparison, reports))
    return json_path, html_path
