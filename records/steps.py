"""What a run did, step by step: trajectory, directives, plans, decisions, iterations."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from postlab.records.artifacts import DataRecipe, ErrorKind, Format, Method, RemoteTraining
from postlab.records.hyper import Hyper
from postlab.records.run import AgentName, RouteTarget, StopReason

# What an agent may be asked to do: each agent's own work, the Evaluator's baseline and its one
# test of the best, the Trainer's poll of a remote job, and nothing (an agent given no directive).
AgentAction = Literal[
    "research",
    "build_dataset",
    "train",
    "evaluate",
    "baseline",
    "test_best",
    "wait_for_job",
    "noop",
]
# The Trainer's step while a remote job trains: one poll window, checkpointed. Waiting is paid
# from the time budget, not the step budget, and is never an action the loop guard counts.
WAIT_ACTION: AgentAction = "wait_for_job"


class TrajectoryRecord(BaseModel):
    """One agent step: who did what (normalised signature), how it ended, and when."""

    step: int
    agent: AgentName
    action: AgentAction
    signature: str
    status: Literal["ok", "failed"]
    summary: str = ""
    error_kind: ErrorKind | None = None
    error_normalized: str | None = None
    score: float | None = None
    iteration: int = 0
    started_at: float
    wall_s: float


class Directive(BaseModel):
    """What the supervisor asks of the next agent."""

    agent: AgentName
    action: AgentAction
    # Only what the plan does not carry (a research focus); an iteration's parameters live in Plan.
    args: dict[str, Any] = Field(default_factory=dict)
    reason: str
    avoid: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    """The iteration in progress: which technique, hyper-parameters and data, and how far it got."""

    iteration: int
    technique: str
    method: Method
    init_checkpoint: str
    hyper: Hyper
    data_format: Format
    data_recipe: DataRecipe = "plain"
    data_size: int
    data_seed: int
    reason: str
    dataset_path: str | None = None
    checkpoint: str | None = None
    attempts: int = 0
    # Whether this technique's learning rate was already halved after a stall.
    lr_halved: bool = False
    # Whether this stretch is a last bet (graph.memorised.last_bet says what one is and why).
    last_bet: bool = False
    # Whether it trains only on the rows whose answers the base model already gives
    # (graph.known_rows says when a run does).
    known_only: bool = False
    # The experiment tree: the iteration whose checkpoint this one starts from (0: the base
    # model) and the refinement that made this experiment from it.
    parent: int = 0
    move: str = "open"
    # Its stretch of a learning-rate schedule (steps schedule_offset.. of schedule_steps), and
    # the iteration whose optimiser state it resumes (None: a fresh optimiser).
    schedule_offset: int = 0
    schedule_steps: int | None = None
    optimizer_from: int | None = None
    status: Literal[
        "needs_data", "needs_training", "training_remote", "needs_eval", "done", "failed"
    ] = "needs_data"
    # The job training this iteration elsewhere, while status is training_remote.
    remote: RemoteTraining | None = None

    @property
    def schedule_unfinished(self) -> bool:
        """Whether this plan's stretch leaves steps of its learning-rate schedule to train."""
        return (self.schedule_steps or 0) > self.schedule_offset + self.hyper.max_steps

    @property
    def schedule_rows(self) -> int:
        """Rows the stretch's whole learning-rate schedule draws (its own, without one)."""
        steps = self.schedule_steps or self.hyper.max_steps
        return self.hyper.with_changes(max_steps=steps).rows_seen

    def continues(self, iteration: int) -> bool:
        """Whether this plan is a later stretch of the schedule `iteration` trained on, from it."""
        return self.parent == iteration and self.schedule_offset > 0

    def arguments(self, action: str) -> dict[str, Any]:
        """The parameters of this plan that an agent's action works from."""
        if action == "build_dataset":
            return {
                "format": self.data_format,
                "recipe": self.data_recipe,
                "size": self.data_size,
                "seed": self.data_seed,
            }
        if action == "train":
            return {
                "technique": self.technique,
                "init": self.init_checkpoint,
                **self.hyper.spec_fields(),
            }
        if action == "evaluate":
            return {"checkpoint": self.checkpoint, "iteration": self.iteration}
        return {}


class Decision(BaseModel):
    """A supervisor decision: the next agent (or stop), the directive, and the reason."""

    step: int
    next: RouteTarget
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


class GateDecision(BaseModel):
    """How a gated action was decided, for the trajectory and the report."""

    gate: str
    approved: bool
    by: Literal["human", "default"]
    note: str = ""
    cost: float = 0
    step: int = 0


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
    parent: int = 0
    move: str = "open"
    # Wall-clock seconds of the training run and of the validation scoring.
    train_s: float | None = None
    eval_s: float | None = None
    # Where it trained when not on this machine (a Hugging Face job: id, flavour, url) and
    # what that cost in USD.
    job: dict[str, Any] | None = None
    spend_usd: float = 0.0
    # Where it trained and why (--compute; auto says what it weighed).
    compute: str = ""

    @classmethod
    def start(cls, plan: Plan) -> Iteration:
        """The row of a planned iteration; agents then update it as the iteration goes on."""
        return cls(
            iteration=plan.iteration,
            technique=plan.technique,
            reason=plan.reason,
            dataset=plan.dataset_path,
            parent=plan.parent,
            move=plan.move,
        )


def merge_iterations(current: list[Iteration], update: list[Iteration]) -> list[Iteration]:
    """Reducer: an update replaces the iteration with the same number, or is appended."""
    merged = {item.iteration: item for item in current}
    for item in update:
        merged[item.iteration] = item
    return [merged[key] for key in sorted(merged)]
