"""Durable graph checkpoints: LangGraph's SQLite saver in the run directory, or a team's
PostgreSQL server when one is configured (runs several machines resume or watch)."""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel

from postlab import records

CHECKPOINT_FILE = "checkpoints.sqlite"
# A PostgreSQL server every run's checkpoints go to, instead of a file in each run folder.
CHECKPOINT_URL_ENV = "POSTLAB_CHECKPOINT_URL"
# On a shared server a run's thread id must be unique among every run it holds (two machines
# may each start a run folder named alike); it is kept in the run folder, which travels with it.
THREAD_FILE = "thread-id"


class CheckpointerError(RuntimeError):
    """The configured checkpoint store cannot be opened."""


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


def shared_checkpoints() -> str | None:
    """The PostgreSQL server checkpoints are kept in, when one is configured."""
    return os.environ.get(CHECKPOINT_URL_ENV) or None


def thread_id(run_dir: str | Path) -> str:
    """The run's thread in the checkpoint store (its folder name unless the store is shared)."""
    folder = Path(run_dir)
    if shared_checkpoints() is None:
        return folder.name
    marker = folder / THREAD_FILE
    if marker.is_file():
        return marker.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True)
    thread = f"{folder.name}-{uuid.uuid4().hex[:12]}"
    marker.write_text(thread + "\n")
    return thread


def _postgres(url: str) -> BaseCheckpointSaver:
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection, OperationalError
        from psycopg.rows import dict_row
    except ImportError as error:  # an optional extra: only a team's set-up installs it
        raise CheckpointerError(
            f"{CHECKPOINT_URL_ENV} is set but the PostgreSQL checkpointer is not installed: "
            "pip install 'postlab[team]'"
        ) from error
    try:
        # Autocommit and no prepared statements: what PostgresSaver's own set-up expects.
        connection = Connection.connect(
            url, autocommit=True, prepare_threshold=0, row_factory=dict_row, connect_timeout=10
        )
    except OperationalError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointerError(
            f"cannot reach the checkpoint server in {CHECKPOINT_URL_ENV}: {first}"
        ) from error
    saver = PostgresSaver(connection, serde=state_serializer())
    saver.setup()
    return saver


@contextlib.contextmanager
def open_checkpointer(run_dir: str | Path) -> Iterator[BaseCheckpointSaver]:
    """The run's checkpointer (the shared PostgreSQL server, else a SQLite file in the run),
    its connection closed when the block ends: a host running many runs keeps no descriptor
    per run, and SQLite folds its write-ahead log back into the file."""
    if url := shared_checkpoints():
        saver = _postgres(url)
    else:
        path = Path(run_dir) / CHECKPOINT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(path), check_same_thread=False)
        saver = SqliteSaver(connection, serde=state_serializer())
    try:
        yield saver
    finally:
        saver.conn.close()


def has_checkpoints(run_dir: str | Path) -> bool:
    """Whether the run folder belongs to a run with a checkpoint thread (without creating one)."""
    marker = CHECKPOINT_FILE if shared_checkpoints() is None else THREAD_FILE
    return (Path(run_dir) / marker).is_file()


def check_checkpoint_store() -> None:
    """Fail now, with CheckpointerError, when the configured shared store cannot be used."""
    if url := shared_checkpoints():
        _postgres(url).conn.close()
