"""Model resolution: the embedded alias, local checkpoints, and clear errors."""

import pytest

from postlab.memory.library import library_dir
from postlab.records.home import postlab_home
from postlab.tools.io.http import ServiceUnavailable
from postlab.tools.io.offline import hub_offline
from postlab.tools.models.resolution import (
    DEFAULT_MODEL,
    ModelResolutionError,
    hub_reachable,
    is_checkpoint_dir,
    resolve_model,
)
from postlab.tools.papers.hf_papers import check_hf_online


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


@pytest.mark.parametrize("value", ["1", "true", "YES", " on ", "0", "off", "no", "", "False"])
def test_every_hub_check_reads_hf_hub_offline_as_huggingface_hub_does(value, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    offline = value.strip().lower() in ("1", "true", "yes", "on")
    assert hub_offline() is offline
    if offline:
        # Switched off: no connection is even tried.
        assert hub_reachable(timeout_s=0.01) is False
        with pytest.raises(ServiceUnavailable, match="HF_HUB_OFFLINE"):
            check_hf_online()
    else:
        check_hf_online()


def test_postlab_home_then_xdg_then_home_cache_holds_models_and_the_library(tmp_path, monkeypatch):
    monkeypatch.delenv("POSTLAB_LIBRARY_DIR", raising=False)
    monkeypatch.delenv("POSTLAB_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert postlab_home() == tmp_path / "user" / ".cache" / "postlab"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert library_dir() == postlab_home() / "library" == tmp_path / "xdg" / "postlab" / "library"
    monkeypatch.setenv("POSTLAB_HOME", str(tmp_path / "mine"))
    assert library_dir() == tmp_path / "mine" / "library"
