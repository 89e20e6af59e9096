"""The library: what earlier runs measured, kept across runs in the user's cache.

A run's memory lives and dies with its folder; the library outlives it, so the next run on a task
can weigh what this machine has already measured next to what the papers say.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from postlab.memory.store import LabMemory
from postlab.records.home import postlab_home
from postlab.records.outcomes import MeasuredEffect

LIBRARY_ENV = "POSTLAB_LIBRARY_DIR"
# The value of LIBRARY_ENV that turns the library off (reproducible benchmarks, tests).
LIBRARY_OFF = "off"


def library_dir() -> Path | None:
    """Where the library lives ($POSTLAB_LIBRARY_DIR, else in postlab's home), or None if off."""
    configured = os.environ.get(LIBRARY_ENV)
    if configured == LIBRARY_OFF:
        return None
    if configured:
        return Path(configured).expanduser()
    return postlab_home() / "library"


def open_library() -> LabMemory | None:
    """The library's memory, or None when it is turned off."""
    folder = library_dir()
    return None if folder is None else LabMemory(folder)


def remember_effects(library: LabMemory, effects: list[MeasuredEffect]) -> None:
    """File a run's measured effects (one per technique; a rerun of a run replaces its own)."""
    library.add_many(
        "experiments",
        [
            f"{e.technique} on {e.task} ({e.model_params / 1e6:.0f}M parameters): validation "
            f"{e.effect:+.2f} per iteration over {e.iterations} iteration(s), {e.steps} steps, "
            f"run {e.run_id}"
            for e in effects
        ],
        [e.model_dump() for e in effects],
        ids=[f"effect-{e.run_id}-{e.technique}" for e in effects],
    )


def recall_effects(library: LabMemory, task: str) -> list[MeasuredEffect]:
    """Every effect the library holds for a task, oldest run first."""
    fields = set(MeasuredEffect.model_fields)
    effects = []
    for hit in library.get("experiments", where={"task": task}):
        try:
            effects.append(MeasuredEffect(**{k: hit.metadata[k] for k in fields}))
        except (KeyError, ValidationError):
            continue  # written by another version, or by hand: not evidence this one can read
    return sorted(effects, key=lambda e: e.run_id)
