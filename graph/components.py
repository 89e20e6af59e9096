"""What a graph runs with: routing policy, agent bodies, memory; injected or per run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from postlab.agents.base import AgentBody
from postlab.agents.llm.bodies import build_llm_bodies
from postlab.agents.llm.mcp import read_mcp_config
from postlab.agents.roster import PLAYBOOKS
from postlab.graph.llm_router import build_llm_router
from postlab.graph.playbook import decide
from postlab.memory.store import LabMemory, open_memory
from postlab.records.run import AgentName, RunOptions
from postlab.records.steps import WAIT_ACTION, Decision, GuardEvent, Plan

# A routing policy: state, step and the loop guard's event in; a decision and maybe a plan out.
Policy = Callable[[Any, int, GuardEvent | None], tuple[Decision, Plan | None]]
MemoryFactory = Callable[[str], LabMemory]


@dataclass
class LabComponents:
    """The parts one compiled graph runs with; what is not injected follows each run's options.

    Chat models and MCP servers are slow to start, so a graph builds them once per configuration
    and keeps them for its lifetime (not the process's).
    """

    policy: Policy | None = None
    bodies: Mapping[AgentName, AgentBody] | None = None
    memory: MemoryFactory = open_memory
    _built: dict[tuple, Any] = field(default_factory=dict, repr=False)

    def policy_for(self, options: RunOptions) -> Policy:
        """The run's routing policy: injected, the playbook, or a chat model."""
        if self.policy is not None:
            return self.policy
        if options.policy != "llm":
            return decide
        llm = options.llm_overrides.get("supervisor") or options.llm
        return self._once(("router", llm), lambda: build_llm_router(llm))

    def body_for(self, options: RunOptions, agent: AgentName, action: str = "") -> AgentBody:
        """The body that runs this agent's step: injected, its playbook, or a chat model."""
        if self.bodies is not None and agent in self.bodies:
            return self.bodies[agent]
        # Waiting on a job leaves nothing to choose: the playbook waits under every policy.
        if options.policy != "llm" or action == WAIT_ACTION:
            return PLAYBOOKS[agent]
        overrides = tuple(sorted(options.llm_overrides.items()))
        key = ("bodies", options.llm, overrides, options.mcp_config)
        bodies = self._once(key, lambda: _llm_bodies(options))
        return bodies[agent]

    def _once(self, key: tuple, build: Callable[[], Any]) -> Any:
        if key not in self._built:
            self._built[key] = build()
        return self._built[key]


def _llm_bodies(options: RunOptions) -> dict[AgentName, AgentBody]:
    mcp = read_mcp_config(options.mcp_config) if options.mcp_config else None
    return build_llm_bodies(options.llm, dict(options.llm_overrides), mcp)
