"""A team's shared backends: memories in a real Chroma server and graph checkpoints in a real
PostgreSQL server, carried across a SIGKILL and from one process to another."""

import json
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
import pgserver
import psycopg
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


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL server (pgserver's build) on a private socket; its URL."""
    server = pgserver.get_server(tmp_path_factory.mktemp("postgres"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


def _env(url: str | None = None, checkpoints: str | None = None) -> dict[str, str]:
    env = {**os.environ, "CI": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    env.pop("POSTLAB_CHROMA_URL", None)
    env.pop("POSTLAB_CHECKPOINT_URL", None)
    if url:
        env["POSTLAB_CHROMA_URL"] = url
    if checkpoints:
        env["POSTLAB_CHECKPOINT_URL"] = checkpoints
    return env


def _cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _threads(url: str) -> dict[str, int]:
    """Checkpoints per thread in the PostgreSQL server."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "select thread_id, count(*) from checkpoints group by thread_id"
        ).fetchall()
    return dict(rows)


def test_a_gated_run_checkpointed_in_postgres_is_answered_from_another_process(
    postgres_server, tiny_model, tmp_path
):
    env = _env(checkpoints=postgres_server)
    run_dir = tmp_path / "gated"
    paused = _cli("run", "--task", "addition_2d", "--model", str(tiny_model),
                  "--run-dir", str(run_dir), "--approve", *SMALL, env=env)  # fmt: skip
    assert paused.returncode == 6, paused.stdout[-2000:] + paused.stderr[-2000:]
    thread = (run_dir / "thread-id").read_text().strip()
    saved = _threads(postgres_server).get(thread, 0)
    assert saved > 0
    # The graph's state lives in the server only: no checkpoint file in the run folder.
    assert not list(tmp_path.rglob("checkpoints.sqlite"))
    rejected = _cli("resume", str(run_dir), "--reject", "--note", "too costly", env=env)
    assert rejected.returncode == 5, rejected.stdout[-2000:] + rejected.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "rejected"
    assert summary["gate_decisions"][0]["note"] == "too costly"
    assert _threads(postgres_server)[thread] > saved


def test_run_folders_named_alike_get_threads_of_their_own(monkeypatch, tmp_path):
    from postlab.memory.checkpoints import has_checkpoints, thread_id

    monkeypatch.setenv("POSTLAB_CHECKPOINT_URL", "postgresql://lab@127.0.0.1:1/runs")
    first, second = tmp_path / "a" / "gated", tmp_path / "b" / "gated"
    assert not has_checkpoints(first)
    ids = [thread_id(first), thread_id(second)]
    assert ids[0] != ids[1] and all(i.startswith("gated-") for i in ids)
    # The folder keeps its thread: a resume from any machine finds the same one.
    assert thread_id(first) == ids[0] and has_checkpoints(first)
    monkeypatch.delenv("POSTLAB_CHECKPOINT_URL")
    assert thread_id(first) == "gated"  # a folder's own SQLite file needs no suffix


def test_an_unreachable_checkpoint_server_is_a_clear_error_before_anything_runs(
    tiny_model, tmp_path
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    env = _env(checkpoints=f"postgresql://lab@127.0.0.1:{port}/runs")
    run_dir = tmp_path / "nowhere"
    failed = _cli("run", "--task", "addition_2d", "--model", str(tiny_model),
                  "--run-dir", str(run_dir), *SMALL, env=env, timeout=120)  # fmt: skip
    assert failed.returncode == 2
    assert "cannot reach the checkpoint server in POSTLAB_CHECKPOINT_URL" in failed.stderr
    assert not run_dir.exists()


@pytest.mark.slow
def test_a_run_on_shared_servers_survives_sigkill_and_resumes_from_another_process(
    chroma_server, postgres_server, tiny_model, tmp_path
):
    url, client = chroma_server
    env = _env(url, checkpoints=postgres_server)
    run_dir = tmp_path / "shared-run"
    args = ["run", "--task", "addition_2d", "--model", str(tiny_model), "--run-dir", str(run_dir),
            *SMALL]  # fmt: skip
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
    first = subprocess.Popen([*CLI, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
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
        [*CLI, "resume", str(run_dir)], env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert resumed.returncode in (0, 4), resumed.stdout[-2000:] + resumed.stderr[-2000:]
    stored_after = {c.name: c.count() for c in client.list_collections() if run_id in c.name}
    assert sum(stored_after.values()) > sum(stored_before.values())
    # Nothing went to local files: the servers are the memory and the run's state.
    assert not list(run_dir.rglob("chroma.sqlite3"))
    assert not list(run_dir.rglob("checkpoints.sqlite"))
    thread = (run_dir / "thread-id").read_text().strip()
    assert _threads(postgres_server)[thread] > 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [i["status"] for i in summary["iterations"]][:1] == ["evaluated"]
    # And a third process can search it.
    search = subprocess.run(
        [*CLI, "memory", "search", str(run_dir), "baseline validation", "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert search.returncode == 0 and '"kind"' in search.stdout, search.stderr[-1000:]
