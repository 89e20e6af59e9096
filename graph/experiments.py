"""The playbook's experiments: which technique next, with what settings, and why (with evidence).

Every number a plan carries comes from a card's recipe scaled by the rules in
`tools.training.recipes`, or from the previous plan changed by a named refinement; every reason
names its evidence: validation scores, error categories and the papers a card cites.
"""

from __future__ import annotations

from typing import Any, Literal

from postlab.records.budget import budget_of, steps_used, time_left
from postlab.records.hyper import DEFAULT_GRPO_GROUP, DEFAULT_LORA_RANK, Hyper
from postlab.records.outcomes import EvaluationRecord, TechniqueFinding
from postlab.records.run import RunOptions, StopReason
from postlab.records.state import LabState
from postlab.records.steps import Plan
from postlab.tools.training.recipes import (
    FULL_FINETUNE_MAX_BYTES,
    LR_BOUNDS,
    RECIPES_BY_METHOD,
    TECHNIQUES,
    adapter_for,
    applies,
    model_parameters,
    pooled_learning_rate,
    steps_for,
    weights_bytes,
)

Move = Literal[
    "open", "fix", "continue", "raise_lr", "target_errors", "rebalance", "lower_lr", "switch"
]
# A continuation starts from a model already trained on the task: it re-warms to a lower peak.
# Measured: continuing at the same rate lost validation accuracy on answer_format (0.63 → 0.50)
# and gained nothing on the demo's addition_2d (0.78 → 0.76) in benchmarks/lab_vs_naive.py.
CONTINUE_LR_FACTOR = 0.5
CONTINUE_WHY = f"at {CONTINUE_LR_FACTOR:g}× the learning rate (a trained model re-warms lower)"
# A validation gain this large means the model still learns fast at its rate: the next step
# climbs (a larger rate, within the adapter's bounds) instead of annealing. Measured: sort_list
# went 0.02 → 0.32 → 0.42 on validation at 3.9e-5 then a halved 1.9e-5, where one run at 6e-5
# reached 0.53 (benchmarks/lab_vs_naive.py --quick, benchmarks/lr_sweep.py): it under-trained.
STRONG_GAIN = 0.1
RAISE_LR_FACTOR = 1.5
# Fewest rows an iteration builds, whatever its steps (the dataset builder's own floor is 8).
MIN_TRAINING_ROWS = 16
# Agent steps one iteration takes: build data, train, score on validation.
ITERATION_STEPS = 3
# A miss category holding at least this share of the misses changes the data, not only the LR.
DOMINANT_SHARE = 0.5
# Categories the data can target: a specific skill gap (a lost carry shows as an answer off by a
# power of ten). Plain "wrong" says nothing about which skill is missing, and format or empty
# outputs are what plain SFT fixes. Measured: oversampling the misses when they were merely
# "wrong" lowered validation on sort_list (0.30 → 0.30) and answer_format (0.60 → 0.38) in
# benchmarks/lab_vs_naive.py --quick, where continuing on fresh data is the better move.
TARGETABLE = ("off_by_power_of_ten",)


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
    """Data recipes a technique's trainer can learn from in this run (synthetic needs a teacher)."""
    recipes = RECIPES_BY_METHOD[TECHNIQUES[key].method]
    if state["run_options"].teacher:
        return recipes
    return tuple(recipe for recipe in recipes if recipe != "synthetic")


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


def hyper_for(finding: TechniqueFinding, state: LabState) -> tuple[Hyper, str]:
    """Settings for a technique from its card, scaled to this model and run; and how, in words."""
    options: RunOptions = state["run_options"]
    recipe = TECHNIQUES[finding.key]
    checkpoint = state["base_model_path"]
    adapter = adapter_for(finding.key, checkpoint)
    evidence = finding.learning_rates
    reported = [(e.learning_rate, e.model_params) for e in evidence] or [(recipe.default_lr, None)]
    lr, rule = pooled_learning_rate(reported, model_parameters(checkpoint), adapter)
    papers = ", ".join(f"{e.paper.title} ({e.paper.id})" for e in evidence)
    source = f"{finding.name} card: {papers}" if evidence else "the technique's default"
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
    if recipe.method in ("dpo", "orpo") and "beta" in finding.recipe:
        values["beta"] = float(finding.recipe["beta"])
    how = f"lr {lr:g} from {source}: {rule}"
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
    data = recipe or technique.data
    fmt = {"grpo": "grpo", "preference": "preference"}.get(data, "sft")
    # Built to the rows training will draw (no rows made and never seen), within --train-size;
    # prompt-only and preference rows each cost several generations to make, so fewer.
    ceiling = options.train_size if fmt == "sft" else max(16, options.train_size // 4)
    size = max(MIN_TRAINING_ROWS, min(ceiling, hyper.rows_seen))
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
        parent=best.iteration if best else 0,
        move=move,
    )


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


def dominant_miss(evaluation: EvaluationRecord) -> tuple[str, float] | None:
    """The error category holding most of an evaluation's misses, when it dominates."""
    misses = {k: v for k, v in evaluation.error_categories.items() if k != "correct"}
    total = sum(misses.values())
    if not total:
        return None
    category, count = max(misses.items(), key=lambda item: item[1])
    share = count / total
    return (category, share) if share >= DOMINANT_SHARE else None


def _finding(state: LabState, key: str) -> TechniqueFinding | None:
    return next((f for f in state.get("findings") or [] if f.key == key), None)


def _switch(state: LabState, plan: Plan, why: str) -> tuple[Plan | None, Move | str]:
    alternative, skipped = pick_technique(
        state, {plan.technique, *state.get("tried_techniques", [])}
    )
    if alternative is None:
        detail = f"; {skipped}" if skipped else ""
        return None, f"{why} and no untried technique applies{detail}"
    reason = f"{why}: switch to {alternative.name} ({cites(alternative)})"
    return new_plan(state, alternative, reason, move="switch"), "switch"


