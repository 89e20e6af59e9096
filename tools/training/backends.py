"""Which engine trains a run: plain TRL, or Unsloth where it supports the model and method.

`auto` picks Unsloth only on a CUDA GPU, with the package installed (the `gpu` extra), for a
model family and method it patches; anything else trains with plain TRL, and the reason is
recorded with the run. Nothing here imports a GPU library: the checks read the machine and the
checkpoint's config.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Literal

from postlab.records.run import Backend

# Model families (config.json's model_type) Unsloth's fast paths cover.
UNSLOTH_MODEL_TYPES = frozenset(
    {"llama", "mistral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "gemma", "gemma2",
     "gemma3", "phi3", "cohere", "granite"}
)  # fmt: skip
# TRL trainers Unsloth patches.
UNSLOTH_METHODS = frozenset({"sft", "grpo", "dpo", "orpo"})


def model_type(checkpoint: str) -> str | None:
    """The model family a checkpoint folder declares (None when it has no readable config)."""
    try:
        return json.loads((Path(checkpoint) / "config.json").read_text()).get("model_type")
    except (OSError, json.JSONDecodeError):
        return None


def cuda_available() -> bool:
    """Whether a CUDA GPU is visible (torch is imported only to ask)."""
    import torch

    return torch.cuda.is_available()


def choose_backend(
    requested: Backend,
    method: str,
    checkpoint: str,
    cuda: bool | None = None,
    unsloth_installed: bool | None = None,
) -> tuple[Literal["trl", "unsloth"], str]:
    """The engine for a run and why; `unsloth` asked for where it cannot run is a ValueError."""
    if requested == "trl":
        return "trl", "plain TRL, as asked (--backend trl)"
    installed = (
        importlib.util.find_spec("unsloth") is not None
        if unsloth_installed is None
        else unsloth_installed
    )
    on_gpu = cuda_available() if cuda is None else cuda
    family = model_type(checkpoint)
    blockers = []
    if not on_gpu:
        blockers.append("no CUDA GPU")
    if not installed:
        blockers.append("unsloth is not installed (pip install 'postlab[gpu]')")
    if method not in UNSLOTH_METHODS:
        blockers.append(f"Unsloth does not patch TRL's {method} trainer")
    if family not in UNSLOTH_MODEL_TYPES:
        blockers.append(f"Unsloth has no fast path for model type {family!r}")
    if not blockers:
        return "unsloth", f"Unsloth: CUDA, installed, {family} with {method} supported"
    why = "; ".join(blockers)
    if requested == "unsloth":
        raise ValueError(f"--backend unsloth cannot run here: {why}")
    return "trl", f"plain TRL ({why})"
