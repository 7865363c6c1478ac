import re

import dagster as dg
import pandas as pd
import pytest

from forex_assets.cli.run import ALL_ASSETS, materialize_selection
from forex_assets.core.forecasting.history import ForecastHistory
from forex_assets.core.working_area import SEED_CONFIGS_DIR
from forex_assets.defs.forecasting.assets import forecast
from forex_assets.defs.partitions import series_key
from forex_assets.defs.prices.assets import pair_prices
from forex_assets.defs.resources import (
    PriceSource,
    WorkingArea,
    code_location_resources,
)
from forex_assets_tests.conftest import random_walk_prices


@pytest.fixture
def working_area(tmp_path):
    return WorkingArea(path=str(tmp_path / "area"), configs_dir=str(SEED_CONFIGS_DIR))


def _materialize(instance, resources, partition):
    resources = code_location_resources(**resources)
    first = dg.materialize(
        [pair_prices], partition_key="USDCLP", instance=instance, resources=resources, raise_on_error=False
    )
    if not first.success:
        return first, None
    return first, materialize_selection(instance, resources, [forecast], partition)


def test_prices_and_one_forecast_partition(working_area, tmp_path):
    resources = {"price_source": PriceSource(), "working_area": working_area}
    with dg.instance_for_test() as instance:
        prices_run, forecast_run = _materialize(instance, resources, "30d")
        assert prices_run.success and forecast_run.success
        table = forecast_run.output_for_node("forecast")
        assert len(table) == 30
        assert (table["q0_025"] <= table["q0_5"]).all() and (table["q0_5"] <= table["q0_975"]).all()
        event = instance.get_latest_materialization_event(dg.AssetKey("forecast"))
        assert event.dagster_event.partition == "30d|USDCLP"
        metadata = event.asset_materialization.metadata
        assert metadata["origin_date"].value == "2026-10-30"
        shown_seconds = metadata["inference_seconds"].value
        assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", metadata["config_version"].value)
        assert "data:image/png;base64," in metadata["fan_chart"].value

    history = ForecastHistory(tmp_path / "area" / "forecast_history.sqlite")
    runs = history.runs("30d")
    assert runs["origin_date"].tolist() == [pd.Timestamp("2026-10-30")]
    # the time shown in the UI is the one recorded with the forecast (a bundled-model forecast: well under 5 s)
    assert runs["inference_seconds"].tolist() == [pytest.approx(shown_seconds, abs=5e-4)]
    assert 0 < shown_seconds < 5.0
    assert runs["config_version"].tolist() == [metadata["config_version"].value]
    assert len(history.steps("30d")) == 30
    assert history.steps("30d")["target_date"].iloc[0] == pd.Timestamp("2026-11-02")  # next business day


def test_bad_prices_fail_the_run_and_nothing_downstream_materializes(working_area, tmp_path):
    prices = random_walk_prices(400)
    prices.loc[100, "date"] = pd.Timestamp("2020-05-23")  # a Saturday
    csv = tmp_path / "bad.csv"
    prices.assign(date=prices["date"].dt.strftime("%Y-%m-%d")).to_csv(csv, index=False)
    resources = code_location_resources(working_area, PriceSource(source="csv", csv_path=str(csv)))
    with dg.instance_for_test() as instance:
        prices_run, forecast_run = _materialize(instance, resources, "7d")
        assert not prices_run.success and forecast_run is None
        failure = next(e for e in prices_run.all_events if e.is_step_failure)
        message = failure.step_failure_data.user_failure_data.description
        assert "rule 'no_weekends'" in message and "line 102 (2020-05-23 Sat" in message
        assert instance.get_latest_materialization_event(dg.AssetKey("pair_prices")) is None
        # forecast cannot run on prices that never materialized
        attempt = dg.materialize(
            ALL_ASSETS,
            selection=[forecast],
            partition_key=series_key("7d"),
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )
        assert not attempt.success
    assert (
        not (tmp_path / "area" / "forecast_history.sqlite").exists()
        or ForecastHistory(tmp_path / "area" / "forecast_history.sqlite").runs().empty
    )


def test_csv_source_forecasts_from_its_last_date(working_area, tmp_path):
    prices = random_walk_prices(700)
    csv = tmp_path / "prices.csv"
    prices.rename(columns={"date": "fecha", "usdclp": "valor"}).to_csv(csv, index=False)
    source = PriceSource(source="csv", csv_path=str(csv), csv_date_column="fecha", csv_value_column="valor")
    with dg.instance_for_test() as instance:
        _, run = _materialize(instance, {"price_source": source, "working_area": working_area}, "7d")
        assert run.success
    runs = ForecastHistory(tmp_path / "area" / "forecast_history.sqlite").runs("7d")
    assert runs["origin_date"].iloc[0] == prices["date"].iloc[-1]
    assert runs["last_price"].iloc[0] == pytest.approx(prices["usdclp"].iloc[-1])


def test_the_ui_figures_name_the_pair_they_show():
    """The prices and forecast figures of the UI's metadata name the pair and its unit (they said USD/CLP for
    every pair)."""
    from forex_assets.core.plots import forecast_fan_figure, price_history_figure
    from forex_assets.core.working_area import pair_label, pair_unit

    prices = random_walk_prices(200, level=1.08)
    last, start = prices["usdclp"].iloc[-1], prices["date"].iloc[-1] + pd.offsets.BDay(1)
    quantiles = {q: [last] * 7 for q in ("q0_025", "q0_1", "q0_5", "q0_9", "q0_975")}
    table = pd.DataFrame({"target_date": pd.bdate_range(start, periods=7), **quantiles})
    fan = forecast_fan_figure(prices, table, "7d", label=pair_label("EURUSD"), unit=pair_unit("EURUSD")).axes[0]
    assert (fan.get_title(), fan.get_ylabel()) == ("EUR/USD forecast, 7d", "USD per EUR")
    history = price_history_figure(prices, label=pair_label("USDBRL"), unit=pair_unit("USDBRL")).axes[0]
    assert (history.get_title(), history.get_ylabel()) == ("USD/BRL", "BRL per USD")


def test_figures_are_palette_pngs_smaller_than_the_rendering():
    """Every figure is stored in Dagster's event log with each materialization: a 256-colour palette PNG, at
    most half the bytes of matplotlib's RGBA rendering of the same figure."""
    import base64
    import io

    from PIL import Image

    from forex_assets.core.plots import figure_png_base64, price_history_figure

    prices = random_walk_prices(400)
    rendering = io.BytesIO()
    price_history_figure(prices).savefig(rendering, format="png", dpi=90, bbox_inches="tight")
    stored = base64.b64decode(figure_png_base64(price_history_figure(prices)))
    with Image.open(io.BytesIO(stored)) as image, Image.open(rendering) as rendered:
        assert image.mode == "P" and image.size == rendered.size
        assert len(image.getcolors(256) or []) > 2  # the lines and the grid survive, not a blank image
    assert len(stored) <= 0.5 * len(rendering.getvalue())
