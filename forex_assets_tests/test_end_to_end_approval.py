"""Search -> validation -> deploy through the real ``optimization_job`` under the DEFAULT approval policy.

Everything is the production path: the ``optimization_job`` of the code location (``candidate_config`` ->
``validation_report`` with its six blocking asset checks -> ``deployed_config``), the default
policy (``policies/default.json``, nothing loosened), a SQLite-backed test instance, a git config store seeded from
``configs/`` in a temporary working area, the bundled Chronos-2 checkpoint, prices read through the ``csv``
price source and its data contract. Only the price series is made up (``approval_series.py``).

One run deploys: on a series with a deterministic cycle the search's candidate is genuinely better than the
seed (whose ``shrinkage`` 1 makes its median the last price, the random walk). One run does not: on a
random walk no candidate is better, and the blocking checks stop the deploy.

Torch runs on one thread while these tests run (restored afterwards). ``inference_time_bounded`` times
single forecasts of candidate and deployed configuration; with torch's default two intra-op threads on a
shared two-core machine, the median of five forecasts of two configurations of equal cost ranged from 16 to
600 ms, and 3 of 30 such comparisons failed the check (> 1.5x and > 50 ms slower) by load alone. On one
thread the same comparisons took 7-19 ms, none failed. (Measured under the 50 ms floor; the floor is 1 s since,
the rollback rule's, after load alone flipped a verdict in the policy bench.) The thresholds are the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pytest
import torch

from forex_assets.core.deployment.history import Version
from forex_assets.core.forecasting.config import ChronosConfig, config_path, load_config
from forex_assets.core.recalibration.validation import CRITERIA_NAMES, ApprovalThresholds
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets.defs.deployment.approval import failed_approval_checks
from forex_assets.defs.graph import ASSETS
from forex_assets.defs.partitions import series_key
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.recalibration.checks import approval_checks
from forex_assets.defs.recalibration.jobs import optimization_job
from forex_assets.defs.resources import PriceSource, WorkingArea, code_location_resources
from forex_assets_tests.approval_series import cycle_prices, write_prices_csv
from forex_assets_tests.conftest import random_walk_prices

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
HORIZON = "7d"
DEFAULTS = ApprovalThresholds()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """See the module docstring: forecast timings on a loaded two-core machine are noise with two threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@dataclass
class Optimization:
    result: dg.ExecuteInProcessResult
    seed_version: Version
    version_after: Version
    deployed_after: ChronosConfig
    checks: dict[str, dg.AssetCheckEvaluation]  # read back from the instance's event log
    failed_checks: list[str]  # what deployed_config's gate reads from the instance
    materialized: set[str]  # assets materialized by the optimization run
    deployed_event: dg.EventLogEntry | None

    @property
    def candidate(self) -> dict:
        return self.result.output_for_node("candidate_config")

    @property
    def report(self) -> dict:
        return self.result.output_for_node("validation_report")


