"""Policy files: every threshold of PolicySettings in one JSON document, validated with clear errors."""

import json
from pathlib import Path

import pytest

from forex_assets.core.monitoring.drift import Severity
from forex_assets.core.policy_file import PolicyFileError, load_policy, parse_policy, policy_document
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.working_area import PROJECT_ROOT

POLICIES = PROJECT_ROOT / "policies"


def test_the_shipped_default_policy_is_the_code_defaults():
    name, settings = load_policy(POLICIES / "default.json")
    assert name == "default" and settings == PolicySettings()


def test_the_adr_policy_restores_the_decision_records_rules():
    name, settings = load_policy(POLICIES / "adr.json")
    assert name == "adr"
    assert settings.triggers.performance_metric == "rmse" and settings.triggers.performance_threshold_pct == 15.0
    assert settings.approval.max_improvement_p_value == 1.0  # no significance test
    assert settings.approval.max_inference_excess_seconds == 0.0
    assert settings.rollback.min_inference_excess_seconds == 0.0
    assert not settings.levers.fit_shrinkage and not settings.levers.fit_interval_scale
    assert settings.approval.min_rmse_improvement_pct == 5.0  # untouched fields keep their defaults


def test_a_document_round_trips_every_field(tmp_path):
    _, settings = load_policy(POLICIES / "adr.json")
    document = policy_document("adr", settings)
    assert document["triggers"]["drift_min_severity"] == "MEDIUM"
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(document))
    assert load_policy(path) == ("adr", settings)


def test_severities_are_written_by_name_and_per_horizon_drift_windows_are_read():
    _, settings = parse_policy(
        {"triggers": {"drift_min_severity": "high"}, "drift_per_horizon": {"90d": {"baseline_window": 180}}}
    )
    assert settings.triggers.drift_min_severity == Severity.HIGH
    assert (
        settings.drift_thresholds("90d").baseline_window == 180
        and settings.drift_thresholds("7d").baseline_window == 90
    )


@pytest.mark.parametrize(
    "document, message",
    [
        ({"trigers": {}}, "unknown section(s) trigers"),
        ({"triggers": {"performance_treshold_pct": 10}}, "section 'triggers': unknown key(s) performance_treshold_pct"),
        ({"approval": {"min_coverage_95": "high"}}, "policy section 'approval': field 'min_coverage_95'"),
        ({"triggers": {"drift_min_severity": "SEVERE"}}, "'triggers.drift_min_severity' must be one of NONE, LOW"),
        ({"rollback": 3}, "section 'rollback' must be an object"),
    ],
)
def test_bad_documents_name_the_file_and_the_key(tmp_path, document, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PolicyFileError) as error:
        load_policy(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_a_missing_or_broken_file_is_named(tmp_path):
    with pytest.raises(PolicyFileError, match="policy file not found"):
        load_policy(tmp_path / "nope.json")
    broken = Path(tmp_path / "broken.json")
    broken.write_text('{"triggers": ')
    with pytest.raises(PolicyFileError, match=r"broken.json: not valid JSON \(line 1"):
        load_policy(broken)


def test_a_policy_file_replaced_with_the_same_time_and_size_is_read_again(tmp_path):
    """A deploy tool (rsync -t) renames a new file over the old one keeping its time; same size too: the
    loaded policy must follow the new file (the cache is keyed on the inode as well)."""
    import os

    from forex_assets.core.policy_file import load_policy_in_force

    path, new = tmp_path / "p.json", tmp_path / "q.json"
    path.write_text('{"approval": {"min_coverage_95": 0.5}}')
    assert load_policy_in_force(path).settings.approval.min_coverage_95 == 0.5
    new.write_text('{"approval": {"min_coverage_95": 0.7}}')
    stat = path.stat()
    os.utime(new, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(new, path)
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size == stat.st_size
    assert load_policy_in_force(path).settings.approval.min_coverage_95 == 0.7


def test_a_horizons_drift_entry_changes_the_files_drift_section_and_names_only_horizons(tmp_path):
    from forex_assets.core.policy_file import PolicyFileError, load_policy

    path = tmp_path / "drift.json"
    path.write_text(
        '{"drift": {"baseline_window": 120, "high_ks_p": 0.001}, "drift_per_horizon": {"90d": {"test_window": 60}}}'
    )
    _, settings = load_policy(path)
    ninety = settings.drift_thresholds("90d")
    assert (ninety.baseline_window, ninety.high_ks_p, ninety.test_window) == (120, 0.001, 60)
    assert settings.drift_thresholds("7d").test_window == 30 and settings.drift_thresholds("7d").baseline_window == 120
    path.write_text('{"drift_per_horizon": {"7days": {"test_window": 20}}}')
    with pytest.raises(PolicyFileError, match=r"drift.json: section 'drift_per_horizon' names '7days', not a horizon"):
        load_policy(path)
