"""Where an iteration trains: this machine while the run fits its free memory, else Hugging
Face Jobs (the estimate is tools.training.devices', against GPU memory with CUDA, else RAM)."""

from __future__ import annotations

from postlab.tools.compute.hf_jobs import DEFAULT_FLAVOR
from postlab.tools.training.devices import free_device_bytes, training_bytes


def choose_compute(option: str, params: float, adapter: str) -> tuple[str, str]:
    """The compute an iteration uses under `--compute` (auto decides by memory), and why."""
    if option != "auto":
        return option, f"{option}, as asked"
    need, have = training_bytes(params, adapter), free_device_bytes()
    sizes = f"needs ~{need / 1e9:.1f} GB, {have / 1e9:.1f} GB free here"
    if need <= have:
        return "local", f"local ({sizes})"
    return f"hf-jobs:{DEFAULT_FLAVOR}", f"Hugging Face Jobs, {DEFAULT_FLAVOR} ({sizes})"
