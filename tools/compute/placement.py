"""Where an iteration trains: this machine while the run fits its memory, else Hugging Face Jobs.

The estimate is deliberately coarse: fp32 weights, and for full fine-tuning their gradients and
AdamW's two moments (16 bytes a parameter), against what is free now (GPU memory with CUDA,
RAM otherwise), with a fifth more for activations. LoRA keeps the weights frozen (4 bytes a
parameter plus the adapter's share).
"""

from __future__ import annotations

import psutil

from postlab.tools.compute.hf_jobs import DEFAULT_FLAVOR

BYTES_PER_PARAM = {"full": 16.0, "lora": 4.5}
ACTIVATION_MARGIN = 1.2


def training_bytes(params: float, adapter: str) -> float:
    """Memory a training run of `params` parameters needs, roughly."""
    return params * BYTES_PER_PARAM.get(adapter, BYTES_PER_PARAM["full"]) * ACTIVATION_MARGIN


def free_bytes() -> float:
    """Memory free for training now: the GPU's with CUDA, else the machine's RAM."""
    import torch

    if torch.cuda.is_available():
        return float(torch.cuda.mem_get_info()[0])
    return float(psutil.virtual_memory().available)


def choose_compute(option: str, params: float, adapter: str) -> tuple[str, str]:
    """The compute an iteration uses under `--compute` (auto decides by memory), and why."""
    if option != "auto":
        return option, f"{option}, as asked"
    need, have = training_bytes(params, adapter), free_bytes()
    sizes = f"needs ~{need / 1e9:.1f} GB, {have / 1e9:.1f} GB free here"
    if need <= have:
        return "local", f"local ({sizes})"
    return f"hf-jobs:{DEFAULT_FLAVOR}", f"Hugging Face Jobs, {DEFAULT_FLAVOR} ({sizes})"
