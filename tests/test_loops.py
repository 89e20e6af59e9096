"""Scripted policies that loop in each of the four ways are caught, escalate, and stop early."""

import json

import pytest

from postlab.graph.builder import build_graph, recursion_limit
from postlab.records.hyper import Hyper
from postlab.records.steps import Decision, Directive, Plan

BUDGET = 60
OPTIONS = {"eval_limit": 4, "batch_size": 4, "train_steps": 1, "train_size": 16}


def _plan(step, checkpoint, status, lr=1e-4):
    return Plan(
        iteration=step,
        technique="sft_full",
        method="sft",
        init_checkpoint=checkpoint,
        hyper=Hyper(adapter="full", learning_rate=lr, max_steps=1, batch_size=4),
        data_format="sft",
        data_size=16,
        data_seed=step,
        reason="scripted",
        dataset_path="/nonexistent/dataset",
        checkpoint=checkpoint,
        status=status,
    )


def _go(step, agent, action, args, plan=None):
    directive = Directive(agent=agent, action=action, args=args, reason="scripted loop")
    return Decision(step=step, next=agent, reason="scripted loop", directive=directive), plan


def repeating(state, step, event):
    """Asks the librarian the very same question forever."""
    return _go(step, "librarian", "research", {"query": "same"})


def cycling(state, step, event):
    """Alternates two actions forever: research, baseline, research, baseline, ..."""
    if step % 2 == 0:
        return _go(step, "librarian", "research", {"query": "same"})
    return _go(step, "evaluator", "baseline", {"checkpoint": state["base_model_path"]})


def failing(state, step, event):
    """Trains on a missing dataset with a new learning rate each time: the same failure."""
    plan = _plan(step, state["base_model_path"], "needs_training", lr=1e-4 * (step + 1))
    return _go(step, "trainer", "train", {"learning_rate": plan.hyper.learning_rate}, plan)


def plateauing(state, step, event):
    """Re-evaluates the same model as a new iteration each time: scores never improve."""
    if state.get("baseline") is None:
        return _go(step, "evaluator", "baseline", {"checkpoint": state["base_model_path"]})
    plan = _plan(step, state["base_model_path"], "needs_eval")
    return _go(
        step, "evaluator", "evaluate", {"checkpoint": plan.checkpoint, "iteration": step}, plan
    )


@pytest.mark.parametrize(
    ("policy", "reason", "pattern"),
    [
        (repeating, "loop", "repeat"),
        pytest.param(cycling, "loop", "cycle", marks=pytest.mark.slow),
        (failing, "loop", "failure"),
        pytest.param(plateauing, "plateau", "plateau", marks=pytest.mark.slow),
    ],
)
def test_each_loop_is_caught_escalates_and_stops(policy, reason, pattern, tiny_model, tmp_path):
    graph = build_graph(policy=policy)
    run_dir = tmp_path / pattern
    output = graph.invoke(
        {
            "task": "addition_2d",
            "model": str(tiny_model),
            "budget": BUDGET,
            "run_dir": str(run_dir),
            "options": OPTIONS,
        },
        {"recursion_limit": recursion_limit(BUDGET)},
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert output["stop_reason"] == reason
    assert summary["loop_pattern"] == pattern
    assert pattern in summary["stop_detail"]
    events = summary["guard_events"]
    assert [e["rung"] for e in events] == ["redirect", "switch_technique", "stop"]
    assert all(e["pattern"] == pattern for e in events)
    # Each firing is on fresh records: firings are spaced, never on consecutive steps.
    steps = [e["step"] for e in events]
    assert all(b - a >= 2 for a, b in zip(steps, steps[1:], strict=False))
    assert summary["steps_used"] < BUDGET / 2
    assert "## Loop guard" in (run_dir / "report.md").read_text()