def _fix_failure(state: LabState, plan: Plan) -> tuple[Plan | None, Move | str]:
    runs = [r for r in state.get("runs") or [] if r.iteration == plan.iteration]
    failure = runs[-1].result.failure if runs else None
    kind = failure.kind if failure else "data"
    hyper, finding = plan.hyper, _finding(state, plan.technique)
    if kind == "oom" and hyper.batch_size > 1:
        hyper = hyper.with_changes(
            batch_size=max(1, hyper.batch_size // 2), grad_accum=hyper.grad_accum * 2
        )
        why = "out of memory: halve the batch, double gradient accumulation"
    elif kind == "nan":
        hyper = hyper.with_changes(learning_rate=hyper.learning_rate / 4)
        why = "loss diverged: quarter the learning rate"
    elif kind == "timeout":
        hyper = hyper.with_changes(max_steps=max(1, hyper.max_steps // 2))
        why = "training timed out: halve the steps"
    else:
        return _switch(state, plan, f"{plan.technique} failed ({kind})")
    if finding is None:
        return None, f"{plan.technique} failed ({kind}) and its card is gone"
    reason = f"iteration {plan.iteration} {why}"
    return new_plan(state, finding, reason, hyper, recipe=plan.data_recipe, move="fix"), "fix"


def _next_rate(plan: Plan, gain: float) -> tuple[float, str, Move]:
    """The learning rate a continuation takes after a gain, why, and the move it makes."""
    rate = plan.hyper.learning_rate
    if gain < STRONG_GAIN:
        return rate * CONTINUE_LR_FACTOR, CONTINUE_WHY, "continue"
    high = LR_BOUNDS[plan.hyper.adapter][1]
    raised = float(f"{min(high, rate * RAISE_LR_FACTOR):.3g}")
    if raised > rate:
        why = (
            f"at {raised:g} ({RAISE_LR_FACTOR:g}× the rate: +{gain:.2f} means it still learns fast)"
        )
        return raised, why, "raise_lr"
    why = f"at the same rate {rate:g} (+{gain:.2f}; {plan.hyper.adapter}'s bound is {high:g})"
    return rate, why, "continue"


def refine(state: LabState, plan: Plan) -> tuple[Plan | None, Move | str]:
    """The next experiment after an iteration, from validation evidence; or None and why not.

    Failed → fix (OOM, divergence, timeout) or switch. Collapsed to one answer → retrain on
    rows balanced by answer at half the rate (SFT), or switch when that was already tried.
    Gained → continue from the new best, on data aimed at the dominant miss when one dominates:
    at a raised rate after a large gain, at half the rate after a small one.
    Stalled → halve the learning rate once, then switch technique.
    """
    if plan.status == "failed":
        return _fix_failure(state, plan)
    options: RunOptions = state["run_options"]
    finding = _finding(state, plan.technique)
    evaluations = state.get("evaluations") or []
    this = next((e for e in reversed(evaluations) if e.iteration == plan.iteration), None)
    if this is None:
        return _switch(state, plan, f"iteration {plan.iteration} has no validation score")
    before = max((e.strict for e in evaluations if e is not this), default=0.0)
    evidence = f"validation {before:.2f} → {this.strict:.2f}"
    if this.collapse:
        collapsed = (
            f"iteration {plan.iteration} collapsed: {this.collapse:.0%} of validation "
            f"answers are one and the same ({evidence})"
        )
        if finding is None or plan.data_recipe == "balanced" or plan.method != "sft":
            return _switch(state, plan, collapsed)
        # A model that answers everything alike learned the majority answer: take that
        # shortcut away (every answer equally often) and step more gently.
        hyper = plan.hyper.with_changes(learning_rate=plan.hyper.learning_rate / 2)
        reason = (
            f"{collapsed}: retrain {finding.name} from the best checkpoint on rows balanced "
            "by answer, at half the learning rate"
        )
        rebalanced = new_plan(
            state, finding, reason, hyper, lr_halved=True, recipe="balanced", move="rebalance"
        )
        return rebalanced, "rebalance"
    if finding is None:
        return _switch(state, plan, f"{plan.technique} has no card left")
    if this.strict >= before + options.guard.min_improvement:
        rate, how, move = _next_rate(plan, this.strict - before)
        stepped = plan.hyper.with_changes(learning_rate=rate)
        dominant = dominant_miss(this)
        if dominant and dominant[0] in TARGETABLE and TECHNIQUES[plan.technique].method == "sft":
            category, share = dominant
            reason = (
                f"iteration {plan.iteration} raised {evidence}; {share:.0%} of its misses are "
                f"'{category}': continue {finding.name} on data weighted toward those misses, "
                f"{how}"
            )
            targeted = new_plan(
                state, finding, reason, stepped, recipe="targeted", move="target_errors"
            )
            return targeted, "target_errors"
        reason = (
            f"iteration {plan.iteration} raised {evidence}: continue {finding.name} from the "
            f"new best on fresh data, {how}"
        )
        continued = new_plan(state, finding, reason, stepped, recipe=plan.data_recipe, move=move)
        return continued, move
    if not plan.lr_halved:
        hyper = plan.hyper.with_changes(learning_rate=plan.hyper.learning_rate / 2)
        reason = (
            f"iteration {plan.iteration} did not beat the best ({evidence}): halve the learning "
            "rate and restart from the best checkpoint"
        )
        return new_plan(state, finding, reason, hyper, lr_halved=True, move="lower_lr"), "lower_lr"
    return _switch(state, plan, f"{plan.technique} stopped improving ({evidence})")
