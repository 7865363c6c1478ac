"""The ``policy`` resource: the recalibration policy in force, read from one policy file.

Its only setting is the file (``policies/*.json``, ``core/policy_file.py``); every threshold is a field of
``PolicySettings`` with its default declared once in ``core/``. Without a file set, ``$FOREX_POLICY_FILE``,
else ``policies/default.json``. The same reader serves ``forex-assets run --policy`` and the replay, so the
policy compared with ``forex-assets replay --policy`` is the one deployed.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from forex_assets.core.policy_file import POLICY_FILE_ENV, LoadedPolicy, load_policy_in_force
from forex_assets.core.policy_settings import PolicySettings


class PolicyResource(dg.ConfigurableResource):
    """Every threshold of the policy (triggers, drift, performance, approval, rollback, FX levers), from one
    policy file. The decisions carry its identity as metadata ``policy``: name (file, version hash)."""

    policy_file: str | None = Field(
        default=None,
        description=f"a policy file (policies/*.json); unset: ${POLICY_FILE_ENV}, else policies/default.json",
    )

    def loaded(self) -> LoadedPolicy:
        """The policy file read and validated (once per process while it is unchanged); a PolicyFileError
        naming the file and the key when it is invalid."""
        chosen = self.policy_file
        if isinstance(chosen, dg.EnvVar):  # used outside a run (make run's decisions): Dagster did not resolve it
            chosen = chosen.get_value()
        return load_policy_in_force(chosen)

    def settings(self) -> PolicySettings:
        return self.loaded().settings

    def label(self) -> str:
        """``name (file, version)``: what the UI shows as metadata ``policy``."""
        return self.loaded().label()


def policy_resource() -> PolicyResource:
    """The code location's policy resource: ``policy_file`` from ``$FOREX_POLICY_FILE`` when it is set (shown
    as that environment variable in the UI), else the default file."""
    if os.environ.get(POLICY_FILE_ENV):
        return PolicyResource(policy_file=dg.EnvVar(POLICY_FILE_ENV))
    return PolicyResource()
