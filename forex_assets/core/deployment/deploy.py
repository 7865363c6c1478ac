"""From an approved validation report to the configuration that is deployed (pure, no Dagster)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from forex_assets.core.deployment.config_store import ConfigStore, StaleValidationError
from forex_assets.core.deployment.history import Version
from forex_assets.core.forecasting.config import ChronosConfig, ValidationBaseline, as_config


def config_with_baseline(report: dict[str, Any]) -> ChronosConfig:
    """The candidate of a validation report (the ChronosConfig the search found, or its document in a report
    stored by an earlier version) carrying its validation baseline (what triggers and the automatic rollback
    compare against)."""
    metrics = report["metrics"]
    baseline = ValidationBaseline(
        rmse_clp=metrics["rmse_new"],
        inference_seconds=metrics["inference_time_new"],
        mape_pct=metrics["mape_new"],
        coverage_95=metrics["ci95_coverage_new"],
        skill_vs_random_walk=metrics.get("skill_vs_random_walk_new"),
        validated_on=report["validation_window"][1],
    )
    candidate = as_config(report["candidate"], f"validation report {report.get('horizon')}: candidate")
    return candidate.model_copy(update={"baseline": baseline})


def deploy_reason(report: dict[str, Any]) -> str:
    m = report["metrics"]
    return (
        f"validation passed on {report['validation_window'][0]}..{report['validation_window'][1]}: "
        f"RMSE {m['rmse_new']:.3f} vs {m['rmse_current']:.3f} CLP ({m['rmse_improvement']:+.2f} %), "
        f"MAPE change {m['mape_improvement']:+.2f} %, coverage {m['ci95_coverage_new']:.3f}, "
        f"bias {m['bias_new']:+.2f} CLP"
    )


def before_after(report: dict[str, Any]) -> dict[str, Any]:
    """The deployed (before) and candidate (after) figures of the validation window, as kept in the store."""
    m = report["metrics"]
    pairs = {
        "rmse_clp": ("rmse_current", "rmse_new"),
        "mape_pct": ("mape_current", "mape_new"),
        "coverage_95": ("ci95_coverage_current", "ci95_coverage_new"),
        "bias_clp": ("bias_current", "bias_new"),
        "inference_seconds": ("inference_time_current", "inference_time_new"),
    }
    figures = {f"{name}_before": m[before] for name, (before, _) in pairs.items()}
    figures |= {f"{name}_after": m[after] for name, (_, after) in pairs.items()}
    window = report["validation_window"]
    return figures | {"replaced_version": report.get("deployed_version"), "validation_window": window}


def before_after_frame(figures: dict[str, Any]) -> pd.DataFrame:
    """before_after() as rows: metric, before (replaced configuration), after (the deployed one)."""
    names = sorted({key.rsplit("_", 1)[0] for key in figures if key.endswith(("_before", "_after"))})
    return pd.DataFrame(
        [{"metric": n, "before": figures[f"{n}_before"], "after": figures[f"{n}_after"]} for n in names]
    )


def deploy_from_report(store: ConfigStore, report: dict[str, Any]) -> tuple[Version, Version, ChronosConfig]:
    """Deploy the report's candidate; returns (previous version, new version, deployed config).

    The candidate was validated against the report's ``deployed_version``: when the horizon's deployed
    version is another one now (a rollback or a deploy since the validation), or the report does not say,
    the deploy is refused with StaleValidationError (a ConfigStoreError) and nothing changes. Deploying a
    report whose candidate is deployed already changes nothing (previous == new)."""
    horizon = report["horizon"]
    validated_against = report.get("deployed_version")
    if not validated_against:
        raise StaleValidationError(
            f"{horizon}: deploy refused: the validation report does not say which deployed version the candidate "
            "was validated against (no deployed_version); validate the candidate again"
        )
    previous = store.current_version(horizon)
    config = config_with_baseline(report)
    version = store.deploy(
        config,
        deploy_reason(report),
        metrics=report.get("candidate_window_metrics"),
        validation=before_after(report),
        expected_version=validated_against,
    )
    return previous, version, config
