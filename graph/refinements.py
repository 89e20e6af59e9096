"""Refinements: the next experiment after an iteration, chosen from its validation evidence.

A typed set of moves (fix, continue, raise_lr, target_errors, hold, rebalance, lower_lr,
switch) made from the best node of the experiment tree; each reason names the scores and
miss categories that chose it.
"""

from __future__ import annotations

from typing import NamedTuple

from postlab.agents.base import dataset_card
from postlab.agents.best_place import phase_parent, went_on_with
from postlab.graph.aimed_data import RECIPE_WORDS, Aimed, aimed_recipe
from postlab.graph.experiments import Move, cites, new_plan, pick_technique, usable_recipes
from postlab.graph.memorised import Memorised, memorised
from postlab.graph.number_rows import number_rows
from postlab.graph.rates import climbed
from postlab.records.outcomes import EvaluationRecord, TechniqueFinding
from postlab.records.run import RunOptions
from postlab.records.state import LabState
from postlab.records.steps import Plan
from postlab.tools.data.recombination import EVIDENCE as RECOMBINATION_EVIDENCE
from postlab.tools.training.recipes import NEW_ROW_RECIPES, rereads_its_source


class Scored(NamedTuple):
    """A scored iteration as the moves after it read it: its plan, its technique's card (None
    once gone), its validation record and how it compares with the best before it, in words."""

    plan: Plan
    finding: TechniqueFinding | None
    this: EvaluationRecord
    evidence: str


def _collapse_is_a_phase(state: LabState, plan: Plan, this: EvaluationRecord) -> str | None:
    """Why a collapse is a stretch of learning a label set, not a learned prior; None if not.

    Fine-tuning on a balanced label set first fits the answers' prior (one answer for every
    prompt) and only then the mapping. Measured: multiple_choice_arith's first 10 steps answered
    every validation question with one letter (0.28), where one plain run of 20 steps reached
    0.30 on test; rebalancing at half the rate instead fell to 0.18
    (benchmarks/lab_vs_naive.py --quick). The phase may last several stretches (on the held-out
    choice_category folder one letter went to 100%, 89%, 87%, 56% of validation's answers, then
    none, 0.15 → 0.95), and a later one may collapse harder than its parent: the evaluator then
    lets it take the best's place (agents.best_place.phase_parent), and it goes on from there.
    """
    evaluations = state.get("evaluations") or []
    best = state.get("best")
    # A continuation grows from the best: only the collapsed model itself can go on.
    if (
        best is None
        or best.iteration != plan.iteration
        or state.get("answer_shift") is not None
        or not plan.schedule_unfinished
    ):
        return None
    earlier = any(e.collapse for e in evaluations if e is not this and e.iteration > 0)
    if not earlier and plan.move in ("open", "switch"):
        return "no earlier iteration collapsed"
    if parent := phase_parent(state, plan):
        return went_on_with(parent)
    return None


def _finding(state: LabState, key: str) -> TechniqueFinding | None:
    return next((f for f in state.get("findings") or [] if f.key == key), None)


def _switch(
    state: LabState, plan: Plan, why: str, aimed: Aimed | None = None
) -> tuple[Plan | None, Move | str]:
    """Switch to the next card that applies; on the aimed recipe where its trainer takes it."""
    alternative, skipped = pick_technique(
        state, {plan.technique, *state.get("tried_techniques", [])}
    )
    if alternative is None:
        detail = f"; {skipped}" if skipped else ""
        return None, f"{why} and no untried technique applies{detail}"
    reason = f"{why}: switch to {alternative.name} ({cites(alternative)})"
    recipe = None
    if aimed and aimed.recipe in usable_recipes(state, alternative.key):
        recipe = aimed.recipe
        reason += f", {aimed.words}"
    return new_plan(state, alternative, reason, recipe=recipe, move="switch"), "switch"


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


def _after_memorising(
    state: LabState, plan: Plan, finding: TechniqueFinding, why: str, learned: Memorised
) -> tuple[Plan | None, Move | str]:
    """New rows when a recipe here can make them (the teacher's; else the folder's own rows
    with their copied words swapped, where its answers copy their prompts); else stop: more
    passes over rows known by heart cannot move validation."""
    why = f"{why}; {learned.describe()}"
    usable = usable_recipes(state, plan.technique)
    if "synthetic" in usable and plan.data_recipe != "synthetic":
        reason = f"{why}: continue {finding.name} on new rows from the teacher"
        fresh = new_plan(state, finding, reason, plan.hyper, recipe="synthetic", move="continue")
        return fresh, "continue"
    # Usable only where most of the folder's rows follow copy (or number) rules.
    if "recombined" in usable and plan.data_recipe != "recombined":
        reason = (
            f"{why}; {learned.rule_rows} of them copy words of their prompts into their answers "
            f"by a rule other rows share: continue {finding.name} on new rows with those words "
            f"swapped for others ({RECOMBINATION_EVIDENCE})"
        )
        if not learned.rule_rows:
            reason = (
                f"{why}; most of them follow number rules: continue {finding.name} on new rows "
                "those rules compute"
            )
        fresh = new_plan(state, finding, reason, plan.hyper, recipe="recombined", move="continue")
        return fresh, "continue"
    return None, (
        f"{why}, so further steps on the same rows would barely move its weights, and no recipe "
        "here brings new ones (a --teacher would): stop"
    )


