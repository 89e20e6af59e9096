"""A stand-in for Hugging Face Jobs on 127.0.0.1: the Hub stand-in plus the Jobs endpoints.

POST /api/jobs/{ns} starts the job's command here, as the Jobs service would start it in its
image: in a fresh folder, with the job's environment and secrets, HF_ENDPOINT pointing back at
this server, and `pip` and `python` on PATH as the image would offer them (pip a no-op: the
package is already importable here). GET /api/jobs/{ns}/{id} reports its stage from the process
(RUNNING, COMPLETED, ERROR, CANCELED); /logs streams its output as server-sent events;
POST /api/jobs/{ns}/{id}/cancel kills it; GET /api/jobs/hardware lists two flavours with prices.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.hub_server import HubServer

HARDWARE = [
    {"name": "cpu-basic", "prettyName": "CPU Basic", "cpu": "2 vCPU", "ram": "16 GB",
     "ephemeralStorage": "50 GB", "accelerator": None, "unitCostMicroUSD": 167,
     "unitCostUSD": 0.000167, "unitLabel": "minute"},
    {"name": "a10g-small", "prettyName": "Nvidia A10G - small", "cpu": "4 vCPU", "ram": "15 GB",
     "ephemeralStorage": "110 GB", "unitCostMicroUSD": 16667, "unitCostUSD": 0.016667,
     "unitLabel": "minute", "accelerator": {"type": "gpu", "model": "A10G", "quantity": "1",
                                             "vram": "24 GB", "manufacturer": "Nvidia"}},
]  # fmt: skip


@dataclass
class Job:
    """One submitted job: its request, process, log file and how it ended."""

    id: str
    namespace: str
    request: dict
    process: subprocess.Popen
    log: Path
    started: float
    cancelled: bool = False

    def stage(self) -> str:
        """The Jobs service's stage for this job now."""
        if self.cancelled:
            return "CANCELED"
        code = self.process.poll()
        return "RUNNING" if code is None else "COMPLETED" if code == 0 else "ERROR"

    def info(self) -> dict:
        """The job as the Jobs API returns it."""
        stage = self.stage()
        return {
            "id": self.id,
            "createdAt": dt.datetime.fromtimestamp(self.started, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%f"
            )[:-3]
            + "Z",
            "dockerImage": self.request.get("dockerImage"),
            "command": self.request.get("command"),
            "arguments": [],
            "environment": self.request.get("environment"),
            "secrets": {name: "***" for name in self.request.get("secrets") or {}},
            "flavor": self.request.get("flavor"),
            "labels": self.request.get("labels"),
            "status": {"stage": stage, "message": f"exit {self.process.returncode}"
                       if stage == "ERROR" else None},
            "durations": {"scheduling_secs": 0, "running_secs": int(time.time() - self.started),
                          "total_secs": int(time.time() - self.started)},
            "owner": {"id": "u1", "name": self.namespace, "type": "user"},
        }  # fmt: skip


@dataclass
class JobsServer(HubServer):
    """The Hub stand-in with Jobs; `jobs` keeps every submitted job in order."""

    jobs: list[Job] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    # What the image's `pip install` does: "ok", or "fail" (an image where postlab cannot install).
    install: str = "ok"
    # How many reads of a job's status answer 503 before the service recovers (a blip).
    unavailable_reads: int = 0

    def __exit__(self, *exc: object) -> None:
        for job in self.jobs:
            if job.process.poll() is None:
                os.killpg(job.process.pid, signal.SIGKILL)
                job.process.wait()
            # The job's working folder (its image's tools, its log) is the stand-in's own.
            shutil.rmtree(job.log.parent, ignore_errors=True)
        super().__exit__(*exc)

    def _image_bin(self, folder: Path) -> Path:
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        (bin_dir / "pip").write_text(f"#!/bin/sh\nexit {0 if self.install == 'ok' else 1}\n")
        (bin_dir / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        for tool in bin_dir.iterdir():
            tool.chmod(0o755)
        return bin_dir

    def _post_job(self, handler, path: str, body: bytes) -> None:
        parts = path.strip("/").split("/")  # api, jobs, namespace[, id, cancel]
        if len(parts) == 3:
            request = json.loads(body)
            folder = Path(tempfile.mkdtemp(prefix="standin-job-"))
            env = {**os.environ, **request.get("environment", {}), **request.get("secrets", {})}
            env["HF_ENDPOINT"] = self.url
            env["PATH"] = f"{self._image_bin(folder)}:{env.get('PATH', '')}"
            for name in ("POSTLAB_CHROMA_URL", "POSTLAB_CHECKPOINT_URL", "HF_HUB_OFFLINE"):
                env.pop(name, None)
            log = folder / "job.log"
            with open(log, "w") as out:
                process = subprocess.Popen(
                    request["command"], cwd=folder, env=env, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            job = Job(f"{len(self.jobs) + 1:024x}", parts[2], request, process, log, time.time())
            self.jobs.append(job)
            return self._reply(handler, 200, job.info())
        job = self._job(parts[3])
        if job is None or parts[4:] != ["cancel"]:
            return self._reply(handler, 404, {"error": "job not found"})
        self.cancels.append(job.id)
        if job.process.poll() is None:
            job.cancelled = True
            os.killpg(job.process.pid, signal.SIGKILL)
            job.process.wait()
        return self._reply(handler, 200, {})

    def _job(self, job_id: str) -> Job | None:
        return next((job for job in self.jobs if job.id == job_id), None)

    def _read_more(self, handler, path: str, head: bool) -> None:
        parts = path.strip("/").split("/")
        if parts == ["api", "jobs", "hardware"]:
            return self._reply(handler, 200, HARDWARE)
        if len(parts) >= 4 and parts[:2] == ["api", "jobs"]:
            job = self._job(parts[3])
            if job is None:
                return self._reply(handler, 404, {"error": "job not found"})
            if parts[4:] == [] and self.unavailable_reads > 0:
                self.unavailable_reads -= 1
                return self._reply(handler, 503, {"error": "Service Unavailable"})
            if parts[4:] == ["logs"]:
                lines = job.log.read_text(errors="replace").splitlines()
                events = "".join(
                    f"data: {json.dumps({'data': line, 'timestamp': 'now'})}\n\n" for line in lines
                ).encode()
                handler.send_response(200)
                handler.send_header("Content-Type", "text/event-stream")
                handler.send_header("Content-Length", str(len(events)))
                handler.end_headers()
                handler.wfile.write(events)
                return None
            return self._reply(handler, 200, job.info())
        return self._reply(handler, 404, {"error": f"no route {path}"})
