"""MCP servers as agent tools: persistent sessions, a timeout per call, dead servers withdrawn."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
import tomllib
from pathlib import Path
from typing import Any, Literal

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field, model_validator

from postlab.agents.llm.untrusted import untrusted
from postlab.records.run import AGENTS

AGENT_NAMES = (*AGENTS, "supervisor")


class MCPServerConfig(BaseModel):
    """One MCP server: how to reach it, which agents get its tools, and its call timeout."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    transport: Literal["stdio", "streamable_http"] = "stdio"
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    agents: list[str] = Field(default_factory=lambda: ["*"])
    timeout_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _reachable(self) -> MCPServerConfig:
        if self.transport == "stdio" and not self.command:
            raise ValueError(f"MCP server {self.name}: stdio needs a command")
        if self.transport == "streamable_http" and not self.url:
            raise ValueError(f"MCP server {self.name}: streamable_http needs a url")
        unknown = [a for a in self.agents if a != "*" and a not in AGENT_NAMES]
        if unknown:
            raise ValueError(f"MCP server {self.name}: unknown agents {unknown}")
        return self

    def serves(self, agent: str) -> bool:
        """Whether this server's tools go to `agent`."""
        return "*" in self.agents or agent in self.agents

    def connection(self) -> dict[str, Any]:
        """The langchain-mcp-adapters connection for this server."""
        if self.transport == "stdio":
            return {
                "transport": "stdio",
                "command": self.command,
                "args": self.args,
                "env": self.env,
                "cwd": self.cwd,
            }
        return {
            "transport": "streamable_http",
            "url": self.url,
            "headers": self.headers,
            "timeout": self.timeout_s,
        }