def _fresh_rows(state: LabState, plan: Plan) -> str:
    """What a stretch that keeps its parent's recipe trains on, as a reason says it."""
    if plan.data_recipe in RECIPE_WORDS or plan.data_recipe in NEW_ROW_RECIPES:
        return f"fresh rows of the same recipe, {plan.data_recipe}"
    card = dataset_card(state, plan.dataset_path)
    if card is not None and rereads_its_source(card):
        # A folder smaller than a stretch has no fresh rows to give: the reason must not say so.
        return f"the same {card.final_size} rows again, every row its source holds"
    return "fresh data"


def refine(state: LabState, plan: Plan) -> tuple[Plan | None, Move | str]:
    """The next experiment after an iteration, from validation evidence; or None and why not.

    Failed → fix (OOM, divergence, timeout) or switch. Collapsed to one answer → continue the
    schedule when training answers are balanced and it is a phase (the first collapse, or one
    that went on with a collapsed parent's schedule and took the best's place), else retrain on
    rows balanced by answer at half the rate (SFT), or switch when that was already tried.
    Gained → continue from the new best on the same annealing schedule, on data aimed at the
    dominant miss when one dominates.
    Trained on rows it already knew by heart (graph.memorised) without a gain → new rows from a
    teacher, or recombined from the folder's own, or stop.
    Held within noise of the best on an unfinished schedule, or past a label phase's held best
    but not the best it set aside → continue it.
    A stretch that has not fit rows it reads again (its training loss ended high, or it gave one
    answer to most of validation, read as a phase) → the rest of its schedule, continued after
    a gain, a hold or a collapse read as a phase, at the under-fit ceiling.
    Stalled → halve the learning rate once, then switch technique; data aimed at a gap the
    misses still name stays aimed.
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
    scored = Scored(plan, finding, this, evidence)
    if this.collapse:
        return _after_collapse(state, scored)
    if finding is None:
        return _switch(state, plan, f"{plan.technique} has no card left")
    if this.strict >= before + options.guard.min_improvement:
        return _after_gain(state, scored)
    if learned := memorised(state, plan):
        why = f"iteration {plan.iteration} did not beat the best ({evidence})"
        return _after_memorising(state, plan, finding, why, learned)
    if plan.last_bet:
        # The new rows were the one thing left to try: the stretch before it had learned its
        # folder by heart, and more of these rows would be the same bet again.
        return None, (
            f"iteration {plan.iteration}, the first on {plan.data_recipe} rows after its folder's "
            f"own were learned by heart, did not beat the best ({evidence}): stop"
        )
    best = state.get("best")
    if best is not None and best.iteration == plan.iteration and plan.schedule_unfinished:
        return _after_hold(state, scored)
    return _after_stall(state, scored)


def _after_collapse(state: LabState, scored: Scored) -> tuple[Plan | None, Move | str]:
    """A stretch that gave one answer to most of validation: the schedule goes on where it is a
    label phase; else the same technique on rows balanced by answer, or a switch."""
    plan, finding, this, evidence = scored
    collapsed = (
        f"iteration {plan.iteration} collapsed: {this.collapse:.0%} of validation "
        f"answers are one and the same ({evidence})"
    )
    if finding is None or plan.data_recipe == "balanced" or plan.method != "sft":
        return _switch(state, plan, collapsed)
    if phase := _collapse_is_a_phase(state, plan, this):
        hyper, climb = climbed(state, plan, this.collapse)
        reason = (
            f"{collapsed}, but its training data over-represents no answer against "
            f"validation and {phase}: a model learning a label set answers its prior "
            f"first; continue {finding.name} on the same schedule{climb}"
        )
        move: Move = "raise_lr" if climb else "continue"
        continued = new_plan(state, finding, reason, hyper, recipe=plan.data_recipe, move=move)
        return continued, move
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


def _after_gain(state: LabState, scored: Scored) -> tuple[Plan | None, Move | str]:
    """A stretch that beat the best: continue from it, on rows number rules compute or data
    aimed at a dominant miss where there is one, at the rate its fit calls for."""
    plan, finding, this, evidence = scored
    stepped, climb = climbed(state, plan)
    move: Move = "raise_lr" if climb else "continue"
    how = f"on the same schedule{climb or ' (it anneals the rate)'}"
    if numbers := number_rows(state, plan):
        reason = (
            f"iteration {plan.iteration} raised {evidence}; {numbers.describe()}: continue "
            f"{finding.name} on them, {how}"
        )
        return new_plan(state, finding, reason, stepped, recipe="recombined", move=move), move
    aimed = aimed_recipe(plan, this)
    if aimed:
        reason = (
            f"iteration {plan.iteration} raised {evidence}; {aimed.evidence}: continue "
            f"{finding.name} on {RECIPE_WORDS[aimed.recipe]}, {how}"
        )
        aimed_plan = new_plan(
            state, finding, reason, stepped, recipe=aimed.recipe, move="target_errors"
        )
        return aimed_plan, "target_errors"
    # An aimed recipe goes on, built afresh from the new best's evaluation.
    data = _fresh_rows(state, plan)
    reason = (
        f"iteration {plan.iteration} raised {evidence}: continue {finding.name} from the "
        f"new best on {data}, {how}"
    )
    continued = new_plan(state, finding, reason, stepped, recipe=plan.data_recipe, move=move)
    return continued, move


def _after_hold(state: LabState, scored: Scored) -> tuple[Plan | None, Move | str]:
    """A stretch the evaluator let take the best's place without beating every score
    (agents.best_place's schedule_hold): within noise of the best on the same schedule, a label
    phase's stretch, or past a phase's held best but not the best it set aside. Its schedule
    goes on."""
    plan, finding, this, evidence = scored
    best = state["best"]
    aside = best.set_aside
    if best.held is None and aside is not None:
        held_why = (
            f"iteration {plan.iteration} passed the label phase's held best but not "
            f"{aside.label}'s {aside.strict:.2f}, which stays set aside ({evidence}): its "
            "schedule goes on"
        )
    elif best.held is not None and best.held.phase:
        held_why = (
            f"iteration {plan.iteration} held {evidence}, {best.held.describe()}: the "
            "phase's schedule goes on"
        )
    else:
        within = (
            best.held.describe()
            if best.held
            else f"within one standard error of the best on {this.n} items"
        )
        held_why = (
            f"iteration {plan.iteration} held {evidence}, {within}: noise on an unfinished "
            "schedule, not a stall"
        )
    if numbers := number_rows(state, plan):
        reason = (
            f"{held_why}; {numbers.describe()}: continue {finding.name} from it on them, "
            "on the same schedule"
        )
        recipe = "recombined"
    else:
        aimed = aimed_recipe(plan, this)
        data = aimed.words if aimed else f"on {_fresh_rows(state, plan)}"
        reason = f"{held_why}; continue {finding.name} from it {data}, on the same schedule"
        recipe = aimed.recipe if aimed else plan.data_recipe
    # The move stays a hold (it chose which checkpoint goes on); the climb is in the reason.
    hyper, climb = climbed(state, plan)
    held = new_plan(state, finding, f"{reason}{climb}", hyper, recipe=recipe, move="hold")
    return held, "hold"


def _restart_point(state: LabState) -> str:
    """The checkpoint a restart goes back to, as a reason names it."""
    best = state.get("best")
    if best is None or best.set_aside is None:
        return "the best checkpoint"
    # The evidence names the highest score, the set-aside peak; the restart is from the stretch
    # that holds the best's place, and a reader must not take one for the other.
    aside = best.set_aside
    return (
        f"{best.label}'s checkpoint, the best's place since the label phase ({aside.label}'s "
        f"{aside.strict:.2f} stays set aside)"
    )


def _after_stall(state: LabState, scored: Scored) -> tuple[Plan | None, Move | str]:
    """A stretch that did not beat the best: halve the rate and restart from the best once,
    then switch technique."""
    plan, finding, this, evidence = scored
    # A skill gap the misses still name keeps the data aimed at it through a stall: a stretch
    # is too short to learn it, and a move back to plain rows would drop what it needs.
    aimed = aimed_recipe(plan, this)
    if not plan.lr_halved:
        # Rows number rules compute come first here as after a gain or a hold.
        numbers = number_rows(state, plan)
        hyper = plan.hyper.with_changes(learning_rate=plan.hyper.learning_rate / 2)
        data = f", {aimed.words}" if aimed else ""
        if numbers:
            data = f"; {numbers.describe()}: on them"
        reason = (
            f"iteration {plan.iteration} did not beat the best ({evidence}): halve the learning "
            f"rate and restart from {_restart_point(state)}{data}"
        )
        # Rows the source itself lacks (a teacher's, recombined ones) stay: plain rows are the
        # ones it learned by heart.
        kept = plan.data_recipe if plan.data_recipe in NEW_ROW_RECIPES else None
        recipe = "recombined" if numbers else aimed.recipe if aimed else kept
        lowered = new_plan(
            state, finding, reason, hyper, lr_halved=True, recipe=recipe, move="lower_lr"
        )
        return lowered, "lower_lr"
    return _switch(state, plan, f"{plan.technique} stopped improving ({evidence})", aimed)
