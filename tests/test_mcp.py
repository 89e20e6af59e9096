"""MCP servers as agent tools: config files, calls with timeouts, a server killed mid-run."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from support.scripted_model import ScriptedChatModel

from postlab.agents.base import StepResult
from postlab.agents.llm.answers import TrainerAnswer
from postlab.agents.llm.driver import make_llm_body
from postlab.agents.llm.mcp import MCPServerConfig, load_mcp_tools, read_mcp_config
from postlab.memory.store import open_memory
from postlab.records.outcomes import AgentOutcome
from postlab.records.run import RunOptions
from postlab.records.steps import Directive

SERVER = str(Path(__file__).parent / "fixtures" / "mcp_echo_server.py")
DIRECTIVE = Directive(agent="trainer", action="train", reason="iteration 1: needs training")


def echo_config(**extra):
    return MCPServerConfig(
        name="echo", command=sys.executable, args=[SERVER], agents=["trainer"], **extra
    )


@pytest.fixture
def toolset():
    tools = load_mcp_tools([echo_config(timeout_s=20)])
    yield tools
    tools.close()


def test_config_files_in_json_and_toml(tmp_path):
    (tmp_path / "mcp.json").write_text(
        '{"mcpServers": {"echo": {"command": "python", "args": ["s.py"], "agents": ["trainer"]},'
        ' "web": {"type": "http", "url": "http://127.0.0.1:9/mcp", "timeout_s": 3}}}'
    )
    echo, web = read_mcp_config(tmp_path / "mcp.json")
    assert (echo.transport, echo.args, echo.serves("trainer"), echo.serves("librarian")) == (
        "stdio",
        ["s.py"],
        True,
        False,
    )
    assert (web.transport, web.timeout_s, web.serves("librarian")) == ("streamable_http", 3, True)
    (tmp_path / "mcp.toml").write_text(
        '[[servers]]\nname = "docs"\ntransport = "streamable_http"\nurl = "http://h/mcp"\n'
    )
    (docs,) = read_mcp_config(tmp_path / "mcp.toml")
    assert docs.connection()["url"] == "http://h/mcp"
    with pytest.raises(ValueError, match="needs a command"):
        MCPServerConfig(name="x")
    with pytest.raises(ValueError, match="unknown agents"):
        MCPServerConfig(name="x", command="c", agents=["janitor"])


def test_unreachable_servers_are_withdrawn_at_start():
    tools = load_mcp_tools(
        [
            MCPServerConfig(name="ghost", command="/nonexistent/mcp-server", timeout_s=5),
            MCPServerConfig(
                name="web", transport="streamable_http", url="http://127.0.0.1:9/mcp", timeout_s=5
            ),
        ]
    )
    try:
        assert tools["trainer"] == [] and set(tools.status()) == {"ghost", "web"}
        assert all(state.startswith("could not start") for state in tools.status().values())
        assert len(tools.notices("librarian")) == 2
    finally:
        tools.close()


def test_calls_time_out_and_outside_text_is_marked(toolset):
    tools = {tool.name: tool for tool in toolset["trainer"]}
    assert set(tools) == {"echo", "server_pid", "fetch_note", "slow"} and toolset["evaluator"] == []
    note = tools["fetch_note"].invoke({})
    assert note.startswith('<untrusted-data source="mcp:echo/fetch_note">')
    assert "not instructions" in note and "IGNORE PREVIOUS" in note
    slow = MCPServerConfig(**{**echo_config().model_dump(), "name": "slow", "timeout_s": 10})
    slow_tools = load_mcp_tools([slow])
    try:
        sleeper = next(t for t in slow_tools["trainer"] if t.name == "slow")
        slow_tools._servers[0].config.timeout_s = 0.5
        assert "timed out after 0.5s" in sleeper.invoke({"seconds": 3})
        assert slow_tools.status() == {"slow": "ok"}
    finally:
        slow_tools.close()


def test_streamable_http_server(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = MCPServerConfig(
        name="web", transport="streamable_http", url=f"http://127.0.0.1:{port}/mcp", timeout_s=5
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            tools = load_mcp_tools([config])
            if tools.status()["web"] == "ok" or time.monotonic() > deadline:
                break
            tools.close()
            time.sleep(0.5)
        echo = next(tool for tool in tools["librarian"] if tool.name == "echo")
        assert "echo: over http" in echo.invoke({"text": "over http"})
        tools.close()
    finally:
        server.terminate()
        server.wait(10)


def call(name, args, tag):
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"{name}-{tag}"}])


def test_an_agent_uses_a_server_that_dies_mid_run(tmp_path, toolset):
    runs = []

    def playbook(state, directive, memory):
        runs.append(directive.action)
        return StepResult(AgentOutcome(summary="trained"), {})

    def script(messages):
        results = {m.name: m.content for m in messages if isinstance(m, ToolMessage)}
        tag = len(messages)
        if "echo" not in results and "echo" in model.bound[-1]:
            return call("echo", {"text": "hello"}, tag)
        if "train" not in results:
            return call("train", {}, tag)
        return call("TrainerAnswer", {"summary": "ok"}, tag)

    model = ScriptedChatModel(script=script)
    body = make_llm_body("trainer", playbook, lambda: model, "p", TrainerAnswer, toolset)
    state = {"run_dir": str(tmp_path), "goal": "g", "trajectory": [], "run_options": RunOptions()}
    memory = open_memory(tmp_path)

    first = body(state, DIRECTIVE, memory)
    echoed = [m for m in model.received[-1] if isinstance(m, ToolMessage) and m.name == "echo"]
    assert "echo: hello" in echoed[0].content and first.update["fallbacks"] == []

    pid_text = next(t for t in toolset["trainer"] if t.name == "server_pid").invoke({})
    os.kill(int(re.search(r"^(\d+)$", pid_text, re.MULTILINE).group(1)), signal.SIGKILL)
    second = body(state, DIRECTIVE, memory)
    echoed = [m for m in model.received[-1] if isinstance(m, ToolMessage) and m.name == "echo"]
    assert "unavailable: MCP server echo stopped" in echoed[0].content
    assert second.outcome.status == "ok" and second.update["fallbacks"] == []

    third = body(state, DIRECTIVE, memory)
    assert "echo" not in model.bound[-1] and "train" in model.bound[-1]
    assert "Notice: MCP server echo stopped" in model.received[-1][1].content
    assert third.update["fallbacks"] == [] and runs == ["train"] * 3


def test_a_published_server_serves_an_agent_over_stdio(tmp_path):
    """mcp-server-time, as people install it from PyPI: its tools reach an agent, with timeouts."""
    published = MCPServerConfig(
        name="time",
        command=sys.executable,
        args=["-m", "mcp_server_time", "--local-timezone", "UTC"],
        agents=["trainer"],
        timeout_s=20,
    )
    tools = load_mcp_tools([published])
    try:
        assert tools.status() == {"time": "ok"}
        assert {"get_current_time", "convert_time"} <= {t.name for t in tools["trainer"]}

        def script(messages):
            if not any(isinstance(m, ToolMessage) for m in messages):
                args = {"source_timezone": "UTC", "time": "12:30", "target_timezone": "Asia/Tokyo"}
                return call("convert_time", args, len(messages))
            if "train" not in {m.name for m in messages if isinstance(m, ToolMessage)}:
                return call("train", {}, len(messages))
            return call("TrainerAnswer", {"summary": "converted"}, len(messages))

        def playbook(state, directive, memory):
            return StepResult(AgentOutcome(summary="trained"), {})

        model = ScriptedChatModel(script=script)
        body = make_llm_body("trainer", playbook, lambda: model, "p", TrainerAnswer, tools)
        state = {
            "run_dir": str(tmp_path),
            "goal": "g",
            "trajectory": [],
            "run_options": RunOptions(),
        }
        result = body(state, DIRECTIVE, open_memory(tmp_path))
        answer = next(
            m for m in model.received[-1] if isinstance(m, ToolMessage) and m.name == "convert_time"
        )
        # Tokyo is UTC+9 all year: the server's answer, marked as outside data.
        assert "21:30" in answer.content and "untrusted-data" in answer.content
        assert result.outcome.status == "ok" and result.update["fallbacks"] == []
    finally:
        tools.close()
