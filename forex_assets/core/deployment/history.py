"""Versions of the store and the deploy history kept in their commit messages (pure, no Dagster).

A commit message is a one-line summary a person reads, then git trailers that code reads::

    [7d] rollback: inference time 4x baseline (from 20261126T071502Z-3fa2c1d0 to 20261120T070000Z-1b2c3d4e)

    Forex-Action: rollback
    Forex-Horizon: 7d
    Forex-Baseline: {"rmse_clp": 8.1, ...}
    Forex-Rolled-Back-From: 20261126T071502Z-3fa2c1d0
    Forex-Restored: 20261120T070000Z-1b2c3d4e

Trailers with JSON values: ``Forex-Candidate-Metrics`` (the candidate's search-window metrics),
``Forex-Validation`` (before/after figures on the validation window), ``Forex-Baseline`` (the validation
baseline the deployed configuration carries). They are ordinary git trailers: ``git log
--format='%(trailers)'`` and ``git interpret-trailers --parse`` read them too.

Stores written before the trailers have the same summary line and, below it, ``candidate metrics: {json}``,
``validation metrics: {json}`` and ``validation baseline: {json}`` lines; a message without Forex trailers
is read in that format, so their history still parses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import git

from forex_assets.core.deployment.git_repo import message_text
from forex_assets.core.forecasting.config import ValidationBaseline

ACTION, HORIZON = "Forex-Action", "Forex-Horizon"
CANDIDATE_METRICS, VALIDATION, BASELINE = "Forex-Candidate-Metrics", "Forex-Validation", "Forex-Baseline"
ROLLED_BACK_FROM, RESTORED = "Forex-Rolled-Back-From", "Forex-Restored"
# the line names of the earlier format, which message_fields() still returns
LEGACY_FIELDS = {
    CANDIDATE_METRICS: "candidate metrics",
    VALIDATION: "validation metrics",
    BASELINE: "validation baseline",
}

_TRAILER = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*): ?(.*)")
_SUMMARY = re.compile(r"\[(?P<horizon>[^\]\s]+)\] (?P<action>[\w-]+): ")
_LEGACY_ROLLBACK = re.compile(r"\(from (\S+) to (\S+)\)$")


@dataclass(frozen=True)
class CommitRecord:
    """What one commit did, read from its message."""

    action: str | None  # initialise, deploy, rollback, repair, baseline (replay) ...; None: not recognised
    horizon: str | None  # None: the whole store (initialise, repair of the index)
    candidate_metrics: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    rolled_back_from: str | None = None  # rollback: the version that was replaced
    restored: str | None = None  # rollback: the version restored
    structured: bool = False  # read from trailers; False: the earlier free-text format


@dataclass(frozen=True)
class Version:
    id: str  # readable: 20261126T071502Z-3fa2c1d0
    commit: str  # full sha
    committed_at: datetime
    message: str

    @property
    def summary(self) -> str:
        return self.message.splitlines()[0] if self.message else ""

    @cached_property
    def record(self) -> CommitRecord:
        return parse_message(self.message)


def version_of(commit: git.Commit) -> Version:
    at = datetime.fromtimestamp(commit.committed_date, tz=UTC)
    return Version(f"{at:%Y%m%dT%H%M%SZ}-{commit.hexsha[:8]}", commit.hexsha, at, message_text(commit).strip())


def commit_of(version: str) -> str:
    """The commit part of a version id (``20261126T071502Z-3fa2c1d0`` -> ``3fa2c1d0``); anything else as given."""
    return version.rsplit("-", 1)[-1] if "-" in version else version


# ---------------------------------------------------------------------------------- writing


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, default=float)


def with_trailers(
    summary: str,
    action: str,
    horizon: str | None = None,
    *,
    metrics: dict[str, Any] | None = None,
    validation: dict[str, Any] | None = None,
    baseline: ValidationBaseline | None = None,
    rolled_back_from: str | None = None,
    restored: str | None = None,
) -> str:
    """``summary``, a blank line, then the Forex trailers of what is given."""
    values = {
        ACTION: action,
        HORIZON: horizon,
        CANDIDATE_METRICS: _json(metrics) if metrics else None,
        VALIDATION: _json(validation) if validation else None,
        BASELINE: baseline.model_dump_json(exclude_none=True) if baseline is not None else None,
        ROLLED_BACK_FROM: rolled_back_from,
        RESTORED: restored,
    }
    lines = [f"{key}: {value}" for key, value in values.items() if value is not None]
    return f"{summary}\n\n" + "\n".join(lines) + "\n"


def commit_message(action: str, reason: str, horizon: str, **trailer_values: Any) -> str:
    """``[h] action: reason`` and the trailers; a rollback (``restored`` given) names both versions in the
    summary too."""
    if trailer_values.get("restored") is not None:
        reason = f"{reason} (from {trailer_values.get('rolled_back_from') or 'none'} to {trailer_values['restored']})"
    return with_trailers(f"[{horizon}] {action}: {reason}", action, horizon, **trailer_values)


# ---------------------------------------------------------------------------------- reading


def trailers(message: str) -> dict[str, str]:
    """The git trailers of a message: its last paragraph, when that is not the summary and every line of
    it is ``Token: value`` (what ``git interpret-trailers --parse`` reads in the messages we write)."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", message.strip()) if p.strip()]
    if len(paragraphs) < 2:
        return {}
    matches = [_TRAILER.fullmatch(line.rstrip()) for line in paragraphs[-1].splitlines()]
    if not all(matches):
        return {}
    return {m[1]: m[2] for m in matches if m is not None}


