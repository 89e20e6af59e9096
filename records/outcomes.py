"""Agent outcomes: what each agent hands back to the supervisor (findings, runs, scores, best)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from postlab.records.artifacts import ErrorKind, FailureSample, TrainingResult

# Every technique a card can name; the corpus schema and the trainer's recipes read it here.
TechniqueKey = Literal[
    "sft_full",
    "sft_lora",
    "grpo",
    "dpo",
    "rejection_sampling",
    "curriculum",
    "data_quality",
    "synthetic_teacher",
]


class PaperRef(BaseModel):
    """A paper a finding cites."""

    id: str
    title: str
    year: int


class LearningRateEvidence(BaseModel):
    """A learning rate one paper reports for a technique, and the model size it was used at."""

    paper: PaperRef
    learning_rate: float
    model_params: float | None = None


class Claim(BaseModel):
    """One effect a paper reports for a technique, with the paper and which way it points."""

    text: str
    paper: PaperRef
    # "setting": a recipe fact, naming no outcome (tools.papers.claims).
    stance: Literal["supports", "mixed", "against", "setting"] = "supports"


class TechniqueFinding(BaseModel):
    """A ranked technique card for this task, with the papers it came from."""

    key: TechniqueKey
    name: str
    method: str
    runnable: bool
    relevance: float
    rationale: str
    applies_when: str = ""
    # Settings other than the learning rate, each from the most relevant paper reporting it.
    recipe: dict[str, float] = Field(default_factory=dict)
    # Every learning rate the technique's papers report, most relevant paper first.
    learning_rates: list[LearningRateEvidence] = Field(default_factory=list)
    # What the card's papers report of it, each claim with its paper.
    claims: list[Claim] = Field(default_factory=list)
    papers: list[PaperRef] = Field(default_factory=list)
    # How well the technique fits this task's measured features (0..1), and why; cards rank by
    # relevance × fit.
    fit: float = 1.0
    fit_notes: list[str] = Field(default_factory=list)


class MeasuredEffect(BaseModel):
    """What one run measured of one technique: local evidence for the next run's ranking."""

    run_id: str
    task: str
    technique: TechniqueKey
    model_params: float
    # Mean change of validation accuracy per iteration, each against the model it started from.
    effect: float
    iterations: int
    steps: int


class ResearchReport(BaseModel):
    """The Librarian's answer: ranked findings and how much was read to get them."""

    query: str
    findings: list[TechniqueFinding]
    papers_read: int
    papers_via_citations: int


class TrainingRecord(BaseModel):
    """One training attempt of an iteration: its spec and its outcome."""

    iteration: int
    technique: str
    spec: dict[str, Any]
    result: TrainingResult


