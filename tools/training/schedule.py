"""One learning-rate schedule across a lineage of runs, and the optimiser state they hand on.

An iteration that continues its parent takes the next stretch of the parent's schedule and
starts from the parent's Adam moments, so a chain of continuations trains like one long run
(one warm-up, one decay) instead of re-warming and re-decaying every few steps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from postlab.tools.io.atomic import replacing

# Schedules a run can resume part-way (each a function of the step within the whole schedule).
RESUMABLE_SCHEDULES = ("cosine", "linear", "constant")
# Adam's moments of a run, beside its checkpoint: what a continuation resumes from.
OPTIMIZER_STATE_FILE = "optimizer.pt"


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Warm-up steps of a schedule `total_steps` long (the same rounding as a plain run)."""
    return math.ceil(total_steps * warmup_ratio)


def lr_multiplier(step: int, total_steps: int, warmup: int, shape: str) -> float:
    """The fraction of the peak learning rate at `step` of a schedule `total_steps` long."""
    if step < warmup:
        return step / max(1, warmup)
    if shape == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if shape == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def continuing(
    trainer_cls: type,
    offset: int,
    total_steps: int,
    warmup: int,
    shape: str,
    optimizer_state: str | None,
) -> type:
    """A subclass of a TRL trainer that runs steps offset.. of a longer schedule and, when given,
    starts from a saved optimiser state (Trainer's documented override points)."""

    class Continuing(trainer_cls):
        def create_optimizer(self, model=None):
            optimizer = super().create_optimizer(model)
            if optimizer_state and Path(optimizer_state).is_file():
                import torch

                optimizer.load_state_dict(torch.load(optimizer_state, weights_only=True))
                self.resumed_optimizer = True
            return optimizer

        def create_scheduler(self, num_training_steps: int, optimizer=None):
            if self.lr_scheduler is None:
                from torch.optim.lr_scheduler import LambdaLR

                self.lr_scheduler = LambdaLR(
                    optimizer or self.optimizer,
                    lambda step: lr_multiplier(offset + step, total_steps, warmup, shape),
                )
                self._created_lr_scheduler = True
            return self.lr_scheduler

    Continuing.__name__ = Continuing.__qualname__ = f"Continuing{trainer_cls.__name__}"
    return Continuing


def save_optimizer_state(optimizer: Any, out_dir: Path) -> Path:
    """Save an optimiser's state beside a run's checkpoint, atomically."""
    import torch

    path = Path(out_dir) / OPTIMIZER_STATE_FILE
    with replacing(path) as tmp:
        torch.save(optimizer.state_dict(), tmp)
    return path


def prune_optimizer_states(models_dir: Path, keep: set[Path]) -> list[str]:
    """Delete saved optimiser states outside the iteration folders in `keep`; the folders named."""
    kept = {Path(folder).resolve() for folder in keep}
    removed = []
    for state in sorted(Path(models_dir).glob(f"*/{OPTIMIZER_STATE_FILE}")):
        if state.parent.resolve() not in kept:
            state.unlink(missing_ok=True)
            removed.append(state.parent.name)
    return removed
