"""The compact completion loss trains exactly like TRL's own (same losses, same weights), with
the rows' shared prefix run once."""

from __future__ import annotations

from pathlib import Path

import pytest

from postlab.tools.training.compact_loss import compact_completion_loss, plain_head


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from support.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def rows_path(tmp_path_factory) -> str:
    import datasets

    # Prompts of different lengths, so every batch pads and the masks differ by row.
    rows = [
        {
            "prompt": [{"role": "user", "content": f"What is {i} plus {i}?" + " Think." * (i % 4)}],
            "completion": [{"role": "assistant", "content": f"{2 * i}"}],
        }
        for i in range(24)
    ]
    path = tmp_path_factory.mktemp("data") / "sft"
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return str(path)


def _train(trainer_cls, model_path: Path, data: str, out: Path, lora: bool, bf16: bool = False):
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    peft = None
    if lora:
        from peft import LoraConfig

        peft = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    config = SFTConfig(
        output_dir=str(out), max_steps=5, per_device_train_batch_size=6, learning_rate=1e-3,
        logging_steps=1, save_strategy="no", report_to="none", seed=0, data_seed=0,
        use_cpu=True, bf16=bf16, max_length=128, completion_only_loss=True, disable_tqdm=True,
        activation_checkpointing=False,
    )  # fmt: skip
    trainer = trainer_cls(
        model=model,
        args=config,
        train_dataset=datasets.load_from_disk(data),
        processing_class=tokenizer,
        peft_config=peft,
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    weights = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    passes = getattr(trainer, "compact_passes", 0), getattr(trainer, "shared_prefix_passes", 0)
    return logs, weights, passes


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_the_compact_loss_trains_like_trls_own(tiny_model, rows_path, tmp_path, lora):
    import torch
    from trl import SFTTrainer

    reference, reference_weights, _ = _train(
        SFTTrainer, tiny_model, rows_path, tmp_path / "a", lora
    )
    compact_cls = compact_completion_loss(SFTTrainer)
    compact, compact_weights, passes = _train(
        compact_cls, tiny_model, rows_path, tmp_path / "b", lora
    )
    # Every step's loss came from the compact path, not TRL's, and each batch ran the chat
    # template's system prompt once for all its rows.
    assert passes == (5, 5) and len(reference) == len(compact) == 5
    for ours, theirs in zip(compact, reference, strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4)
        assert ours["grad_norm"] == pytest.approx(theirs["grad_norm"], rel=1e-3)
        assert ours["mean_token_accuracy"] == pytest.approx(theirs["mean_token_accuracy"])
        assert ours["entropy"] == pytest.approx(theirs["entropy"], rel=1e-3)
        assert ours["num_tokens"] == theirs["num_tokens"]
    # The losses moved: the comparison is between two trainings, not two idle models.
    assert compact[-1]["loss"] < compact[0]["loss"]
    assert torch.allclose(compact_weights, reference_weights, atol=1e-5)


def test_mixed_precision_keeps_trls_own_loss(tiny_model, rows_path, tmp_path):
    from trl import SFTTrainer

    # Under autocast the decoder must run inside the model's wrapped forward: TRL's loss it is.
    bf16, _, _ = _train(SFTTrainer, tiny_model, rows_path, tmp_path / "a", False, bf16=True)
    compact_cls = compact_completion_loss(SFTTrainer)
    ours, _, passes = _train(compact_cls, tiny_model, rows_path, tmp_path / "b", False, bf16=True)
    assert passes == (0, 0) and [e["loss"] for e in ours] == [e["loss"] for e in bf16]


def test_models_that_transform_their_logits_keep_trls_loss():
    from transformers import Gemma2Config, LlamaConfig

    assert plain_head(LlamaConfig())
    # Gemma 2 soft-caps its logits in the forward the compact loss would skip.
    assert not plain_head(Gemma2Config())
    assert not plain_head(LlamaConfig(logits_scaling=8.0))


def test_shared_columns_stop_at_the_first_difference_or_padding():
    import torch

    from postlab.tools.models.prefix_cache import shared_columns

    ids = torch.tensor([[1, 2, 3, 4, 5], [1, 2, 3, 9, 9], [1, 2, 3, 4, 0]])
    assert shared_columns(ids, None) == 3
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]])
    assert shared_columns(ids, mask) == 2
    # Identical rows still leave the last column to run per row.
    same = torch.tensor([[4, 5, 6], [4, 5, 6]])
    assert shared_columns(same, None) == 2
