"""The supervisor node: budget, loop guard, then the policy's routing decision."""

from __future__ import annotations

from typing import Literal

from langgraph.types import Command, interrupt

from postlab.agents.base import emit
from postlab.graph import loop_guard
from postlab.graph.policy import decide, stop
from postlab.graph.state import Budget, Decision, LabState, RunOptions, StopReason

Route = Literal["librarian", "data_engineer", "trainer", "evaluator", "finalize"]


def time_used(state: LabState) -> float:
    """Wall-clock seconds spent in agent steps, summed so it survives resumes."""
    return sum(record.wall_s for record in state.get("trajectory") or [])


def _pre_plan_failure(state: LabState) -> str | None:
    # Without a baseline or any finding nothing can proceed: two failures in a row end the run.
    trajectory = state.get("trajectory") or []
    last_two = trajectory[-2:]
    if state.get("plan") is None and len(last_two) == 2 and all(
        r.status == "failed" and r.agent == last_two[0].agent for r in last_two
    ):
        return f"{last_two[-1].agent} failed twice before any iteration: {last_two[-1].summary}"
    return None


def _budget_stop(state: LabState, step: int) -> Decision | None:
    budget: Budget = state["budget_limits"]
    if step >= budget.steps:
        return stop(step, StopReason.BUDGET_STEPS, f"step budget of {budget.steps} spent")
    if budget.max_time_s is not None and time_used(state) >= budget.max_time_s:
        detail = f"wall-clock budget of {budget.max_time_s:.0f}s spent"
        return stop(step, StopReason.BUDGET_TIME, detail)
    return None


def supervisor(state: LabState) -> Command[Route]:
    """Decide the next agent (or the end) and record why."""
    options: RunOptions = state["run_options"]
    step = len(state.get("trajectory") or [])
    update: dict = {}
    decision = _budget_stop(state, step)
    plan = None
    if decision is None and (failure := _pre_plan_failure(state)):
        decision = stop(step, StopReason.ERROR, failure)
    if decision is None:
        event = loop_guard.inspect(
            state.get("trajectory") or [],
            state.get("evaluations") or [],
            state.get("guard_events") or [],
            options.guard,
            options.human_attached,
            step,
        )
        if event is not None:
            update["guard_events"] = [event]
            emit({"type": "guard", **event.model_dump()})
        if event is not None and event.rung == "ask_human":
            answer = interrupt({"question": f"Loop guard: {event.detail}. Continue?", "event": event.model_dump()})
            if str(answer).lower() not in ("yes", "y", "continue", "approve"):
                decision = stop(step, StopReason.REJECTED, f"a human stopped the run: {answer}", event)
        if decision is None and event is not None and event.rung == "stop":
            reason = StopReason.PLATEAU if event.pattern == "plateau" else StopReason.LOOP
            decision = stop(step, reason, f"loop guard ({event.pattern}): {event.detail}", event)
        if decision is None:
            decision, plan = decide(state, step, event)
    update["decisions"] = [decision]
    update["directive"] = decision.directive
    if plan is not None:
        update["plan"] = plan
        tried = list(state.get("tried_techniques") or [])
        if plan.technique not in tried:
            update["tried_techniques"] = tried + [plan.technique]
    if decision.stop_reason is not None:
        update["stop_reason"] = decision.stop_reason.value
        update["stop_detail"] = decision.reason
    emit(
        {
            "type": "decision",
            "step": step,
            "next": decision.next,
            "reason": decision.reason,
            "budget": state["budget_limits"].steps,
            "best": state["best"].strict if state.get("best") else None,
        }
    )
    return Command(goto=decision.next, update=update)
