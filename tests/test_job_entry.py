"""Inside a training job: the iteration's folder is pushed back only once it is whole."""

import fcntl
import json
import os
import threading
import time
from pathlib import Path

from postlab.records.artifacts import TrainingResult
from postlab.tools.compute import job_entry
from postlab.tools.compute.hf_jobs import INPUTS_ENV, OUTPUT_SUBDIR, OUTPUTS_ENV, PATH_ENV
from postlab.tools.training.failures import SPEC_FILE
from postlab.tools.training.schedule import OPTIMIZER_STATE_FILE, WRITING_SUFFIX

MOMENTS = b"m" * 200_000


def test_the_job_pushes_its_folder_once_the_background_moments_are_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(INPUTS_ENV, "me/run-inputs")
    monkeypatch.setenv(OUTPUTS_ENV, "me/run-outputs")
    monkeypatch.setenv(PATH_ENV, "iter-2")
    spec = {
        "method": "sft",
        "base_model": "base",
        "dataset_path": "data",
        "output_dir": "out",
        "save_optimizer": True,
    }

    def download(repo, repo_type, allow_patterns, local_dir, endpoint):
        folder = Path(local_dir) / "iter-2"
        (folder / "base").mkdir(parents=True)
        (folder / "data").mkdir()
        (folder / SPEC_FILE).write_text(json.dumps(spec))

    def train(spec, on_progress):
        # What a CPU worker leaves behind: its moments still on their way to disk, written by a
        # process that holds the marker's lock until the file is in place.
        out = Path(spec.output_dir)
        out.mkdir(parents=True)
        state = out / OPTIMIZER_STATE_FILE
        marker = state.with_name(state.name + WRITING_SUFFIX)
        marker.touch()
        held = os.open(marker, os.O_WRONLY)
        fcntl.flock(held, fcntl.LOCK_EX)

        def write_later():
            time.sleep(0.5)
            state.write_bytes(MOMENTS)
            marker.unlink()
            os.close(held)

        threading.Thread(target=write_later, daemon=True).start()
        return TrainingResult(status="ok", checkpoint=str(out / "checkpoint"), wall_s=1.0)

    pushed = {}

    class Hub:
        def __init__(self, endpoint):
            pass

        def upload_folder(self, repo_id, repo_type, folder_path, path_in_repo, commit_message):
            state = Path(folder_path) / OPTIMIZER_STATE_FILE
            pushed.update(
                repo=repo_id,
                path=path_in_repo,
                moments=state.read_bytes() if state.is_file() else None,
                writing=any(Path(folder_path).glob(f"*{WRITING_SUFFIX}")),
            )

    monkeypatch.setattr(job_entry, "snapshot_download", download)
    monkeypatch.setattr(job_entry, "run_training", train)
    monkeypatch.setattr(job_entry, "HfApi", Hub)
    assert job_entry.main() == 0
    assert pushed["repo"] == "me/run-outputs" and pushed["path"] == f"iter-2/{OUTPUT_SUBDIR}"
    assert pushed["moments"] == MOMENTS
    assert not pushed["writing"]
