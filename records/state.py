"""The lab's state: channels with explicit reducers, and the records that flow through them."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal

from typing_extensions import TypedDict

from postlab.records.artifacts import DatasetCard
from postlab.records.outcomes import (
    AnswerShift,
    BestModel,
    ConstantAnswer,
    EvaluationRecord,
    FolderSurvey,
    TechniqueFinding,
    TrainingRecord,
)
from postlab.records.run import RunOptions
from postlab.records.steps import (
    Decision,
    Directive,
    GateDecision,
    GuardEvent,
    Iteration,
    Plan,
    TrajectoryRecord,
    merge_iterations,
)
from postlab.records.usage import Fallback, LLMUsage


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
    stop_detail: str
    report_path: str | None
    summary_path: str | None


class LabState(LabInput, LabOutput, total=False):
    """Every channel of a run; large artefacts live on disk and are referenced here."""

    base_model_path: str
    run_options: RunOptions
    trajectory: Annotated[list[TrajectoryRecord], operator.add]
    # Wall-clock seconds of steps killed before they finished, counted when they are redone.
    lost_s: Annotated[float, operator.add]
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
    # Measured with the baseline: training answers skewed toward one label beyond validation.
    answer_shift: AnswerShift | None
    # Measured with the baseline on a label task: the score of one answer given to everything.
    constant_answer: ConstantAnswer | None
    # Read once when the run is prepared (task folders only): what the folder holds.
    folder_survey: FolderSurvey | None
    best: BestModel | None
    plan: Plan | None
    directive: Directive | None
    tried_techniques: list[str]
    stop_detail: str