def finite_number(value: Any) -> float | None:
    """A number read from outside (a worker's event, a model's answer) as a float, or None when
    it is absent, text, a flag, infinite or NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def binomial_stderr(accuracy: float, n: int) -> float:
    """The standard error of an accuracy measured on n independent items."""
    # max(): an accuracy a rounding error past 1 must not make the variance negative.
    return math.sqrt(max(0.0, accuracy * (1 - accuracy)) / n) if n > 0 else 0.0


# McNemar's test, one-sided 5 %: how far the items a checkpoint broke may outnumber those it fixed,
# in standard deviations, before a dip on the same items is a drop and not chance.
DIP_Z = 1.645


def dip_is_chance(broken: int, fixed: int) -> bool:
    """Whether a checkpoint that got `broken` items wrong which another got right, and `fixed`
    the other way round, on the same items, is within chance of it (McNemar's normal
    approximation with its continuity correction, which keeps it near the exact binomial test
    on few items): a dip of a few items among many that changed is noise."""
    return broken - fixed - 1 <= DIP_Z * math.sqrt(broken + fixed)


class PairedComparison(BaseModel):
    """A challenger against a reference scored on the same items: the items only one of them
    got right, and whether the gap is beyond chance (McNemar's test, one-sided 5 % each way).

    Pairing judges the difference on the items that changed, so two scores a standard error
    apart on their own can still be told apart, or not, by what the items say."""

    n: int
    gained: int  # right for the challenger, missed by the reference
    lost: int  # missed by the challenger, right for the reference

    @classmethod
    def of(
        cls, reference_missed: list[str], challenger_missed: list[str], n: int
    ) -> PairedComparison:
        """Compare two runs' misses on the same `n` items (as multisets: a prompt may recur)."""
        reference, challenger = Counter(reference_missed), Counter(challenger_missed)
        return cls(
            n=n,
            gained=(reference - challenger).total(),
            lost=(challenger - reference).total(),
        )

    @classmethod
    def pooled(cls, comparisons: list[PairedComparison]) -> PairedComparison:
        """Several seeds' comparisons as one, their changed items counted together."""
        return cls(
            n=sum(c.n for c in comparisons),
            gained=sum(c.gained for c in comparisons),
            lost=sum(c.lost for c in comparisons),
        )

    @computed_field
    @property
    def difference(self) -> float:
        """Challenger's accuracy minus the reference's."""
        return (self.gained - self.lost) / self.n if self.n else 0.0

    @computed_field
    @property
    def stderr(self) -> float:
        """The paired standard error of the difference."""
        if not self.n:
            return 0.0
        changed, net = self.gained + self.lost, self.gained - self.lost
        return math.sqrt(max(0.0, changed - net * net / self.n)) / self.n

    @computed_field
    @property
    def verdict(self) -> Literal["ahead", "level", "behind"]:
        """Where the challenger stands once chance is allowed for."""
        if not dip_is_chance(self.lost, self.gained):
            return "behind"
        if not dip_is_chance(self.gained, self.lost):
            return "ahead"
        return "level"

    def describe(self) -> str:
        """'+0.05 ± 0.03: 7 gained, 2 lost (level)' (on 100 items)."""
        return (
            f"{self.difference:+.2f} ± {self.stderr:.2f}: {self.gained} gained, "
            f"{self.lost} lost ({self.verdict})"
        )


class SplitScore(BaseModel):
    """Strict and lenient accuracy on one split, with the item count behind them."""

    split: Literal["validation", "test"]
    strict: float
    lenient: float
    n: int
    # The external command that judged this score (--eval-cmd); None: the task's own split.
    judge: str | None = None
    # The judge's own standard error, when it reported one.
    judge_stderr: float | None = None

    @property
    def stderr(self) -> float:
        """The judge's standard error, else the binomial one of the strict accuracy."""
        if self.judge_stderr is not None:
            return self.judge_stderr
        return binomial_stderr(self.strict, self.n)


class AnswerShift(BaseModel):
    """One answer far more common in training than in validation, or than anything says test
    holds: a prior the model can learn instead of the task."""

    answer: str
    train_share: float
    validation_share: float
    # Validation is a slice of the training file: it shares training's skew, so nothing tells
    # whether test does (validation counts every answer equally, as every lent one does).
    prior_unknown: bool = False

    def describe(self) -> str:
        """The shift in words, for reasons and summaries."""
        share = f"training answers are {self.train_share:.0%} {self.answer!r}"
        if self.prior_unknown:
            return (
                f"{share} and validation, a slice of the training file, cannot say whether test "
                "holds that skew (it counts every answer equally)"
            )
        return f"{share} against {self.validation_share:.0%} in validation"


class ConstantAnswer(BaseModel):
    """Always giving the training set's commonest answer, scored as the baseline is: the floor a
    model on a label task must clear before its score says it learned anything."""

    answer: str
    validation: float
    validation_n: int
    # Scored to report beside the baseline's and the best's test scores; nothing decides on it.
    test: float | None = None
    test_n: int | None = None

    def describe(self) -> str:
        """The floor's name, for the report's and the model card's tables."""
        return f"always {self.answer!r} (training's commonest answer)"

    def cleared_by(self, strict: float) -> bool:
        """Whether a validation score is above what this one answer scores."""
        return strict > self.validation


def target_met(strict: float, target: float, floor: ConstantAnswer | None) -> bool:
    """Whether a best's validation score meets the target: at or above it, and above one answer
    given to everything (on a split 97% "no", answering "no" solves nothing)."""
    return strict >= target and (floor is None or floor.cleared_by(strict))


class FolderSurvey(BaseModel):
    """A task folder read when the run is prepared: its usable training rows, how many of the
    first of them follow copy rules or number rules (tools/data/recombination.py), which new
    rows can be made by, and how many ask for a fact in words."""

    # Counted as a data card counts them: distinct prompts, none a copy of a held-out row.
    rows: int
    # The first rows, at most as many as a stretch builds, that the rules were sought in.
    surveyed_rows: int
    number_rule_rows: int = 0
    copy_rule_rows: int = 0
    number_rules: list[str] = Field(default_factory=list)
    # Rows asking for a fact in words (tools/data/known_rows.py): a recall task's.
    recall_rows: int = 0


class MissCluster(BaseModel):
    """Free-form misses that resemble each other (by embedding): one pattern of failure."""

    size: int
    share: float  # of the free-form ("wrong") misses
    example: FailureSample
    # Every member's prompt: what data aimed at the pattern is drawn near.
    prompts: list[str] = Field(default_factory=list)
    # The split's questions near the members' (by embedding) and how often they are right,
    # against the rest: a pattern is a skill gap only where the model is weak, not the task.
    near_items: int = 0
    near_accuracy: float = 0.0
    rest_accuracy: float = 0.0
    unlearned: bool = False


class EvaluationRecord(BaseModel):
    """One scored checkpoint on validation (what decisions read), compared with baseline and best.

    `test` is filled for the baseline only: test is scored to report, never to decide.
    """

    label: str  # "baseline" or "iter-<k>"
    iteration: int  # 0 for the baseline
    checkpoint: str
    strict: float
    lenient: float
    n: int
    test: SplitScore | None = None
    # Share of validation items given one and the same answer, when the model collapsed (else 0).
    collapse: float = 0.0
    # strict and lenient count every reference answer equally (validation lent from the
    # training file on a label task: agents.evaluator._balanced_splits).
    balanced_by_label: bool = False
    error_categories: dict[str, int] = Field(default_factory=dict)
    # The kinds of question its `unlearned_kind` misses fall in (prompts, numbers blanked).
    unlearned_kinds: list[str] = Field(default_factory=list)
    failures: list[FailureSample] = Field(default_factory=list)
    # Every validation prompt it missed (None in records from before they were kept): what a
    # paired comparison of two checkpoints on the same items reads.
    missed: list[str] | None = None
    # Free-form misses of a task folder grouped by meaning, largest first (no verifier can name
    # their kind).
    miss_clusters: list[MissCluster] = Field(default_factory=list)
    delta_vs_baseline: float = 0.0
    delta_vs_best: float = 0.0
    is_best: bool = False
    wall_s: float = 0.0


class HeldPeak(BaseModel):
    """The highest validation score a checkpoint stayed within noise of, on the schedule it
    continued: why it took the best's place without beating it."""

    label: str
    strict: float
    stderr: float
    # On the same items: those the peak got right and this one missed, and the other way round
    # (None where the misses were not recorded: then one standard error is the width).
    broken: int | None = None
    fixed: int | None = None
    # Set when the hold is a label phase's (agents.best_place.phase_parent): why validation says
    # nothing yet of the schedule it continued.
    phase: str | None = None

    def describe(self) -> str:
        """The hold in words, for the step's summary and the report."""
        peak = f"{self.label}'s {self.strict:.2f}, the highest validation score"
        if self.phase:
            return (
                f"a label set still being learned ({self.phase}): {peak}, is set aside until "
                "the phase ends"
            )
        if self.broken is None or self.fixed is None:
            within = f"within one standard error ({self.stderr:.2f}) of {peak}"
        else:
            within = (
                f"within chance of {peak} (on the same items it missed {self.broken} that "
                f"{self.label} got right and got {self.fixed} right that {self.label} missed: "
                "McNemar's test, one-sided 5 %)"
            )
        return f"{within}, on the schedule it continued"


class BestModel(BaseModel):
    """The best checkpoint by validation, where it came from, and its test score once taken."""

    checkpoint: str
    strict: float
    lenient: float
    label: str
    iteration: int
    n: int = 0
    test: SplitScore | None = None
    # Set when it took the best's place without beating the highest score (a hold).
    held: HeldPeak | None = None
    # The best a label phase's hold took the place of, while nothing has beaten it: the result
    # again if the run ends first (agents.evaluator.test_best).
    set_aside: BestModel | None = None
    # Set on a best a label phase set aside and the run's end restored (nothing since beat it on
    # validation): the label of the best it was set aside for, which the report names.
    restored_over: str | None = None

    @property
    def reported(self) -> BestModel:
        """The model a run that ended now would report: the one a label phase set aside while
        nothing has beaten it on validation, else this one."""
        aside = self.set_aside
        return aside if aside is not None and aside.strict > self.strict else self

    @property
    def ready_to_report(self) -> bool:
        """Whether it is the model to report and already has its test score."""
        return self.reported is self and self.test is not None


class AgentOutcome(BaseModel):
    """How an agent step ended: ok, or failed with a classified, normalised error."""

    status: Literal["ok", "failed"] = "ok"
    summary: str = ""
    error_kind: ErrorKind | None = None
    error: str | None = None
    error_normalized: str | None = None
    score: float | None = None
