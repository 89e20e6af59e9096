"""What LLM-driven steps report: usage, fallbacks, and the report schemas models must fill."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LLMUsage(BaseModel):
    """Model calls and tokens one agent (or the supervisor) spent in one step."""

    agent: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    model: str = ""


class Fallback(BaseModel):
    """A decision the model failed to make, taken by the playbook instead."""

    step: int
    agent: str
    reason: str


class LibrarianReport(BaseModel):
    """The librarian's answer after researching techniques."""

    summary: str = Field(description="One or two sentences on what was found.")
    top_technique: str | None = Field(None, description="Best runnable technique key, if any.")


class DataReport(BaseModel):
    """The data engineer's answer after building a dataset."""

    summary: str = Field(description="One or two sentences on the dataset built.")
    dataset_path: str | None = Field(None, description="Path of the dataset, if built.")


class TrainerReport(BaseModel):
    """The trainer's answer after a training run."""

    summary: str = Field(description="One or two sentences on the training run.")
    checkpoint: str | None = Field(None, description="Path of the trained checkpoint, if any.")


class EvaluatorReport(BaseModel):
    """The evaluator's answer after scoring a checkpoint."""

    summary: str = Field(description="One or two sentences on the evaluation.")
    score: float | None = Field(None, description="Strict score in [0, 1], if evaluated.")


AgentReport = LibrarianReport | DataReport | TrainerReport | EvaluatorReport

RouteTarget = Literal["librarian", "data_engineer", "trainer", "evaluator", "finalize"]


def usage_by_agent(records: list[LLMUsage]) -> dict[str, dict]:
    """Totals per agent for summary.json and the report; cost is None when any price is unknown."""
    totals: dict[str, dict] = {}
    for record in records:
        entry = totals.setdefault(
            record.agent,
            {
                "model": record.model,
                "calls": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost_usd": 0.0,
            },
        )
        entry["calls"] += record.calls
        entry["input_tokens"] += record.input_tokens
        entry["output_tokens"] += record.output_tokens
        if record.cost_usd is None or entry["cost_usd"] is None:
            entry["cost_usd"] = None
        else:
            entry["cost_usd"] = round(entry["cost_usd"] + record.cost_usd, 6)
    return totals
