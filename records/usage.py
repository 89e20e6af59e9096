"""What model-driven steps cost (calls, tokens) and which decisions fell back to the playbook."""

from __future__ import annotations

from pydantic import BaseModel


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
