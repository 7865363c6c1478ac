import dagster as dg
import pandas as pd

from forex_assets.core.monitoring.triggers import BAND_TEST_KEYS
from forex_assets.core.plots import markdown_image, returns_distribution_figure
from forex_assets.core.policy import drift_check, drift_summary, performance_check
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.defs.alerting.set_aside import set_aside_reported
from forex_assets.defs.metadata import table_metadata
from forex_assets.defs.partitions import context_series, pair_horizon_partitions, series_label
from forex_assets.defs.resources import PolicyResource, WorkingArea
from forex_assets.defs.resources.alerts import AlertNotifier

EAGER = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())


@dg.asset(
    partitions_def=pair_horizon_partitions,
    group_name="monitoring",
    automation_condition=EAGER,
    description="Drift of the log returns: KS, bias-corrected PSI, volatility ratio and a Page-Hinkley "
    "streaming detector; severity NONE/LOW/MEDIUM/HIGH with the rule that decided it.",
)
def drift_report(
    context: dg.AssetExecutionContext, pair_prices: pd.DataFrame, policy: PolicyResource
) -> dg.Output[dict]:
    pair, horizon = context_series(context)
    series = series_label(pair, horizon)
    thresholds = policy.settings().drift_thresholds(horizon)
    report = drift_check(pair_prices, thresholds)
    if report is None:
        raise dg.Failure(
            description=f"drift_report {series}: {len(pair_prices)} prices are too few for a baseline window of "
            f"{thresholds.baseline_window} and a test window of {thresholds.test_window} log returns"
        )
    as_of = pair_prices["date"].iloc[-1].strftime("%Y-%m-%d")
    context.log.info(f"{series}: drift {report.severity.name} ({'; '.join(report.reasons)})")
    return dg.Output(
        report.as_dict() | {"pair": pair, "horizon": horizon, "as_of": as_of},
        metadata={
            "severity": report.severity.name,
            "severity_level": int(report.severity),
            "as_of": as_of,
            "ks_statistic": round(report.ks_statistic, 4),
            "ks_p_value": round(report.ks_p_value, 5),
            "psi_corrected": round(report.psi_corrected, 4),
            "volatility_ratio": round(report.volatility_ratio, 3),
            "fast_alarm": report.fast_alarm,
            "rule": dg.MetadataValue.md("\n".join(f"- {r}" for r in report.reasons)),
            "rules": drift_summary(report),  # what the optimization sensor quotes
            "policy": policy.label(),
            "distributions": dg.MetadataValue.md(
                markdown_image(
                    returns_distribution_figure(
                        pair_prices, thresholds.baseline_window, thresholds.test_window, horizon
                    ),
                    "returns",
                )
            ),
        },
    )


@dg.asset(
    partitions_def=pair_horizon_partitions,
    group_name="monitoring",
    deps=[dg.AssetDep("forecast")],
    automation_condition=EAGER,
    description="Accuracy of the horizon's forecasts that matured in the last "
    f"{PolicySettings().performance.window_days} days (default policy) (or, while too few have "
    "matured, of a rolling-origin backtest of the deployed configuration) and its degradation against the "
    "deployed configuration's validation baseline.",
)
def performance_report(
    context: dg.AssetExecutionContext,
    pair_prices: pd.DataFrame,
    working_area: WorkingArea,
    policy: PolicyResource,
    alerts: AlertNotifier,
) -> dg.Output[dict]:
    pair, horizon = context_series(context)
    deployed, version = working_area.deployed_config(horizon, pair)
    with set_aside_reported(context, alerts, working_area) as set_aside:  # a corrupt backtest cache
        snapshot = performance_check(
            horizon,
            pair_prices,
            working_area.forecast_history(pair),
            deployed,
            working_area.backtest_cache(),
            policy.settings(),
            version,
        )
    m = snapshot.metrics
    context.log.info(f"{series_label(pair, horizon)}: {snapshot.note}; degradation {snapshot.degradation_pct}")
    metadata = {
        "source": snapshot.source,
        "as_of": pair_prices["date"].iloc[-1].strftime("%Y-%m-%d"),
        "note": snapshot.note,
        "forecasts_scored": snapshot.forecasts,
        "config_version": version,
        "policy": policy.label(),
        "rmse_clp": round(m["rmse_clp"], 4),
        "mae_clp": round(m["mae_clp"], 4),
        "mape_pct": round(m["mape_pct"], 4),
        "bias_clp": round(m["bias_clp"], 4),
        "error_std_clp": round(m["error_std_clp"], 4),
        "coverage_95": round(m["coverage_95"], 4),
        "skill_vs_random_walk": round(m["skill_vs_random_walk"], 4),
        # the distribution: weighted quantile loss, 95 % interval score (CLP), 80 % coverage, 95 % width (%)
        "wql": round(m["weighted_quantile_loss"], 6),
        "interval_score_95_clp": round(m["interval_score_95_clp"], 4),
        "coverage_80": round(m["coverage_80"], 4),
        "width_95_pct": round(m["width_95_pct"], 4),
    }
    baseline = deployed.baseline
    comparison = pd.DataFrame(
        [
            {"metric": "RMSE (CLP)", "now": m["rmse_clp"], "baseline": baseline.rmse_clp if baseline else None},
            {"metric": "MAPE (%)", "now": m["mape_pct"], "baseline": baseline.mape_pct if baseline else None},
            {
                "metric": "95 % coverage",
                "now": m["coverage_95"],
                "baseline": baseline.coverage_95 if baseline else None,
            },
            {"metric": "weighted quantile loss", "now": m["weighted_quantile_loss"], "baseline": None},
            {"metric": "95 % interval score (CLP)", "now": m["interval_score_95_clp"], "baseline": None},
            {
                "metric": "RMSE / random walk",
                "now": m["skill_vs_random_walk"],
                "baseline": baseline.skill_vs_random_walk if baseline else None,
            },
        ]
    )
    metadata["now_vs_baseline"] = table_metadata(comparison)
    for key, value in snapshot.degradation_pct.items():  # unrounded: the trigger compares it with its threshold
        metadata[f"degradation_{key}_pct"] = float(value)
    if snapshot.random_walk_test:  # what the random_walk performance rule reads (unrounded)
        test = snapshot.random_walk_test
        metadata["random_walk_test_origins"] = test["origins"]
        metadata["random_walk_test_skill"] = float(test["skill_vs_random_walk"])
        metadata["random_walk_test_p_worse"] = float(test["p_worse_than_random_walk"])
        for key in BAND_TEST_KEYS:  # the distribution rule's band tests on the same matured forecasts
            if key in test:
                metadata[f"band_test_{key}"] = test[key]
    if not snapshot.degradation_pct:
        metadata["degradation"] = "no validation baseline yet (seed configuration)"
    metadata |= set_aside
    return dg.Output(
        snapshot.as_dict() | {"pair": pair, "horizon": horizon, "config_version": version}, metadata=metadata
    )
