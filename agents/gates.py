"""Approval gates: costly actions pause for a human when one is attached, else follow a default."""

from __future__ import annotations

from typing import Any

from langgraph.types import interrupt

from postlab.records.run import RunOptions
from postlab.records.state import LabState
from postlab.records.steps import GateDecision


def check_gate(
    state: LabState, gate: str, cost: float, detail: dict[str, Any], step: int
) -> GateDecision | None:
    """Decide a gated action: None when under the threshold, else the human's or default answer.

    With a human attached this pauses the run (a LangGraph interrupt, durable in the
    checkpointer); the node re-runs on resume and gets the answer here. Nothing before this
    call may have side effects, since it runs twice.
    """
    options: RunOptions = state["run_options"]
    config = options.gates
    if gate not in config.gated or cost <= config.threshold:
        return None
    if not options.human_attached:
        approved = config.unattended_default == "approve"
        return GateDecision(
            gate=gate,
            approved=approved,
            by="default",
            note=f"no human attached: {config.unattended_default}d by default",
            cost=cost,
            step=step,
        )
    return ask_person(gate, f"Approve {gate} (cost {cost:g})?", cost, detail, step)


def ask_person(
    gate: str, question: str, cost: float, detail: dict[str, Any], step: int
) -> GateDecision:
    """Pause the run for a person's answer (a LangGraph interrupt, durable in the checkpointer)."""
    answer = interrupt({"gate": gate, "question": question, "cost": cost, "detail": detail})
    answer = answer if isinstance(answer, dict) else {"approved": bool(answer)}
    return GateDecision(
        gate=gate,
        approved=bool(answer.get("approved")),
        by="human",
        note=str(answer.get("note") or ""),
        cost=cost,
        step=step,
    )


def check_spend(
    state: LabState, estimate_usd: float, detail: dict[str, Any], step: int
) -> GateDecision:
    """Decide paid compute: within --approve-spend it goes ahead; beyond it a person is asked,
    and with nobody attached the answer is reject (paid compute never starts by default)."""
    options: RunOptions = state["run_options"]
    spent = sum(row.spend_usd for row in state.get("iterations") or [])
    if spent + estimate_usd <= options.approve_spend:
        return GateDecision(
            gate="spend",
            approved=True,
            by="default",
            note=(
                f"${estimate_usd:.2f} at most, ${spent:.2f} spent: within --approve-spend "
                f"${options.approve_spend:.2f}"
            ),
            cost=estimate_usd,
            step=step,
        )
    if not options.human_attached:
        return GateDecision(
            gate="spend",
            approved=False,
            by="default",
            note=(
                f"${estimate_usd:.2f} at most (${spent:.2f} spent) exceeds --approve-spend "
                f"${options.approve_spend:.2f} and nobody is attached: rejected"
            ),
            cost=estimate_usd,
            step=step,
        )
    question = f"Spend up to ${estimate_usd:.2f} on Hugging Face Jobs?"
    return ask_person("spend", question, estimate_usd, detail, step)
