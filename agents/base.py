"""What every agent step shares: directive in, trajectory record and update out, no crash."""

from __future__ import annotations

import functools
import hashlib
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.config import get_stream_writer
from langgraph.errors import GraphBubbleUp
from langgraph.types import Command

from postlab.agents.reports import AgentOutcome
from postlab.graph.state import AgentName, Directive, LabState, TrajectoryRecord
from postlab.memory.store import LabMemory, open_memory
from postlab.tools.failures import normalize_error
from postlab.tools.tasks import Task, load_task


def emit(event: dict[str, Any]) -> None:
    """Send a progress event on the graph's custom stream; a no-op outside a graph run."""
    try:
        writer = get_stream_writer()
    except RuntimeError:
        return
    writer(event)


@functools.lru_cache(maxsize=4)
def _llm_bodies(llm: str, overrides: tuple[tuple[str, str], ...], mcp_config: str | None):
    # Built once per process and configuration: models and MCP servers are slow to start.
    from postlab.agents.llm import build_llm_bodies
    from postlab.tools.mcp import read_mcp_config

    mcp = read_mcp_config(mcp_config) if mcp_config else None
    return build_llm_bodies(llm, dict(overrides), mcp)


def agent_body(state: LabState, agent: AgentName, playbook: AgentBody) -> AgentBody:
    """The body that runs this agent's step: its playbook, or a chat model with the same tools."""
    options = state["run_options"]
    if options.policy != "llm":
        return playbook
    overrides = tuple(sorted(options.llm_overrides.items()))
    return _llm_bodies(options.llm, overrides, options.mcp_config)[agent]


def run_task(state: LabState) -> Task:
    """The run's task: its folder when it has one (the name is then only a label), else by name."""
    task_dir = state.get("task_dir")
    return load_task(task_dir=task_dir) if task_dir else load_task(state.get("task"))


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
    state: LabState, agent: AgentName, body: AgentBody
) -> Command[Literal["supervisor"]]:
    """Run one agent step under its directive; any exception becomes a recorded failure."""
    directive = state.get("directive")
    if directive is None or directive.agent != agent:
        directive = Directive(agent=agent, action="noop", reason="no directive for this agent")
    step = len(state.get("trajectory") or []) + 1
    plan = state.get("plan")
    iteration = plan.iteration if plan else 0
    emit({"type": "agent_started", "agent": agent, "action": directive.action, "step": step})
    started_at, clock = time.time(), time.monotonic()
    memory = open_memory(state["run_dir"])
    try:
        result = body(state, directive, memory)
    except GraphBubbleUp:
        # Interrupts (approval gates) are control flow for LangGraph, not agent failures.
        raise
    except Exception as error:  # noqa: BLE001 - an agent failure is data for the supervisor
        message = f"{type(error).__name__}: {error}"
        result = StepResult(
            AgentOutcome(
                status="failed",
                summary=f"{directive.action} raised {type(error).__name__}",
                error_kind="crash",
                error=message + "\n" + traceback.format_exc(limit=3),
                error_normalized=normalize_error(message),
            )
        )
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
        signature=action_signature(agent, directive.action, directive.args),
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
    return Command(goto="supervisor", update={"trajectory": [record], **result.update})
