"""A bare TRL run on a saved dataset: the reference the training worker is measured against.

    python benchmarks/bare_trl.py SPEC_JSON [--trl-defaults]

Reads the same TrainingSpec JSON the worker reads and trains with TRL's trainer for its method
directly (SFTTrainer, DPOTrainer or GRPOTrainer; same model, data, batch, steps, rate,
schedule, max length, LoRA, beta and generation settings), no postlab code in the loop but
GRPO's reward, which is the task's verifier; prints {"train_runtime", "samples_per_s",
"final_loss"} as JSON.

By default the precision, activation checkpointing and data order are the worker's too (equal
settings: fp32 on a CPU, no checkpointing). `--trl-defaults` leaves those to TRL, which on a CPU
means bf16 autocast and activation checkpointing: what a user gets by not setting them.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

from postlab.tools.training.setup import make_task_reward


def main() -> None:
    """Train once and print the metrics."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    equal = {}
    if "--trl-defaults" not in sys.argv[2:]:
        cuda = torch.cuda.is_available()
        equal = {
            "bf16": cuda and torch.cuda.is_bf16_supported(),
            "activation_checkpointing": cuda,
            "data_seed": spec["seed"],
            "weight_decay": spec["weight_decay"],
        }
    model = AutoModelForCausalLM.from_pretrained(spec["base_model"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(spec["base_model"])
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    peft = None
    if spec["adapter"] == "lora":
        from peft import LoraConfig

        peft = LoraConfig(
            r=spec["lora_r"], lora_alpha=spec["lora_alpha"], target_modules="all-linear",
            task_type="CAUSAL_LM",
        )  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        common = {
            "output_dir": out,
            "max_steps": spec["max_steps"],
            "per_device_train_batch_size": spec["batch_size"],
            "learning_rate": spec["learning_rate"],
            "lr_scheduler_type": spec["lr_scheduler"],
            "warmup_steps": max(1, round(spec["max_steps"] * spec["warmup_ratio"])),
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": "none",
            "seed": spec["seed"],
            "use_cpu": not torch.cuda.is_available(),
            "disable_tqdm": True,
            **equal,
        }
        shared = {
            "model": model,
            "train_dataset": load_from_disk(spec["dataset_path"]),
            "processing_class": tokenizer,
            "peft_config": peft,
        }
        if spec["method"] == "dpo":
            config = DPOConfig(
                **common, beta=spec["beta"], max_length=spec["max_length"],
                precompute_ref_log_probs=spec["adapter"] == "full",
            )  # fmt: skip
            trainer = DPOTrainer(args=config, **shared)
        elif spec["method"] == "grpo":
            tokenizer.padding_side = "left"
            config = GRPOConfig(
                **common, num_generations=spec["num_generations"],
                max_completion_length=spec["max_completion_length"], beta=spec["beta"],
                temperature=spec["temperature"], log_completions=False,
            )  # fmt: skip
            reward = make_task_reward(spec["task"], spec["task_dir"])
            trainer = GRPOTrainer(args=config, reward_funcs=[reward], **shared)
        else:
            config = SFTConfig(**common, max_length=spec["max_length"])
            trainer = SFTTrainer(args=config, **shared)
        output = trainer.train()
    runtime = output.metrics["train_runtime"]
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    print(json.dumps({
        "train_runtime": runtime,
        "samples_per_s": spec["max_steps"] * spec["batch_size"] / runtime,
        "final_loss": losses[-1] if losses else None,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
