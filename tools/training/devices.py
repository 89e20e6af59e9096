"""What the machine offers training: how many data-parallel processes a run should start, and
whether they each hold the whole model (DDP) or shard it (FSDP)."""

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


# Bytes a parameter takes in training, coarsely: full fine-tuning holds fp32 weights, gradients
# and AdamW's two moments (16); LoRA keeps the weights frozen (4, plus the adapter's share).
BYTES_PER_PARAM = {"full": 16.0, "lora": 4.5}
# A fifth more for activations.
ACTIVATION_MARGIN = 1.2


def training_bytes(params: float, adapter: str) -> float:
    """Memory one replica of a training run of `params` parameters needs, roughly."""
    return params * BYTES_PER_PARAM.get(adapter, BYTES_PER_PARAM["full"]) * ACTIVATION_MARGIN


def free_device_bytes() -> float:
    """Memory one training process may use: a GPU's free memory, else the RAM free now."""
    import psutil

    if visible_gpus():
        import torch

        return float(torch.cuda.mem_get_info()[0])
    return float(psutil.virtual_memory().available)


def sharding_for(
    processes: int, adapter: str, params: float, free_bytes: float | None = None
) -> tuple[str, str]:
    """DDP while a full replica fits each process, else FSDP (full fine-tuning only); and why."""
    if processes < 2:
        return "ddp", ""
    if adapter != "full":
        return "ddp", "ddp: a LoRA adapter over frozen weights replicates cheaply"
    need = training_bytes(params, adapter)
    # On one machine's CPUs every process shares the same RAM.
    have = (free_bytes if free_bytes is not None else free_device_bytes()) / (
        1 if visible_gpus() else processes
    )
    sizes = f"a replica needs ~{need / 1e9:.1f} GB, {have / 1e9:.1f} GB free per process"
    if need <= have:
        return "ddp", f"ddp ({sizes})"
    return "fsdp", f"fsdp full_shard ({sizes})"
