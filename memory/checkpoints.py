"""Durable graph checkpoints: LangGraph's SQLite saver in the run directory."""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3
from pathlib import Path

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel

from postlab import records

CHECKPOINT_FILE = "checkpoints.sqlite"


def state_serializer() -> JsonPlusSerializer:
    """A serializer that rebuilds postlab's state records and refuses other classes."""
    allowed: list[tuple[str, str]] = []
    # State carries records only, so only classes of the records package may be rebuilt.
    for info in pkgutil.iter_modules(records.__path__, prefix=f"{records.__name__}."):
        module_name = info.name
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            ours = isinstance(value, type) and getattr(value, "__module__", None) == module_name
            if ours and (issubclass(value, BaseModel) or name == "StopReason"):
                allowed.append((module_name, name))
    return JsonPlusSerializer(allowed_msgpack_modules=allowed)


def open_checkpointer(run_dir: str | Path) -> SqliteSaver:
    """The run's SQLite checkpointer (created on first use)."""
    path = Path(run_dir) / CHECKPOINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False)
    return SqliteSaver(connection, serde=state_serializer())
