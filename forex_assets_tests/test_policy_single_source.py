"""One policy, one source: every threshold is declared once, as a default of the core dataclasses gathered by
``PolicySettings``; production reads it from one policy file; what the UI says is rendered from the values.

These tests fail when a threshold is declared a second time: a resource field that holds one, a number typed
into a description or a ``Field`` default of the Dagster layer or the CLI, a policy file that writes defaults
out, or a check description that does not follow the policy it is rendered from.
"""

import ast
import dataclasses
import json
import re
from enum import Enum

import dagster as dg
import pytest
from pydantic import BaseModel

from forex_assets.core.deployment.rollback_rules import rollback_rules_text
from forex_assets.core.policy_file import (
    POLICY_FILE_ENV,
    PolicyFileError,
    load_policy,
    load_policy_in_force,
    policy_document,
    policy_version,
)
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.recalibration.levers import LeverSettings
from forex_assets.core.recalibration.validation import CRITERIA_NAMES, ApprovalThresholds, criterion_rule
from forex_assets.core.working_area import PROJECT_ROOT
from forex_assets.defs.partitions import pair_horizon_partitions, series_key
from forex_assets.defs.recalibration.checks import CHECK_SPECS, DESCRIPTIONS, approval_checks, check_descriptions
from forex_assets.defs.resources import PolicyResource, code_location_resources
from forex_assets_tests.conftest import policy_with
from forex_assets_tests.test_validation import GOOD

PACKAGE = PROJECT_ROOT / "forex_assets"
SCANNED = [PACKAGE / "defs", PACKAGE / "cli"]
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


# ----------------------------------------------------------------------------- what a threshold is


def _sections(settings: PolicySettings) -> list:
    return [settings.triggers, settings.drift, settings.performance, settings.approval, settings.rollback]


def threshold_fields() -> dict[str, float]:
    """'Section.field' -> default of every numeric threshold (the FX levers' too)."""
    values = {}
    for section in [*_sections(PolicySettings()), LeverSettings()]:
        for field in dataclasses.fields(section):
            value = getattr(section, field.name)
            if isinstance(value, int | float) and not isinstance(value, bool | Enum):
                values[f"{type(section).__name__}.{field.name}"] = float(value)
    return values


def threshold_values() -> set[float]:
    """Every threshold default, and the factors the descriptions derive from percentages (10 % -> 1.1)."""
    values = set()
    for name, value in threshold_fields().items():
        values.add(value)
        if name.endswith("_pct"):
            values |= {round(1 + value / 100, 6), round(value / 100, 6)}
    return values


# ----------------------------------------------------------------------------- the scan of defs/ and cli/

# numbers in prose that stand alone or as a factor (1.5x): not part of a name (7d, latin-1, utf-8), a time
# (19:00) or a version (1.13.0)
NUMBER = re.compile(r"(?<![\w.:-])\d+(?:\.\d+)?(?!(?!x\b)[\w:]|\.\d)")
TEXT_KEYWORDS = {"description", "help"}

# (file under forex_assets/, number): why that number in a description is not a policy threshold
NOT_THRESHOLDS = {
    ("defs/forecasting/assets.py", 0.1): "the forecast's quantile levels 0.025/0.1/0.9/0.975",
    ("defs/forecasting/assets.py", 0.9): "the forecast's quantile levels 0.025/0.1/0.9/0.975",
    ("defs/resources/prices.py", 0.15): "the price contract's largest daily move (0.15 = 15 %), not the policy",
    ("defs/resources/prices.py", 15.0): "the price contract's largest daily move (0.15 = 15 %), not the policy",
    ("cli/replay.py", 1.0): "--inject-drift: a volatility multiplier other than 1",
    ("cli/replay.py", 3.0): "--inject-drift: the default volatility multiplier of an injected drift",
}
# (file, field) of Dagster config with a numeric default equal to a threshold value that is not a threshold
NOT_THRESHOLD_FIELDS = {
    ("defs/resources/alerts.py", "timeout_s"): "SMTP connection timeout",
    ("defs/resources/alerts.py", "max_attempts"): "SMTP delivery attempts",
    ("defs/resources/alerts.py", "backoff_s"): "SMTP back-off",
    ("defs/resources/prices.py", "timeout_s"): "HTTP timeout of the price source",
    ("defs/resources/prices.py", "max_retries"): "HTTP retries of the price source",
    ("defs/resources/prices.py", "backoff_s"): "HTTP back-off of the price source",
    ("defs/replay/jobs.py", "log_every_days"): "the replay's progress line interval",
}


