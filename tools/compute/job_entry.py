"""What runs inside a training job: fetch the iteration's inputs, train as a local run would,
push the iteration's folder back. Its stdout is the job's log; training events go there too."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download

from postlab.tools.compute.hf_jobs import (
    INPUTS_ENV,
    OUTPUT_SUBDIR,
    OUTPUTS_ENV,
    PATH_ENV,
    hub_endpoint,
)
from postlab.tools.training.failures import EVENT_MARKER, SPEC_FILE
from postlab.tools.training.runner import run_training
from postlab.tools.training.schedule import OPTIMIZER_STATE_FILE, await_optimizer_state
from postlab.tools.training.spec import TrainingSpec
from postlab.tools.training.worker_end import wait_for_exiting_workers


def main() -> int:
    """Train the iteration named by the job's environment; 0 when it trained."""
    inputs, outputs = os.environ[INPUTS_ENV], os.environ[OUTPUTS_ENV]
    path = os.environ[PATH_ENV]
    work = Path.cwd() / "postlab-job"
    snapshot_download(
        inputs,
        repo_type="dataset",
        allow_patterns=[f"{path}/**"],
        local_dir=work,
        endpoint=hub_endpoint(),
    )
    folder = work / path
    raw = json.loads((folder / SPEC_FILE).read_text())
    for key in ("dataset_path", "output_dir", "base_model", "optimizer_state"):
        if raw.get(key) and (key == "output_dir" or (folder / raw[key]).exists()):
            raw[key] = str(folder / raw[key])
    spec = TrainingSpec.model_validate(raw)

    def show(event: dict) -> None:
        print(EVENT_MARKER + json.dumps(event), flush=True)

    result = run_training(spec, on_progress=show)
    print(f"[postlab job] training {result.status}", flush=True)
    # The pushed log must end with the worker's exit code, written once it has exited.
    wait_for_exiting_workers()
    if spec.save_optimizer:
        # The moments may still be on their way to disk (a CPU worker writes them in the
        # background): the pushed folder must hold them whole.
        await_optimizer_state(Path(spec.output_dir) / OPTIMIZER_STATE_FILE)
    HfApi(endpoint=hub_endpoint()).upload_folder(
        repo_id=outputs,
        repo_type="model",
        folder_path=spec.output_dir,
        path_in_repo=f"{path}/{OUTPUT_SUBDIR}",
        commit_message=f"{path}: training {result.status}",
    )
    return 0 if result.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
