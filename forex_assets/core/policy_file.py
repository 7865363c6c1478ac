"""A policy as a settings file: every threshold of ``PolicySettings`` in one JSON document. The same file
configures production (``FOREX_POLICY_FILE``, the ``policy`` resource, ``forex-assets run --policy``) and a
replay (``forex-assets replay --policy A.json --policy B.json`` puts two policies side by side on the same
days), so an operator deploys exactly the policy they compared.

The document mirrors ``PolicySettings``: top-level sections ``triggers``, ``drift``, ``drift_per_horizon``,
``performance``, ``approval``, ``rollback`` and ``levers``, each holding the fields of its dataclass (any
field left out keeps its default: the dataclasses are the one declaration of every value), plus an optional
``name`` and ``description``. Unknown sections or fields, and values out of range, are errors that name the
file and the key. ``policies/`` in the repository holds the project's defaults (``default.json``, every field
at its default) and the decision record's original rules (``adr.json``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from forex_assets.core.forecasting.config import ConfigError, describe_validation_error, read_json_object, read_once
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.monitoring.severity import Severity
from forex_assets.core.monitoring.thresholds import DriftThresholds
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.recalibration.thresholds import LeverSettings
from forex_assets.core.working_area import PROJECT_ROOT

#: the environment variable that selects production's policy file (the ``policy`` resource, ``forex-assets run``)
POLICY_FILE_ENV = "FOREX_POLICY_FILE"
#: the project's default policy: every field at its default
DEFAULT_POLICY_FILE = PROJECT_ROOT / "policies" / "default.json"

SECTIONS = {
    "triggers": None,  # the dataclass types are read from PolicySettings' fields
    "drift": None,
    "drift_per_horizon": None,
    "performance": None,
    "approval": None,
    "rollback": None,
    "levers": LeverSettings,
}

# The range each value must lie in for its rule to mean something (bounds, not thresholds):
# (section, field, comparison, bound); drift_per_horizon is checked like drift.
LIMITS: tuple[tuple[str, str, str, float], ...] = (
    ("drift", "baseline_window", ">=", 20),  # log returns: fewer make the KS test and the PSI bins noise
    ("drift", "test_window", ">=", 10),
    ("drift", "psi_bins", ">=", 2),
    ("drift", "fast_recent", ">=", 1),
    ("triggers", "performance_p_value", ">", 0.0),
    ("triggers", "performance_p_value", "<", 1.0),
    ("triggers", "band_p_value", ">", 0.0),
    ("triggers", "band_p_value", "<", 1.0),
    ("triggers", "kupiec_p_value", ">=", 0.0),
    ("triggers", "kupiec_p_value", "<", 1.0),
    ("triggers", "schedule_days", ">=", 1),
    ("triggers", "min_days_between_optimizations", ">=", 0),
    ("triggers", "performance_override_min_days", ">=", 0),
    ("performance", "window_days", ">=", 1),
    ("performance", "min_live_forecasts", ">=", 1),
    ("performance", "backtest_origins", ">=", 1),
    ("performance", "random_walk_test_min_origins", ">=", 1),
    ("approval", "max_improvement_p_value", ">", 0.0),
    ("approval", "max_improvement_p_value", "<=", 1.0),
    ("approval", "max_inference_excess_seconds", ">=", 0.0),
    ("approval", "min_coverage_95_calibrated", ">=", 0.0),
    ("approval", "max_coverage_95_calibrated", "<=", 1.0),
    ("performance", "band_test_margin_pct", ">=", 0.0),
    ("rollback", "consecutive_failures", ">=", 1),
    ("rollback", "inference_time_ratio", ">", 0.0),
    ("rollback", "min_inference_excess_seconds", ">=", 0.0),
    ("rollback", "slow_forecasts", ">=", 1),
    ("rollback", "rmse_ratio", ">", 0.0),
    ("rollback", "min_matured_forecasts", ">=", 1),
)
_COMPARISONS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


class PolicyFileError(ConfigError):
    """An invalid policy file; the message names the file and the key."""


def _section_types() -> dict[str, type]:
    hints = {f.name: f.default for f in dataclasses.fields(PolicySettings) if f.name in SECTIONS}
    types = {name: type(default) for name, default in hints.items() if dataclasses.is_dataclass(default)}
    return types | {"levers": LeverSettings, "drift_per_horizon": DriftThresholds}


def _check_keys(cls: type, document: dict[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(document) - known)
    if unknown:
        raise PolicyFileError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")


def _check_limits(section: str, value: object, source: str, where: str) -> None:
    for owner, field, comparison, bound in LIMITS:
        if owner == section and not _COMPARISONS[comparison](getattr(value, field), bound):
            raise PolicyFileError(
                f"{source}: '{where}.{field}' must be {comparison} {bound:g} (it is {getattr(value, field)!r})"
            )


def parse_policy(document: dict[str, Any], source: str = "<policy>") -> tuple[str, PolicySettings]:
    """(name, settings) from a policy document; errors name ``source`` and the key."""
    name = str(document.get("name") or Path(source).stem)
    unknown = sorted(set(document) - set(SECTIONS) - {"name", "description"})
    if unknown:
        raise PolicyFileError(
            f"{source}: unknown section(s) {', '.join(unknown)}; sections: {', '.join(sorted(SECTIONS))}"
        )
    types = _section_types()
    values: dict[str, Any] = {}
    for section, cls in types.items():
        if section not in document:
            continue
        body = document[section]
        if section == "drift_per_horizon":
            if not isinstance(body, dict):
                raise PolicyFileError(f"{source}: section 'drift_per_horizon' must map horizons to drift settings")
            values[section] = {}
            # a horizon's entry changes the file's drift section (not the defaults) where it names a field
            drift_section = document.get("drift")
            shared: dict[str, Any] = drift_section if isinstance(drift_section, dict) else {}
            for horizon, drift in body.items():
                where = f"drift_per_horizon.{horizon}"
                if horizon not in HORIZONS:
                    raise PolicyFileError(
                        f"{source}: section 'drift_per_horizon' names {horizon!r}, not a horizon; the horizons: "
                        f"{', '.join(HORIZONS)}"
                    )
                if not isinstance(drift, dict):
                    raise PolicyFileError(f"{source}: section '{where}' must be an object")
                values[section][horizon] = _dataclass(cls, shared | drift, source, where)
                _check_limits("drift", values[section][horizon], source, where)
        else:
            values[section] = _dataclass(cls, body, source, section)
            _check_limits(section, values[section], source, section)
    return name, PolicySettings(**values)


_Section = TypeVar("_Section")


def _dataclass(cls: type[_Section], body: object, source: str, where: str) -> _Section:
    if not isinstance(body, dict):
        raise PolicyFileError(f"{source}: section '{where}' must be an object")
    _check_keys(cls, body, f"{source}: section '{where}'")
    if "drift_min_severity" in body and isinstance(body["drift_min_severity"], str):
        try:
            body = body | {"drift_min_severity": Severity[body["drift_min_severity"].upper()]}
        except KeyError:
            raise PolicyFileError(
                f"{source}: '{where}.drift_min_severity' must be one of {', '.join(s.name for s in Severity)}"
            ) from None
    try:
        return TypeAdapter(cls).validate_python(body, strict=False)
    except ValidationError as error:
        raise PolicyFileError(describe_validation_error(error, source, f"policy section '{where}'")) from None


def load_policy(path: Path | str) -> tuple[str, PolicySettings]:
    """Read and validate a policy file."""
    path = Path(path)
    return parse_policy(read_json_object(path, PolicyFileError, "policy"), str(path))


def policy_document(name: str, settings: PolicySettings) -> dict[str, Any]:
    """The JSON document of ``settings`` (every field written out)."""
    document: dict[str, Any] = {"name": name}
    for section in SECTIONS:
        value = getattr(settings, section)
        if section == "drift_per_horizon":
            document[section] = {h: dataclasses.asdict(v) for h, v in value.items()}
        elif value is not None:
            document[section] = dataclasses.asdict(value)
    if "triggers" in document:
        document["triggers"]["drift_min_severity"] = settings.triggers.drift_min_severity.name
    as_json: dict[str, Any] = json.loads(json.dumps(document, default=float))
    return as_json


def policy_version(settings: PolicySettings) -> str:
    """The settings' content hash: the first 12 hex digits of the SHA-256 of their canonical JSON (the name
    left out: two files with the same thresholds are the same version)."""
    document = policy_document("", settings)
    del document["name"]
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- the policy in force


@dataclasses.dataclass(frozen=True)
class LoadedPolicy:
    """A policy file read and validated: its settings, and who it is (for the UI and the summaries)."""

    name: str
    path: Path
    settings: PolicySettings

    @property
    def version(self) -> str:
        return policy_version(self.settings)

    @property
    def shown_path(self) -> str:
        """The file relative to the repository when it lies inside it, else absolute."""
        try:
            return str(self.path.relative_to(PROJECT_ROOT))
        except ValueError:
            return str(self.path)

    def label(self) -> str:
        """``name (file, version)``: the metadata ``policy`` of every decision."""
        return f"{self.name} ({self.shown_path}, {self.version})"


def policy_path(policy_file: str | Path | None = None) -> Path:
    """The policy file to use: ``policy_file``, else ``$FOREX_POLICY_FILE``, else ``policies/default.json``.
    A relative path is taken from the working directory, or from the repository when it is not there
    (``policies/adr.json`` works from anywhere)."""
    chosen = policy_file or os.environ.get(POLICY_FILE_ENV) or DEFAULT_POLICY_FILE
    path = Path(chosen).expanduser()
    if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
        path = PROJECT_ROOT / path
    return path.absolute()


@read_once
def _read_policy(path: Path) -> LoadedPolicy:
    name, settings = load_policy(path)
    return LoadedPolicy(name, path, settings)


def load_policy_in_force(policy_file: str | Path | None = None) -> LoadedPolicy:
    """The policy of :func:`policy_path`, read once per process while the file is unchanged (an edited file
    is read again: a long-running sensor follows it). Errors are :class:`PolicyFileError` naming the file."""
    path = policy_path(policy_file)
    try:
        path.stat()  # a missing or unreadable file: one line naming it
    except FileNotFoundError:
        where = f" (${POLICY_FILE_ENV})" if not policy_file and os.environ.get(POLICY_FILE_ENV) else ""
        raise PolicyFileError(f"{path}: policy file not found{where}") from None
    except OSError as error:
        raise PolicyFileError(f"{path}: cannot read the policy file ({error.strerror or error})") from None
    return _read_policy(path)  # read again when the file's time, size or inode changed
