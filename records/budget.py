"""Budget accounting over state: the budget, steps and wall-clock time, counted across resumes."""

from __future__ import annotations

from postlab.records.run import DEFAULT_STEP_BUDGET, Budget
from postlab.records.state import LabState
from postlab.records.steps import WAIT_ACTION


def budget_of(state: LabState) -> Budget:
    """The run's budget, read from its one home: the `budget` and `max_time_s` channels."""
    return Budget(
        steps=state.get("budget") or DEFAULT_STEP_BUDGET, max_time_s=state.get("max_time_s")
    )


def paid(action: str) -> bool:
    """Whether an agent step of this action is paid from the step budget: waits on a remote
    job are paid in time, not steps."""
    return action != WAIT_ACTION


def steps_used(state: LabState) -> int:
    """Agent steps the budget has paid (the trajectory is checkpointed, so this survives
    resumes)."""
    return sum(paid(record.action) for record in state.get("trajectory") or [])


def next_step(state: LabState) -> int:
    """The number of the agent step about to run (1-based); decisions and gates share it."""
    return len(state.get("trajectory") or []) + 1


def time_used(state: LabState) -> float:
    """Wall-clock seconds spent in agent steps: completed ones, and attempts killed mid-way."""
    completed = sum(record.wall_s for record in state.get("trajectory") or [])
    return completed + (state.get("lost_s") or 0.0)


def time_left(state: LabState) -> float | None:
    """Seconds left of the wall-clock budget, or None when there is none."""
    budget = budget_of(state)
    if budget.max_time_s is None:
        return None
    return max(0.0, budget.max_time_s - time_used(state))
