"""What a run is asked to do: options, budget, guard and gate settings, stop reasons."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal, get_args

from pydantic import BaseModel, Field, field_validator, model_validator

AgentName = Literal["librarian", "data_engineer", "trainer", "evaluator"]
AGENTS: tuple[AgentName, ...] = get_args(AgentName)
# Where the supervisor may send the run next: an agent, or the end.
RouteTarget = Literal[AgentName, "finalize"]


# The step budget when a caller names none (CLI, Studio, embedding hosts all fall back to it).
DEFAULT_STEP_BUDGET = 300


class StopReason(StrEnum):
    """Why a run ended; stable values users can script against."""

    TARGET_MET = "target_met"
    # The routing model stopped the run between iterations, with its reason.
    CHOSEN = "chosen"
    BUDGET_STEPS = "budget_steps"
    BUDGET_TIME = "budget_time"
    BUDGET_ITERATIONS = "budget_iterations"
    LOOP = "loop"
    PLATEAU = "plateau"
    REJECTED = "rejected"
    ERROR = "error"
    # Ctrl-C or SIGTERM: the summary and report show the run so far; `resume` continues it.
    INTERRUPTED = "interrupted"


class Budget(BaseModel):
    """Step budget (agent steps, counted across resumes) and optional wall-clock budget."""

    steps: int = Field(DEFAULT_STEP_BUDGET, ge=1)
    max_time_s: float | None = Field(None, gt=0)


class GuardConfig(BaseModel):
    """Loop-guard thresholds."""

    window: int = Field(12, ge=2)
    repeat_threshold: int = Field(3, ge=2)
    cycle_repeats: int = Field(3, ge=2)
    failure_threshold: int = Field(3, ge=2)
    plateau_evaluations: int = Field(3, ge=1)
    min_improvement: float = Field(0.01, ge=0)


class GateConfig(BaseModel):
    """Which actions need approval, above what cost, and the answer when nobody is attached."""

    gated: list[str] = Field(default_factory=lambda: ["train"])
    # Training cost in example-steps (steps x batch x accumulation); 0 gates every run.
    threshold: float = Field(0, ge=0)
    unattended_default: Literal["approve", "reject"] = "approve"


# The engine that trains (tools.training.backends): auto picks Unsloth where it supports the run.
Backend = Literal["auto", "trl", "unsloth"]
# Where training metrics and evaluations are logged (tools.tracking): wandb offline by default.
Tracker = Literal["wandb", "trackio", "none"]
DEFAULT_TRACKER: Tracker = "wandb"
# Wall-clock seconds one training run may take before its worker is stopped.
TRAIN_TIMEOUT_S = 1800.0


# Fewer training rows than this is no training set (the DataEngineer refuses it).
MIN_TRAINING_EXAMPLES = 8
# How far a chat model may take a run's own sizes: rows to build, steps and batch chosen above
# these multiples of the run's options are refused (agent tools) or clamped (routing).
CHOSEN_SIZE_LIMITS = {
    "size": ("train_size", 4),
    "max_steps": ("train_steps", 2),
    "batch_size": ("batch_size", 4),
}


class RunOptions(BaseModel):
    """Knobs of a run: target, iteration cap, data and training sizes, policy."""

    target_score: float = Field(0.95, ge=0, le=1)
    max_iterations: int = Field(6, ge=1)
    seed: int = 0
    train_size: int = Field(800, ge=MIN_TRAINING_EXAMPLES)
    train_steps: int = Field(40, ge=1)
    # Rows per optimiser step, split across `num_processes` data-parallel training processes
    # (None: one per visible GPU, one on a CPU-only machine).
    batch_size: int = Field(8, ge=1)
    num_processes: int | None = Field(None, ge=1)
    eval_limit: int | None = Field(None, ge=1)
    # An external test judge in the PostTrainBench contract (tools.evaluation.external): it
    # scores the baseline and the final best; each new best too when judge_candidates is set
    # (shown, never decided on).
    eval_cmd: str | None = None
    judge_candidates: bool = False
    # A standard benchmark (an lm-eval multiple-choice task) as the task: trained on its train
    # split in the harness's prompts, judged on test by the harness (tools.benchmarks); read
    # from benchmark_data (a local copy in the benchmark's own format) instead of the Hub.
    benchmark: str | None = None
    benchmark_data: str | None = None
    tracker: Tracker = DEFAULT_TRACKER
    backend: Backend = "auto"
    # Where training runs (tools.compute): this machine, Hugging Face Jobs on a hardware flavour
    # ("hf-jobs" takes the default GPU flavour, "hf-jobs:a10g-large" names one), or auto (here
    # while the run fits this machine's free memory, else Jobs behind the spend gate).
    compute: str = "local"
    # USD of paid compute an iteration may be started for without asking (all iterations
    # together); above it the spend gate asks a person, or rejects when nobody is attached.
    approve_spend: float = Field(0, ge=0)
    train_timeout_s: float = Field(TRAIN_TIMEOUT_S, gt=0)
    policy: Literal["playbook", "llm"] = "playbook"
    # With policy "llm": the model for every agent and the supervisor, and per-agent overrides
    # ("librarian", ..., "supervisor" → model string).
    llm: str | None = None
    llm_overrides: dict[str, str] = Field(default_factory=dict)
    mcp_config: str | None = None
    online: bool = False
    hub_dataset: str | None = None
    # Restrict the lab to these technique keys (ablations); None lets every ranked card run.
    techniques: list[str] | None = None
    # Keep every iteration's checkpoint; by default only the best and the latest are kept.
    keep_checkpoints: bool = False
    # A model that writes synthetic training rows (a name the lab resolves, or a local folder).
    teacher: str | None = None
    human_attached: bool = False
    guard: GuardConfig = Field(default_factory=GuardConfig)
    gates: GateConfig = Field(default_factory=GateConfig)

    def chosen_limit(self, key: str) -> int | None:
        """The most a chat model may choose for `key` in this run, or None when no size rule."""
        if key not in CHOSEN_SIZE_LIMITS:
            return None
        option, factor = CHOSEN_SIZE_LIMITS[key]
        return factor * getattr(self, option)

    @field_validator("compute")
    @classmethod
    def _compute_known(cls, value: str) -> str:
        if not re.fullmatch(r"local|auto|hf-jobs(:[a-z0-9-]+)?", value):
            raise ValueError(f"{value!r} is not local, auto, hf-jobs or hf-jobs:FLAVOR")
        return value

    @model_validator(mode="after")
    def _llm_named(self) -> RunOptions:
        if self.policy == "llm" and not self.llm:
            raise ValueError("policy 'llm' needs a model: set llm (e.g. local:smollm2)")
        return self

    @model_validator(mode="after")
    def _judge_complete(self) -> RunOptions:
        if self.judge_candidates and not self.eval_cmd:
            raise ValueError(
                "judge_candidates (--judge-candidates) needs an external judge: set eval_cmd "
                "(--eval-cmd)"
            )
        if self.eval_cmd and "{limit}" in self.eval_cmd and self.eval_limit is None:
            raise ValueError("eval_cmd names {limit}: set eval_limit (--eval-limit N)")
        return self
