"""The lab's state: channels with explicit reducers, and the records that flow through them."""

from __future__ import annotations

import operator
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator
from typing_extensions import TypedDict

from postlab.agents.llm.schemas import Fallback, LLMUsage
from postlab.agents.reports import (
    BestModel,
    EvaluationRecord,
    TechniqueFinding,
    TrainingRecord,
)
from postlab.tools.datasets import DatasetCard

AgentName = Literal["librarian", "data_engineer", "trainer", "evaluator"]
AGENTS: tuple[AgentName, ...] = ("librarian", "data_engineer", "trainer", "evaluator")


class StopReason(StrEnum):
    """Why a run ended; stable values users can script against."""

    TARGET_MET = "target_met"
    BUDGET_STEPS = "budget_steps"
    BUDGET_TIME = "budget_time"
    BUDGET_ITERATIONS = "budget_iterations"
    LOOP = "loop"
    PLATEAU = "plateau"
    REJECTED = "rejected"
    ERROR = "error"


class Budget(BaseModel):
    """Step budget (agent steps, counted across resumes) and optional wall-clock budget."""

    steps: int = Field(300, ge=1)
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


class GateDecision(BaseModel):
    """How a gated action was decided, for the trajectory and the report."""

    gate: str
    approved: bool
    by: Literal["human", "default"]
    note: str = ""
    cost: float = 0
    step: int = 0


class RunOptions(BaseModel):
    """Knobs of a run: target, iteration cap, data and training sizes, policy."""

    target_score: float = Field(0.95, ge=0, le=1)
    max_iterations: int = Field(6, ge=1)
    seed: int = 0
    train_size: int = Field(800, ge=8)
    train_steps: int = Field(40, ge=1)
    batch_size: int = Field(8, ge=1)
    eval_limit: int | None = Field(None, ge=1)
    train_timeout_s: float = Field(1800, gt=0)
    policy: Literal["playbook", "llm"] = "playbook"
    # With policy "llm": the model for every agent and the supervisor, and per-agent overrides
    # ("librarian", ..., "supervisor" → model string).
    llm: str | None = None
    llm_overrides: dict[str, str] = Field(default_factory=dict)
    mcp_config: str | None = None
    online: bool = False
    hub_dataset: str | None = None
    human_attached: bool = False
    guard: GuardConfig = Field(default_factory=GuardConfig)
    gates: GateConfig = Field(default_factory=GateConfig)

    @model_validator(mode="after")
    def _llm_named(self) -> RunOptions:
        if self.policy == "llm" and not self.llm:
            raise ValueError("policy 'llm' needs a model: set llm (e.g. local:smollm2)")
        return self


class TrajectoryRecord(BaseModel):
    """One agent step: who did what (normalised signature), how it ended, and when."""

    step: int
    agent: AgentName
    action: str
    signature: str
    status: Literal["ok", "failed"]
    summary: str = ""
    error_kind: str | None = None
    error_normalized: str | None = None
    score: float | None = None
    iteration: int = 0
    started_at: float
    wall_s: float


class Directive(BaseModel):
    """What the supervisor asks of the next agent."""

    agent: AgentName
    action: str
    args: dict[str, Any] = Field(default_factory=dict)
    reason: str
    avoid: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    """The iteration in progress: which technique, hyper-parameters and data, and how far it got."""

    iteration: int
    technique: str
    method: Literal["sft", "grpo"]
    init_checkpoint: str
    hyper: dict[str, Any]
    data_format: Literal["sft", "grpo"]
    data_size: int
    data_seed: int
    reason: str
    dataset_path: str | None = None
    checkpoint: str | None = None
    attempts: int = 0
    status: Literal["needs_data", "needs_training", "needs_eval", "done", "failed"] = "needs_data"


class Decision(BaseModel):
    """A supervisor decision: the next agent (or stop), the directive, and the reason."""

    step: int
    next: Literal["librarian", "data_engineer", "trainer", "evaluator", "finalize"]
    reason: str
    directive: Directive | None = None
    stop_reason: StopReason | None = None
    guard_event: str | None = None


class GuardEvent(BaseModel):
    """A loop-guard firing: which pattern, on what, and the escalation rung it triggered."""

    pattern: Literal["repeat", "cycle", "failure", "plateau"]
    key: str
    detail: str
    rung: Literal["redirect", "switch_technique", "ask_human", "stop"]
    step: int


class Iteration(BaseModel):
    """One post-training iteration as reported: technique, spec, score and the reason for it."""

    iteration: int
    technique: str
    reason: str
    spec: dict[str, Any] = Field(default_factory=dict)
    dataset: str | None = None
    status: str = "planned"
    score: float | None = None
    lenient: float | None = None
    checkpoint: str | None = None
    failure: str | None = None


def merge_iterations(current: list[Iteration], update: list[Iteration]) -> list[Iteration]:
    """Reducer: an update replaces the iteration with the same number, or is appended."""
    merged = {item.iteration: item for item in current}
    for item in update:
        merged[item.iteration] = item
    return [merged[key] for key in sorted(merged)]


class LabContext(TypedDict, total=False):
    """Run options as assistant configuration (LangGraph Studio edits these); input wins."""

    task: str
    model: str
    budget: int
    policy: Literal["playbook", "llm"]
    llm: str | None
    max_iterations: int
    target_score: float
    train_steps: int
    train_size: int


class LabInput(TypedDict, total=False):
    """What a caller provides: the goal, the task and model, the budget, options."""

    goal: str
    task: str
    task_dir: str | None
    model: str
    budget: int
    max_time_s: float | None
    run_dir: str
    options: dict[str, Any]


class LabOutput(TypedDict, total=False):
    """What a caller gets back."""

    run_id: str
    best_checkpoint: str | None
    baseline_score: float | None
    best_score: float | None
    stop_reason: str | None
    report_path: str | None
    summary_path: str | None


class LabState(LabInput, LabOutput, total=False):
    """Every channel of a run; large artefacts live on disk and are referenced here."""

    base_model_path: str
    budget_limits: Budget
    run_options: RunOptions
    trajectory: Annotated[list[TrajectoryRecord], operator.add]
    decisions: Annotated[list[Decision], operator.add]
    guard_events: Annotated[list[GuardEvent], operator.add]
    gate_decisions: Annotated[list[GateDecision], operator.add]
    llm_usage: Annotated[list[LLMUsage], operator.add]
    fallbacks: Annotated[list[Fallback], operator.add]
    notes: Annotated[list[str], operator.add]
    findings: list[TechniqueFinding]
    datasets: Annotated[list[DatasetCard], operator.add]
    runs: Annotated[list[TrainingRecord], operator.add]
    evaluations: Annotated[list[EvaluationRecord], operator.add]
    iterations: Annotated[list[Iteration], merge_iterations]
    baseline: EvaluationRecord | None
    best: BestModel | None
    plan: Plan | None
    directive: Directive | None
    tried_techniques: list[str]
    stop_detail: str
