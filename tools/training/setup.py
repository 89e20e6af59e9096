"""Building the TRL trainer for a spec: model, tokenizer, dataset, LoRA, reward, arguments."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from postlab.records.artifacts import PREFERENCE_METHODS
from postlab.tools.evaluation.vllm_engine import vllm_available
from postlab.tools.tracking.trackers import report_to as tracker_report_to
from postlab.tools.training.compact_loss import compact_completion_loss
from postlab.tools.training.preloaded import load_tokenizer
from postlab.tools.training.schedule import continuing, warmup_steps
from postlab.tools.training.sizing import fitted_max_length, fitted_micro_batch, longest_row
from postlab.tools.training.spec import TrainingSpec

# DPO's and ORPO's usual strength when a recipe sets none.
DEFAULT_PREFERENCE_BETA = 0.1
# The trainer's own output folder inside an iteration's folder (logs only: checkpoints are saved
# by the worker, so it is empty once training ends and is then removed).
TRAINER_SUBDIR = "trainer"
_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ConfigError(ValueError):
    """A spec or dataset that cannot be trained as asked."""


def load_dataset_dir(path: str):
    """Load a `save_to_disk` dataset (a DatasetDict yields its train split)."""
    from datasets import DatasetDict, load_from_disk

    data = load_from_disk(path)
    if isinstance(data, DatasetDict):
        if "train" not in data:
            raise ConfigError(f"dataset {path!r} has splits {list(data)} but no 'train' split")
        data = data["train"]
    return data


def check_columns(method: str, columns: list[str]) -> None:
    """Raise ConfigError when a dataset lacks the columns the method needs."""
    if method == "sft":
        ok = {"prompt", "completion"} <= set(columns) or "messages" in columns or "text" in columns
        need = "'prompt'+'completion', 'messages' or 'text'"
    elif method in PREFERENCE_METHODS:
        ok = {"prompt", "chosen", "rejected"} <= set(columns)
        need = "'prompt', 'chosen' and 'rejected'"
    else:
        ok = {"prompt", "answer"} <= set(columns)
        need = "'prompt' and 'answer'"
    if not ok:
        raise ConfigError(f"{method} dataset needs columns {need}; it has {columns}")


def make_task_reward(task_name: str | None, task_dir: str | None):
    """A GRPO reward function scoring each completion with the task's verifier."""
    from postlab.tools.tasks.catalog import load_task

    task = load_task(task_name, task_dir=task_dir)

    def task_reward(completions, answer, **kwargs) -> list[float]:
        scores = []
        for completion, expected in zip(completions, answer, strict=True):
            if isinstance(completion, list):
                # Conversational completions are message lists; the reply is the last message.
                text = completion[-1].get("content", "") if completion else ""
            else:
                text = completion
            scores.append(float(task.reward(str(text), str(expected))))
        return scores

    return task_reward


