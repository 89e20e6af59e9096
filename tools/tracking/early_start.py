"""A training run's tracker run started on a thread while the worker loads its model and data.

wandb's start is mostly waiting (its service process, the run's files, the console redirect):
about 0.9 s an iteration on 2 cores, which transformers' callback pays inside the training loop
at its first step. Started here, it overlaps set-up; the callback then finds the run open and
only adds its config, as it does for any run a user opened before training.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable


class EarlyStart:
    """A tracker run being opened on a thread; `wait` joins it before training starts."""

    def __init__(self, open_run: Callable[[], object] | None = None) -> None:
        # Seconds the start itself took, and why it failed (the callback then starts it as before).
        self.start_s = 0.0
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        if open_run is not None:
            self._thread = threading.Thread(
                target=self._open, args=(open_run,), name="postlab-tracker-start", daemon=True
            )
            self._thread.start()

    def _open(self, open_run: Callable[[], object]) -> None:
        began = time.monotonic()
        try:
            open_run()
        except Exception as error:  # noqa: BLE001 - the callback retries and reports it
            self.error = f"{type(error).__name__}: {error}"
        self.start_s = time.monotonic() - began

    @property
    def opens_a_run(self) -> bool:
        """Whether a run is being opened early (else the callback opens it, as before)."""
        return self._thread is not None

    def wait(self) -> float:
        """Wait until the run is open (or its start failed); the seconds spent waiting."""
        if self._thread is None:
            return 0.0
        waiting = time.monotonic()
        self._thread.join()
        return time.monotonic() - waiting


def start_tracker_run(report_to: str, run_name: str) -> EarlyStart:
    """Open the wandb run transformers' callback would open (its project from WANDB_PROJECT,
    `run_name`), on a thread; nothing for other trackers or without a project set."""
    project = os.environ.get("WANDB_PROJECT")
    if report_to != "wandb" or not project:
        return EarlyStart()
    # Imported here, not on the thread, so two threads never import the same modules at once.
    import wandb

    if wandb.run is not None:
        return EarlyStart()
    return EarlyStart(lambda: wandb.init(project=project, name=run_name))
