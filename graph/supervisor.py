"""The supervisor node: budget, loop guard, then the policy's routing decision."""

from __future__ import annotations

from collections.abc import Callable

from langgraph.types import Command, interrupt

from postlab.graph import loop_guard
from postlab.graph.components import LabComponents
from postlab.graph.playbook import stop
from postlab.records.artifacts import ErrorKind
from postlab.records.budget import budget_of, next_step, steps_used, time_used
from postlab.records.events import emit
from postlab.records.run import RouteTarget, RunOptions, StopReason
from postlab.records.state import LabState
from postlab.records.steps import Decision, Directive, GuardEvent, Plan


def _last_failure(state: LabState, kind: ErrorKind) -> str | None:
    """The last step's summary when it failed with this kind (a rejection, a disk error)."""
    trajectory = state.get("trajectory") or []
    if trajectory and trajectory[-1].error_kind == kind:
        return trajectory[-1].summary
    return None


def _pre_plan_failure(state: LabState) -> str | None:
    # Without a baseline or any finding nothing can proceed: two failures in a row end the run.
    trajectory = state.get("trajectory") or []
    last_two = trajectory[-2:]
    if (
        state.get("plan") is None
        and len(last_two) == 2
        and all(r.status == "failed" and r.agent == last_two[0].agent for r in last_two)
    ):
        return f"{last_two[-1].agent} failed twice before any iteration: {last_two[-1].summary}"
    return None


def _budget_stop(state: LabState, step: int) -> Decision | None:
    budget = budget_of(state)
    # A best not yet scored on test keeps one step of the budget for that score.
    best = state.get("best")
    reserved = 1 if best is not None and not best.ready_to_report else 0
    if steps_used(state) + reserved >= budget.steps:
        return stop(step, StopReason.BUDGET_STEPS, f"step budget of {budget.steps} spent")
    if budget.max_time_s is not None and time_used(state) >= budget.max_time_s:
        detail = f"wall-clock budget of {budget.max_time_s:.0f}s spent"
        return stop(step, StopReason.BUDGET_TIME, detail)
    return None


def _schedule_running(plan: Plan, best_iteration: int) -> bool:
    """Whether the best model's schedule is still running: the plan just evaluated is the best
    with steps left, or the plan in progress is the next stretch of the best's schedule."""
    if plan.status == "done":
        return best_iteration == plan.iteration and plan.schedule_unfinished
    return plan.continues(best_iteration)


def _guard(state: LabState, step: int) -> tuple[Decision | None, GuardEvent | None]:
    """Inspect the trajectory; a firing may stop the run here, else the policy sees the event."""
    options: RunOptions = state["run_options"]
    plan, best = state.get("plan"), state.get("best")
    running = plan is not None and best is not None and _schedule_running(plan, best.iteration)
    event = loop_guard.inspect(
        state.get("trajectory") or [],
        state.get("guard_events") or [],
        options.guard,
        options.human_attached,
        step,
        schedule_running=running,
    )
    if event is None:
        return None, None
    emit({"type": "guard", **event.model_dump()})
    if event.rung == "ask_human":
        answer = interrupt(
            {"question": f"Loop guard: {event.detail}. Go on?", "event": event.model_dump()}
        )
        if not (isinstance(answer, dict) and answer.get("approved")):
            note = answer.get("note", "") if isinstance(answer, dict) else str(answer)
            detail = f"a human stopped the run at the loop guard ({event.pattern}): {note}"
            return stop(step, StopReason.REJECTED, detail, event), event
    if event.rung == "stop":
        reason = StopReason.PLATEAU if event.pattern == "plateau" else StopReason.LOOP
        return stop(step, reason, f"loop guard ({event.pattern}): {event.detail}", event), event
    return None, event


def _update_for(state: LabState, decision: Decision, plan: Plan | None) -> dict:
    update: dict = {"decisions": [decision], "directive": decision.directive}
    if plan is not None:
        update["plan"] = plan
        tried = list(state.get("tried_techniques") or [])
        if plan.technique not in tried:
            update["tried_techniques"] = tried + [plan.technique]
    if decision.stop_reason is not None:
        update["stop_reason"] = decision.stop_reason.value
        update["stop_detail"] = decision.reason
    return update


def _score_best_on_test_first(state: LabState, decision: Decision) -> Decision:
    """A stop whose best was never scored on test goes to the evaluator once, then finalizes.

    The step budget keeps one step for it (a time budget cannot: this step may run past it):
    without it the report would have no honest number (validation picked the best, so
    validation cannot also grade it).
    """
    best = state.get("best")
    if decision.next != "finalize" or best is None or best.ready_to_report:
        return decision
    directive = Directive(
        agent="evaluator",
        action="test_best",
        reason=f"score {best.reported.label}, the best by validation, on test before the report",
    )
    return decision.model_copy(update={"next": "evaluator", "directive": directive})


def make_supervisor(components: LabComponents) -> Callable[[LabState], Command[RouteTarget]]:
    """The supervisor node: budget and loop guard around the run's routing policy."""

    def supervisor(state: LabState) -> Command[RouteTarget]:
        """Decide the next agent (or the end) and record why."""
        if state.get("stop_reason"):
            # The stop was decided (and recorded) before the best was scored on test.
            return Command(goto="finalize")
        active = components.policy_for(state["run_options"])
        step = next_step(state)
        plan, event = None, None
        decision = _budget_stop(state, step)
        if decision is None and (rejected := _last_failure(state, "rejected")):
            decision = stop(step, StopReason.REJECTED, rejected)
        if decision is None and (unwritable := _last_failure(state, "disk")):
            decision = stop(step, StopReason.ERROR, unwritable)
        if decision is None and (failure := _pre_plan_failure(state)):
            decision = stop(step, StopReason.ERROR, failure)
        plan_now = state.get("plan")
        if decision is None and not (plan_now and plan_now.status == "training_remote"):
            # While a job trains nothing acts, so there is no loop for the guard to break.
            decision, event = _guard(state, step)
        if decision is None:
            decision, plan = active(state, step, event)
        decision = _score_best_on_test_first(state, decision)
        update = _update_for(state, decision, plan)
        # A model-driven policy reports what its calls cost and which decisions fell back.
        if hasattr(active, "drain"):
            usage, fallbacks = active.drain()
            update.update(llm_usage=usage, fallbacks=fallbacks)
        if event is not None:
            update["guard_events"] = [event]
        best = state.get("best")
        emit(
            {
                "type": "decision",
                "step": step,
                "next": decision.next,
                "reason": decision.reason,
                "budget": budget_of(state).steps,
                "best": best.strict if best else None,
            }
        )
        return Command(goto=decision.next, update=update)

    return supervisor
