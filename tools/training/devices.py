"""What the machine offers training: how many data-parallel processes a run should start, and
whether they each hold the whole model (DDP) or shard it (FSDP)."""

from __future__ import annotations

import glob
import importlib.util
import os
import sys

# Device nodes a GPU that torch.cuda can use shows up as: NVIDIA's, ROCm's and WSL's.
GPU_DEVICE_NODES = ("/dev/nvidia[0-9]*", "/dev/kfd", "/dev/dxg")


def gpu_device_nodes() -> list[str]:
    """The GPU device nodes this machine exposes (none on a CPU-only box or container)."""
    return [node for pattern in GPU_DEVICE_NODES for node in glob.glob(pattern)]


def visible_gpus() -> int:
    """CUDA devices this process can see (0 without torch's CUDA build or without GPUs)."""
    if importlib.util.find_spec("torch") is None:
        return 0
    # Without a device node torch cannot see a GPU either; asking it would cost its import (3 s
    # on 2 cores) in processes that have no other use for torch yet.
    if "torch" not in sys.modules and not gpu_device_nodes():
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

        # Each data-parallel rank trains on its own device (torchrun's LOCAL_RANK).
        return float(torch.cuda.mem_get_info(int(os.environ.get("LOCAL_RANK", "0")))[0])
    return float(psutil.virtual_memory().available)


def free_bytes_per_process(processes: int, free_bytes: float | None = None) -> float:
    """Memory each of `processes` training processes may use: a GPU rank has its own device,
    while processes on one machine's CPUs share its RAM (`free_bytes`: the device's, if known)."""
    free = free_bytes if free_bytes is not None else free_device_bytes()
    return free / (1 if visible_gpus() else max(1, processes))


def sharding_for(
    processes: int, adapter: str, params: float, free_bytes: float | None = None
) -> tuple[str, str]:
    """DDP while a full replica fits each process, else FSDP (full fine-tuning only); and why."""
    if processes < 2:
        return "ddp", ""
    if adapter != "full":
        return "ddp", "ddp: a LoRA adapter over frozen weights replicates cheaply"
    need = training_bytes(params, adapter)
    have = free_bytes_per_process(processes, free_bytes)
    sizes = f"a replica needs ~{need / 1e9:.1f} GB, {have / 1e9:.1f} GB free per process"
    if need <= have:
        return "ddp", f"ddp ({sizes})"
    return "fsdp", f"fsdp full_shard ({sizes})"


# Activations one decoder layer keeps for backward, per token, in multiples of the hidden size:
# about 34·h bytes in 16-bit training without recomputation, i.e. 17 values (Korthikanti et al.
# 2022, "Reducing Activation Recomputation in Large Transformer Models"; attention scores aside,
# which fused SDPA kernels do not keep).
ACTIVATION_VALUES_PER_TOKEN = 17
# Gradients (4 B) and AdamW's two moments (8 B) per trainable parameter, allocated once training
# starts: after the weights are loaded, before any row is seen.
STATE_BYTES_PER_TRAINABLE = 12.0


def row_activation_bytes(tokens: int, layers: int, hidden: int, value_bytes: int) -> float:
    """Memory one training row of `tokens` tokens needs for its decoder's activations (the LM
    head projects only the scored positions, a few per row)."""
    return float(tokens * layers * hidden * ACTIVATION_VALUES_PER_TOKEN * value_bytes)


def micro_batch(
    batch: int, free_bytes: float, state_bytes: float, row_bytes: float
) -> tuple[int, int, str]:
    """The per-step rows a process takes at once and how many such passes make its step.

    The largest divisor of `batch` whose activations fit in what the model's training state
    leaves free; the rest of the step becomes gradient accumulation, so the optimiser still sees
    `batch` rows a step. One row at a time when not even one fits (an OOM then says so).
    """
    room = free_bytes - state_bytes
    fitting = [
        size for size in range(batch, 0, -1) if batch % size == 0 and size * row_bytes <= room
    ]
    size = fitting[0] if fitting else 1
    passes = batch // size
    sizes = (
        f"{row_bytes / 1e6:.1f} MB of activations a row, {max(room, 0) / 1e9:.2f} GB free beside "
        f"{state_bytes / 1e9:.2f} GB of weights' training state"
    )
    if passes == 1:
        return size, 1, f"all {batch} rows at once ({sizes})"
    return size, passes, f"{size} rows at a time, {passes} passes a step ({sizes})"
