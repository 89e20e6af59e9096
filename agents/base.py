"""What every agent step shares: directive in, trajectory record and update out, no crash."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langgraph.errors import GraphBubbleUp
from langgraph.types import Command

from postlab.memory.store import LabMemory
from postlab.records.artifacts import DatasetCard
from postlab.records.budget import next_step, paid, steps_used
from postlab.records.events import emit
from postlab.records.outcomes import AgentOutcome
from postlab.records.run import AgentName
from postlab.records.state import LabState
from postlab.records.steps import Directive, Iteration, Plan, TrajectoryRecord
from postlab.tools.io.quiet import quiet_progress
from postlab.tools.io.rundir import begin_step, end_step
from postlab.tools.tasks.catalog import Task, load_task
from postlab.tools.training.failures import normalize_error

# A read-only or full disk: retrying cannot help, the run must stop and say which path.
DISK_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM})


def run_task(state: LabState) -> Task:
    """The run's task: its folder when it has one (the name is then only a label), else by name."""
    task_dir = state.get("task_dir")
    return load_task(task_dir=task_dir) if task_dir else load_task(state.get("task"))


def dataset_card(state: LabState, path: str | None) -> DatasetCard | None:
    """The run's data card saved at `path`, when it has one."""
    return next((card for card in state.get("datasets") or [] if card.path == path), None)


def iteration_row(state: LabState, plan: Plan) -> Iteration:
    """The plan's row in the run's iterations: the one already written, or a fresh start."""
    rows = [row for row in state.get("iterations") or [] if row.iteration == plan.iteration]
    return rows[-1] if rows else Iteration.start(plan)


def action_arguments(state: LabState, directive: Directive) -> dict[str, Any]:
    """What an action works on: the plan's parameters, the base model, or the directive's own."""
    plan = state.get("plan")
    if directive.action == "baseline":
        return {"checkpoint": state.get("base_model_path")}
    if plan is not None and directive.action in ("build_dataset", "train", "evaluate"):
        return plan.arguments(directive.action)
    return dict(directive.args)


def action_signature(agent: str, action: str, args: dict[str, Any]) -> str:
    """Stable fingerprint of an action: agent, action and normalised arguments."""
    canonical = json.dumps(args, sort_keys=True, default=str)
    digest = hashlib.sha1(f"{agent}|{action}|{canonical}".encode()).hexdigest()[:12]
    return f"{agent}.{action}:{digest}"


@dataclass
class StepResult:
    """An agent's outcome plus the state channels it updates."""

    outcome: AgentOutcome
    update: dict[str, Any] = field(default_factory=dict)


AgentBody = Callable[[LabState, Directive, LabMemory], StepResult]


def run_agent_step(
    state: LabState, agent: AgentName, body: AgentBody, memory: LabMemory
) -> Command[Literal["supervisor"]]:
    """Run one agent step under its directive; any exception becomes a recorded failure."""
    directive = state.get("directive")
    if directive is None or directive.agent != agent:
        directive = Directive(agent=agent, action="noop", reason="no directive for this agent")
    step = next_step(state)
    plan = state.get("plan")
    iteration = plan.iteration if plan else 0
    emit(
        {
            "type": "agent_started",
            "agent": agent,
            "action": directive.action,
            "step": step,
            "budget_step": steps_used(state) + paid(directive.action),
        }
    )
    run_dir = Path(state["run_dir"])
    lost = begin_step(run_dir, step)
    started_at, clock = time.time(), time.monotonic()
    try:
        with quiet_progress(), memory.stamped(step=step, agent=agent):
            result = body(state, directive, memory)
    except GraphBubbleUp:
        # Interrupts (approval gates) are control flow for LangGraph, not agent failures.
        raise
    except Exception as error:  # noqa: BLE001 - an agent failure is data for the supervisor
        message = f"{type(error).__name__}: {error}"
        disk = isinstance(error, OSError) and error.errno in DISK_ERRNOS
        summary = f"{directive.action} raised {type(error).__name__}"
        if disk:
            summary = f"{directive.action} could not write {error.filename}: {error.strerror}"
        result = StepResult(
            AgentOutcome(
                status="failed",
                summary=summary,
                error_kind="disk" if disk else "crash",
                error=message + "\n" + traceback.format_exc(limit=3),
                error_normalized=normalize_error(message),
            )
        )
        # Memory may sit on the same failing disk; the trajectory records the failure anyway.
        with contextlib.suppress(Exception):
            memory.add(
                "failures",
                f"{agent} failed at {directive.action}: {message}",
                {"agent": agent, "action": directive.action, "step": step},
            )
    outcome = result.outcome
    record = TrajectoryRecord(
        step=step,
        agent=agent,
        action=directive.action,
        signature=action_signature(agent, directive.action, action_arguments(state, directive)),
        status=outcome.status,
        summary=outcome.summary,
        error_kind=outcome.error_kind,
        error_normalized=outcome.error_normalized,
        score=outcome.score,
        iteration=iteration,
        started_at=started_at,
        wall_s=round(time.monotonic() - clock, 3),
    )
    emit(
        {
            "type": "agent_finished",
            "agent": agent,
            "action": directive.action,
            "step": step,
            "status": outcome.status,
            "summary": outcome.summary,
            "score": outcome.score,
        }
    )
    end_step(run_dir)
    update = {"trajectory": [record], **result.update}
    if lost:
        update["lost_s"] = lost
    return Command(goto="supervisor", update=update)
