"""A host graph embeds the lab both ways and gets its output fields, without key leaks."""

import json
from pathlib import Path
from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from postlab.graph import build_graph

SMALL = {"train_steps": 1, "train_size": 16, "eval_limit": 4, "batch_size": 4, "max_iterations": 1}


class HostState(TypedDict, total=False):
    # Keys shared with the lab's input and output schemas, plus the host's own.
    task: str
    model: str
    budget: int
    run_dir: str
    options: dict
    best_checkpoint: str | None
    best_score: float | None
    stop_reason: str | None
    notes: list[str]


def _host_input(tiny_model, run_dir):
    return {
        "task": "addition_2d",
        "model": str(tiny_model),
        "budget": 12,
        "run_dir": str(run_dir),
        "options": SMALL,
        "notes": ["host note"],
    }


@pytest.fixture(scope="module")
def lab():
    return build_graph()


def test_lab_as_a_node_of_a_host_graph(lab, tiny_model, tmp_path):
    host = StateGraph(HostState)
    host.add_node("lab", lab)
    host.add_node(
        "after", lambda state: {"notes": state["notes"] + [f"best {state['best_score']}"]}
    )
    host.add_edge(START, "lab")
    host.add_edge("lab", "after")
    host.add_edge("after", END)
    events = []
    final = None
    for namespace, mode, chunk in host.compile().stream(
        _host_input(tiny_model, tmp_path / "node"), stream_mode=["custom", "values"], subgraphs=True
    ):
        if mode == "custom":
            events.append((namespace, chunk))
        else:
            final = chunk
    assert final["notes"][0] == "host note" and final["notes"][-1].startswith("best ")
    assert final["stop_reason"] in ("budget_iterations", "plateau", "target_met")
    assert final["best_checkpoint"]
    assert "trajectory" not in final and "plan" not in final
    kinds = {chunk["type"] for _, chunk in events}
    assert {"agent_started", "agent_finished", "decision", "training"} <= kinds
    assert all(namespace and namespace[0].startswith("lab") for namespace, _ in events)


def test_lab_called_from_a_host_node(lab, tiny_model, tmp_path):
    class Host(TypedDict, total=False):
        request: str
        answer: dict

    def call_lab(state: Host) -> Host:
        out = lab.invoke(
            {
                "task": state["request"],
                "model": str(tiny_model),
                "budget": 12,
                "run_dir": str(tmp_path / "call"),
                "options": SMALL,
            }
        )
        return {"answer": out}

    host = StateGraph(Host)
    host.add_node("call_lab", call_lab)
    host.add_edge(START, "call_lab")
    host.add_edge("call_lab", END)
    final = host.compile().invoke({"request": "sort_list"})
    answer = final["answer"]
    summary = json.loads((tmp_path / "call" / "summary.json").read_text())
    # The lab ran the host's request and handed back what its own summary records.
    assert summary["task"] == "sort_list" and summary["stop_reason"] == answer["stop_reason"]
    assert answer["best_score"] == summary["best_score"]
    assert answer["best_checkpoint"] == summary["best_checkpoint"]
    assert Path(answer["report_path"]) == tmp_path / "call" / "report.md"
    assert Path(answer["report_path"]).is_file()


def test_assistant_context_supplies_run_options(lab, tiny_model, tmp_path):
    out = lab.invoke(
        {"run_dir": str(tmp_path / "ctx")},
        context={"task": "answer_format", "model": str(tiny_model), "budget": 2},
    )
    assert out["stop_reason"] == "budget_steps"
    summary = json.loads((tmp_path / "ctx" / "summary.json").read_text())
    assert summary["task"] == "answer_format" and summary["budget"] == 2
