"""Room on disk for what a training run writes, checked before it spends any steps.

A run whose checkpoint cannot be written fails after all its steps; one whose optimiser state
cannot be written (a background writer, for a continuation's sake) loses it with only a note
(schedule.py). Measured: three compare_numbers lab runs on a disk with 407 MB free trained eight
stretches from fresh moments, where each state takes 1.1 GB for SmolLM2-135M.
The size checked is the least the run can write on any device, so a shortfall is certain.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from postlab.tools.training.recipes import weights_bytes
from postlab.tools.training.spec import TrainingSpec

# The fewest bytes a weight takes in what a run writes: bf16, as a GPU trains and saves it (a CPU
# writes fp32, twice this), and AdamW's two moments in the weight's own dtype.
WEIGHT_BYTES = 2.0
MOMENT_BYTES_PER_TRAINABLE = 2 * WEIGHT_BYTES
# Besides the weights: a tokenizer, the log, the tracker's files.
SPARE_BYTES = 64 * 1024**2


def bytes_to_write(spec: TrainingSpec) -> float | None:
    """At least how many bytes `spec`'s run writes: its merged checkpoint and, when it keeps
    one, its optimiser state, at bf16 sizes; None where the starting weights are not a local
    folder (a Hub name: their size is not known here)."""
    start = Path(spec.base_model)
    if not start.is_dir() or not (files := weights_bytes(start)):
        return None
    # Counted as if the weight files were fp32: bf16 or quantized files count fewer weights than
    # they hold, still a lower bound.
    params = files / 4
    written = params * WEIGHT_BYTES + SPARE_BYTES
    if spec.save_optimizer and spec.adapter == "full":
        # A LoRA adapter's moments are a few percent of this, left out of the bound.
        written += params * MOMENT_BYTES_PER_TRAINABLE
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
    kept = " and its optimiser state" if spec.save_optimizer and spec.adapter == "full" else ""
    return (
        f"no room on disk: the run writes at least {_size(needed)} under {out_dir} (its "
        f"checkpoint{kept}) and {_size(free)} are free there; free some and run again"
    )