def load_model(spec: TrainingSpec, use_unsloth: bool):
    """Load the base model and tokenizer; with Unsloth the LoRA adapter is attached here."""
    import torch
    from transformers import AutoModelForCausalLM

    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    if use_unsloth:
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=spec.base_model,
            max_seq_length=spec.max_length + spec.max_completion_length,
            dtype=dtype,
            load_in_4bit=False,
            full_finetuning=spec.adapter == "full",
        )
        if spec.adapter == "lora":
            model = FastLanguageModel.get_peft_model(
                model,
                r=spec.lora_r,
                lora_alpha=spec.lora_alpha,
                lora_dropout=spec.lora_dropout,
                target_modules=_LORA_TARGETS,
                use_gradient_checkpointing="unsloth",
                random_state=spec.seed,
            )
    else:
        model = AutoModelForCausalLM.from_pretrained(spec.base_model, dtype=dtype)
        tokenizer = load_tokenizer(spec.base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def common_args(spec: TrainingSpec, cuda: bool, bf16: bool, report_to: str) -> dict[str, Any]:
    """TrainingArguments shared by SFT and GRPO."""
    return {
        "output_dir": str(Path(spec.output_dir) / TRAINER_SUBDIR),
        "max_steps": spec.max_steps,
        "per_device_train_batch_size": spec.batch_size,
        "gradient_accumulation_steps": spec.grad_accum,
        "learning_rate": spec.learning_rate,
        "lr_scheduler_type": spec.lr_scheduler,
        # transformers 5 folded warmup_ratio into warmup_steps; an int keeps the meaning explicit.
        "warmup_steps": warmup_steps(spec.max_steps, spec.warmup_ratio),
        "weight_decay": spec.weight_decay,
        "logging_steps": 1,
        "logging_strategy": "steps",
        # The default filter replaces NaN losses by the running mean, hiding divergence.
        "logging_nan_inf_filter": False,
        "save_strategy": "no",
        "report_to": report_to,
        "run_name": spec.run_name or Path(spec.output_dir).name,
        # Trackio's project; never a Space on the Hub unless the user's environment names one.
        "project": spec.tracker_project,
        "trackio_static_space_id": False,
        "seed": spec.seed,
        "data_seed": spec.seed,
        "use_cpu": not cuda,
        "bf16": bf16,
        "fp16": False,
        # TRL turns checkpointing on by default; on CPU the recomputation only costs time.
        "activation_checkpointing": cuda,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "train_sampling_strategy": spec.train_sampling,
    }


FSDP_CONFIG_FILE = "fsdp.json"


def fsdp_args(spec: TrainingSpec, model) -> dict[str, Any]:
    """TrainingArguments that shard the model's decoder layers among the processes (written to
    the run's output folder as fsdp.json, the config the run trained with)."""
    config = {
        "transformer_layer_cls_to_wrap": list(getattr(model, "_no_split_modules", None) or []),
        # Gathered on save, so rank 0 writes one plain checkpoint like a single process.
        "state_dict_type": "FULL_STATE_DICT",
        "use_orig_params": True,
    }
    folder = Path(spec.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FSDP_CONFIG_FILE).write_text(json.dumps({"fsdp": "full_shard auto_wrap", **config}))
    return {"fsdp": "full_shard auto_wrap", "fsdp_config": config}


def build_trainer(spec: TrainingSpec, callback, use_unsloth: bool):
    """Load model and data and construct the TRL trainer for the spec."""
    import torch

    dataset = load_dataset_dir(spec.dataset_path)
    check_columns(spec.method, list(dataset.column_names))
    if len(dataset) == 0:
        raise ConfigError(f"dataset {spec.dataset_path!r} is empty")
    model, tokenizer = load_model(spec, use_unsloth)
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    report_to = tracker_report_to(spec.tracker)
    peft_config = None
    if spec.adapter == "lora" and not use_unsloth:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    args = common_args(spec, cuda, bf16, report_to)
    if spec.sharding == "fsdp":
        args.update(fsdp_args(spec, model))
    shared = {
        "model": model,
        "train_dataset": dataset,
        "processing_class": tokenizer,
        "callbacks": [callback],
        "peft_config": peft_config,
    }
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    max_length = spec.max_length
    if spec.method != "grpo":
        longest = longest_row(dataset, tokenizer)
        max_length = fitted_max_length(longest, spec.max_length, limit)
        # GRPO's batch is whole groups of generations: it keeps the spec's batch as it is.
        # Batches pad to their longest row, so the data's longest row bounds a row's tokens.
        rows, passes, why = fitted_micro_batch(spec, model, min(longest, max_length), cuda, bf16)
        args["per_device_train_batch_size"] = rows
        args["gradient_accumulation_steps"] = spec.grad_accum * passes
        print(f"batch: {why}", flush=True)
    if spec.method == "sft":
        from trl import SFTConfig, SFTTrainer

        config = SFTConfig(
            **args,
            max_length=max_length,
            completion_only_loss=True if "prompt" in dataset.column_names else None,
            packing=False,
        )
        # TRL's own head already scores only the completion on a GPU (its Triton kernel).
        trainer_cls = SFTTrainer if cuda else compact_completion_loss(SFTTrainer)
        return _scheduled(trainer_cls, spec)(args=config, **shared), tokenizer

    if spec.method in PREFERENCE_METHODS:
        return _preference_trainer(spec, args, shared, max_length), tokenizer

    from trl import GRPOConfig, GRPOTrainer

    tokenizer.padding_side = "left"
    # Generation is most of a GRPO step: on a GPU with vLLM installed, TRL generates with it in
    # this process (colocated), beside the policy.
    generation = {"use_vllm": True, "vllm_mode": "colocate"} if cuda and vllm_available() else {}
    config = GRPOConfig(
        **args,
        **generation,
        num_generations=spec.num_generations,
        max_completion_length=spec.max_completion_length,
        beta=spec.beta,
        temperature=spec.temperature,
        log_completions=False,
    )
    reward = make_task_reward(spec.task, spec.task_dir)
    grpo = _scheduled(GRPOTrainer, spec)
    return grpo(args=config, reward_funcs=[reward], **shared), tokenizer


def _scheduled(trainer_cls: type, spec: TrainingSpec) -> type:
    """The trainer class as is, or one that runs its stretch of a longer schedule."""
    if not spec.continues:
        return trainer_cls
    total = spec.total_schedule_steps
    warmup = warmup_steps(total, spec.warmup_ratio)
    return continuing(
        trainer_cls, spec.schedule_offset, total, warmup, spec.lr_scheduler, spec.optimizer_state
    )


def _preference_trainer(
    spec: TrainingSpec, args: dict[str, Any], shared: dict[str, Any], max_length: int
):
    """DPO against a reference (the adapter-disabled model for LoRA, precomputed log-probs for
    full fine-tuning), or reference-free ORPO."""
    beta = spec.beta or DEFAULT_PREFERENCE_BETA
    if spec.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        config = DPOConfig(
            **args,
            beta=beta,
            max_length=max_length,
            # Full fine-tuning would otherwise keep a second model copy in memory all along.
            precompute_ref_log_probs=spec.adapter == "full",
        )
        return _scheduled(DPOTrainer, spec)(args=config, **shared)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    config = ORPOConfig(**args, beta=beta, max_length=max_length)
    return _scheduled(ORPOTrainer, spec)(args=config, **shared)
