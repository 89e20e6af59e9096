"""Records of what the tools produce: dataset cards, failure samples, training results."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

# The TRL dataset formats the lab builds: prompt-completion rows (SFT), prompts with a verifier's
# answer (GRPO), or preference pairs (DPO, ORPO).
Format = Literal["sft", "grpo", "preference"]
# The TRL trainers a run can use, and those of them that learn from preference pairs.
Method = Literal["sft", "grpo", "dpo", "orpo"]
PREFERENCE_METHODS = ("dpo", "orpo")
# How a training set's rows are made (tools.data builds each; tools.training.recipes says which
# method learns from which).
DataRecipe = Literal[
    "plain",
    "grpo",
    "rft",
    "preference",
    "curriculum",
    "quality",
    "targeted",
    "synthetic",
    "balanced",
    "collapsed_kind",
    "unlearned_kind",
    "recombined",
]


class DatasetCard(BaseModel):
    """Provenance and cleaning statistics of a saved training set."""

    name: str
    task: str
    format: Format
    source: str
    license: str | None = None
    size_category: str | None = None
    seed: int
    requested: int
    collected: int
    duplicates_removed: int
    contaminated_removed: int
    final_size: int
    ngram_n: int
    template_ngrams_ignored: int
    path: str
    created_at: str
    columns: list[str]
    sample: list[dict[str, Any]]
    # How rows were made from the cleaned examples (plain, rft, preference, curriculum, ...) and
    # what that step counted (samples drawn, accepted, pairs, which misses drove which rows).
    recipe: str = "plain"
    recipe_stats: dict[str, Any] = Field(default_factory=dict)

    @property
    def source_exhausted(self) -> bool:
        """Whether its source gave fewer clean rows than were asked for, so every row it holds
        (a generator replaces its duplicates and contaminated rows with fresh ones). The rows
        a recipe made may be fewer for other reasons (balanced by answer, pairs only where the
        model erred), or more (rows of its own): the clean rows are what the source gave."""
        clean = self.collected - self.duplicates_removed - self.contaminated_removed
        return clean < self.requested


class FailureSample(BaseModel):
    """One held-out item the model got wrong, with why (its error category)."""

    prompt: str
    answer: str
    completion: str
    category: str


class TrainingResult(BaseModel):
    """The outcome of one run: a merged checkpoint and metrics, or a classified failure."""

    status: Literal["ok", "failed"]
    checkpoint: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    failure: FailureInfo | None = None
    log_path: str = ""
    spec_signature: str = ""
    wall_s: float = 0.0


class JobHandle(BaseModel):
    """A submitted training job and where its inputs and outputs live (kept in the iteration's
    folder before the lab waits on it, so a resumed run re-attaches instead of submitting)."""

    job_id: str
    namespace: str
    flavor: str
    inputs_repo: str
    outputs_repo: str
    path: str
    usd_per_minute: float
    url: str = ""


class RemoteTraining(BaseModel):
    """A training job in flight: its handle, the spec it runs, when it must end (epoch seconds)
    and how many of its log lines the live view has shown; checkpointed between waits."""

    job: JobHandle
    spec: dict[str, Any]
    deadline_at: float
    compute: str
    logs_seen: int = 0


# How a training run fails (tools.training.failures classifies its exit).
# "disk": no room for what the run writes, or a write the disk refused.
TrainingFailureKind = Literal["oom", "nan", "timeout", "bad_config", "crash", "disk"]
# How an agent's step fails: a training failure, or the evaluator's, the data's, the run
# folder's (disk) or a person's (an approval gate rejected).
ErrorKind = Literal[TrainingFailureKind, "eval_error", "bad_data", "rejected"]


class FailureInfo(BaseModel):
    """Why a run failed: a coarse kind, the relevant log lines and a normalised key."""

    kind: TrainingFailureKind
    message: str
    normalized: str
