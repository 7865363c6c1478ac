"""The code location's shape, written out: which domain defines which assets, checks, jobs, schedules and
sensors, with their default statuses. ``forex_assets/definitions.py`` merges the domains' ``Definitions``
(``defs/<domain>/definitions.py``) with ``dg.Definitions.merge``; a definition lost, added or moved in the
merge, or a schedule or sensor whose default status changes, fails here."""

import dagster as dg
import pytest

from forex_assets import definitions as code_location
from forex_assets.defs.graph import ASSETS, ASSETS_AND_CHECKS
from forex_assets.defs.resources import code_location_resources

RUNNING_SENSOR, RUNNING_SCHEDULE = dg.DefaultSensorStatus.RUNNING, dg.DefaultScheduleStatus.RUNNING
APPROVAL_CHECKS = {
    "accuracy_improves",
    "bias_bounded",
    "coverage_95_sufficient",
    "error_std_stable",
    "improvement_significant",
    "inference_time_bounded",
    "wql_improves",
    "wql_improvement_significant",
    "rmse_not_worse",
    "coverage_95_calibrated",
}

#: domain -> what its Definitions hold: asset keys, checks (asset, name), jobs, schedules and sensors with
#: their default status
EXPECTED = {
    "prices": {"assets": {"pair_prices"}},
    "forecasting": {"assets": {"forecast"}},
    "monitoring": {
        "assets": {"drift_report", "performance_report", "optimization_metrics"},
        "jobs": {"prices_job"},
        "schedules": {"daily_monitoring_schedule": RUNNING_SCHEDULE, "weekly_optimization_schedule": RUNNING_SCHEDULE},
        "sensors": {"optimization_sensor": RUNNING_SENSOR, "forex_automation_sensor": RUNNING_SENSOR},
    },
    "recalibration": {
        "assets": {"candidate_config", "validation_report"},
        "checks": {("validation_report", name) for name in APPROVAL_CHECKS},
        "jobs": {"optimization_job"},
    },
    "deployment": {
        "assets": {"deployed_config"},
        "jobs": {"rollback_job"},
        "sensors": {"rollback_sensor": RUNNING_SENSOR},
    },
    "alerting": {"sensors": {"run_failure_alert_sensor": RUNNING_SENSOR}},
    "replay": {"jobs": {"replay_job"}},
}
#: what belongs to no domain: added by definitions.py itself, with the resources and the executor
CODE_LOCATION_OWN = {"sensors": {"dead_run_sensor": RUNNING_SENSOR}}


def _check_keys(definitions) -> list[dg.AssetCheckKey]:
    return [key for definition in definitions for key in getattr(definition, "check_keys", ())]


def _shape(defs: dg.Definitions) -> dict:
    """What ``defs`` declares (before resolution: the domains' own definitions, without resources)."""
    return {
        "assets": {key.to_user_string() for asset in defs.assets or [] for key in asset.keys},
        "checks": {(key.asset_key.to_user_string(), key.name) for key in _check_keys(defs.asset_checks or [])},
        "jobs": {job.name for job in defs.jobs or []},
        "schedules": {s.name: s.default_status for s in defs.schedules or []},
        "sensors": {s.name: s.default_status for s in defs.sensors or []},
    }


def _expected(*parts: dict) -> dict:
    union = {"assets": set(), "checks": set(), "jobs": set(), "schedules": {}, "sensors": {}}
    for part in parts:
        for kind, values in part.items():
            union[kind] = union[kind] | values
    return union


@pytest.mark.parametrize("domain", list(EXPECTED))
def test_each_domain_declares_its_own_definitions_and_no_resources(domain):
    module = next(d for d in code_location.DOMAINS if d.__name__ == f"forex_assets.defs.{domain}.definitions")
    assert _shape(module.defs) == _expected(EXPECTED[domain])
    assert not module.defs.resources and module.defs.executor is None  # added once, by definitions.py


def test_the_domains_are_the_expected_ones_and_share_nothing():
    assert [d.__name__.split(".")[-2] for d in code_location.DOMAINS] == list(EXPECTED)
    shapes = [_shape(d.defs) for d in code_location.DOMAINS]
    for kind in ("assets", "checks", "jobs", "schedules", "sensors"):
        names = [name for shape in shapes for name in shape[kind]]
        assert len(names) == len(set(names)), f"{kind} declared by two domains: {sorted(names)}"


def test_the_code_location_is_the_merge_of_the_domains_with_its_own_sensor_resources_and_executor():
    defs = code_location.defs
    dg.Definitions.validate_loadable(defs)
    expected = _expected(*EXPECTED.values(), CODE_LOCATION_OWN)
    assert _shape(defs) == expected
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == expected["assets"]
    assert {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys} == expected["checks"]
    # the implicit asset job of the automation sensor besides the declared jobs
    assert {job.name for job in defs.resolve_all_job_defs()} == expected["jobs"] | {"__ASSET_JOB"}
    repository = defs.get_repository_def()  # what the UI and the daemon load
    assert {s.name: s.default_status for s in repository.sensor_defs} == expected["sensors"]
    assert {s.name: s.default_status for s in repository.schedule_defs} == expected["schedules"]
    # the resources: every one of code_location_resources(), once; every run in the run worker's process
    assert set(defs.resources) == set(code_location_resources())
    assert defs.executor is not None and defs.executor.name == "in_process"


def test_the_in_process_asset_list_is_the_code_locations():
    """``defs/graph.py``'s lists (make run, tests) hold what the code location holds, nothing more or less."""
    assert {key.to_user_string() for asset in ASSETS for key in asset.keys} == _expected(*EXPECTED.values())["assets"]
    checks = {(key.asset_key.to_user_string(), key.name) for key in _check_keys(ASSETS_AND_CHECKS)}
    assert checks == _expected(*EXPECTED.values())["checks"]
