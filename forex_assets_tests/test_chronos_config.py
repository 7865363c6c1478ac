import json

import pytest

from forex_assets.core.forecasting.config import ConfigError, config_path, load_config, parse_config
from forex_assets.core.horizons import HORIZONS
from forex_assets.core.working_area import SEED_CONFIGS_DIR


@pytest.mark.parametrize("horizon", HORIZONS)
def test_shipped_configurations_are_valid(horizon):
    config = load_config(config_path(SEED_CONFIGS_DIR, horizon), expected_horizon=horizon)
    assert config.horizon == horizon
    assert config.checkpoint == "bundled:usdclp-chronos2-mini"


def _write(tmp_path, document, name="chronos_7d.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


BASE = {"horizon": "7d", "checkpoint": "bundled:usdclp-chronos2-mini", "family": "chronos2", "context_length": 180}


def test_invalid_field_names_file_and_field(tmp_path):
    path = _write(tmp_path, BASE | {"context_length": 4})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    assert "field 'context_length'" in str(caught.value)


def test_unknown_field_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="field 'contxt_length': Extra inputs are not permitted"):
        load_config(_write(tmp_path, BASE | {"contxt_length": 90}))


def test_sampling_parameters_only_for_t5():
    with pytest.raises(ConfigError, match="num_samples, temperature only apply to the sampling family"):
        parse_config(BASE | {"num_samples": 100, "temperature": 1.0})


def test_t5_needs_sampling_parameters():
    with pytest.raises(ConfigError, match="needs num_samples, temperature"):
        parse_config(BASE | {"family": "chronos-t5"})
    config = parse_config(BASE | {"family": "chronos-t5", "num_samples": 50, "temperature": 0.8})
    assert config.sampling_kwargs() == {"num_samples": 50, "temperature": 0.8}


def test_horizon_must_match_file(tmp_path):
    path = _write(tmp_path, BASE, name="chronos_30d.json")
    with pytest.raises(ConfigError, match="field 'horizon': is '7d' but the file is for horizon '30d'"):
        load_config(path, expected_horizon="30d")


def test_broken_json_names_position(tmp_path):
    path = _write(tmp_path, '{"horizon": "7d",')
    with pytest.raises(ConfigError, match=r"chronos_7d.json: not valid JSON \(line 1"):
        load_config(path)


def test_context_lengths_with_ensemble():
    config = parse_config(BASE | {"ensemble_context_lengths": [90, 180, 270]})
    assert config.context_lengths == (180, 90, 270)
    assert config.longest_context == 270


def test_round_trip_through_json():
    config = parse_config(BASE | {"preprocessing": "log"})
    assert parse_config(json.loads(config.to_json())) == config
