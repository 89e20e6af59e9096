"""Assemble the lab's graph: prepare → supervisor ⇄ agents → finalize."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from postlab.agents.data_engineer import data_engineer
from postlab.agents.evaluator import evaluator
from postlab.agents.librarian import librarian
from postlab.agents.trainer import trainer
from postlab.graph.finalize import finalize
from postlab.graph.prepare import prepare
from postlab.graph.state import LabContext, LabInput, LabOutput, LabState
from postlab.graph.supervisor import Policy, make_supervisor


def build_graph(
    checkpointer: Any | None = None, store: Any | None = None, policy: Policy | None = None
):
    """The compiled lab graph with declared input and output schemas.

    `policy` replaces the playbook's routing (the budget and loop guard still wrap it).
    """
    builder = StateGraph(
        LabState, context_schema=LabContext, input_schema=LabInput, output_schema=LabOutput
    )
    builder.add_node("prepare", prepare)
    builder.add_node("supervisor", make_supervisor(policy))
    builder.add_node("librarian", librarian)
    builder.add_node("data_engineer", data_engineer)
    builder.add_node("trainer", trainer)
    builder.add_node("evaluator", evaluator)
    builder.add_node("finalize", finalize)
    builder.add_edge(START, "prepare")
    builder.add_edge("finalize", END)
    return builder.compile(checkpointer=checkpointer, store=store, name="postlab")


def recursion_limit(budget_steps: int) -> int:
    """A backstop above the step budget: each agent step is two graph steps plus the ends."""
    return 2 * budget_steps + 20
