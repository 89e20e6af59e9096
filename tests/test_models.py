"""Model resolution: the embedded alias, local checkpoints, and clear errors."""

import pytest

from postlab.tools.models.resolution import (
    DEFAULT_MODEL,
    ModelResolutionError,
    is_checkpoint_dir,
    resolve_model,
)


def test_default_alias_resolves_to_a_plain_trainable_checkpoint():
    from transformers import AutoConfig

    resolved = resolve_model(DEFAULT_MODEL)
    assert resolved.source == "alias"
    config = AutoConfig.from_pretrained(resolved.path)
    assert config.model_type == "llama"
    assert getattr(config, "quantization_config", None) is None
    # Resolving again reuses the cached conversion.
    assert resolve_model("SmolLM2-135M-Instruct").path == resolved.path


def test_local_checkpoint_path(tiny_model):
    resolved = resolve_model(str(tiny_model))
    assert resolved.source == "local"
    assert is_checkpoint_dir(tiny_model)


def test_folder_without_weights_is_rejected(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelResolutionError, match="holds no config.json with weights"):
        resolve_model(str(tmp_path))


def test_unknown_hub_id_names_everything_tried(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelResolutionError) as raised:
        resolve_model("someone/not-a-model")
    message = str(raised.value)
    assert "aliases" in message and "no local path" in message and "not reachable" in message
