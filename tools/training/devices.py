"""What the machine offers training: how many data-parallel processes a run should start."""

from __future__ import annotations

import importlib.util


def visible_gpus() -> int:
    """CUDA devices this process can see (0 without torch's CUDA build or without GPUs)."""
    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def training_processes(requested: int | None) -> int:
    """Processes a training run starts: as asked, else one per visible GPU (one on a CPU box)."""
    if requested is not None:
        return requested
    return max(1, visible_gpus())
