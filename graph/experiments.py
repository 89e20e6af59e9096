"""The playbook's experiments: which technique next, with what settings, and why (with evidence).

Every number a plan carries comes from a card's recipe scaled by the rules in
`tools.training.recipes`, or from the previous plan changed by a named refinement; every reason
names its evidence: validation scores, error categories and the papers a card cites.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from postlab.graph.known_rows import known_facts
from postlab.graph.memorised import last_bet
from postlab.records.artifacts import PREFERENCE_METHODS
from postlab.records.budget import budget_of, steps_used, time_left
from postlab.records.hyper import DEFAULT_GRPO_GROUP, DEFAULT_LORA_RANK, Hyper
from postlab.records.outcomes import LearningRateEvidence, TechniqueFinding
from postlab.records.run import RunOptions, StopReason
from postlab.records.state import LabState
from postlab.records.steps import Plan
from postlab.tools.data.recombination import recombinable
from postlab.tools.training.recipes import (
    FULL_FINETUNE_MAX_BYTES,
    RECIPES_BY_METHOD,
    TECHNIQUES,
    adapter_for,
    applies,
    model_parameters,
    one_pass_steps,
    pooled_learning_rate,
    steps_for,
    weights_bytes,
)

Move = Literal[
    "open",
    "fix",
    "continue",
    "raise_lr",
    "target_errors",
    "hold",
    "rebalance",
    "lower_lr",
    "switch",
]
# Every move but an opening and a switch trains the best model's technique further: it takes the
# next stretch of its learning-rate schedule and resumes its optimiser state, so a chain of
# continuations trains like one run. Measured: when every iteration re-warmed and re-decayed on
# its own, the lab trailed one plain run of the same steps on every task rerun
# (benchmarks/lab_vs_naive.py --quick).
CONTINUING: tuple[Move, ...] = tuple(m for m in get_args(Move) if m not in ("open", "switch"))
# Fewest rows an iteration builds, whatever its steps (the dataset builder's own floor is 8).
MIN_TRAINING_ROWS = 16
# Agent steps one iteration takes: build data, train, score on validation.
ITERATION_STEPS = 3


def cites(finding: TechniqueFinding) -> str:
    """The papers behind a card, for a reason."""
    return ", ".join(f"{paper.title} ({paper.id})" for paper in finding.papers[:2]) or "no paper"


def allowed(state: LabState) -> list[TechniqueFinding]:
    """Ranked cards the lab can run in this run (--techniques restricts them; a teacher's
    technique needs --teacher)."""
    options: RunOptions = state["run_options"]
    return [
        finding
        for finding in state.get("findings") or []
        if finding.runnable
        and finding.key in TECHNIQUES
        and (not options.techniques or finding.key in options.techniques)
        and (options.teacher or not TECHNIQUES[finding.key].needs_teacher)
    ]


def usable_recipes(state: LabState, key: str) -> tuple[str, ...]:
    """Data recipes a technique's trainer can learn from in this run (synthetic needs a teacher;
    recombined, a task folder whose rows mostly follow copy or number rules)."""
    unusable = set()
    if not state["run_options"].teacher:
        unusable.add("synthetic")
    if not (state.get("task_dir") and _folder_rules(state)):
        unusable.add("recombined")
    return tuple(r for r in RECIPES_BY_METHOD[TECHNIQUES[key].method] if r not in unusable)


def _folder_rules(state: LabState) -> bool:
    """Whether the folder surveyed when the run was prepared, or a data card of this run, has
    most of its rows following copy rules or number rules."""
    counts: list[tuple[int, int, int]] = []  # (copy-rule rows, number-rule rows, rows)
    if (survey := state.get("folder_survey")) is not None:
        counts.append((survey.copy_rule_rows, survey.number_rule_rows, survey.surveyed_rows))
    for card in state.get("datasets") or []:
        stats = card.recipe_stats
        rule_counts = (int(stats.get(key) or 0) for key in ("rule_rows", "number_rule_rows"))
        counts.append((*rule_counts, int(stats.get("seed_rows", card.final_size))))
    return any(
        recombinable(copy_rows, rows) or recombinable(number_rows, rows)
        for copy_rows, number_rows, rows in counts
    )


def balances_answers(state: LabState, key: str) -> bool:
    """Whether the technique's own rows are replaced by rows balanced by answer: training
    over-represents an answer that validation (or nothing) says test holds less of."""
    return state.get("answer_shift") is not None and "balanced" in usable_recipes(state, key)


def current_accuracy(state: LabState) -> float:
    """Validation accuracy of the best model so far (the baseline before any training)."""
    best = state.get("best") or state.get("baseline")
    return best.strict if best is not None else 0.0


def pick_technique(state: LabState, exclude: set[str]) -> tuple[TechniqueFinding | None, str]:
    """The best-ranked allowed card that can learn at today's accuracy, and why others could not."""
    accuracy = current_accuracy(state)
    too_large = weights_bytes(state["base_model_path"]) >= FULL_FINETUNE_MAX_BYTES
    # Techniques the user named are run as asked (an ablation); the band is then only a warning.
    asked = bool(state["run_options"].techniques)
    skipped: list[str] = []
    for finding in allowed(state):
        if finding.key in exclude:
            continue
        if too_large and TECHNIQUES[finding.key].adapter == "full":
            skipped.append(f"{finding.key} needs full fine-tuning, too large here")
            continue
        if why := applies(finding.key, accuracy):
            if asked:
                return finding, f"run as asked although it {why}"
            skipped.append(f"{finding.key} {why}")
            continue
        return finding, _passed_over(skipped)
    return None, _passed_over(skipped)


