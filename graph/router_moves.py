"""What the routing model may do: its answer schema, each answer checked against the playbook."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from postlab.graph.experiments import allowed, hyper_for, new_plan, usable_recipes
from postlab.graph.playbook import _route, stop
from postlab.records.hyper import LORA_RANK_RANGE, Hyper
from postlab.records.outcomes import finite_number
from postlab.records.run import RouteTarget, StopReason
from postlab.records.state import LabState
from postlab.records.steps import Decision, Directive, GuardEvent, Plan
from postlab.tools.training.recipes import applies, rate_range


class RoutingChoice(BaseModel):
    """The model's routing answer: next agent (or finalize), action, arguments and why."""

    next: RouteTarget
    action: str = Field("", description="Technique key when an iteration starts, else the action.")
    args: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field(description="Why this is the best next move, in one sentence.")


def _hyper(choice: RoutingChoice, key: str, base: Hyper, state: LabState) -> Hyper:
    """The plan's hyper-parameters with the model's overrides, clamped to this run's ranges."""
    options, changes = state["run_options"], {}
    low, high = rate_range(base.adapter, base.learning_rate)
    if (rate := finite_number(choice.args.get("learning_rate"))) is not None:
        changes["learning_rate"] = min(high, max(low, rate))
    for name in ("max_steps", "batch_size"):
        if (value := finite_number(choice.args.get(name))) is not None:
            changes[name] = int(min(options.chosen_limit(name), max(1, value)))
    if base.adapter == "lora" and (rank := finite_number(choice.args.get("lora_r"))) is not None:
        low, high = LORA_RANK_RANGE
        changes["lora_r"] = int(min(high, max(low, rank)))
    return base.with_changes(**changes)


def librarian_allowed(state: LabState, event: GuardEvent | None) -> str | None:
    """Why research may not run now, or None when it may."""
    if state.get("baseline") is None:
        return "measure the baseline first (evaluator)"
    trajectory = state.get("trajectory") or []
    if state.get("findings") and trajectory and trajectory[-1].agent == "librarian":
        return "the librarian just ran: act on its findings"
    plan = state.get("plan")
    if plan is not None and plan.status not in ("done", "failed") and event is None:
        return f"iteration {plan.iteration} is in progress ({plan.status.replace('_', ' ')})"
    return None


def validate(
    choice: RoutingChoice,
    state: LabState,
    step: int,
    event: GuardEvent | None,
    expected: Decision,
    expected_plan: Plan | None,
) -> tuple[Decision | None, Plan | None, str | None]:
    """The decision a valid choice makes, or the problem to tell the model."""
    reason = choice.reason.strip() or expected.reason
    guard_key = event.key if event else None
    if expected.next == "finalize":
        if choice.next != "finalize":
            return None, None, f"the run must stop now ({expected.reason}): answer finalize"
        return expected.model_copy(update={"reason": f"{reason} ({expected.reason})"}), None, None
    if choice.next == "finalize":
        # Between iterations, with something trained, stopping is the model's call to make.
        best = state.get("best")
        if expected_plan is not None and best is not None and best.iteration > 0:
            return stop(step, StopReason.CHOSEN, f"the router stopped: {reason}", event), None, None
        return None, None, f"stopping is not allowed yet; the playbook would go to {expected.next}"
    plan = state.get("plan")
    if choice.next == "librarian" and expected.next != "librarian":
        if why := librarian_allowed(state, event):
            return None, None, f"librarian not allowed now: {why}"
        query = str(choice.args.get("query") or choice.action or "")[:300]
        directive = Directive(
            agent="librarian",
            action="research",
            args={"query": query} if query else {},
            reason=reason,
            avoid=[plan.technique] if event is not None and plan is not None else [],
        )
        decision = Decision(
            step=step, next="librarian", reason=reason, directive=directive, guard_event=guard_key
        )
        return decision, None, None
    if expected_plan is None:
        if choice.next != expected.next:
            return None, None, f"{expected.next} must come next: {expected.reason}"
        directive = expected.directive.model_copy(update={"reason": reason})
        return expected.model_copy(update={"reason": reason, "directive": directive}), None, None
    # A new iteration starts: the model picks its technique and may tune its hyper-parameters.
    if choice.next != "data_engineer":
        return None, None, "a new iteration starts by building its data: answer data_engineer"
    key = str(choice.args.get("technique") or choice.action or expected_plan.technique)
    runnable = {f.key: f for f in allowed(state)}
    avoid = set(expected.directive.avoid if expected.directive else [])
    accuracy = (state.get("best") or state["baseline"]).strict
    choices = [k for k in runnable if k not in avoid and applies(k, accuracy) is None]
    if key not in choices:
        return None, None, f"technique {key!r} is not available; choose one of {choices}"
    base = (
        expected_plan.hyper
        if key == expected_plan.technique
        else hyper_for(runnable[key], state)[0]
    )
    recipe = choice.args.get("data_recipe")
    if recipe is None and key == expected_plan.technique:
        # Silence on the data keeps the playbook's recipe, which its evidence chose.
        recipe = expected_plan.data_recipe
    usable = usable_recipes(state, key)
    if recipe is not None and recipe not in usable:
        return None, None, f"data_recipe {recipe!r} does not fit {key}; choose one of {usable}"
    hyper = _hyper(choice, key, base, state)
    move = expected_plan.move if key == expected_plan.technique else "switch"
    fresh = new_plan(state, runnable[key], reason, hyper, recipe=recipe, move=move)
    decision = _route(fresh, step, reason)
    decision.guard_event = guard_key
    if expected.directive is not None:
        decision.directive.avoid = list(expected.directive.avoid)
    return decision, fresh, None


def allowed_moves(
    state: LabState, event: GuardEvent | None, expected: Decision, plan: Plan | None
) -> str:
    if expected.next == "finalize":
        return f"finalize only (the run must stop: {expected.reason})"
    if plan is not None:
        runnable = [f.key for f in state.get("findings") or [] if f.runnable]
        move = (
            f"data_engineer to start iteration {plan.iteration}: action = a technique among "
            f"{runnable} (the playbook picks {plan.technique} on {plan.data_recipe} rows, "
            "kept unless you name another data_recipe); args may set learning_rate, "
            "max_steps, batch_size, lora_r, and data_recipe (for SFT techniques: "
            f"{', '.join(usable_recipes(state, 'sft_full'))})"
        )
        best = state.get("best")
        if best is not None and best.iteration > 0:
            move += "; or finalize to stop here, with your reason"
    else:
        move = f"{expected.next} ({expected.directive.action if expected.directive else ''})"
    if expected.next != "librarian" and librarian_allowed(state, event) is None:
        move += "; or librarian to research again (args.query: a focus)"
    return move
