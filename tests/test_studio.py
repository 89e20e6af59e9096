"""`langgraph dev` serves the real graph offline; a run through langgraph-sdk returns outputs."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
LANGGRAPH = Path(sys.executable).with_name("langgraph")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config_outside_the_repo(folder: Path) -> Path:
    """The repo's langgraph.json with its paths made absolute, so the server can run elsewhere."""
    config = json.loads((REPO / "langgraph.json").read_text())
    config["dependencies"] = [str(REPO / dep) for dep in config["dependencies"]]
    config["graphs"] = {name: str(REPO / spec) for name, spec in config["graphs"].items()}
    path = folder / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def server(tmp_path):
    if not LANGGRAPH.exists() and shutil.which("langgraph") is None:
        pytest.fail("langgraph-cli is not installed: `make setup` installs the studio extra")
    port = _free_port()
    env = {**os.environ, "POSTLAB_RUNS_DIR": str(tmp_path / "runs"), "HF_HUB_OFFLINE": "1"}
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed when the server stops
    proc = subprocess.Popen(
        [
            str(LANGGRAPH),
            "dev",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-browser",
            "--no-reload",
            "--config",
            str(_config_outside_the_repo(tmp_path)),
        ],
        # langgraph dev keeps its state (.langgraph_api/) in the working directory: not the repo.
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "langgraph dev did not start in 120 s"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_studio_server_runs_the_lab(server, tiny_model, tmp_path):
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server)
    assistants = client.assistants.search(graph_id="postlab")
    assert assistants, "the postlab graph is not served"
    graph = client.assistants.get_graph(assistants[0]["assistant_id"])
    nodes = {node["id"] for node in graph["nodes"]}
    assert {"supervisor", "librarian", "data_engineer", "trainer", "evaluator"} <= nodes
    thread = client.threads.create()
    output = client.runs.wait(
        thread["thread_id"],
        "postlab",
        input={"run_dir": str(tmp_path / "runs" / "studio-run")},
        context={"task": "answer_format", "model": str(tiny_model), "budget": 3},
    )
    assert output["stop_reason"] == "budget_steps"
    assert output["report_path"].endswith("report.md")
    assert Path(output["summary_path"]).is_file()
    assert "trajectory" not in output
