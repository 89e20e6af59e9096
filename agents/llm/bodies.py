"""LLM bodies for the four agents: one chat model per spec, checked before the run starts."""

from __future__ import annotations

import functools
from typing import Any

from postlab.agents.base import AgentBody
from postlab.agents.llm.answers import DataAnswer, EvaluatorAnswer, LibrarianAnswer, TrainerAnswer
from postlab.agents.llm.driver import MODEL_RETRIES, STEP_TIMEOUT_S, make_llm_body
from postlab.agents.llm.mcp import MCPServerConfig, MCPToolset, load_mcp_tools
from postlab.agents.llm.models import (
    CALL_TIMEOUT_S,
    LOCAL_CALL_TIMEOUT_S,
    LLMConfigError,
    LLMSpec,
    check_llm,
    context_window,
    load_chat_model,
)
from postlab.agents.roster import PLAYBOOKS, SYSTEM_PROMPTS
from postlab.records.run import AgentName


def prompt_budget(window: int) -> int:
    """Tokens of retrieved context a step may use: half the window less room for tools, capped."""
    return max(1000, min(window // 2, 12_000) - 1_500)


def model_tuning(spec: Any, retries: int | None, timeout_s: float | None) -> dict[str, Any]:
    """Retries, timeout and prompt size for a model; the local CPU model gets short prompts."""
    local = spec.kind == "local"
    return {
        "max_model_retries": retries if retries is not None else (1 if local else MODEL_RETRIES),
        "call_timeout_s": timeout_s or (LOCAL_CALL_TIMEOUT_S if local else CALL_TIMEOUT_S),
        "context_tokens": 600 if local else prompt_budget(context_window(spec)),
    }


def model_factory(spec: Any, timeout_s: float) -> Any:
    # One model object per spec, made at the first step (loading a local model takes seconds).
    return functools.cache(lambda: load_chat_model(spec, timeout_s=timeout_s))


def build_llm_bodies(
    llm: str,
    overrides: dict[str, str] | None = None,
    mcp: list[MCPServerConfig] | MCPToolset | None = None,
    *,
    max_model_retries: int | None = None,
    timeout_s: float | None = None,
    step_timeout_s: float = STEP_TIMEOUT_S,
) -> dict[AgentName, AgentBody]:
    """LLM bodies for the four agents; every model is checked here, before the run starts."""

    answers = {
        "librarian": LibrarianAnswer,
        "data_engineer": DataAnswer,
        "trainer": TrainerAnswer,
        "evaluator": EvaluatorAnswer,
    }
    playbooks = {
        agent: (PLAYBOOKS[agent], SYSTEM_PROMPTS[agent], answers[agent]) for agent in answers
    }
    overrides = overrides or {}
    unknown = set(overrides) - set(playbooks) - {"supervisor"}
    if unknown:
        raise LLMConfigError(f"per-agent --llm overrides for unknown agents: {sorted(unknown)}")
    specs = {agent: LLMSpec.parse(overrides.get(agent) or llm) for agent in playbooks}
    for spec in {str(spec): spec for spec in specs.values()}.values():
        check_llm(spec)
    factories = {
        str(spec): model_factory(spec, model_tuning(spec, None, timeout_s)["call_timeout_s"])
        for spec in specs.values()
    }
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
            **model_tuning(spec, max_model_retries, timeout_s),
        )
    return bodies
