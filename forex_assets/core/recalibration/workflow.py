"""Search and validation of one horizon, end to end, without Dagster (the assets call these)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from forex_assets.core.backtest.cache import ForecastCache
from forex_assets.core.backtest.engine import BacktestResult, run_backtest
from forex_assets.core.backtest.windows import PriceSeries, split_windows
from forex_assets.core.files import write_text_atomically
from forex_assets.core.forecasting.baselines import baseline_quantiles
from forex_assets.core.forecasting.config import ChronosConfig, as_config
from forex_assets.core.horizons import horizon_steps
from forex_assets.core.models.loading import checkpoint_identity, load_pipeline
from forex_assets.core.recalibration.levers import LeverSettings, fit_levers
from forex_assets.core.recalibration.report_html import render_validation_html
from forex_assets.core.recalibration.search import SearchOutcome, run_search
from forex_assets.core.recalibration.search_space import SearchSpace
from forex_assets.core.recalibration.validation import (
    ApprovalThresholds,
    ValidationReport,
    build_report,
    single_forecast_seconds,
)


def find_candidate(
    space: SearchSpace,
    prices: pd.DataFrame,
    cache: ForecastCache,
    storage_dir: Path,
    progress: Callable[[str], None] = print,
    levers: LeverSettings | None = None,
    prior: ChronosConfig | None = None,
    database_url: str | None = None,
) -> SearchOutcome:
    """The best configuration of ``space`` on the search window, with its FX levers fitted there (``levers``,
    or the search-space file's ``fit_shrinkage`` / ``fit_interval_scale`` when None), shrunk towards the
    levers of ``prior`` (the horizon's seed configuration, calibrated on random walks) when given.
    ``storage_dir``: the Optuna study directory (one journal per study); ``database_url``: the state database,
    which holds the studies instead (``storage_dir`` unused; None: the journals)."""
    series = PriceSeries.from_frame(prices)
    windows = split_windows(
        len(series.values),
        horizon_steps(space.horizon),
        space.search_origins,
        space.validation_origins,
        space.origin_spacing,
    )
    checkpoint_ids = {c.checkpoint: checkpoint_identity(c.checkpoint) for c in space.checkpoints}
    outcome = run_search(
        space, series, windows.search, load_pipeline, checkpoint_ids, cache, storage_dir, progress, database_url
    )
    if levers is None:
        levers = LeverSettings(
            fit_shrinkage=space.fit_shrinkage,
            fit_interval_scale=space.fit_interval_scale,
            fit_band_blend=space.fit_band_blend,
        )
    blends = levers.fit_band_blend or (prior is not None and prior.blend_weight > 0)
    if not (levers.fit_shrinkage or levers.fit_interval_scale or blends):
        return outcome
    best = outcome.best
    raw = run_backtest(
        load_pipeline(best.checkpoint),
        best,
        series,
        windows.search,
        horizon_steps(space.horizon),
        cache,
        checkpoint_ids[best.checkpoint],
    )  # read back from the forecast cache: the search backtested this configuration on these origins
    if blends:
        baseline = levers.band_blend_with if levers.fit_band_blend else (prior.blend_baseline if prior else "")
        band = baseline_quantiles(baseline, series.values, windows.search, horizon_steps(space.horizon), raw.levels)
        raw = replace(raw, baseline_band=band)
    fitted = fit_levers(raw, levers, prior)
    blend = (
        f", band blend {fitted.config.blend_weight:g} with {fitted.config.blend_baseline}"
        if fitted.config.blend_weight
        else ""
    )
    progress(
        f"{space.horizon}: levers fitted on the search window: shrinkage {fitted.config.shrinkage:g}, "
        f"interval scale {fitted.config.interval_scale:g}{blend}"
    )
    return replace(outcome, best=fitted.config, best_metrics=fitted.metrics().as_dict())


def candidate_document(outcome: SearchOutcome, space: SearchSpace) -> dict[str, Any]:
    """What candidate_config stores: the best configuration (the ChronosConfig itself, handed on as it is to
    the validation and the store), how it was found, and the windows. :func:`candidate_json` writes it."""
    return {
        "horizon": outcome.horizon,
        "config": outcome.best,
        "search_metrics": outcome.best_metrics,
        "search_window": list(outcome.search_origin_dates),
        "search_origins": space.search_origins,
        "validation_origins": space.validation_origins,
        "origin_spacing": space.origin_spacing,
        "study": outcome.study_name,
        "sampler": outcome.sampler,
        "trials_complete": outcome.trials_complete,
        "trials_failed": outcome.trials_failed,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def candidate_json(document: dict[str, Any], leaderboard: pd.DataFrame) -> str:
    """The candidate file (``candidates/candidate_<horizon>.json``): the document, its configuration as the
    configuration files write it (JSON fields, no nulls), then the leaderboard."""
    config = as_config(document["config"], "candidate_config")
    written = document | {"config": config.model_dump(mode="json", exclude_none=True)}
    return json.dumps(written | {"leaderboard": leaderboard.to_dict("records")}, indent=2, default=str) + "\n"


class WindowOverlapError(ValueError):
    """The validation window would score prices the candidate's search already saw."""


def check_disjoint(series: PriceSeries, search_end: str, first_validation_origin: int, steps: int) -> None:
    """The candidate's search targets must all lie at or before the first validation origin.

    When prices have moved on since the search, the validation window moves later too and stays
    out-of-sample; when they have not (or went back), this refuses to validate.
    """
    dates = [series.date_text(i) for i in range(len(series.dates))]
    if search_end not in dates:
        raise WindowOverlapError(f"the candidate's search window ends on {search_end}, a date not in the prices")
    gap = first_validation_origin - dates.index(search_end)
    if gap < steps:
        raise WindowOverlapError(
            f"validation would start {gap} business days after the search window's last origin {search_end}; "
            f"at least {steps} are needed so that no searched target is validated on"
        )


@dataclass
class ValidationRun:
    report: ValidationReport
    json_path: Path
    html_path: Path | None  # None when the HTML report was not asked for
    candidate: BacktestResult
    deployed: BacktestResult


def validate_candidate(
    candidate_doc: dict[str, Any],
    deployed: ChronosConfig,
    deployed_version: str,
    prices: pd.DataFrame,
    cache: ForecastCache,
    reports_dir: Path,
    thresholds: ApprovalThresholds,
    render_html: bool = True,
) -> ValidationRun:
    """Backtest candidate and deployed on the validation window and write the JSON report, and the HTML
    report (with its two plots) when ``render_html``: the JSON is what deploys and metrics read; the HTML is
    for a person, so a replay that nobody reads report by report skips its rendering."""
    horizon = candidate_doc["horizon"]
    steps = horizon_steps(horizon)
    candidate = as_config(candidate_doc["config"], f"candidate_config {horizon}")
    series = PriceSeries.from_frame(prices)
    windows = split_windows(
        len(series.values),
        steps,
        candidate_doc["search_origins"],
        candidate_doc["validation_origins"],
        candidate_doc.get("origin_spacing", 1),  # candidates written before spacing existed: consecutive
    )
    check_disjoint(series, candidate_doc["search_window"][1], int(windows.validation[0]), steps)
    results = []
    for config in (candidate, deployed):
        results.append(
            run_backtest(
                load_pipeline(config.checkpoint),
                config,
                series,
                windows.validation,
                steps,
                cache,
                checkpoint_identity(config.checkpoint),
            )
        )
    seconds_new, seconds_current = single_forecast_seconds(load_pipeline, [candidate, deployed], series.values, steps)
    # the RiskMetrics band on the same origins: the report scores the two configurations beside it
    ewma_band = baseline_quantiles("ewma_band", series.values, windows.validation, steps, results[0].levels)
    report = build_report(
        horizon,
        results[0],
        results[1],
        deployed_version,
        tuple(candidate_doc["search_window"]),
        seconds_new,
        seconds_current,
        thresholds,
        overlap=windows.overlap,
        baseline_band=ewma_band,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = reports_dir / f"validation_{horizon}_{stamp}.json"
    write_text_atomically(json_path, json.dumps(report.to_dict(), indent=2, default=float) + "\n")
    html_path = None
    if render_html:
        html_path = reports_dir / f"validation_{horizon}_{stamp}.html"
        write_text_atomically(html_path, render_validation_html(report, results[0], results[1]))
    return ValidationRun(report, json_path, html_path, results[0], results[1])


def report_value(run: ValidationRun) -> dict[str, Any]:
    """What validation_report hands to the deploy: the report's figures (JSON values, as its file has them),
    its candidate the ChronosConfig itself (no dump and validation again between the search and the store),
    and where its JSON and HTML reports were written."""
    html = str(run.html_path) if run.html_path is not None else None
    return run.report.to_dict() | {
        "candidate": run.report.candidate,
        "html_report": html,
        "json_report": str(run.json_path),
    }