def _passed_over(skipped: list[str]) -> str:
    return f"passed over: {'; '.join(skipped)}" if skipped else ""


def rate_evidence(
    finding: TechniqueFinding, state: LabState, adapter: str
) -> tuple[list[LearningRateEvidence], str]:
    """The learning rates a technique's settings come from, and whose they are.

    A card whose papers report no rate (data recipes: quality filtering, curricula) trains with
    the same trainer and adapter as plain fine-tuning, so it borrows the plain card's evidence
    rather than a bare default. Measured: answer_format's data_quality card, on its default
    (2e-5 assumed at 7B, scaled to the then 8e-5 bound), reached 0.45 on test where plain SFT at
    5e-5 reached 0.63 (benchmarks/lab_vs_naive.py --quick).
    """
    if finding.learning_rates:
        papers = ", ".join(f"{e.paper.title} ({e.paper.id})" for e in finding.learning_rates)
        return finding.learning_rates, f"{finding.name} card: {papers}"
    method = TECHNIQUES[finding.key].method
    for other in state.get("findings") or []:
        same_trainer = TECHNIQUES.get(other.key) and TECHNIQUES[other.key].method == method
        if other.learning_rates and same_trainer and TECHNIQUES[other.key].adapter == adapter:
            papers = ", ".join(f"{e.paper.id}" for e in other.learning_rates)
            why = f"the {other.name} card ({papers}: same trainer and adapter; "
            return other.learning_rates, why + f"the papers of {finding.name} report no rate)"
    return [], "the technique's default"


def hyper_for(finding: TechniqueFinding, state: LabState) -> tuple[Hyper, str]:
    """Settings for a technique from its card, scaled to this model and run; and how, in words."""
    options: RunOptions = state["run_options"]
    recipe = TECHNIQUES[finding.key]
    checkpoint = state["base_model_path"]
    adapter = adapter_for(finding.key, checkpoint)
    evidence, source = rate_evidence(finding, state, adapter)
    reported = [(e.learning_rate, e.model_params) for e in evidence] or [(recipe.default_lr, None)]
    lr, rule = pooled_learning_rate(reported, model_parameters(checkpoint), adapter)
    values: dict[str, Any] = {
        "adapter": adapter,
        "learning_rate": lr,
        "max_steps": steps_for(finding.key, options.train_steps),
        "batch_size": options.batch_size,
    }
    if adapter == "lora":
        values["lora_r"] = int(finding.recipe.get("lora_r", DEFAULT_LORA_RANK))
    if recipe.method == "grpo":
        values.update(num_generations=DEFAULT_GRPO_GROUP, beta=float(finding.recipe.get("beta", 0)))
    if recipe.method in PREFERENCE_METHODS and "beta" in finding.recipe:
        values["beta"] = float(finding.recipe["beta"])
    how = f"lr {lr:g} from {source}: {rule}"
    if (facts := known_facts(state)) and recipe.method == "sft":
        passing = one_pass_steps(facts.rows, options.batch_size)
        if passing < values["max_steps"]:
            values["max_steps"] = passing
            how += (
                f"; {passing} steps a stretch, one pass over its {facts.rows} rows: facts "
                "learned by heart are given in place of the ones it knew"
            )
    return Hyper.model_validate(values), how


