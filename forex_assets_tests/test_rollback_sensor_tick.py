"""One rollback_sensor tick opens the config store for writing once, and judges a deploy's health on the prices
the instance stored (pair_prices), not on the price source."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from forex_assets.core.deployment import config_store as config_store_module
from forex_assets.core.deployment.config_store import ConfigStore, ConfigStoreError
from forex_assets.core.forecasting.config import ValidationBaseline, parse_config
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.pairs import load_pairs
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets.defs.deployment.sensors import health_prices, rollback_sensor
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.prices.stored import stored_prices
from forex_assets.defs.resources import PriceSource, WorkingArea

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
SHORT_SERIES = PriceSource(synthetic_start="2024-01-01", synthetic_end="2026-06-30")


@pytest.fixture
def writer_opens(monkeypatch) -> list[str]:
    """The directory of every writer's open of a config store from now on (read-only opens not counted); the
    opens themselves are the real ones."""
    opened: list[str] = []
    real_init = ConfigStore.__init__

    def counting_init(self, root, *args, **kwargs):
        if not kwargs.get("read_only", False):
            opened.append(str(root))
        real_init(self, root, *args, **kwargs)

    monkeypatch.setattr(config_store_module.ConfigStore, "__init__", counting_init)
    return opened


def _deploy(working_area: WorkingArea, horizon: str = "7d"):
    """A watched deploy of the horizon (the seed with a baseline), as a validated deploy leaves it."""
    store = working_area.config_store()
    config = parse_config(store.read(horizon).model_dump() | {"context_length": 96})
    baselined = config.model_copy(update={"baseline": ValidationBaseline(rmse_clp=20.0, inference_seconds=5.0)})
    return store.deploy(baselined, reason="test deploy")


def _tick(instance, resources):
    context = dg.build_sensor_context(instance=instance, resources=resources)
    return rollback_sensor.evaluate_tick(context)


def test_one_tick_opens_each_pairs_config_store_for_writing_once(forex_env, writer_opens):
    instance, resources, working_area = forex_env
    for horizon in HORIZONS:  # every horizon watched: each asks the store for its deploy and its configuration
        _deploy(working_area, horizon)
    assert dg.materialize(
        [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET
    ).success
    writer_opens.clear()

    assert _tick(instance, resources).run_requests == []  # healthy: no forecast has run or failed since

    # one open per pair (was 1 + one per horizon, 5, before), each pair's own store
    layout = working_area.layout
    assert writer_opens == [str(layout.config_store_for(pair)) for pair in load_pairs().codes]


def test_the_health_is_judged_on_the_stored_prices_not_the_price_source(forex_env, tmp_path):
    instance, resources, working_area = forex_env
    resources = resources | {"price_source": SHORT_SERIES}
    assert dg.materialize(
        [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET
    ).success
    _deploy(working_area)
    unreachable = PriceSource(source="csv", csv_path=str(tmp_path / "gone.csv"))  # any fetch fails
    with pytest.raises(Exception, match="gone.csv"):
        unreachable.load()

    tick = _tick(instance, resources | {"price_source": unreachable})

    assert tick.run_requests == []  # the deploy was judged (its health computed) without the price source
    stored = health_prices(instance, unreachable)
    pd.testing.assert_frame_equal(stored, SHORT_SERIES.load())
    assert stored["date"].iloc[-1] == pd.Timestamp("2026-06-30")  # the stored series, not the default source's


def test_never_materialized_prices_come_from_the_price_source_with_a_warning(forex_env, caplog):
    instance, _, _ = forex_env
    assert stored_prices(instance) is None
    with caplog.at_level(logging.WARNING):
        prices = health_prices(instance, SHORT_SERIES, log=logging.getLogger("test"))
    pd.testing.assert_frame_equal(prices, SHORT_SERIES.load())
    assert (
        "pair_prices[USDCLP] not read, it was never materialized in this instance; prices from synthetic:"
        in caplog.text
    )


def test_a_stored_value_that_cannot_be_read_falls_back_to_the_price_source(forex_env, caplog):
    instance, resources, _ = forex_env
    assert dg.materialize(
        [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, run_config=QUIET
    ).success
    stored_file = next((p for p in _storage_files(instance) if p.parts[-2:] == ("pair_prices", "USDCLP")), None)
    assert stored_file is not None
    stored_file.unlink()  # removed by hand
    with caplog.at_level(logging.WARNING):
        prices = health_prices(instance, SHORT_SERIES, log=logging.getLogger("test"))
    assert prices["date"].iloc[-1] == pd.Timestamp("2026-06-30")
    assert "its stored value could not be read (FileNotFoundError" in caplog.text


def _storage_files(instance: dg.DagsterInstance):
    return [p for p in Path(instance.storage_directory()).rglob("*") if p.is_file()]


def test_the_working_area_opens_its_store_once_and_again_only_for_another_store(tmp_path, writer_opens):
    area = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))
    first = area.config_store()
    assert area.config_store() is first and area.deployed_config("7d")[1] == first.current_version("7d").id
    assert len(writer_opens) == 1
    other = WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))  # a run's own instance
    assert other.config_store() is not first and len(writer_opens) == 2


def _snapshot(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def test_a_read_only_open_takes_no_lock_fetches_nothing_and_writes_nothing(tmp_path):
    store = ConfigStore(tmp_path / "store", seed_dir=SEED_CONFIGS_DIR)
    seed = store.read("7d")
    hand_edit = seed.model_copy(update={"context_length": 33}).to_json()
    store.path("7d").write_text(hand_edit)  # what a writer's open would put back
    unreachable = str(tmp_path / "no-such-remote.git")
    before = _snapshot(store.root)

    reader = ConfigStore.for_reading(store.root, remote=unreachable)

    assert reader.warnings == []  # the remote was not even tried
    assert [(f.path, f.horizon) for f in reader.damage] == [("chronos_7d.json", "7d")]
    assert reader.read("7d") == seed  # the committed configuration is the live one
    with pytest.raises(ConfigStoreError, match="opened read-only; nothing was changed"):
        reader.deploy(seed.model_copy(update={"context_length": 120}), reason="refused")
    assert _snapshot(store.root) == before  # no lock file, no repair, no log, no index refresh
    assert store.path("7d").read_text() == hand_edit

    fetching = ConfigStore.for_reading(store.root, remote=unreachable, fetch_remote=True)  # the CLI's open
    assert len(fetching.warnings) == 1 and "no-such-remote.git" in fetching.warnings[0]
