"""Room on disk for what a training run writes, checked before it spends any steps.

A run whose checkpoint cannot be written fails after all its steps; one whose optimiser state
cannot be written (a background writer, for a continuation's sake) loses it with only a note
(schedule.py). Measured: three compare_numbers lab runs on a disk with 407 MB free trained eight
stretches from fresh moments, where each state takes 1.1 GB for SmolLM2-135M.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from postlab.tools.training.recipes import model_parameters, weights_bytes
from postlab.tools.training.sizing import LORA_TRAINABLE_SHARE
from postlab.tools.training.spec import TrainingSpec

# AdamW's two moments, fp32, for each trained weight: what a saved optimiser state holds.
MOMENT_BYTES_PER_TRAINABLE = 8.0
# Besides the weights: a tokenizer, the log, the tracker's files.
SPARE_BYTES = 64 * 1024**2


def bytes_to_write(spec: TrainingSpec) -> float | None:
    """At least how many bytes `spec`'s run writes: its merged checkpoint (no smaller than the
    weights it starts from) and, when it keeps one, its optimiser state; None where the starting
    weights are not a local folder (a Hub name: their size is not known here)."""
    start = Path(spec.base_model)
    if not start.is_dir():
        return None
    checkpoint = weights_bytes(start)
    if not checkpoint:
        return None
    written = checkpoint + SPARE_BYTES
    if spec.save_optimizer:
        share = 1.0 if spec.adapter == "full" else LORA_TRAINABLE_SHARE
        written += model_parameters(start) * share * MOMENT_BYTES_PER_TRAINABLE
    return written


def _size(count: float) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 1e9 else f"{count / 1e6:.1f} MB"


def room_shortfall(spec: TrainingSpec, out_dir: Path) -> str | None:
    """Why the disk under `out_dir` cannot hold what `spec`'s run writes, or None where it can
    (or the size is not known). The size is a lower bound: a shortfall is certain."""
    needed = bytes_to_write(spec)
    if needed is None:
        return None
    free = shutil.disk_usage(out_dir).free
    if free >= needed:
        return None
    kept = " and its optimiser state" if spec.save_optimizer else ""
    return (
        f"no room on disk: the run writes at least {_size(needed)} under {out_dir} (its "
        f"checkpoint{kept}) and {_size(free)} are free there; free some and run again"
    )