def read_mcp_config(path: str | Path) -> list[MCPServerConfig]:
    """Servers from a JSON or TOML file: a list, or `servers`/`mcpServers` as list or by name."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    raw: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    if isinstance(raw, dict):
        raw = raw.get("servers", raw.get("mcpServers", []))
    if isinstance(raw, dict):
        raw = [{"name": name, **entry} for name, entry in raw.items()]
    servers = []
    for entry in raw:
        entry = dict(entry)
        transport = str(entry.pop("type", entry.get("transport", "stdio")))
        entry["transport"] = "stdio" if transport == "stdio" else "streamable_http"
        if "url" in entry and "command" not in entry and transport == "stdio":
            entry["transport"] = "streamable_http"
        servers.append(MCPServerConfig.model_validate(entry))
    return servers


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            block.get("text", json.dumps(block)) if isinstance(block, dict) else str(block)
            for block in content
        )
    return json.dumps(content, default=str)


class _Server:
    def __init__(self, config: MCPServerConfig) -> None:
        self.config = config
        self.tools: list[BaseTool] = []
        self.dead: str | None = None
        self.stop: asyncio.Event | None = None
        self.task: asyncio.Task | None = None
        self.timeouts = 0


class MCPToolset:
    """Live MCP sessions on a background loop; tools per agent, withdrawn when a server dies."""

    def __init__(self, configs: list[MCPServerConfig]) -> None:
        self._servers = [_Server(config) for config in configs]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="postlab-mcp", daemon=True
        )
        self._thread.start()
        for server in self._servers:
            future = asyncio.run_coroutine_threadsafe(self._connect(server), self._loop)
            try:
                future.result(timeout=server.config.timeout_s)
            except Exception as error:  # noqa: BLE001 - a server that cannot start is withdrawn
                future.cancel()
                server.dead = f"could not start: {type(error).__name__}: {error}"

    async def _connect(self, server: _Server) -> None:
        ready: asyncio.Future = self._loop.create_future()
        server.task = asyncio.ensure_future(self._hold(server, ready))
        try:
            await ready
        except asyncio.CancelledError:
            server.task.cancel()
            raise

    async def _hold(self, server: _Server, ready: asyncio.Future) -> None:
        # The session's context must open and close in one task: this task holds it open.
        from langchain_mcp_adapters.client import MultiServerMCPClient
        from langchain_mcp_adapters.tools import load_mcp_tools as session_tools

        name = server.config.name
        client = MultiServerMCPClient({name: server.config.connection()})
        try:
            async with client.session(name) as session:
                raw = await session_tools(session, server_name=name)
                server.tools = [self._wrap(server, tool) for tool in raw]
                server.stop = asyncio.Event()
                ready.set_result(None)
                await server.stop.wait()
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - recorded, never raised
            if not ready.done():
                ready.set_exception(RuntimeError(str(error)))
            elif server.dead is None:
                server.dead = f"connection lost: {type(error).__name__}"

    def _wrap(self, server: _Server, tool: BaseTool) -> BaseTool:
        def call(**kwargs: Any) -> str:
            return self._call(server, tool, kwargs)

        return StructuredTool(
            name=tool.name,
            description=f"[MCP server {server.config.name}] {tool.description}",
            args_schema=tool.args_schema,
            func=call,
            metadata={"mcp_server": server.config.name, "untrusted": True},
        )

    def _call(self, server: _Server, tool: BaseTool, kwargs: dict[str, Any]) -> str:
        name, timeout = server.config.name, server.config.timeout_s
        if server.dead:
            return f"tool {tool.name} unavailable: MCP server {name} stopped: " + untrusted(
                server.dead, f"mcp:{name}"
            )
        future = asyncio.run_coroutine_threadsafe(tool.ainvoke(kwargs), self._loop)
        try:
            content = future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            server.timeouts += 1
            # One slow answer is the tool's problem; two in a row mean the server is stuck.
            if server.timeouts >= 2:
                server.dead = f"{server.timeouts} calls timed out"
            return f"tool {tool.name} timed out after {timeout:g}s (MCP server {name})"
        except Exception as error:  # noqa: BLE001 - transport failures mean the server is gone
            server.dead = f"{type(error).__name__}: {error}".strip(": ")
            return f"tool {tool.name} unavailable: MCP server {name} stopped: " + untrusted(
                server.dead, f"mcp:{name}"
            )
        server.timeouts = 0
        return untrusted(_text(content), f"mcp:{name}/{tool.name}")

    def tools(self, agent: str) -> list[BaseTool]:
        """The live tools `agent` may use now."""
        return [
            tool
            for server in self._servers
            if server.dead is None and server.config.serves(agent)
            for tool in server.tools
        ]

    def notices(self, agent: str) -> list[str]:
        """What the agent must be told: servers of its tools that stopped, and their tools."""
        return [
            f"MCP server {server.config.name} stopped ({server.dead}); its tools "
            f"({', '.join(t.name for t in server.tools) or 'none'}) are withdrawn."
            for server in self._servers
            if server.dead is not None and server.config.serves(agent)
        ]

    def status(self) -> dict[str, str]:
        """Each server's state: "ok" or why it is withdrawn."""
        return {server.config.name: server.dead or "ok" for server in self._servers}

    def __getitem__(self, agent: str) -> list[BaseTool]:
        return self.tools(agent)

    def as_dict(self) -> dict[str, list[BaseTool]]:
        """Tools per agent as they stand now."""
        return {agent: self.tools(agent) for agent in AGENT_NAMES}

    def close(self, timeout_s: float = 5.0) -> None:
        """Close every session and stop the background loop."""
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            for server in self._servers:
                if server.stop is not None:
                    server.stop.set()
            tasks = [s.task for s in self._servers if s.task is not None]
            if tasks:
                await asyncio.wait(tasks, timeout=timeout_s)

        # Closing is best effort: a server that already died has nothing left to close.
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout_s + 1)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)


def load_mcp_tools(configs: list[MCPServerConfig]) -> MCPToolset:
    """Start every configured server; `toolset[agent]` gives that agent's live tools."""
    return MCPToolset(configs)
