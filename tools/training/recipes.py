"""How each technique trains, when it applies, and how a paper's numbers scale to this model.

One home for the rules every chooser follows (the playbook, the LLM router, the agents' tools):
which method and data recipe a technique uses, the validation-accuracy band where it has a
signal to learn from, and how a learning rate measured on a large model carries to a small one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Method = Literal["sft", "grpo", "dpo", "orpo"]
DataRecipe = Literal[
    "plain", "grpo", "rft", "preference", "curriculum", "quality", "targeted", "synthetic"
]

# Papers in the corpus report learning rates for models of about this size unless they say
# otherwise (LLaMA-7B-class models dominate the post-training literature we summarise).
CARD_REFERENCE_PARAMS = 7e9
# The usual practice of raising the learning rate as models shrink, written as lr ∝ params^-1/2
# (135M takes about 7x a 7B model's rate); capped so a tiny model is never pushed past stability.
LR_SIZE_EXPONENT = 0.5
MAX_LR_FACTOR = 8.0
# Bounds no scaled value may leave, by adapter: beyond them training diverges or stalls on CPU.
LR_BOUNDS = {"full": (1e-6, 3e-4), "lora": (1e-5, 1e-3)}
# Full fine-tuning fits comfortably below this weight size; above it LoRA is the default.
FULL_FINETUNE_MAX_BYTES = 4 * 1024**3


@dataclass(frozen=True)
class TechniqueRecipe:
    """What running a technique means: trainer method, data recipe and where it applies."""

    method: Method
    data: DataRecipe
    default_lr: float
    # The validation accuracy band where the technique has a signal: sampling-based techniques
    # need some correct answers (and some wrong ones) to learn from.
    min_accuracy: float = 0.0
    max_accuracy: float = 1.0
    adapter: Literal["full", "lora"] | None = None
    # Preference and RL steps see each prompt with several completions: fewer steps go further.
    steps_factor: float = 1.0
    # Runs only when the user names a teacher model (--teacher).
    needs_teacher: bool = False


TECHNIQUES: dict[str, TechniqueRecipe] = {
    "sft_full": TechniqueRecipe("sft", "plain", 2e-5, adapter="full"),
    "sft_lora": TechniqueRecipe("sft", "plain", 2e-4, adapter="lora"),
    "curriculum": TechniqueRecipe("sft", "curriculum", 2e-5),
    "data_quality": TechniqueRecipe("sft", "quality", 2e-5),
    "rejection_sampling": TechniqueRecipe("sft", "rft", 2e-5, min_accuracy=0.05),
    "synthetic_teacher": TechniqueRecipe("sft", "synthetic", 2e-5, needs_teacher=True),
    "dpo": TechniqueRecipe("dpo", "preference", 5e-7, min_accuracy=0.05, max_accuracy=0.95),
    "grpo": TechniqueRecipe(
        "grpo", "grpo", 1e-6, min_accuracy=0.1, max_accuracy=0.95, steps_factor=0.5
    ),
}
# Data recipes each trainer method can learn from (a router may change a plan's recipe within).
RECIPES_BY_METHOD: dict[str, tuple[str, ...]] = {
    "sft": ("plain", "quality", "curriculum", "targeted", "rft", "synthetic"),
    "dpo": ("preference",),
    "orpo": ("preference",),
    "grpo": ("grpo",),
}
# Short names users type in --techniques.
ALIASES = {
    "sft": "sft_full",
    "lora": "sft_lora",
    "rft": "rejection_sampling",
    "star": "rejection_sampling",
    "teacher": "synthetic_teacher",
    "self_instruct": "synthetic_teacher",
}


def resolve_technique(name: str) -> str:
    """A technique key from a key or an alias; ValueError names the known ones."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in TECHNIQUES:
        known = ", ".join(sorted(set(TECHNIQUES) | set(ALIASES)))
        raise ValueError(f"unknown technique {name!r}; known: {known}")
    return key


def applies(key: str, accuracy: float) -> str | None:
    """Why a technique cannot learn at this validation accuracy, or None when it can."""
    recipe = TECHNIQUES[key]
    if accuracy < recipe.min_accuracy:
        return (
            f"needs validation accuracy ≥ {recipe.min_accuracy:.2f} to sample correct answers "
            f"(now {accuracy:.2f})"
        )
    if accuracy > recipe.max_accuracy:
        return f"needs wrong answers to learn from (validation accuracy {accuracy:.2f})"
    return None


def model_parameters(checkpoint: str | Path) -> float:
    """Parameter count of a checkpoint, from its weight files (fp32) or its config."""
    folder = Path(checkpoint)
    weights = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    if weights:
        return weights / 4
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return CARD_REFERENCE_PARAMS
    hidden, layers = config.get("hidden_size", 4096), config.get("num_hidden_layers", 32)
    return 12 * layers * hidden**2


def weights_bytes(checkpoint: str | Path) -> int:
    """Size of a checkpoint's weight files, a proxy for whether full fine-tuning fits."""
    folder = Path(checkpoint)
    return sum(f.stat().st_size for f in folder.glob("*.safetensors")) or sum(
        f.stat().st_size for f in folder.glob("*.bin")
    )


def adapter_for(key: str, checkpoint: str | Path) -> Literal["full", "lora"]:
    """The technique's adapter, or full fine-tuning when the weights fit, else LoRA."""
    fixed = TECHNIQUES[key].adapter
    if fixed is not None:
        return fixed
    return "full" if weights_bytes(checkpoint) < FULL_FINETUNE_MAX_BYTES else "lora"


def size_factor(params: float) -> float:
    """How much larger a learning rate this model takes than the papers' reference model."""
    return min(MAX_LR_FACTOR, (CARD_REFERENCE_PARAMS / max(params, 1.0)) ** LR_SIZE_EXPONENT)


def scale_learning_rate(card_lr: float, params: float, adapter: str) -> tuple[float, str]:
    """A paper's learning rate carried to this model, and the rule that did it, in words."""
    factor = size_factor(params)
    low, high = LR_BOUNDS[adapter]
    scaled = min(high, max(low, card_lr * factor))
    rule = (
        f"× {factor:.1f} for {params / 1e6:.0f}M parameters (params^-{LR_SIZE_EXPONENT} from "
        f"{CARD_REFERENCE_PARAMS / 1e9:.0f}B), within [{low:g}, {high:g}] for {adapter}"
    )
    return float(f"{scaled:.3g}"), rule


def steps_for(key: str, base_steps: int) -> int:
    """Optimiser steps for one iteration of the technique from the run's per-iteration steps."""
    return max(1, math.ceil(base_steps * TECHNIQUES[key].steps_factor))
