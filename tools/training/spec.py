"""What a training run is: its spec (hyper-parameters, data, model), its result, quick checks."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from postlab.records.artifacts import Method
from postlab.records.hyper import DEFAULT_GRPO_GROUP, DEFAULT_LORA_RANK, LORA_ALPHA_PER_RANK
from postlab.records.run import DEFAULT_TRACKER, TRAIN_TIMEOUT_S, Tracker
from postlab.tools.models.resolution import is_checkpoint_dir
from postlab.tools.tracking.trackers import TRACKER_PROJECT
from postlab.tools.training.schedule import RESUMABLE_SCHEDULES

# Fields that name where or how a run executes, not what experiment it is.
_NON_EXPERIMENT_FIELDS = {
    "output_dir",
    "run_name",
    "timeout_s",
    "memory_bytes",
    "threads",
    "optimizer_state",
    "save_optimizer",
    "tracker",
    "tracker_project",
    "tracker_dir",
    "backend_reason",
}


# Methods trained on preference pairs (a chosen and a rejected answer per prompt).


class TrainingSpec(BaseModel):
    """Everything that defines one training run: method, model, data and hyper-parameters."""

    model_config = ConfigDict(extra="forbid")

    # sft: prompt-completion; grpo: prompts and a verifier reward; dpo (with a reference model)
    # and orpo (reference-free): preference pairs.
    method: Method
    adapter: Literal["lora", "full"] = "full"
    base_model: str
    dataset_path: str
    output_dir: str
    learning_rate: float = Field(5e-5, gt=0, lt=1)
    max_steps: int = Field(60, ge=1)
    # Per process: `num_processes` > 1 trains data-parallel (torchrun; gloo on CPUs, NCCL on
    # GPUs), each process on batch_size rows per step.
    batch_size: int = Field(8, ge=1)
    num_processes: int = Field(1, ge=1)
    # How the processes share the model: each a full replica (ddp), or weights, gradients and
    # optimiser state sharded among them (fsdp, full fine-tuning only); chosen by model size
    # (tools.training.devices) and said why.
    sharding: Literal["ddp", "fsdp"] = "ddp"
    sharding_reason: str = ""
    grad_accum: int = Field(1, ge=1)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_length: int = Field(256, ge=8)
    lora_r: int = Field(DEFAULT_LORA_RANK, ge=1)
    lora_alpha: int = Field(LORA_ALPHA_PER_RANK * DEFAULT_LORA_RANK, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    seed: int = 0
    task: str | None = None
    task_dir: str | None = None
    num_generations: int = Field(DEFAULT_GRPO_GROUP, ge=2)
    max_completion_length: int = Field(16, ge=1)
    beta: float = Field(0.0, ge=0)
    # "sequential" keeps the dataset's order (a curriculum); "random" shuffles as usual.
    train_sampling: Literal["random", "sequential"] = "random"
    temperature: float = Field(1.0, gt=0)
    # A stretch of a longer schedule: this run takes steps schedule_offset.. of a schedule
    # schedule_steps long (None: its own max_steps), from the optimiser state saved by the run
    # it continues (optimizer_state) when that file exists.
    schedule_offset: int = Field(0, ge=0)
    schedule_steps: int | None = Field(None, ge=1)
    optimizer_state: str | None = None
    # Keep this run's optimiser state beside its checkpoint, for a continuation.
    save_optimizer: bool = False
    timeout_s: float = Field(TRAIN_TIMEOUT_S, gt=0)
    # Memory one training process may use (None: what its device has free when training starts);
    # the step's rows are split into passes that fit it (tools.training.devices.micro_batch).
    memory_bytes: float | None = Field(None, gt=0)
    threads: int | None = Field(None, ge=1)
    use_unsloth: bool | None = None
    # Why this engine trains the run (tools.training.backends), for the report.
    backend_reason: str = ""
    tracker: Tracker = DEFAULT_TRACKER
    tracker_project: str = TRACKER_PROJECT
    # Where the tracker writes (None: the output folder); a run's Trackio database is shared.
    tracker_dir: str | None = None
    run_name: str = ""

    @property
    def continues(self) -> bool:
        """Whether this run is part of a longer schedule or resumes an optimiser state."""
        whole = self.schedule_steps in (None, self.max_steps)
        return bool(self.schedule_offset or not whole or self.optimizer_state)

    @property
    def threads_per_process(self) -> int | None:
        """CPU threads each training process may use (the spec's threads shared among them)."""
        return None if self.threads is None else max(1, self.threads // self.num_processes)

    @property
    def total_schedule_steps(self) -> int:
        """Length of the schedule this run takes a stretch of."""
        return self.schedule_steps or self.max_steps

    def signature(self) -> str:
        """A short stable hash of the hyper-parameters that define the experiment."""
        payload = self.model_dump(mode="json", exclude=_NON_EXPERIMENT_FIELDS)
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_spec(spec: TrainingSpec) -> list[str]:
    """Problems that make a spec unrunnable, found without loading torch (empty list: none)."""
    problems: list[str] = []
    base = Path(spec.base_model)
    if not is_checkpoint_dir(base):
        problems.append(f"base_model {spec.base_model!r} is not a checkpoint directory")
    data = Path(spec.dataset_path)
    if not data.exists():
        problems.append(f"dataset_path {spec.dataset_path!r} does not exist")
    elif not (
        (data / "dataset_info.json").is_file()
        or (data / "dataset_dict.json").is_file()
        or (data / "state.json").is_file()
    ):
        problems.append(f"dataset_path {spec.dataset_path!r} is not a saved datasets directory")
    if spec.continues:
        if spec.lr_scheduler not in RESUMABLE_SCHEDULES:
            problems.append(
                f"lr_scheduler {spec.lr_scheduler!r} cannot be resumed part-way; "
                f"use one of {', '.join(RESUMABLE_SCHEDULES)}"
            )
        if spec.schedule_offset + spec.max_steps > spec.total_schedule_steps:
            problems.append(
                f"steps {spec.schedule_offset}..{spec.schedule_offset + spec.max_steps} run past "
                f"the schedule's {spec.total_schedule_steps} steps"
            )
    if spec.sharding == "fsdp" and (spec.adapter != "full" or spec.num_processes < 2):
        problems.append("fsdp sharding needs full fine-tuning over 2 or more processes")
    if spec.sharding == "fsdp" and spec.save_optimizer:
        problems.append("fsdp shards the optimiser state: it cannot be saved for a continuation")
    if spec.use_unsloth and importlib.util.find_spec("unsloth") is None:
        problems.append("use_unsloth is true but the unsloth package is not installed")
    if spec.method == "grpo":
        generation_batch = spec.batch_size * spec.grad_accum
        if generation_batch % spec.num_generations:
            # TRL's rule: the generation batch (per-device batch x processes x steps per generation,
            # by default grad_accum) must hold whole groups of num_generations completions.
            problems.append(
                f"GRPO needs batch_size * grad_accum ({spec.batch_size} * {spec.grad_accum} = "
                f"{generation_batch}) divisible by num_generations ({spec.num_generations})"
            )
    return problems


def resolve_use_unsloth(spec: TrainingSpec) -> bool:
    """Whether a run uses Unsloth: as asked, or automatically when CUDA and unsloth are present."""
    if spec.use_unsloth is not None:
        return spec.use_unsloth
    if importlib.util.find_spec("unsloth") is None:
        return False
    import torch

    return torch.cuda.is_available()
