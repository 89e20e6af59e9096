"""Tools an LLM-driven agent gets for one step: read-only look-ups and one bounded action."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langgraph.errors import GraphBubbleUp
from pydantic import BaseModel, Field

from postlab.agents.base import AgentBody, StepResult
from postlab.agents.llm.untrusted import untrusted
from postlab.memory.store import MEMORY_KINDS, LabMemory
from postlab.records.hyper import LORA_RANK_RANGE
from postlab.records.run import MIN_TRAINING_EXAMPLES, AgentName
from postlab.records.state import LabState
from postlab.records.steps import AgentAction, Directive
from postlab.tools.training.recipes import rate_range

# The one side-effecting tool of each agent: it runs the agent's playbook body.
ACTION_TOOL: dict[AgentName, AgentAction] = {
    "librarian": "research",
    "data_engineer": "build_dataset",
    "trainer": "train",
    "evaluator": "evaluate",
}
# Memory kinds that hold outside text (paper summaries, model outputs, dataset rows).
_OUTSIDE_KINDS = {"papers", "observations"}


@dataclass
class ActionStash:
    """What the action tool did this step: its result, or the error the body raised."""

    result: StepResult | None = None
    error: Exception | None = None
    args: dict[str, Any] = field(default_factory=dict)
    calls: int = 0


class ResearchArgs(BaseModel):
    """Arguments the librarian may choose."""

    query: str | None = Field(None, max_length=300, description="Optional focus for the search.")


class DataArgs(BaseModel):
    """Arguments the data engineer may choose."""

    size: int | None = Field(
        None, ge=MIN_TRAINING_EXAMPLES, le=20_000, description="Rows to build."
    )
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Sampling seed.")


class TrainArgs(BaseModel):
    """Hyper-parameters the trainer may choose (within the run's limits)."""

    learning_rate: float | None = Field(None, ge=1e-7, le=1e-2)
    max_steps: int | None = Field(None, ge=1, le=100_000)
    batch_size: int | None = Field(None, ge=1, le=256)
    adapter: Literal["full", "lora"] | None = None
    lora_r: int | None = Field(None, ge=LORA_RANK_RANGE[0], le=LORA_RANK_RANGE[1])


class EvalArgs(BaseModel):
    """The evaluator takes no arguments: it scores the directive's checkpoint."""


def _dump(value: Any) -> str:
    return json.dumps(value, default=str, indent=1)[:4000]


def read_only_tools(state: LabState, directive: Directive, memory: LabMemory) -> list[BaseTool]:
    """Look-ups without side effects: memory, papers, tasks, this run's datasets, the plan."""

    def search_memory(query: str, kind: str | None = None, k: int = 5) -> str:
        kinds = (kind,) if kind in MEMORY_KINDS else MEMORY_KINDS
        hits = memory.search(query, kinds=kinds, k=max(1, min(int(k), 10)))
        lines = [f"[{hit.kind}] {hit.text}" for hit in hits]
        outside = any(hit.kind in _OUTSIDE_KINDS for hit in hits)
        text = "\n".join(lines) or "nothing found"
        return untrusted(text, "memory") if outside else text

    def list_papers(query: str | None = None) -> str:
        from postlab.tools.papers.corpus import load_corpus

        words = (query or "").lower().split()
        papers = [
            p
            for p in load_corpus()
            if all(w in f"{p.title} {' '.join(p.topics)}".lower() for w in words)
        ]
        lines = [f"{p.id} ({p.year}): {p.title}" for p in papers[:20]]
        return untrusted("\n".join(lines) or "no paper matches", "paper-corpus")

    def read_paper(paper_id: str) -> str:
        from postlab.tools.papers.corpus import load_corpus

        paper = next((p for p in load_corpus() if p.id == paper_id), None)
        if paper is None:
            raise ToolException(f"no paper {paper_id!r}; use list_papers to find ids")
        return untrusted(paper.document(), f"paper:{paper.id}")

    def list_tasks() -> str:
        from postlab.tools.tasks.catalog import bundled_task_names

        return f"this run's task: {state.get('task')}\nbundled: {', '.join(bundled_task_names())}"

    def list_datasets() -> str:
        cards = [
            {"name": c.name, "format": c.format, "size": c.final_size, "path": c.path}
            for c in state.get("datasets") or []
        ]
        samples = [row for c in (state.get("datasets") or [])[-1:] for row in c.sample[:2]]
        text = _dump(cards) if cards else "no dataset built yet"
        return text + ("\n" + untrusted(_dump(samples), "dataset-sample") if samples else "")

    def show_plan() -> str:
        plan, best, base = state.get("plan"), state.get("best"), state.get("baseline")
        return _dump(
            {
                "directive": directive.model_dump(),
                "plan": plan.model_dump() if plan else None,
                "baseline": base.strict if base else None,
                "best": best.model_dump() if best else None,
            }
        )

    functions = (search_memory, list_papers, read_paper, list_tasks, list_datasets, show_plan)
    docs = {
        "search_memory": "Search the lab's memory by meaning (kind: papers, findings, "
        "experiments, failures or observations; k up to 10).",
        "list_papers": "List papers of the bundled corpus whose title or topics match all words.",
        "read_paper": "Read one paper's summary and technique card by id.",
        "list_tasks": "This run's task and the bundled tasks.",
        "list_datasets": "Datasets built in this run, with a sample of the latest.",
        "show_plan": "The current directive, plan, baseline and best model.",
    }
    return [
        StructuredTool.from_function(fn, description=docs[fn.__name__], handle_tool_error=True)
        for fn in functions
    ]


def _bounded(agent: str, chosen: dict[str, Any], state: LabState) -> None:
    # Pydantic bounds are static; these depend on the run's own size options.
    options = state.get("run_options")
    if options is None:
        return
    for key, value in chosen.items():
        limit = options.chosen_limit(key)
        if limit is not None and isinstance(value, int | float) and value > limit:
            raise ToolException(f"{key}={value} is above this run's limit of {limit}")
    plan = state.get("plan")
    if agent == "trainer" and "learning_rate" in chosen and plan is not None:
        adapter = chosen.get("adapter") or plan.hyper.adapter
        planned = plan.hyper.learning_rate if adapter == plan.hyper.adapter else None
        low, high = rate_range(adapter, planned)
        if not low <= chosen["learning_rate"] <= high:
            raise ToolException(
                f"learning_rate={chosen['learning_rate']:g} is outside [{low:g}, {high:g}], "
                f"the bounds for {adapter} training"
            )


def _apply(
    agent: str, chosen: dict[str, Any], state: LabState, directive: Directive
) -> tuple[LabState, Directive]:
    """The state and directive the playbook body runs under, with the model's choices merged."""
    if agent == "librarian" and chosen.get("query"):
        directive = directive.model_copy(update={"args": {**directive.args, **chosen}})
    if agent == "trainer" and chosen and state.get("plan") is not None:
        hyper = state["plan"].hyper.with_changes(**chosen)
        state = {**state, "plan": state["plan"].model_copy(update={"hyper": hyper})}
    if agent == "data_engineer" and chosen and state.get("plan") is not None:
        sizes = {"data_size": chosen.get("size"), "data_seed": chosen.get("seed")}
        update = {key: value for key, value in sizes.items() if value is not None}
        state = {**state, "plan": state["plan"].model_copy(update=update)}
    return state, directive


def action_tool(
    agent: AgentName,
    body: AgentBody,
    state: LabState,
    directive: Directive,
    memory: LabMemory,
    stash: ActionStash,
    then: str = "",
) -> BaseTool:
    """The agent's one side-effecting tool; a second call in the step returns the first result."""
    schema = {
        "librarian": ResearchArgs,
        "data_engineer": DataArgs,
        "trainer": TrainArgs,
        "evaluator": EvalArgs,
    }[agent]

    def act(**kwargs: Any) -> str:
        stash.calls += 1
        if stash.result is not None or stash.error is not None:
            return "already done in this step (no second run): " + _describe(stash) + then
        chosen = {key: value for key, value in kwargs.items() if value is not None}
        _bounded(agent, chosen, state)
        run_state, run_directive = _apply(agent, chosen, state, directive)
        stash.args = chosen
        try:
            stash.result = body(run_state, run_directive, memory)
        except GraphBubbleUp:
            raise
        except Exception as error:  # noqa: BLE001 - re-raised by the driver after the agent ends
            stash.error = error
        return _describe(stash) + then

    what = {
        "librarian": "Search the literature for techniques that fit the goal and task.",
        "data_engineer": "Build the training set the plan needs (format fixed by the plan).",
        "trainer": "Run the plan's training; you may adjust the listed hyper-parameters.",
        "evaluator": f"Score the checkpoint of the directive ({directive.action}).",
    }[agent]
    return StructuredTool.from_function(
        act,
        name=ACTION_TOOL[agent],
        description=what + " Call it exactly once; it is the only tool with side effects.",
        args_schema=schema,
        handle_tool_error=True,
    )


def _describe(stash: ActionStash) -> str:
    if stash.error is not None:
        # Error texts carry outside words (HTTP bodies, file contents): data, like any other.
        return "action failed: " + untrusted(
            f"{type(stash.error).__name__}: {stash.error}", "error"
        )
    outcome = stash.result.outcome
    text = f"status: {outcome.status}\nsummary: {outcome.summary}"
    if outcome.score is not None:
        text += f"\nscore: {outcome.score}"
    if outcome.error_kind:
        text += f"\nerror: {outcome.error_kind}"
    return text
