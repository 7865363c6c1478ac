"""A deploy checks what it was validated against (issue 14, item 3); a rollback to the content already deployed
is a clear refusal that leaves nothing behind (item 7). Real stores (git)."""

from dataclasses import asdict

import pytest

from forex_assets.core.deployment.config_store import (
    AlreadyOnConfigurationError,
    ConfigStore,
    ConfigStoreError,
    StaleValidationError,
)
from forex_assets.core.deployment.deploy import deploy_from_report
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets_tests.test_validation import GOOD

BASE = {"horizon": "7d", "checkpoint": "bundled:usdclp-chronos2-mini", "family": "chronos2"}


def _report(context_length: int, validated_against: str | None) -> dict:
    """What validation_report hands deployed_config: the candidate, its metrics and the deployed version it was
    validated against."""
    report = {
        "horizon": "7d",
        "candidate": BASE | {"context_length": context_length},
        "metrics": asdict(GOOD),
        "validation_window": ["2026-08-03", "2026-09-11"],
        "candidate_window_metrics": {"rmse_clp": 9.2},
    }
    return report | ({"deployed_version": validated_against} if validated_against is not None else {})


def _state(store: ConfigStore) -> tuple:
    """Everything a refused operation must leave as it was: HEAD, the files, the backups."""
    return (
        store.repo.head.commit.hexsha,
        sorted(p.name for p in store.root.iterdir()),
        sorted(p.name for p in (store.root / "backups").glob("*")),
        store.repo.is_dirty(untracked_files=True),
    )


@pytest.fixture
def store(tmp_path):
    return ConfigStore(tmp_path / "store", seed_dir=SEED_CONFIGS_DIR)


def test_a_deploy_validated_against_a_version_no_longer_deployed_is_refused(store):
    v1 = store.current_version("7d")
    _, v2, _ = deploy_from_report(store, _report(90, v1.id))
    candidate = _report(270, v2.id)  # validated against v2 ...
    v3 = store.rollback("7d", to_version=v1.id, reason="operator")  # ... then v2 is rolled back
    before = _state(store)
    with pytest.raises(StaleValidationError) as refused:
        deploy_from_report(store, candidate)
    assert str(refused.value) == (
        f"7d: deploy refused: the candidate was validated against version {v2.id}, but the deployed version is "
        f"now {v3.id} ([7d] rollback: operator (from {v2.id} to {v1.id})); deploying would undo that change "
        "unvalidated: validate the candidate again against the deployed version"
    )
    assert isinstance(refused.value, ConfigStoreError)  # what deployed_config turns into a failed run (an alert)
    assert _state(store) == before and store.read("7d").context_length == 180  # the rollback stands

    # validated again, against the version deployed now: it deploys
    previous, v4, _ = deploy_from_report(store, _report(270, v3.id))
    assert (previous, store.current_version("7d"), store.read("7d").context_length) == (v3, v4, 270)


def test_a_deploy_validated_against_another_deploy_is_refused(store):
    v1 = store.current_version("7d")
    first, second = _report(90, v1.id), _report(270, v1.id)  # two candidates validated against v1
    _, v2, _ = deploy_from_report(store, first)
    with pytest.raises(
        StaleValidationError, match=f"validated against version {v1.id}, but the deployed version is now {v2.id}"
    ):
        deploy_from_report(store, second)
    assert store.current_version("7d") == v2


def test_a_report_that_does_not_say_or_names_an_unknown_version_is_refused(store):
    before = _state(store)
    with pytest.raises(StaleValidationError) as missing:
        deploy_from_report(store, _report(90, None))
    assert str(missing.value) == (
        "7d: deploy refused: the validation report does not say which deployed version the candidate was "
        "validated against (no deployed_version); validate the candidate again"
    )
    current = store.current_version("7d").id
    with pytest.raises(StaleValidationError) as unknown:
        deploy_from_report(store, _report(90, "20990101T000000Z-deadbeef"))
    assert str(unknown.value) == (
        "7d: deploy refused: the candidate was validated against version 20990101T000000Z-deadbeef, which this "
        f"store does not know (the deployed version is {current}); validate the candidate again"
    )
    assert _state(store) == before


def test_deploying_a_report_again_changes_nothing(store):
    v1 = store.current_version("7d")
    report = _report(90, v1.id)
    _, v2, _ = deploy_from_report(store, report)
    before = _state(store)
    previous, again, _ = deploy_from_report(store, report)  # a re-run of deployed_config, say
    assert previous == again == v2 and _state(store) == before


def test_rolling_back_to_the_configuration_already_deployed_is_refused_cleanly(store):
    v1 = store.current_version("7d")
    _, v2, _ = deploy_from_report(store, _report(90, v1.id))
    v3 = store.rollback("7d", reason="operator")  # to v1's content
    before = _state(store)
    with pytest.raises(AlreadyOnConfigurationError) as same_content:
        store.rollback("7d", to_version=v1.id, reason="operator, twice")
    assert str(same_content.value) == (
        f"7d is already on that configuration (version {v1.id}): the deployed version {v3.id} has the same "
        "content; nothing to roll back"
    )
    with pytest.raises(AlreadyOnConfigurationError) as itself:
        store.rollback("7d", to_version=v3.id)
    assert str(itself.value) == (
        f"7d is already on that configuration (version {v3.id}): it is the deployed version; nothing to roll back"
    )
    assert _state(store) == before  # no commit, no stray backup file
    assert store.rollback("7d", reason="previous is v2").summary.endswith(f"(from {v3.id} to {v2.id})")
    assert store.read("7d").context_length == 90


def test_rolling_back_a_never_deployed_seed_to_itself_is_refused(store):
    seed = store.current_version("30d")
    with pytest.raises(AlreadyOnConfigurationError, match=rf"\(version {seed.id}\): it is the deployed version"):
        store.rollback("30d", to_version=seed.id)
    assert not (store.root / "backups").exists() and not store.repo.is_dirty(untracked_files=True)
