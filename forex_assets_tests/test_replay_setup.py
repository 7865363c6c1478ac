"""The replay's set-up, written once (``core/replay/setup.py``) for `forex-assets replay` and ``replay_job``: the
defaults, the policies, the injected drifts, and every refusal before a directory is made."""

import json

import pandas as pd
import pytest

from forex_assets.core.policy_settings import PolicySettings
from forex_assets.core.prices.sources import PriceSourceError, synthetic_prices
from forex_assets.core.prices.synthetic import InjectedDrift, RegimeChange
from forex_assets.core.replay.engine import ReplayError
from forex_assets.core.replay.setup import ReplayOptions, set_up_replay

PRICES = synthetic_prices()  # the synthetic default: 2014-01-01 .. 2026-10-30, its regime change 30 days before the end
LAST = pd.Timestamp(PRICES["date"].iloc[-1])


def _set_up(tmp_path, options: ReplayOptions, load=lambda: PRICES, synthetic: bool = True, **kwargs):
    return set_up_replay(options, load, "synthetic test", synthetic, tmp_path / "out", **kwargs)


def test_the_defaults_are_the_last_six_months_of_the_prices_and_the_policy_in_force(tmp_path, monkeypatch):
    monkeypatch.delenv("FOREX_POLICY_FILE", raising=False)
    setup = _set_up(tmp_path, ReplayOptions(horizons=("7d", "7d", "30d")))
    assert setup.settings.end == LAST.date()
    assert setup.settings.start == (LAST - pd.DateOffset(months=6)).date()
    assert setup.settings.horizons == ("7d", "30d")
    # the synthetic series' known regime change counts as an injected drift
    assert setup.settings.injected_drifts == (
        pd.Timestamp(PRICES["date"].iloc[-RegimeChange().observations_before_end]),
    )
    assert setup.policies == {"default": PolicySettings()} and not setup.compared
    assert setup.report_dirs == {"default": tmp_path / "out"} and (tmp_path / "out").is_dir()
    assert setup.provider.visible(LAST)["date"].iloc[-1] == LAST


def test_the_default_policy_file_is_the_callers_and_policy_files_replace_it(tmp_path):
    cautious = tmp_path / "cautious.json"
    cautious.write_text(json.dumps({"name": "cautious", "triggers": {"schedule_days": 28}}))
    eager = tmp_path / "eager.json"
    eager.write_text(json.dumps({"name": "eager", "triggers": {"schedule_days": 7}}))
    options = ReplayOptions(start=LAST.date(), end=LAST.date(), horizons=("7d",))
    setup = _set_up(tmp_path, options, default_policy_file=cautious)  # replay_job: the policy resource's file
    assert list(setup.policies) == ["cautious"] and setup.policies["cautious"].triggers.schedule_days == 28
    both = _set_up(tmp_path, ReplayOptions(start=LAST.date(), end=LAST.date(), policy_files=(eager, cautious)))
    assert list(both.policies) == ["eager", "cautious"] and both.compared
    assert both.report_dirs == {"eager": tmp_path / "out" / "eager", "cautious": tmp_path / "out" / "cautious"}


def test_an_injected_drift_is_added_to_the_synthetic_prices(tmp_path):
    onset = pd.Timestamp(PRICES["date"].iloc[-60])
    setup = _set_up(tmp_path, ReplayOptions(horizons=("7d",), inject_drift=(InjectedDrift(onset, 3.0),)))
    assert onset in setup.settings.injected_drifts and len(setup.settings.injected_drifts) == 2
    changed = setup.provider.prices["usdclp"].to_numpy() != PRICES["usdclp"].to_numpy()
    assert changed[PRICES["date"] >= onset].any() and not changed[PRICES["date"] < onset].any()


@pytest.mark.parametrize(
    ("options", "load", "synthetic", "message"),
    [
        (ReplayOptions(inject_drift=(InjectedDrift(LAST, 3.0),)), None, False, "--inject-drift is for the synthetic"),
        (ReplayOptions(inject_drift=(InjectedDrift(pd.Timestamp("2030-01-02"), 3.0),)), None, True, "the onset must"),
        (ReplayOptions(policy_files=("missing.json",)), None, True, "missing.json: policy file not found"),
        (ReplayOptions(), "fails", True, "the price source failed: the server said no"),
        (ReplayOptions(start=pd.Timestamp("2030-01-01").date()), None, True, "2030-01-01..2026-10-30 is empty"),
        (ReplayOptions(start=pd.Timestamp("2014-02-03").date()), None, True, "too little history before 2014-02-03"),
    ],
)
def test_what_is_wrong_is_named_before_any_directory_is_made(tmp_path, options, load, synthetic, message):
    def failing():
        raise PriceSourceError("the server said no")

    with pytest.raises(ReplayError, match=message):
        _set_up(tmp_path, options, failing if load == "fails" else (lambda: PRICES), synthetic)
    assert not (tmp_path / "out").exists()
