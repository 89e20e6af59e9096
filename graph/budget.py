"""Budget accounting: steps and wall-clock time, counted from the trajectory across resumes."""

from __future__ import annotations

from postlab.graph.state import Budget, LabState


def steps_used(state: LabState) -> int:
    """Agent steps taken so far (the trajectory is checkpointed, so this survives resumes)."""
    return len(state.get("trajectory") or [])


def time_used(state: LabState) -> float:
    """Wall-clock seconds spent in completed agent steps."""
    return sum(record.wall_s for record in state.get("trajectory") or [])


def time_left(state: LabState) -> float | None:
    """Seconds left of the wall-clock budget, or None when there is none."""
    budget: Budget | None = state.get("budget_limits")
    if budget is None or budget.max_time_s is None:
        return None
    return max(0.0, budget.max_time_s - time_used(state))
