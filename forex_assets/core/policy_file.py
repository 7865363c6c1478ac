"""A policy as a settings file: every threshold of ``PolicySettings`` in one JSON document, so that
``forex-assets replay --policy A.json --policy B.json`` can put two policies side by side on the same days
before an operator changes a threshold.

The document mirrors ``PolicySettings``: top-level sections ``triggers``, ``drift``, ``drift_per_horizon``,
``performance``, ``approval``, ``rollback`` and ``levers``, each holding the fields of its dataclass (any
field left out keeps its default), plus an optional ``name``. Unknown sections or fields are errors that
name the file and the key. ``policies/`` in the repository holds the decision record's original rules
(``adr.json``) and the project's defaults (``default.json``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from forex_assets.core.forecasting.config import ConfigError, describe_validation_error, read_json_object
from forex_assets.core.monitoring.drift import DriftThresholds, Severity
from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.recalibration.levers import LeverSettings

SECTIONS = {
    "triggers": None,  # the dataclass types are read from PolicySettings' fields
    "drift": None,
    "drift_per_horizon": None,
    "performance": None,
    "approval": None,
    "rollback": None,
    "levers": LeverSettings,
}


class PolicyFileError(ConfigError):
    """An invalid policy file; the message names the file and the key."""


def _section_types() -> dict[str, type]:
    hints = {f.name: f.default for f in dataclasses.fields(PolicySettings) if f.name in SECTIONS}
    types = {name: type(default) for name, default in hints.items() if dataclasses.is_dataclass(default)}
    return types | {"levers": LeverSettings, "drift_per_horizon": DriftThresholds}


def _check_keys(cls: type, document: dict, where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(document) - known)
    if unknown:
        raise PolicyFileError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")


def parse_policy(document: dict, source: str = "<policy>") -> tuple[str, PolicySettings]:
    """(name, settings) from a policy document; errors name ``source`` and the key."""
    name = str(document.get("name") or Path(source).stem)
    unknown = sorted(set(document) - set(SECTIONS) - {"name", "description"})
    if unknown:
        raise PolicyFileError(
            f"{source}: unknown section(s) {', '.join(unknown)}; sections: {', '.join(sorted(SECTIONS))}"
        )
    types, values = _section_types(), {}
    for section, cls in types.items():
        if section not in document:
            continue
        body = document[section]
        if section == "drift_per_horizon":
            if not isinstance(body, dict):
                raise PolicyFileError(f"{source}: section 'drift_per_horizon' must map horizons to drift settings")
            values[section] = {h: _dataclass(cls, v, source, f"drift_per_horizon.{h}") for h, v in body.items()}
        else:
            values[section] = _dataclass(cls, body, source, section)
    return name, PolicySettings(**values)


def _dataclass(cls: type, body, source: str, where: str):
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


def policy_document(name: str, settings: PolicySettings) -> dict:
    """The JSON document of ``settings`` (every field written out)."""
    document = {"name": name}
    for section in SECTIONS:
        value = getattr(settings, section)
        if section == "drift_per_horizon":
            document[section] = {h: dataclasses.asdict(v) for h, v in value.items()}
        elif value is not None:
            document[section] = dataclasses.asdict(value)
    if "triggers" in document:
        document["triggers"]["drift_min_severity"] = settings.triggers.drift_min_severity.name
    return json.loads(json.dumps(document, default=float))
