"""LLM-driven agents and supervisor; imports stay lazy so graph.state can import schemas."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from postlab.agents.base import AgentBody
    from postlab.agents.llm.policy import LLMPolicy
    from postlab.graph.state import AgentName
    from postlab.tools.mcp import MCPServerConfig, MCPToolset


def prompt_budget(window: int) -> int:
    """Tokens of retrieved context a step may use: half the window less room for tools, capped."""
    return max(1000, min(window // 2, 12_000) - 1_500)


def _tuning(spec: Any, retries: int | None, timeout_s: float | None) -> dict[str, Any]:
    """Retries, timeout and prompt size for a model; the local CPU model gets short prompts."""
    from postlab.agents.llm.models import context_window

    local = spec.kind == "local"
    return {
        "max_model_retries": retries if retries is not None else (1 if local else 2),
        "call_timeout_s": timeout_s or (300.0 if local else 120.0),
        "context_tokens": 600 if local else prompt_budget(context_window(spec)),
    }


def _factory(spec: Any, timeout_s: float) -> Any:
    from postlab.agents.llm.models import load_chat_model

    # One model object per spec, made at the first step (loading a local model takes seconds).
    return functools.cache(lambda: load_chat_model(spec, timeout_s=timeout_s))


def build_llm_bodies(
    llm: str,
    overrides: dict[str, str] | None = None,
    mcp: list[MCPServerConfig] | MCPToolset | None = None,
    *,
    max_model_retries: int | None = None,
    timeout_s: float | None = None,
    step_timeout_s: float = 900.0,
) -> dict[AgentName, AgentBody]:
    """LLM bodies for the four agents; every model is checked here, before the run starts."""
    from postlab.agents import data_engineer, evaluator, librarian, trainer
    from postlab.agents.llm import schemas
    from postlab.agents.llm.driver import make_llm_body
    from postlab.agents.llm.models import LLMSpec, check_llm
    from postlab.tools.mcp import load_mcp_tools

    playbooks = {
        "librarian": (librarian.research, librarian.SYSTEM_PROMPT, schemas.LibrarianReport),
        "data_engineer": (
            data_engineer.build_dataset,
            data_engineer.SYSTEM_PROMPT,
            schemas.DataReport,
        ),
        "trainer": (trainer.train, trainer.SYSTEM_PROMPT, schemas.TrainerReport),
        "evaluator": (evaluator.evaluate, evaluator.SYSTEM_PROMPT, schemas.EvaluatorReport),
    }
    overrides = overrides or {}
    unknown = set(overrides) - set(playbooks) - {"supervisor"}
    if unknown:
        from postlab.agents.llm.models import LLMConfigError

        raise LLMConfigError(f"per-agent --llm overrides for unknown agents: {sorted(unknown)}")
    specs = {agent: LLMSpec.parse(overrides.get(agent) or llm) for agent in playbooks}
    for spec in {str(spec): spec for spec in specs.values()}.values():
        check_llm(spec)
    factories = {str(spec): _factory(spec, timeout_s or 120.0) for spec in specs.values()}
    toolset = load_mcp_tools(mcp) if isinstance(mcp, list) and mcp else mcp
    bodies: dict[str, AgentBody] = {}
    for agent, (playbook, prompt, schema) in playbooks.items():
        spec = specs[agent]
        bodies[agent] = make_llm_body(
            agent,
            playbook,
            factories[str(spec)],
            prompt,
            schema,
            extra_tools=toolset or (),
            step_timeout_s=step_timeout_s,
            **_tuning(spec, max_model_retries, timeout_s),
        )
    return bodies


def build_llm_policy(
    llm: str, *, max_model_retries: int | None = None, timeout_s: float | None = None
) -> LLMPolicy:
    """The supervisor's LLM routing policy; the model is checked here, before the run starts."""
    from postlab.agents.llm.models import LLMSpec, check_llm
    from postlab.agents.llm.policy import make_llm_policy

    spec = LLMSpec.parse(llm)
    check_llm(spec)
    tuning = _tuning(spec, max_model_retries, timeout_s)
    return make_llm_policy(
        _factory(spec, timeout_s or 120.0),
        tuning["max_model_retries"],
        context_tokens=min(tuning["context_tokens"], 3000),
        call_timeout_s=tuning["call_timeout_s"],
    )
