"""DPO (LoRA and full, with a reference) and reference-free ORPO train on preference pairs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from postlab.tools.training.runner import run_training
from postlab.tools.training.spec import TrainingSpec


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> str:
    import datasets

    rows = [
        {
            "prompt": [{"role": "user", "content": f"What is {i} + {i}?"}],
            "chosen": [{"role": "assistant", "content": str(2 * i)}],
            "rejected": [{"role": "assistant", "content": str(2 * i + 10)}],
        }
        for i in range(12)
    ]
    path = tmp_path_factory.mktemp("pairs") / "data"
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return str(path)


@pytest.mark.parametrize(
    ("method", "adapter"), [("dpo", "lora"), ("dpo", "full"), ("orpo", "full")]
)
def test_preference_methods_train_and_save_a_plain_checkpoint(
    tiny_model, pairs, tmp_path, method, adapter
):
    spec = TrainingSpec(
        method=method,
        adapter=adapter,
        base_model=str(tiny_model),
        dataset_path=pairs,
        output_dir=str(tmp_path / method),
        max_steps=2,
        batch_size=4,
        learning_rate=1e-4,
        threads=2,
        timeout_s=300,
    )
    events: list[dict] = []
    result = run_training(spec, on_progress=events.append)
    assert result.status == "ok", result.failure
    assert result.metrics["steps"] == 2 and math.isfinite(result.metrics["final_loss"])
    checkpoint = Path(result.checkpoint)
    assert (checkpoint / "config.json").is_file()
    # LoRA adapters are merged: what comes back is a plain checkpoint either way.
    assert not (checkpoint / "adapter_config.json").exists()


def test_preference_data_with_sft_columns_is_a_bad_config(tiny_model, tmp_path):
    import datasets

    path = tmp_path / "sft"
    datasets.Dataset.from_list([{"prompt": "p", "completion": "c"}] * 4).save_to_disk(str(path))
    spec = TrainingSpec(
        method="dpo",
        base_model=str(tiny_model),
        dataset_path=str(path),
        output_dir=str(tmp_path / "out"),
        max_steps=1,
        batch_size=2,
    )
    result = run_training(spec)
    assert result.status == "failed" and result.failure.kind == "bad_config"
    assert "'prompt', 'chosen' and 'rejected'" in result.failure.message
