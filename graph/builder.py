"""Assemble the lab's graph: prepare → supervisor ⇄ agents → finalize."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from postlab.agents.base import AgentBody, run_agent_step
from postlab.graph.components import LabComponents, MemoryFactory, Policy
from postlab.graph.finalize import finalize
from postlab.graph.prepare import prepare
from postlab.graph.supervisor import make_supervisor
from postlab.memory.store import close_memory, open_memory
from postlab.records.run import AGENTS, AgentName
from postlab.records.state import LabContext, LabInput, LabOutput, LabState
from postlab.tools.compute.hf_jobs import WAIT_WINDOW_S


def agent_node(
    agent: AgentName, components: LabComponents
) -> Callable[[LabState], Command[Literal["supervisor"]]]:
    """The graph node of one agent: its body for this run, under the shared step rules."""

    def node(state: LabState) -> Command[Literal["supervisor"]]:
        directive = state.get("directive")
        action = directive.action if directive is not None else ""
        body = components.body_for(state["run_options"], agent, action)
        return run_agent_step(state, agent, body, components.memory(state["run_dir"]))

    node.__name__ = agent
    return node


def build_graph(
    *,
    policy: Policy | None = None,
    bodies: Mapping[AgentName, AgentBody] | None = None,
    memory: MemoryFactory = open_memory,
    checkpointer: Any | None = None,
    store: Any | None = None,
    trusted_input: bool = False,
):
    """The compiled lab graph with declared input and output schemas.

    `policy` replaces the routing (the budget and loop guard still wrap it), `bodies` replace
    agents' bodies by name, `memory` opens a run directory's memory; what is left out follows
    each run's options (playbook, or chat models with `policy="llm"`). Input is confined to the
    runs root and the server's MCP configuration unless `trusted_input` (the local CLI).
    """
    components = LabComponents(policy=policy, bodies=bodies, memory=memory)

    def prepare_run(
        state: LabState, runtime: Runtime[LabContext]
    ) -> Command[Literal["supervisor", "finalize"]]:
        return prepare(state, runtime, trusted_input=trusted_input)

    def finalize_run(state: LabState) -> LabOutput:
        output = finalize(state)
        if memory is open_memory and state.get("run_dir"):
            # The run is over: its memory's files are released, or a host that runs many runs
            # in one process would hold a dozen descriptors for each until it ran out.
            close_memory(state["run_dir"])
        return output

    builder = StateGraph(
        LabState, context_schema=LabContext, input_schema=LabInput, output_schema=LabOutput
    )
    builder.add_node("prepare", prepare_run)
    builder.add_node("supervisor", make_supervisor(components))
    for agent in AGENTS:
        builder.add_node(agent, agent_node(agent, components))
    builder.add_node("finalize", finalize_run)
    builder.add_edge(START, "prepare")
    builder.add_edge("finalize", END)
    return builder.compile(checkpointer=checkpointer, store=store, name="postlab")


# Waits on a remote job are paid in time, not steps: the backstop leaves a day of them.
WAIT_STEPS_BACKSTOP = int(24 * 3600 / WAIT_WINDOW_S)


def recursion_limit(budget_steps: int) -> int:
    """A backstop above the step budget: each agent step is two graph steps plus the ends."""
    return 2 * (budget_steps + WAIT_STEPS_BACKSTOP) + 20