def new_plan(
    state: LabState,
    finding: TechniqueFinding,
    reason: str,
    hyper: Hyper | None = None,
    lr_halved: bool = False,
    recipe: str | None = None,
    move: Move = "open",
) -> Plan:
    """A fresh iteration of `finding` from the best checkpoint so far; the reason says why."""
    options: RunOptions = state["run_options"]
    previous = state.get("plan")
    iteration = previous.iteration + 1 if previous else 1
    best = state.get("best")
    init = best.checkpoint if best and best.iteration > 0 else state["base_model_path"]
    technique = TECHNIQUES[finding.key]
    if hyper is None:
        hyper, how = hyper_for(finding, state)
        reason = f"{reason} [{how}]"
    schedule = schedule_for(state, finding.key, hyper, move, iteration)
    reason = f"{reason} [{_stretch(schedule, hyper)}]"
    # Every iteration of a shifted task, not only the first, keeps the skew out of its rows.
    data = recipe or ("balanced" if balances_answers(state, finding.key) else technique.data)
    fmt = {"grpo": "grpo", "preference": "preference"}.get(data, "sft")
    # Built to the rows training will draw (no rows made and never seen), within --train-size;
    # prompt-only and preference rows each cost several generations to make, so fewer.
    ceiling = (
        options.train_size if fmt == "sft" else max(MIN_TRAINING_ROWS, options.train_size // 4)
    )
    size = max(MIN_TRAINING_ROWS, min(ceiling, hyper.rows_seen))
    parent = best.iteration if best else 0
    return Plan(
        iteration=iteration,
        technique=finding.key,
        method=technique.method,
        init_checkpoint=init,
        hyper=hyper,
        data_format=fmt,
        data_recipe=data,
        data_size=size,
        data_seed=options.seed * 1000 + iteration,
        reason=reason,
        lr_halved=lr_halved,
        last_bet=last_bet(state, data, parent),
        known_only=known_facts(state) is not None,
        parent=parent,
        move=move,
        **schedule,
    )


def _stretch(schedule: dict[str, Any], hyper: Hyper) -> str:
    start = schedule["schedule_offset"]
    where = (
        f"steps {start}–{start + hyper.max_steps} of a {schedule['schedule_steps']}-step schedule"
    )
    source = schedule["optimizer_from"]
    return f"{where}, from iteration {source}'s optimiser state" if source else where


def iterations_left(state: LabState, iteration: int) -> int:
    """Iterations the run can still hold from `iteration` on (its cap and its step budget)."""
    options: RunOptions = state["run_options"]
    steps_left = budget_of(state).steps - steps_used(state) - 1
    return max(1, min(options.max_iterations - iteration + 1, steps_left // ITERATION_STEPS))


def schedule_for(
    state: LabState, key: str, hyper: Hyper, move: Move, iteration: int
) -> dict[str, Any]:
    """Where an iteration's steps sit in a learning-rate schedule and whose optimiser it resumes.

    A continuing move of the best model's technique takes the next stretch of that model's
    schedule (and, for full fine-tuning, its saved Adam moments); anything else starts a schedule
    long enough for every iteration the run can still hold, as one plain run of those steps would.
    """
    best = state.get("best")
    parent = next(
        (
            run
            for run in reversed(state.get("runs") or [])
            if best and run.iteration == best.iteration and run.result.status == "ok"
        ),
        None,
    )
    fresh = {
        "schedule_offset": 0,
        "schedule_steps": hyper.max_steps * iterations_left(state, iteration),
    }
    if parent is None or move not in CONTINUING or parent.technique != key:
        return {**fresh, "optimizer_from": None}
    carried = parent.iteration if hyper.adapter == "full" == parent.spec.get("adapter") else None
    offset = int(parent.spec.get("schedule_offset", 0)) + int(parent.spec["max_steps"])
    length = int(parent.spec.get("schedule_steps") or parent.spec["max_steps"])
    if offset + hyper.max_steps > length:
        # Past the schedule's end (a retry added an iteration): a new one, from the same moments.
        return {**fresh, "optimizer_from": carried}
    return {"schedule_offset": offset, "schedule_steps": length, "optimizer_from": carried}


def budget_short(state: LabState) -> tuple[StopReason, str] | None:
    """Why another iteration would not fit what is left of the budgets, or None when it fits.

    An iteration costs ITERATION_STEPS agent steps (data, training, validation) plus the final
    test step; its wall time is estimated as the mean of the iterations so far.
    """
    trajectory = state.get("trajectory") or []
    budget = budget_of(state)
    left = budget.steps - steps_used(state)
    if left < ITERATION_STEPS + 1:
        return StopReason.BUDGET_STEPS, (
            f"{left} of {budget.steps} steps left: another iteration needs {ITERATION_STEPS + 1}"
        )
    remaining = time_left(state)
    done = [r for r in trajectory if r.iteration > 0]
    iterations = {r.iteration for r in done}
    if remaining is None or not iterations:
        return None
    per_iteration = sum(r.wall_s for r in done) / len(iterations)
    if per_iteration > remaining:
        return StopReason.BUDGET_TIME, (
            f"{remaining:.0f}s of the wall-clock budget left; an iteration has taken "
            f"{per_iteration:.0f}s on average"
        )
    return None
