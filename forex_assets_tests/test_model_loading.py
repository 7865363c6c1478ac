import pytest
from chronos import Chronos2Pipeline, ChronosPipeline

from forex_assets.core.models.loading import ModelLoadError, checkpoint_identity, load_pipeline, resolve_checkpoint

BUNDLED = "bundled:usdclp-chronos2-mini"


def test_bundled_model_loads_float32_on_cpu_once_per_process():
    pipeline = load_pipeline(BUNDLED)
    assert isinstance(pipeline, Chronos2Pipeline)
    parameter = next(pipeline.model.parameters())
    assert str(parameter.dtype) == "torch.float32" and parameter.device.type == "cpu"
    assert load_pipeline(BUNDLED) is pipeline  # cached
    assert 0.025 in pipeline.quantiles and 0.975 in pipeline.quantiles  # real 95 % interval
    n_parameters = sum(p.numel() for p in pipeline.model.parameters())
    assert 100_000 < n_parameters < 5_000_000


def test_tiny_random_t5_loads_through_the_same_entry_point(tiny_t5_dir):
    pipeline = load_pipeline(str(tiny_t5_dir))
    assert isinstance(pipeline, ChronosPipeline)
    assert load_pipeline(str(tiny_t5_dir)) is pipeline


def test_hub_id_missing_from_cache_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-cache"))
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline("amazon/chronos-bolt-tiny")
    message = str(caught.value)
    assert "not in the local Hugging Face cache" in message
    assert "huggingface-cli download amazon/chronos-bolt-tiny" in message
    assert "FOREX_ASSETS_ALLOW_DOWNLOAD=1" in message


def test_unknown_bundled_name_lists_what_exists():
    with pytest.raises(ModelLoadError, match=r"bundled checkpoint 'nope' not found.*usdclp-chronos2-mini"):
        resolve_checkpoint("bundled:nope")


def test_directory_without_config_is_not_a_checkpoint(tmp_path):
    with pytest.raises(ModelLoadError, match="has no config.json"):
        resolve_checkpoint(str(tmp_path))


def test_nonsense_reference_is_rejected():
    with pytest.raises(ModelLoadError, match="neither an existing directory"):
        resolve_checkpoint("./missing/dir")


def test_checkpoint_identity_follows_the_weights(tiny_t5_dir, tmp_path):
    from forex_assets.core.models.random_t5 import build_random_t5_checkpoint

    same = checkpoint_identity(str(tiny_t5_dir))
    assert same == checkpoint_identity(str(tiny_t5_dir))
    other = build_random_t5_checkpoint(tmp_path / "other", seed=4)
    assert checkpoint_identity(str(other)).split("@")[1] != same.split("@")[1]
