"""How runs execute: the in-process executor (defs/runs.py) and the six approval checks in one step.

A launched run (DockerRunLauncher, K8sRunLauncher, ``dagster job execute``) executes with the job's own
executor, which ``execute_in_process`` ignores; ``dg.execute_job`` honours it, so the run below goes the way
a run container goes. bench/bench_memory.py measures the same in a 1 GiB memory cgroup.
"""

# no `from __future__ import annotations`: Dagster reads the Config annotation of stub_report as a class
import json
import os
from dataclasses import asdict, replace

import dagster as dg

from forex_assets.core.recalibration.validation import CRITERIA_NAMES
from forex_assets.defs.deployment.approval import failed_approval_checks
from forex_assets.defs.monitoring.automation import prices_job
from forex_assets.defs.partitions import pair_horizon_partitions, series_key
from forex_assets.defs.recalibration.checks import approval_checks
from forex_assets.defs.recalibration.jobs import optimization_job
from forex_assets.defs.resources import PolicyResource
from forex_assets.defs.runs import RUN_EXECUTOR
from forex_assets_tests.test_validation import GOOD

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
REPORT = dg.AssetKey("validation_report")


def _code_location():
    from forex_assets.definitions import defs

    return defs


def test_the_production_jobs_run_in_process():
    assert RUN_EXECUTOR is dg.in_process_executor
    defs = _code_location()
    for job in (optimization_job, prices_job):
        assert job.executor_def is RUN_EXECUTOR
        assert defs.resolve_job_def(job.name).executor_def is RUN_EXECUTOR


def test_every_run_of_the_code_location_runs_in_process():
    defs = _code_location()
    jobs = [defs.resolve_implicit_global_asset_job_def(), *(defs.resolve_job_def(j.name) for j in defs.jobs)]
    assert {job.name: job.executor_def.name for job in jobs} == dict.fromkeys(
        (job.name for job in jobs), RUN_EXECUTOR.name
    )


def test_the_six_approval_checks_are_one_step_of_optimization_job():
    job = _code_location().resolve_job_def("optimization_job")
    assert set(job.graph.node_dict) == {"candidate_config", "validation_report", "approval_checks", "deployed_config"}
    (checks,) = approval_checks
    assert {key.name for key in checks.check_keys} == set(CRITERIA_NAMES)
    for spec in checks.check_specs:
        assert spec.asset_key == REPORT and spec.blocking and spec.partitions_def == pair_horizon_partitions
    # the gate orders deployed_config after the check step
    assert "approval_checks" in {
        d.node.name for d in job.graph.dependency_structure.all_upstream_outputs_from_node("deployed_config")
    }


# ---------------------------------------------------------------------- a launched run, stand-in assets


class StubReport(dg.Config):
    metrics_json: str  # the validation metrics the stand-in report carries


@dg.asset(partitions_def=pair_horizon_partitions, name="validation_report")
def stub_report(config: StubReport) -> dict:
    return {"metrics": json.loads(config.metrics_json), "pid": os.getpid()}


@dg.asset(partitions_def=pair_horizon_partitions, name="deploy_stand_in")
def deploy_stand_in(validation_report: dict) -> int:
    """Stands in for deployed_config: downstream of validation_report, gated by the blocking checks."""
    return os.getpid()


def stub_optimization_job() -> dg.JobDefinition:
    """What the code location's optimization_job is, with stand-in assets: same checks, same executor."""
    defs = dg.Definitions(
        assets=[stub_report, deploy_stand_in],
        asset_checks=approval_checks,
        jobs=[dg.define_asset_job("stub_optimization_job", executor_def=RUN_EXECUTOR)],
        resources={"policy": PolicyResource()},
    )
    return defs.resolve_job_def("stub_optimization_job")


