"""A team's shared memory: runs keep their memories in a real Chroma server, across a SIGKILL."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings

CHROMA = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
CLI = [sys.executable, "-m", "postlab.cli"]
SMALL = ["--train-steps", "3", "--train-size", "24", "--eval-limit", "6", "--batch-size", "4",
         "--max-iterations", "2", "--budget", "40"]  # fmt: skip


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """`chroma run` on loopback, as a team would start it; its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("chroma")
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
    server = subprocess.Popen(
        [CHROMA, "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            client = chromadb.HttpClient(
                host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False)
            )
            client.heartbeat()
            break
        except Exception:  # noqa: BLE001 - not listening yet
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                log.seek(0)
                raise AssertionError(f"chroma did not start: {log.read()[-2000:]!r}") from None
            time.sleep(0.3)
    yield f"http://127.0.0.1:{port}", client
    server.terminate()
    server.wait(20)


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "CI": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
            "POSTLAB_CHROMA_URL": url}  # fmt: skip


def test_a_run_on_a_chroma_server_survives_sigkill_and_resumes_from_another_process(
    chroma_server, tiny_model, tmp_path
):
    url, client = chroma_server
    run_dir = tmp_path / "shared-run"
    args = ["run", "--task", "addition_2d", "--model", str(tiny_model), "--run-dir", str(run_dir),
            *SMALL]  # fmt: skip
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
    first = subprocess.Popen([*CLI, *args], env=_env(url), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not (run_dir / "models/iter-1/worker.pid").exists():
        assert first.poll() is None, "the run ended before training started"
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    run_id = run_dir.name
    stored_before = {c.name: c.count() for c in client.list_collections() if run_id in c.name}
    # Memories written before the kill are on the server, under the run's own namespace.
    assert sum(stored_before.values()) > 0, stored_before
    resumed = subprocess.run(
        [*CLI, "resume", str(run_dir)], env=_env(url), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert resumed.returncode in (0, 4), resumed.stdout[-2000:] + resumed.stderr[-2000:]
    stored_after = {c.name: c.count() for c in client.list_collections() if run_id in c.name}
    assert sum(stored_after.values()) > sum(stored_before.values())
    # Nothing went to a local Chroma file: the server is the memory.
    assert not list(run_dir.rglob("chroma.sqlite3"))
    # And a third process can search it.
    search = subprocess.run(
        [*CLI, "memory", "search", str(run_dir), "baseline validation", "--json"],
        env=_env(url), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert search.returncode == 0 and '"kind"' in search.stdout, search.stderr[-1000:]