def _strings(node: ast.AST) -> str:
    """The literal text of a string expression (f-string parts included, interpolations left out)."""
    return " ".join(n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def _is_text_target(target: ast.AST) -> bool:
    return isinstance(target, ast.Name) and "DESCRIPTION" in target.id.upper()


def typed_numbers_in_texts(source: str) -> list[tuple[int, float, str]]:
    """(line, number, text) of every standalone number in a UI text of ``source``: ``description=`` and
    ``help=`` arguments, and constants named ``*DESCRIPTION*``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        texts = []
        if isinstance(node, ast.keyword) and node.arg in TEXT_KEYWORDS:
            texts.append(node.value)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_is_text_target(t) for t in targets) and node.value is not None:
                texts.append(node.value)
        for text_node in texts:
            text = _strings(text_node)
            found += [(text_node.lineno, float(n), text) for n in NUMBER.findall(text)]
    return found


def numeric_config_defaults(source: str) -> list[tuple[int, str, float]]:
    """(line, field, default) of every numeric default declared in a class body of ``source``: ``name: float =
    1.5`` and ``name: float = Field(default=1.5, ...)`` (Dagster config and resources)."""
    found = []
    for cls in (n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef)):
        for stmt in cls.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value):
                continue
            value = stmt.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "Field":
                value = next((k.value for k in value.keywords if k.arg == "default"), None)
            if isinstance(value, ast.Constant) and isinstance(value.value, int | float):
                if not isinstance(value.value, bool):
                    found.append((stmt.lineno, stmt.target.id, float(value.value)))
    return found


def _sources():
    for root in SCANNED:
        for path in sorted(root.rglob("*.py")):
            yield str(path.relative_to(PACKAGE)), path.read_text()


def test_no_threshold_is_typed_into_a_description_of_the_dagster_layer_or_the_cli():
    thresholds = threshold_values()
    typed = [
        f"forex_assets/{where}:{line}: {number:g} in {text[:90]!r}"
        for where, source in _sources()
        for line, number, text in typed_numbers_in_texts(source)
        if number in thresholds and (where, number) not in NOT_THRESHOLDS
    ]
    assert typed == [], "render these from PolicySettings() (or the policy in force) instead:\n" + "\n".join(typed)
    allowed = {(where, number) for where, source in _sources() for _, number, _ in typed_numbers_in_texts(source)}
    assert set(NOT_THRESHOLDS) <= allowed, "an exception that no longer occurs: remove it from NOT_THRESHOLDS"


def test_no_threshold_is_a_config_default_of_the_dagster_layer_or_the_cli():
    thresholds = threshold_values()
    declared = [
        f"forex_assets/{where}:{line}: {field} = {value:g}"
        for where, source in _sources()
        for line, field, value in numeric_config_defaults(source)
        if value in thresholds and (where, field) not in NOT_THRESHOLD_FIELDS
    ]
    assert declared == [], "a threshold belongs in PolicySettings (a policy file sets it):\n" + "\n".join(declared)
    fields = {(where, field) for where, source in _sources() for _, field, _ in numeric_config_defaults(source)}
    assert set(NOT_THRESHOLD_FIELDS) <= fields, (
        "an exception that no longer occurs: remove it from NOT_THRESHOLD_FIELDS"
    )


def test_the_scan_finds_the_thresholds_typed_before_there_was_one_source():
    """The detectors on what the code said before: the check descriptions typed by hand, and a resource that
    declared the approval thresholds again."""
    before = """
DESCRIPTIONS = {"accuracy_improves": "RMSE at least 5 % lower or MAPE at least 3 % lower than the deployed config",
                "bias_bounded": "|bias| below 5 CLP, or at most 1.1 x the deployed config's"}
class ApprovalPolicy(dg.ConfigurableResource):
    min_rmse_improvement_pct: float = Field(default=5.0, description="RMSE at least this % lower ...")
    max_improvement_p_value: float = Field(default=0.002, gt=0, le=1)
    min_coverage_95: float = 0.90
"""
    numbers = [number for _, number, _ in typed_numbers_in_texts(before)]
    assert numbers == [5.0, 3.0, 5.0, 1.1] and set(numbers) <= threshold_values()
    factors = [n for _, n, _ in typed_numbers_in_texts('x(description="above 3x the baseline or 1.5x its RMSE")')]
    assert factors == [3.0, 1.5]
    defaults = numeric_config_defaults(before)
    assert [(field, value) for _, field, value in defaults] == [
        ("min_rmse_improvement_pct", 5.0),
        ("max_improvement_p_value", 0.002),
        ("min_coverage_95", 0.9),
    ]
    # and what is not a threshold is not flagged: a horizon, a codec, a time, a quantile list's neighbours
    assert typed_numbers_in_texts('x(description="7d or 90d, latin-1, at 19:00, v1.13")') == []


def _resource_classes() -> list[type]:
    classes = {type(r) for r in code_location_resources().values() if isinstance(r, dg.ConfigurableResource)}
    assert PolicyResource in classes
    return sorted(classes, key=lambda c: c.__name__)


def test_no_resource_declares_a_threshold_field():
    names = {name.split(".")[1] for name in threshold_fields()}
    for cls in _resource_classes():
        fields = set(cls.model_fields) if issubclass(cls, BaseModel) else set()
        clashes = {f for f in fields for name in names if f == name or f.endswith("_" + name)}
        assert clashes == set(), f"{cls.__name__} declares threshold field(s) {clashes}: put them in PolicySettings"
    assert set(PolicyResource.model_fields) == {"policy_file"}  # the file is its only setting


# ----------------------------------------------------------------------------- one file, one loader


def test_the_default_policy_file_is_the_code_defaults_and_writes_no_value_out():
    path = PROJECT_ROOT / "policies" / "default.json"
    assert load_policy(path) == ("default", PolicySettings())
    assert set(json.loads(path.read_text())) <= {"name", "description"}  # a value written there is a 2nd copy


def test_the_resource_reads_the_default_file_unless_told_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv(POLICY_FILE_ENV, raising=False)
    default = PolicyResource()
    assert default.settings() == PolicySettings()
    assert default.label() == f"default (policies/default.json, {policy_version(PolicySettings())})"
    adr = tmp_path / "adr.json"
    adr.write_text((PROJECT_ROOT / "policies" / "adr.json").read_text())
    monkeypatch.setenv(POLICY_FILE_ENV, str(adr))
    assert PolicyResource().settings() == load_policy(adr)[1]  # the environment selects the file
    assert code_location_resources()["policy"].settings().triggers.performance_metric == "rmse"
    explicit = PolicyResource(policy_file=str(PROJECT_ROOT / "policies" / "default.json"))
    assert explicit.settings() == PolicySettings()  # an explicit file wins over the environment


def test_the_version_is_a_hash_of_the_thresholds_not_of_the_name_or_the_layout(tmp_path):
    settings = PolicySettings()
    again = tmp_path / "renamed.json"
    again.write_text(json.dumps(policy_document("renamed", settings), indent=4))  # every default written out
    loaded = load_policy_in_force(again)
    assert loaded.name == "renamed" and loaded.version == policy_version(settings)
    assert re.fullmatch(r"[0-9a-f]{12}", loaded.version)
    changed = policy_with(tmp_path, "stricter", approval={"min_coverage_95": 0.95})
    assert changed.loaded().version != loaded.version
    assert changed.label() == f"stricter ({tmp_path / 'stricter.json'}, {changed.loaded().version})"


def test_an_edited_policy_file_is_read_again(tmp_path):
    resource = policy_with(tmp_path, "edited", approval={"min_coverage_95": 0.5})
    assert resource.settings().approval.min_coverage_95 == 0.5
    policy_with(tmp_path, "edited", approval={"min_coverage_95": 0.75, "max_abs_bias_clp": 7.0})
    assert resource.settings().approval.min_coverage_95 == 0.75


@pytest.mark.parametrize(
    "document, message",
    [
        ({"approval": {"min_coverage": 0.9}}, "section 'approval': unknown key(s) min_coverage"),
        ({"drift": {"baseline_window": 5}}, "'drift.baseline_window' must be >= 20 (it is 5)"),
        ({"drift_per_horizon": {"90d": {"test_window": 3}}}, "'drift_per_horizon.90d.test_window' must be >= 10"),
        ({"approval": {"max_improvement_p_value": 0}}, "'approval.max_improvement_p_value' must be > 0"),
        ({"rollback": {"slow_forecasts": 0}}, "'rollback.slow_forecasts' must be >= 1"),
    ],
)
def test_an_invalid_policy_file_is_one_error_naming_the_file_and_the_key(tmp_path, document, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PolicyFileError) as error:
        PolicyResource(policy_file=str(path)).settings()
    assert str(path) in str(error.value) and message in str(error.value)


def test_a_missing_policy_file_from_the_environment_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv(POLICY_FILE_ENV, str(tmp_path / "nowhere.json"))
    with pytest.raises(PolicyFileError, match=rf"nowhere.json: policy file not found \(\${POLICY_FILE_ENV}\)"):
        PolicyResource().settings()


def test_the_weekly_fallback_is_the_same_policy_with_only_the_schedule():
    settings = PolicySettings()
    weekly = settings.scheduled_only()
    assert not weekly.triggers.drift_enabled and weekly.triggers.performance_threshold_pct == float("inf")
    assert weekly.triggers.schedule_days == settings.triggers.schedule_days
    assert dataclasses.replace(weekly, triggers=settings.triggers) == settings


# ----------------------------------------------------------------------------- descriptions from the values


def test_the_check_descriptions_are_rendered_from_the_policy():
    odd = ApprovalThresholds(
        min_rmse_improvement_pct=7.25,
        min_mape_improvement_pct=4.75,
        max_error_std_growth_pct=12.5,
        max_inference_time_ratio=2.25,
        max_inference_excess_seconds=0.75,
        min_coverage_95=0.87,
        max_abs_bias_clp=6.5,
        max_bias_growth_pct=20.0,
        max_improvement_p_value=0.0125,
    )
    rendered = check_descriptions(odd)
    assert set(rendered) == set(CRITERIA_NAMES)
    assert "RMSE at least 7.25 % lower or MAPE at least 4.75 % lower" in rendered["accuracy_improves"]
    assert "12.5 %" in rendered["error_std_stable"] and "1.12" in rendered["error_std_stable"]
    assert "2.25x" in rendered["inference_time_bounded"] and "0.75 s" in rendered["inference_time_bounded"]
    assert "0.87" in rendered["coverage_95_sufficient"]
    assert "6.5 CLP" in rendered["bias_bounded"] and "1.20x" in rendered["bias_bounded"]
    assert "0.0125" in rendered["improvement_significant"]
    # the UI's descriptions: the default policy's values, by the same function
    defaults = ApprovalThresholds()
    assert DESCRIPTIONS == {name: criterion_rule(name, defaults) for name in CRITERIA_NAMES}
    assert {spec.name: spec.description.startswith(DESCRIPTIONS[spec.name]) for spec in CHECK_SPECS} == dict.fromkeys(
        CRITERIA_NAMES, True
    )
    assert f"{defaults.min_rmse_improvement_pct:g} % lower" in DESCRIPTIONS["accuracy_improves"]


def test_the_rollback_sensor_describes_the_rules_of_the_default_policy():
    from forex_assets.defs.deployment.sensors import rollback_sensor

    assert rollback_rules_text(PolicySettings().rollback) in rollback_sensor.description
    other = dataclasses.replace(PolicySettings().rollback, consecutive_failures=4, rmse_ratio=1.75)
    assert rollback_rules_text(other).startswith("4 consecutive failed") and "1.75x" in rollback_rules_text(other)


# ----------------------------------------------------------------------------- production obeys the file


def _stub_report(metrics):
    @dg.asset(partitions_def=pair_horizon_partitions, name="validation_report")
    def stub() -> dict:
        return {"metrics": dataclasses.asdict(metrics)}

    return stub


def _checks(metrics, policy: PolicyResource) -> dict[str, dg.AssetCheckEvaluation]:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [_stub_report(metrics), *approval_checks],
            partition_key=series_key("30d"),
            instance=instance,
            raise_on_error=False,
            run_config=QUIET,
            resources={"policy": policy},
        )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_the_approval_checks_obey_the_policy_file_selected_by_the_environment(monkeypatch, tmp_path):
    # passes the default 0.90; no WQL gain, so only the decision record's path (which this floor belongs to) can
    # approve it
    candidate = dataclasses.replace(GOOD, ci95_coverage_new=0.93, wql_improvement=0.0)
    monkeypatch.delenv(POLICY_FILE_ENV, raising=False)
    by_default = _checks(candidate, code_location_resources()["policy"])
    assert by_default["coverage_95_sufficient"].passed
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"name": "strict", "approval": {"min_coverage_95": 0.95}}))
    monkeypatch.setenv(POLICY_FILE_ENV, str(strict))
    checks = _checks(candidate, code_location_resources()["policy"])  # what the code location binds
    coverage = checks["coverage_95_sufficient"]
    assert not coverage.passed  # the decision changed with the file
    assert coverage.metadata["threshold"].value == 0.95
    assert "at least 0.95" in coverage.description
    label = coverage.metadata["policy"].value
    assert label.startswith(f"strict ({strict}, ") and load_policy_in_force(strict).version in label
    # rejected by both paths: every failed criterion blocks (the distribution path's WQL gain is 0 %)
    assert {name for name, c in checks.items() if not c.passed} == {"coverage_95_sufficient", "wql_improves"}


def test_the_drift_report_obeys_the_policy_file_and_names_it(forex_env, tmp_path):
    from forex_assets.defs.monitoring.assets import drift_report
    from forex_assets.defs.prices.assets import pair_prices

    instance, resources, _ = forex_env
    assert dg.materialize(
        [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET
    ).success
    never = 1e9  # no statistic reaches it
    deaf = policy_with(
        tmp_path,
        "deaf",
        drift={
            **dict.fromkeys(["high_ks_p", "medium_ks_p", "low_ks_p"], 0.0),
            **dict.fromkeys(["medium_psi", "low_psi", "fast_threshold"], never),
            **dict.fromkeys(["high_vol_ratio", "medium_vol_ratio", "low_vol_ratio"], never),
        },
    )
    alarmed = policy_with(tmp_path, "alarmed", drift={"high_ks_p": 1.0, "high_ks_statistic": 0.0})
    reports = {}
    for name, policy in (("default", resources["policy"]), ("deaf", deaf), ("alarmed", alarmed)):
        result = dg.materialize(
            [pair_prices, drift_report],
            selection=[drift_report],
            partition_key=series_key("7d"),
            instance=instance,
            resources=resources | {"policy": policy},
            run_config=QUIET,
        )
        event = result.get_asset_materialization_events()[0]
        reports[name] = {k: v.value for k, v in event.materialization.metadata.items()}
    # the same prices, three files, three verdicts: the file decides
    assert (reports["deaf"]["severity"], reports["alarmed"]["severity"]) == ("NONE", "HIGH")
    assert reports["deaf"]["ks_statistic"] == reports["alarmed"]["ks_statistic"] == reports["default"]["ks_statistic"]
    assert reports["default"]["policy"] == PolicyResource().label()
    assert reports["deaf"]["policy"] == deaf.label() and reports["deaf"]["policy"].startswith("deaf (")


# ----------------------------------------------------------------------------- forex-assets run --policy


def test_run_refuses_a_bad_policy_file_before_anything_runs(tmp_path):
    from forex_assets_tests.real_cli import environment, invoke

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"approval": {"min_coverage": 0.9}}))
    home = tmp_path / "home"
    done = invoke(["forex-assets", "run", "--policy", str(bad)], environment(home), tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert f"forex-assets run: {bad}: section 'approval': unknown key(s) min_coverage" in done.stderr
    assert "Traceback" not in done.stderr and not home.exists()  # refused before the instance was touched
    missing = environment(home, **{POLICY_FILE_ENV: str(tmp_path / "gone.json")})
    done = invoke(["forex-assets", "run"], missing, tmp_path)
    assert done.returncode == 2 and f"gone.json: policy file not found (${POLICY_FILE_ENV})" in done.stderr


def test_run_decides_with_the_policy_file_it_is_given(tmp_path):
    """``run --policy`` (the file an operator compared with ``replay --policy``): the summary names the policy,
    and the cycle's decision follows it. The default policy would optimize a horizon never optimized (the
    schedule fires); this file turns the schedule and drift triggers off, so nothing is searched."""
    from forex_assets_tests.real_cli import copy_instance, environment, invoke, prepared_instance

    quiet = tmp_path / "quiet.json"
    quiet.write_text(json.dumps({"name": "quiet", "triggers": {"schedule_enabled": False, "drift_enabled": False}}))
    home = copy_instance(prepared_instance(), tmp_path / "home")
    done = invoke(["forex-assets", "run", "--horizons", "7d", "--policy", str(quiet)], environment(home), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"policy quiet ({quiet}, {load_policy_in_force(quiet).version})" in done.stdout
    assert "no optimization" in done.stdout and "OPTIMIZE" not in done.stdout
    assert "schedule trigger disabled" in done.stdout
    assert "recalibration (candidate search" not in done.stdout
