import json
from dataclasses import asdict, replace

import dagster as dg
import pytest

from forex_assets.core.forecasting.config import ChronosConfig
from forex_assets.core.recalibration.validation import CRITERIA_NAMES
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets.defs.partitions import pair_horizon_partitions, series_key
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.recalibration.assets import candidate_config, validation_report
from forex_assets.defs.recalibration.checks import approval_checks
from forex_assets.defs.resources import PolicyResource, WorkingArea, code_location_resources
from forex_assets_tests.conftest import policy_with
from forex_assets_tests.test_validation import GOOD

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dg.asset(partitions_def=pair_horizon_partitions, name="deploy_stand_in")
def downstream_of_validation(validation_report: dict) -> int:
    """Stands in for deployed_config: anything downstream of validation_report."""
    return 1


def _stub_report(metrics):
    @dg.asset(partitions_def=pair_horizon_partitions, name="validation_report")
    def stub() -> dict:
        return {"metrics": asdict(metrics)}

    return stub


def _run_checks(metrics, policy=None):
    stub = _stub_report(metrics)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [stub, downstream_of_validation, *approval_checks],
            partition_key=series_key("30d"),
            instance=instance,
            raise_on_error=False,
            run_config=QUIET,
            resources={"policy": policy or PolicyResource()},
        )
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        downstream = instance.get_latest_materialization_event(dg.AssetKey("deploy_stand_in"))
    return result, checks, downstream


def test_passing_report_lets_downstream_materialize():
    result, checks, downstream = _run_checks(GOOD)
    assert result.success
    assert set(checks) == set(CRITERIA_NAMES) and all(c.passed for c in checks.values())
    assert downstream is not None and downstream.dagster_event.partition == "30d|USDCLP"


@pytest.mark.parametrize(
    "change, failing",
    [
        # no median gain and no band gain (WQL 0 %): neither path approves
        (
            {"rmse_improvement": -1.0, "mape_improvement": -1.0, "wql_improvement": 0.0},
            ("accuracy_improves", "wql_improves"),
        ),
        ({"stability_score": 1.3}, "error_std_stable"),
        ({"inference_time_new": 1.2}, "inference_time_bounded"),  # 120x and 1.19 s slower
        ({"ci95_coverage_new": 0.7}, ("coverage_95_sufficient", "coverage_95_calibrated")),
        ({"bias_new": 6.5}, "bias_bounded"),
    ],
)
def test_a_failed_check_blocks_everything_downstream(change, failing):
    result, checks, downstream = _run_checks(replace(GOOD, **change))
    assert not result.success
    failing = (failing,) if isinstance(failing, str) else failing
    assert [name for name, c in checks.items() if not c.passed] == list(failing)
    assert all(checks[name].severity == dg.AssetCheckSeverity.ERROR for name in failing)
    assert downstream is None


def test_check_thresholds_come_from_the_policy_resource(tmp_path):
    lenient = policy_with(tmp_path, "lenient-bias", approval={"max_abs_bias_clp": 10.0})
    result, checks, downstream = _run_checks(replace(GOOD, bias_new=6.5), lenient)
    assert result.success and checks["bias_bounded"].passed and downstream is not None


def test_candidate_and_validation_end_to_end(tmp_path):
    working_area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    resources = code_location_resources(working_area)
    with dg.instance_for_test() as instance:
        dg.materialize([pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET)
        result = dg.materialize(
            [pair_prices, candidate_config, validation_report, *approval_checks],
            selection=[candidate_config, validation_report],
            partition_key=series_key("7d"),
            instance=instance,
            resources=resources,
            raise_on_error=False,
            run_config=QUIET,
        )
        candidate_meta = instance.get_latest_materialization_event(dg.AssetKey("candidate_config"))
        report_meta = instance.get_latest_materialization_event(dg.AssetKey("validation_report"))
    assert candidate_meta is not None and report_meta is not None  # both materialize whatever the verdict
    candidate = result.output_for_node("candidate_config")
    report = result.output_for_node("validation_report")
    assert candidate["trials_complete"] == 8 and candidate["sampler"] == "grid"
    # the validation window starts after every searched target
    assert report["validation_window"][0] > candidate["search_window"][1]
    assert set(report["metrics"]) >= {
        "rmse_improvement",
        "mape_improvement",
        "mae_improvement",
        "ci95_coverage_new",
        "ci95_coverage_current",
        "bias_new",
        "bias_current",
        "inference_time_new",
        "inference_time_current",
        "stability_score",
        "skill_vs_random_walk_new",
    }
    assert {"statistic", "p_value"} <= set(report["diebold_mariano"])
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert set(checks) == set(CRITERIA_NAMES)
    assert result.success == all(checks.values()) == report["approved"]
    html = open(report["html_report"]).read()
    assert "<img" in html and "data:image/png;base64," in html and "Approval criteria" in html
    assert json.loads(open(report["json_report"]).read())["approved"] == report["approved"]
    artifact = tmp_path / "area" / "candidates" / "candidate_7d.json"
    # one ChronosConfig from the search to the deploy; the candidate file keeps its JSON form
    assert isinstance(candidate["config"], ChronosConfig) and report["candidate"] == candidate["config"]
    assert json.loads(artifact.read_text())["config"] == candidate["config"].model_dump(mode="json", exclude_none=True)
    metadata = candidate_meta.asset_materialization.metadata
    assert len(metadata["leaderboard"].value.records) == 8


def test_a_band_only_candidate_passes_through_the_distribution_path_and_deploys_downstream():
    """Median no better (RMSE -0.1 %, p 0.4), band better (WQL -3 %, p 0.001): the decision record's path
    fails, the distribution's approves; the median path's checks do not block (passed, "not needed")."""
    from forex_assets_tests.test_validation import BAND_ONLY

    result, checks, downstream = _run_checks(BAND_ONLY)
    assert result.success and downstream is not None
    assert all(c.passed for c in checks.values())
    for name in ("accuracy_improves", "improvement_significant"):
        assert checks[name].description.startswith("not needed: approved by the distribution path; ")
        assert checks[name].metadata["criterion_passed"].value is False
        assert checks[name].metadata["approved_by"].value == "distribution"
    assert checks["wql_improves"].metadata["path"].value == "distribution"
