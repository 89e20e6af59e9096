"""Weight averages of checkpoints: exact means, the stored precision kept, mismatches refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support.tiny_model import tiny_llama
from transformers import AutoModelForCausalLM, AutoTokenizer

from postlab.tools.training.averaging import IncompatibleCheckpoints, average_checkpoints


def _save(tokenizer, folder: Path, seed: int, dtype=torch.float32, **config) -> Path:
    model = tiny_llama(tokenizer, seed=seed).to(dtype)
    for key, value in config.items():
        setattr(model.config, key, value)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path):
    return AutoTokenizer.from_pretrained(tiny_model)


def test_the_average_is_the_mean_of_every_tensor_and_loads(tokenizer, tmp_path: Path) -> None:
    folders = [_save(tokenizer, tmp_path / f"m{seed}", seed) for seed in (1, 2, 3)]
    out = average_checkpoints(folders, tmp_path / "soup")
    weights = [load_file(str(f / "model.safetensors")) for f in folders]
    averaged = load_file(str(out / "model.safetensors"))
    assert set(averaged) == set(weights[0])
    for key, tensor in averaged.items():
        expected = sum(w[key] for w in weights) / 3
        assert torch.allclose(tensor, expected, atol=1e-7), key
    # Not a copy of one ingredient: every seed's weights differ from the mean.
    key = next(iter(averaged))
    assert not torch.equal(averaged[key], weights[0][key])
    model = AutoModelForCausalLM.from_pretrained(out)
    ids = tokenizer("2 + 2 =", return_tensors="pt").input_ids
    assert model.generate(ids, max_new_tokens=3, do_sample=False).shape[1] == ids.shape[1] + 3
    assert (out / "tokenizer.json").is_file() and (out / "config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".soup")]


def test_half_precision_stays_half_and_is_summed_in_float32(tokenizer, tmp_path: Path) -> None:
    folders = [_save(tokenizer, tmp_path / f"b{s}", s, torch.bfloat16) for s in (1, 2)]
    out = average_checkpoints(folders, tmp_path / "soup")
    averaged = load_file(str(out / "model.safetensors"))
    first, second = (load_file(str(f / "model.safetensors")) for f in folders)
    for key, tensor in averaged.items():
        assert tensor.dtype == torch.bfloat16
        expected = ((first[key].float() + second[key].float()) / 2).to(torch.bfloat16)
        assert torch.equal(tensor, expected), key


def test_other_shapes_are_refused_and_leave_nothing(tokenizer, tmp_path: Path) -> None:
    small = _save(tokenizer, tmp_path / "small", 1)
    other = tmp_path / "wide"
    wide = tiny_llama(tokenizer, seed=2)
    config = wide.config
    config.intermediate_size = 96
    AutoModelForCausalLM.from_config(config).save_pretrained(other)
    with pytest.raises(IncompatibleCheckpoints, match="intermediate|mlp|shape|is \\("):
        average_checkpoints([small, other], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".soup")]


def test_one_checkpoint_or_an_adapter_is_not_averaged(tokenizer, tmp_path: Path) -> None:
    one = _save(tokenizer, tmp_path / "one", 1)
    with pytest.raises(IncompatibleCheckpoints, match="at least two"):
        average_checkpoints([one], tmp_path / "soup")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(IncompatibleCheckpoints, match="no safetensors"):
        average_checkpoints([one, adapter], tmp_path / "soup")