def _optimize(tmp_path, prices) -> Optimization:
    """Materialize the prices (csv source), then run the code location's optimization_job for 7d."""
    area = tmp_path / "area"
    working_area = WorkingArea(
        path=str(area),
        configs_dir=str(SEED_CONFIGS_DIR),
        config_store_dir=str(area / "config_store"),  # not $FOREX_CONFIG_STORE_DIR / $FOREX_CACHE_DIR
        cache_dir=str(area / "cache"),
    )
    source = PriceSource(source="csv", csv_path=write_prices_csv(prices, tmp_path / "usdclp.csv"))
    # an explicit filesystem IO manager: the job run (execute_in_process would swap the default one for an
    # in-memory one) reads the prices the separate prices run stored
    resources = code_location_resources(working_area, source) | {
        "io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path / "storage"))
    }
    assert resources["policy"].settings().approval == DEFAULTS  # the default policy, nothing loosened
    defs = dg.Definitions(assets=ASSETS, asset_checks=approval_checks, jobs=[optimization_job], resources=resources)
    store = working_area.config_store()
    seed_version = store.current_version(HORIZON)
    with dg.instance_for_test() as instance:
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"  # a real, on-disk instance
        loaded = dg.materialize(
            [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET
        )
        assert loaded.success
        result = defs.resolve_job_def("optimization_job").execute_in_process(
            partition_key=series_key(HORIZON), instance=instance, raise_on_error=False, run_config=QUIET
        )
        evaluations = [
            entry.asset_check_evaluation
            for entry in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
        materialized = {
            entry.asset_materialization.asset_key.to_user_string()
            for entry in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        }
        failed = failed_approval_checks(instance, series_key(HORIZON))
        deployed_event = instance.get_latest_materialization_event(dg.AssetKey("deployed_config"))
    assert len(evaluations) == len({e.check_name for e in evaluations})  # each check evaluated once
    for evaluation in evaluations:  # on the report this run made, for this horizon, blocking
        assert evaluation.asset_key == dg.AssetKey("validation_report") and evaluation.partition == str(
            series_key(HORIZON)
        )
        assert evaluation.blocking and evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.target_materialization_data.run_id == result.run_id
    store = working_area.config_store()
    return Optimization(
        result=result,
        seed_version=seed_version,
        version_after=store.current_version(HORIZON),
        deployed_after=store.read(HORIZON),
        checks={e.check_name: e for e in evaluations},
        failed_checks=failed,
        materialized=materialized,
        deployed_event=deployed_event,
    )


def _observed(evaluation: dg.AssetCheckEvaluation) -> float:
    return evaluation.metadata["observed"].value


def test_a_genuinely_better_candidate_passes_the_default_checks_and_deploys(tmp_path):
    """A USD/CLP-like level (850 CLP) with a 22-business-day sine of 3 % amplitude (about 25 CLP, four to five
    daily standard deviations) and 0.2 % iid noise, 600 business days (``approval_series.cycle_prices``).

    The cycle is predictable and the random walk (the seed's median) ignores it; the bundled model follows
    part of it. The search fits the candidate's shrinkage on the search window (0 there: the model's median
    beats the last price) and shrinks it towards the seed's 1 with weight 0.34, so the candidate moves a third
    of the way to the model's median: -9.4 % RMSE, p 4e-5, coverage 0.943, bias +2.0 CLP on the validation
    window (-9.4 .. -9.6 %, 0.93-0.95 over six noise seeds) with the bundled model before issue 23's retraining;
    -7.0 % with the retrained one, still two points clear of the -5 % threshold. With the seeds that blend the
    EWMA band (0.75 at 7d) and the stage-3 model: -8.5 %, p 4e-4, coverage 0.914; the EWMA band covers only
    0.68 of this series' 7d targets (a cycle's 7-day moves outgrow sqrt(7) daily ones) and the seed 0.82, so
    the candidate's own, refitted band is what clears the 0.90 floor. The
    first series tried, a 30-day period, gave only -4.9 .. -7.2 % (too close to -5 %), a 20-day period coverage
    0.91-0.93 (too close to 0.90); ``approval_series.py`` has the measurements.
    """
    run = _optimize(tmp_path, cycle_prices())

    assert run.result.success
    # all six blocking checks were evaluated on this run's report and passed; the deploy gate agrees
    assert set(run.checks) == set(CRITERIA_NAMES)
    assert {name: c.passed for name, c in run.checks.items()} == dict.fromkeys(CRITERIA_NAMES, True)
    assert run.failed_checks == []
    report, m = run.report, run.report["metrics"]
    assert report["approved"] and report["failed_criteria"] == []
    assert report["deployed_version"] == run.seed_version.id
    # the deployed seed is the random walk: its median is the last price
    assert load_config(config_path(SEED_CONFIGS_DIR, HORIZON)).shrinkage == 1.0
    assert m["skill_vs_random_walk_current"] == pytest.approx(1.0)
    # the candidate is genuinely, clearly better on the validation window (disjoint from the search window)
    assert report["validation_window"][0] > run.candidate["search_window"][1]
    assert m["rmse_improvement"] < -DEFAULTS.min_rmse_improvement_pct
    # about -7.0 % with the bundled model retrained in issue 23 (-9.4 % with the one before): what the lever
    # prior allows (docstring)
    assert -10.0 < m["rmse_improvement"] < -6.0
    assert m["mape_improvement"] < -DEFAULTS.min_mape_improvement_pct
    assert m["improvement_p_value"] <= 1e-3 < DEFAULTS.max_improvement_p_value
    assert m["rmse_new"] < m["rmse_current"]
    assert m["skill_vs_random_walk_new"] == pytest.approx(1 + m["rmse_improvement"] / 100)  # deployed = random walk
    assert 0.91 <= m["ci95_coverage_new"] <= 1.0 and m["ci95_coverage_new"] >= DEFAULTS.min_coverage_95
    assert m["ci95_coverage_current"] < DEFAULTS.min_coverage_95  # the seed's EWMA-heavy band on a cycle
    assert abs(m["bias_new"]) < DEFAULTS.max_abs_bias_clp
    assert m["stability_score"] < 1.0
    # each check judged the figures of the report
    assert _observed(run.checks["accuracy_improves"]) == pytest.approx(m["rmse_improvement"])
    assert _observed(run.checks["improvement_significant"]) == pytest.approx(m["improvement_p_value"])
    assert _observed(run.checks["coverage_95_sufficient"]) == pytest.approx(m["ci95_coverage_new"])
    assert _observed(run.checks["bias_bounded"]) == pytest.approx(m["bias_new"])
    assert _observed(run.checks["error_std_stable"]) == pytest.approx(m["stability_score"])
    # the candidate uses the model: a shrinkage below the seed's, fitted on the search window
    candidate = ChronosConfig.model_validate(run.candidate["config"])
    assert 0.6 <= candidate.shrinkage < 0.75
    assert candidate != load_config(config_path(SEED_CONFIGS_DIR, HORIZON))
    # deployed: a new version in the store, whose configuration is the candidate with its validation baseline
    assert run.materialized == {"candidate_config", "validation_report", "deployed_config"}
    assert run.version_after.commit != run.seed_version.commit
    assert run.version_after.summary.startswith(f"[{HORIZON}] deploy")
    assert run.deployed_after.model_copy(update={"baseline": None}) == candidate
    assert run.deployed_after.baseline.rmse_clp == pytest.approx(m["rmse_new"])
    assert run.deployed_after.baseline.coverage_95 == pytest.approx(m["ci95_coverage_new"])
    assert run.deployed_after.baseline.validated_on == report["validation_window"][1]
    metadata = run.deployed_event.asset_materialization.metadata
    assert run.deployed_event.run_id == run.result.run_id
    assert metadata["version"].value == run.version_after.id
    assert metadata["previous_version"].value == run.seed_version.id
    assert metadata["changed"].value is True


def test_a_candidate_no_better_than_the_random_walk_fails_the_default_checks_and_does_not_deploy(tmp_path):
    """A geometric random walk (seed 0, daily volatility 0.6 %, 600 business days, ``conftest.random_walk_prices``):
    nothing to forecast beyond the last price. The search still fits the candidate on 30 origins (about five
    independent paths), and the validation finds it no better than the seed: the RMSE change is within 2.5
    % of zero, not significant, and the two blocking checks on the median's accuracy fail; so does the
    distribution's path (its band is not significantly better either); the checks both paths need pass."""
    run = _optimize(tmp_path, random_walk_prices(n=600, seed=0))

    assert not run.result.success  # a blocking check failed
    report, m = run.report, run.report["metrics"]  # the validation completed
    assert set(run.checks) == set(CRITERIA_NAMES)  # every check was evaluated ...
    failing = {name for name, c in run.checks.items() if not c.passed}
    assert {"accuracy_improves", "improvement_significant"} <= failing  # ... the decision record's path fails
    assert failing & {"wql_improves", "wql_improvement_significant"}  # ... and so does the distribution's
    assert not failing & {"error_std_stable", "inference_time_bounded", "bias_bounded"}  # what both paths need
    assert run.failed_checks == [name for name in CRITERIA_NAMES if name in failing]  # what the deploy gate reads
    assert not report["approved"] and report["approved_by"] is None and set(report["failed_criteria"]) == failing
    assert m["wql_p_value"] > DEFAULTS.max_improvement_p_value and m["wql_ewma_band"] > 0
    # half the -5 % the median's path asks, and not even nominally significant (-1.3 %, p 0.16 with the stage-3
    # model; -0.x %, p > 0.3 with the one before)
    assert abs(m["rmse_improvement"]) < DEFAULTS.min_rmse_improvement_pct / 2
    assert m["mape_improvement"] > -DEFAULTS.min_mape_improvement_pct
    assert m["improvement_p_value"] > 0.05
    assert _observed(run.checks["accuracy_improves"]) == pytest.approx(m["rmse_improvement"])
    assert _observed(run.checks["improvement_significant"]) == pytest.approx(m["improvement_p_value"])
    assert m["ci95_coverage_new"] >= DEFAULTS.min_coverage_95 and abs(m["bias_new"]) < DEFAULTS.max_abs_bias_clp
    # nothing deployed: deployed_config did not materialize, the store is where it was
    assert run.materialized == {"candidate_config", "validation_report"}
    assert run.deployed_event is None
    assert run.version_after.commit == run.seed_version.commit
    assert run.deployed_after == load_config(config_path(SEED_CONFIGS_DIR, HORIZON))
    assert run.deployed_after.shrinkage == 1.0
