"""Typed hyper-parameters of one iteration, and the rules every chooser of them shares.

The playbook, the LLM router and the agents' action tools all build or change a `Hyper` here, so
the LoRA alpha rule, GRPO's whole-group batches and the bounds a value may take live in one place.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# LoRA's scale alpha/r is kept at 2, the common choice in the LoRA and QLoRA recipes.
LORA_ALPHA_PER_RANK = 2
LORA_RANK_RANGE = (4, 64)
DEFAULT_LORA_RANK = 16
DEFAULT_GRPO_GROUP = 4


class Hyper(BaseModel):
    """What a technique trains with: adapter, optimiser settings and, per method, its extras."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    adapter: Literal["lora", "full"] = "full"
    learning_rate: float = Field(gt=0, lt=1)
    max_steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    grad_accum: int = Field(1, ge=1)
    lora_r: int | None = Field(None, ge=LORA_RANK_RANGE[0], le=LORA_RANK_RANGE[1])
    lora_alpha: int | None = Field(None, ge=1)
    # Set for GRPO only: completions sampled per prompt, and the KL weight.
    num_generations: int | None = Field(None, ge=2)
    beta: float | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = dict(values)
        if values.get("adapter") == "lora":
            rank = int(values.get("lora_r") or DEFAULT_LORA_RANK)
            low, high = LORA_RANK_RANGE
            values["lora_r"] = max(low, min(high, rank))
            values["lora_alpha"] = LORA_ALPHA_PER_RANK * values["lora_r"]
        else:
            values["lora_r"] = values["lora_alpha"] = None
        group = values.get("num_generations")
        if group:
            # TRL's GRPO needs whole groups of completions per generation batch.
            batch = int(values.get("batch_size") or group)
            values["batch_size"] = max(int(group), batch - batch % int(group))
        return values

    @property
    def cost(self) -> int:
        """Examples the optimiser sees: steps x batch x accumulation."""
        return self.max_steps * self.batch_size * self.grad_accum

    @property
    def rows_seen(self) -> int:
        """Training rows the optimiser draws: examples, or prompts when each has a group."""
        return self.cost // (self.num_generations or 1)

    def with_changes(self, **changes: Any) -> Hyper:
        """A copy with `changes` applied and every rule re-checked."""
        return Hyper.model_validate({**self.model_dump(), **changes})

    def spec_fields(self) -> dict[str, Any]:
        """The fields a TrainingSpec takes from these hyper-parameters (unset ones left out)."""
        return self.model_dump(exclude_none=True)