def _launch(instance, metrics) -> tuple[dg.DagsterRun, list[dg.EventLogEntry]]:
    run_config = QUIET | {"ops": {"validation_report": {"config": {"metrics_json": json.dumps(asdict(metrics))}}}}
    with dg.execute_job(
        dg.reconstructable(stub_optimization_job),
        instance=instance,
        run_config=run_config,
        tags={"dagster/partition": "30d|USDCLP"},
        raise_on_error=False,
    ) as result:
        run_id = result.run_id
    return instance.get_run_by_id(run_id), instance.all_logs(run_id)


def _steps(logs, event_type) -> list[str]:
    return [e.step_key for e in logs if e.dagster_event and e.dagster_event.event_type == event_type]


def test_a_launched_run_executes_every_step_in_the_run_worker_and_the_checks_once(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run, logs = _launch(instance, GOOD)
        failed = failed_approval_checks(instance, series_key("30d"))
    assert run.status == dg.DagsterRunStatus.SUCCESS
    starts = [e for e in logs if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_START]
    assert [e.step_key for e in starts] == ["validation_report", "approval_checks", "deploy_stand_in"]
    assert {e.dagster_event.pid for e in starts} == {os.getpid()}  # no step subprocess: all in the run worker
    evaluations = [
        e for e in logs if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert sorted(e.asset_check_evaluation.check_name for e in evaluations) == sorted(CRITERIA_NAMES)
    for entry in evaluations:  # one step, one result per criterion, on the partition, blocking, ERROR
        evaluation = entry.asset_check_evaluation
        assert entry.step_key == "approval_checks" and evaluation.partition == "30d|USDCLP" and evaluation.passed
        assert evaluation.blocking and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert failed == []  # what deployed_config's gate reads from the instance


def test_a_failed_criterion_in_the_one_step_keeps_the_others_and_blocks_downstream(tmp_path):
    worse = replace(GOOD, ci95_coverage_new=0.7, bias_new=6.5)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run, logs = _launch(instance, worse)
        failed = failed_approval_checks(instance, series_key("30d"))
        deployed = instance.get_latest_materialization_event(dg.AssetKey("deploy_stand_in"))
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert _steps(logs, dg.DagsterEventType.STEP_FAILURE) == ["approval_checks"]
    assert _steps(logs, dg.DagsterEventType.STEP_START) == ["validation_report", "approval_checks"]
    assert deployed is None
    verdicts = {
        e.asset_check_evaluation.check_name: e.asset_check_evaluation.passed
        for e in logs
        if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }
    # coverage 0.70 is below both paths' floors (0.90, and the calibrated 0.92-0.98)
    failing = {"coverage_95_sufficient", "bias_bounded", "coverage_95_calibrated"}
    assert verdicts == {name: name not in failing for name in CRITERIA_NAMES}
    assert failed == ["coverage_95_sufficient", "bias_bounded", "coverage_95_calibrated"]


def test_one_check_executed_alone_evaluates_only_that_check(tmp_path):
    """The UI may execute a single check of the six (can_subset): a run of the asset job's subset with that
    check alone, on a report made earlier. Only that check is evaluated, on the partition."""
    resources = {"policy": PolicyResource(), "io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path))}
    run_config = QUIET | {"ops": {"validation_report": {"config": {"metrics_json": json.dumps(asdict(GOOD))}}}}
    defs = dg.Definitions(assets=[stub_report], asset_checks=approval_checks, resources=resources)
    job = defs.resolve_implicit_global_asset_job_def()
    report_only = job.get_subset(asset_selection={REPORT}, asset_check_selection=set())
    one_check = job.get_subset(asset_selection=set(), asset_check_selection={dg.AssetCheckKey(REPORT, "bias_bounded")})
    with dg.instance_for_test() as instance:
        assert report_only.execute_in_process(
            partition_key=series_key("30d"), instance=instance, run_config=run_config
        ).success
        one = one_check.execute_in_process(partition_key=series_key("30d"), instance=instance, run_config=QUIET)
    assert one.success
    assert [(e.check_name, e.partition) for e in one.get_asset_check_evaluations()] == [("bias_bounded", "30d|USDCLP")]
