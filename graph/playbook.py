"""The playbook policy: the supervisor's deterministic routing, as an expert would proceed."""

from __future__ import annotations

from postlab.graph.experiments import (
    balances_answers,
    budget_short,
    cites,
    new_plan,
    pick_technique,
)
from postlab.graph.known_rows import known_facts
from postlab.graph.number_rows import opening_number_rows
from postlab.graph.rates import opening_climb
from postlab.graph.refinements import refine
from postlab.records.outcomes import target_met
from postlab.records.run import AgentName, RunOptions, StopReason
from postlab.records.state import LabState
from postlab.records.steps import (
    WAIT_ACTION,
    AgentAction,
    Decision,
    Directive,
    GuardEvent,
    Plan,
)
from postlab.tools.training.fit import LOCAL_NOTE


def _route(plan: Plan, step: int, reason: str) -> Decision:
    if plan.status == "needs_data":
        directive = Directive(agent="data_engineer", action="build_dataset", reason=reason)
    elif plan.status == "needs_training":
        directive = Directive(agent="trainer", action="train", reason=reason)
    elif plan.status == "training_remote":
        directive = Directive(agent="trainer", action=WAIT_ACTION, reason=reason)
    else:
        directive = Directive(agent="evaluator", action="evaluate", reason=reason)
    return Decision(step=step, next=directive.agent, reason=reason, directive=directive)


def stop(step: int, reason: StopReason, detail: str, event: GuardEvent | None = None) -> Decision:
    """A decision to end the run and finalize."""
    return Decision(
        step=step,
        next="finalize",
        reason=detail,
        stop_reason=reason,
        guard_event=event.key if event else None,
    )


def _ask(agent: AgentName, action: AgentAction, reason: str, step: int) -> tuple[Decision, None]:
    """A decision that sends one agent one action, starting no plan."""
    directive = Directive(agent=agent, action=action, reason=reason)
    return Decision(step=step, next=agent, reason=reason, directive=directive), None


def _ended(state: LabState, step: int) -> Decision | None:
    """A stop once an iteration is finished: the target met, or no budget for another."""
    options: RunOptions = state["run_options"]
    best, plan = state.get("best"), state["plan"]
    floor = state.get("constant_answer")
    if best is not None and target_met(best.strict, options.target_score, floor):
        detail = (
            f"best validation accuracy {best.strict:.2f} meets the target "
            f"{options.target_score:.2f}"
        )
        return stop(step, StopReason.TARGET_MET, detail)
    if plan.iteration >= options.max_iterations:
        return stop(
            step, StopReason.BUDGET_ITERATIONS, f"all {options.max_iterations} iterations used"
        )
    if short := budget_short(state):
        return stop(step, short[0], short[1])
    return None


def decide(state: LabState, step: int, event: GuardEvent | None) -> tuple[Decision, Plan | None]:
    """The next decision, and the plan it starts or continues (None when nothing changes)."""
    if state.get("baseline") is None:
        return _ask(
            "evaluator", "baseline", "measure the base model before changing anything", step
        )
    if not state.get("findings"):
        reason = "find techniques that fit this task in the literature"
        return _ask("librarian", "research", reason, step)

    plan = state.get("plan")
    # A finished iteration may be the last the budgets allow: that ends the run before the loop
    # guard can switch technique (a switch after the sixth iteration trained a seventh).
    if plan is not None and plan.status in ("done", "failed") and (ended := _ended(state, step)):
        return ended, None
    if event is not None and event.rung in ("redirect", "switch_technique") and plan is not None:
        tried = {plan.technique, *(state.get("tried_techniques") or [])}
        alternative, _ = pick_technique(state, tried)
        if alternative is None:
            reason = StopReason.PLATEAU if event.pattern == "plateau" else StopReason.LOOP
            return stop(
                step, reason, f"{event.detail}; no other technique to switch to", event
            ), None
        reason = f"loop guard ({event.pattern}): {event.detail}; stop {plan.technique}, " + (
            f"switch to {alternative.name} ({cites(alternative)})"
        )
        switched = new_plan(state, alternative, reason, move="switch")
        decision = _route(switched, step, reason)
        decision.guard_event = event.key
        decision.directive.avoid = [plan.technique]
        return decision, switched

    if plan is None:
        finding, skipped = pick_technique(state, set())
        if finding is None:
            detail = f" ({skipped})" if skipped else ""
            return stop(
                step, StopReason.ERROR, f"no ranked technique can run on this task{detail}"
            ), None
        accuracy = state["baseline"].strict
        reason = (
            f"start with {finding.name}, the top card that can learn at validation accuracy "
            f"{accuracy:.2f}, from {cites(finding)}"
        )
        if skipped:
            reason += f"; {skipped}"
        reason += "".join(f"; {n}" for n in finding.fit_notes if n.startswith(LOCAL_NOTE))
        if balances_answers(state, finding.key):
            # The prior training teaches is not the one the model is judged on: balance first.
            reason += f"; {state['answer_shift'].describe()}, so its rows are balanced by answer"
        if facts := known_facts(state):
            reason += f"; {facts.describe()}"
        plan = new_plan(state, finding, reason)
        if numbers := opening_number_rows(state, plan):
            # Repeating a short folder's rows is what its rules' rows replace: from the start.
            reason += f"; {numbers.describe()}"
            plan = new_plan(state, finding, reason, recipe="recombined")
        if opening := opening_climb(state, plan):
            reason += f"; {opening.why}"
            hyper = plan.hyper.with_changes(learning_rate=opening.rate)
            plan = plan.model_copy(
                update={"hyper": hyper, "reason": f"{plan.reason}; {opening.why}"}
            )
        return _route(plan, step, reason), plan
    if plan.status not in ("done", "failed"):
        return _route(
            plan, step, f"iteration {plan.iteration}: {plan.status.replace('_', ' ')}"
        ), None
    refined, why = refine(state, plan)
    if refined is None:
        return stop(step, StopReason.PLATEAU, why), None
    return _route(refined, step, refined.reason), refined
