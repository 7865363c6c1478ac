import os

# Nothing may download weights or data in tests.
os.environ["HF_HUB_OFFLINE"] = "1"
# No setting of the developer's shell reaches the tests (every one the project reads is named FOREX_*): not a real
# database, remote, policy file or cache, not an SMTP server that would receive the tests' alerts, not a download.
for _setting in [name for name in os.environ if name.startswith("FOREX_")]:
    os.environ.pop(_setting, None)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import functools  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from forex_assets.core.models.random_t5 import build_random_t5_checkpoint  # noqa: E402
from forex_assets.core.prices.sources import price_frame  # noqa: E402
from forex_assets_tests.real_cli import LENIENT_APPROVAL  # noqa: E402


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory):
    return build_random_t5_checkpoint(tmp_path_factory.mktemp("tiny_t5"), seed=3)


def random_walk_prices(n: int = 600, seed: int = 0, daily_vol: float = 0.006, level: float = 800.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = level * np.exp(np.cumsum(rng.normal(0.0, daily_vol, n)))
    return price_frame(pd.bdate_range("2020-01-01", periods=n), np.round(values, 2))


def policy_with(directory: Path | None, name: str = "test", **sections):
    """A ``policy`` resource reading a policy file written to ``directory`` (None: a temporary directory kept for
    the session): the default policy with the fields of ``sections`` changed, e.g.
    ``policy_with(tmp_path, approval={"min_coverage_95": 1.01})``."""
    from forex_assets.defs.resources import PolicyResource

    path = Path(directory or _policy_directory()) / f"{name}.json"
    path.write_text(json.dumps({"name": name, **sections}))
    return PolicyResource(policy_file=str(path))


@functools.cache
def _policy_directory() -> Path:
    return Path(tempfile.mkdtemp(prefix="forex-test-policies-"))


def lenient_approval():
    """A policy resource every candidate passes: for tests that need a deploy to happen."""
    return policy_with(None, "lenient", approval=LENIENT_APPROVAL)


@pytest.fixture
def forex_env(tmp_path):
    """(instance, resources, working_area): an ephemeral Dagster instance and every resource of the code
    location, with the working area (forecast history, config store, caches) under tmp_path."""
    import dagster as dg

    from forex_assets.core.working_area import SEED_CONFIGS_DIR
    from forex_assets.defs.resources import WorkingArea, code_location_resources

    working_area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    resources = code_location_resources(working_area)
    with dg.instance_for_test() as instance:
        yield instance, resources, working_area