def _loads(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def parse_message(message: str) -> CommitRecord:
    found = trailers(message)
    if ACTION in found:
        return CommitRecord(
            action=found[ACTION],
            horizon=found.get(HORIZON),
            candidate_metrics=_loads(found.get(CANDIDATE_METRICS)),
            validation=_loads(found.get(VALIDATION)),
            baseline=_loads(found.get(BASELINE)),
            rolled_back_from=found.get(ROLLED_BACK_FROM),
            restored=found.get(RESTORED),
            structured=True,
        )
    return _parse_legacy(message)


def _parse_legacy(message: str) -> CommitRecord:
    """A message written before the trailers: ``[h] action: reason`` then ``name: {json}`` lines."""
    summary = message.strip().splitlines()[0] if message.strip() else ""
    fields = _legacy_fields(message)
    match = _SUMMARY.match(summary)
    if match:
        action, horizon = match["action"], match["horizon"]
    else:  # "initialise configuration store from ...", "repair: commit changes staged ..."
        action, horizon = (summary.split()[0].rstrip(":") if summary else None), None
    rolled_back_from = restored = None
    if action == "rollback" and (target := _LEGACY_ROLLBACK.search(summary)):
        rolled_back_from, restored = target.group(1), target.group(2)
    return CommitRecord(
        action=action,
        horizon=horizon,
        candidate_metrics=fields.get("candidate metrics"),
        validation=fields.get("validation metrics"),
        baseline=fields.get("validation baseline"),
        rolled_back_from=rolled_back_from,
        restored=restored,
    )


def _legacy_fields(message: str) -> dict[str, dict[str, Any]]:
    fields = {}
    for line in message.splitlines()[1:]:
        name, _, value = line.partition(": ")
        if value.startswith("{"):
            try:
                fields[name] = json.loads(value)
            except json.JSONDecodeError:
                continue
    return fields


def message_fields(message: str) -> dict[str, dict[str, Any]]:
    """The JSON fields of a commit message under their earlier names ("candidate metrics", "validation
    metrics", "validation baseline"), from its trailers or, in an earlier store, its ``name: {json}`` lines."""
    record = parse_message(message)
    if not record.structured:
        return _legacy_fields(message)
    values = {CANDIDATE_METRICS: record.candidate_metrics, VALIDATION: record.validation, BASELINE: record.baseline}
    return {LEGACY_FIELDS[key]: value for key, value in values.items() if value is not None}


INITIALISE_SUMMARY = "initialise configuration store from "


def is_store_root(message: str) -> bool:
    """Whether a root commit (one without a parent) is a configuration store's first commit: every store this
    code ever made starts with ``initialise configuration store from <seeds>`` (with its trailers since they
    exist)."""
    record = parse_message(message)
    return record.action == "initialise" and message.strip().startswith(INITIALISE_SUMMARY)


def rollback_target(text: str) -> str | None:
    """The version a rollback commit restored, None for other commits. ``text`` is the commit message or
    just its summary ("[h] rollback: ... (from A to B)" -> B)."""
    record = parse_message(text)
    return record.restored if record.action == "rollback" else None
