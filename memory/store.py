"""The lab's long-term memory: Chroma collections per kind of knowledge, nothing summarised away."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.config import Settings
from pydantic import BaseModel, Field

from postlab.memory.embeddings import default_embedding_function
from postlab.memory.kinds import MEMORY_KINDS, MemoryKind, shared_server

Scalar = str | int | float | bool


class MemoryHit(BaseModel):
    """One retrieved memory with its distance to the query (smaller is closer)."""

    id: str
    kind: MemoryKind
    text: str
    metadata: dict[str, Scalar] = Field(default_factory=dict)
    distance: float = 0.0


def _clean_metadata(metadata: dict[str, Any] | None) -> dict[str, Scalar]:
    # Chroma stores only scalars and rejects None: encode the rest as JSON, drop the empty.
    clean: dict[str, Scalar] = {}
    for key, value in (metadata or {}).items():
        if value is None:
            continue
        clean[key] = value if isinstance(value, str | int | float | bool) else json.dumps(value)
    return clean


def memory_id(kind: str, text: str) -> str:
    """Content-addressed id, so storing the same fact twice keeps one copy."""
    return kind + "-" + hashlib.sha1(text.encode()).hexdigest()[:16]


class LabMemory:
    """Chroma-backed memory: an embedded PersistentClient, or a server when configured."""

    def __init__(
        self,
        path: Path | None = None,
        namespace: str = "",
        client: Any | None = None,
        embedding_function: Any | None = None,
    ) -> None:
        self.namespace = namespace
        self.client = client or _make_client(path)
        self.embedding_function = embedding_function or default_embedding_function()
        self._collections: dict[str, Any] = {}
        self._stamp: dict[str, Any] = {}

    @contextlib.contextmanager
    def stamped(self, **metadata: Any) -> Iterator[LabMemory]:
        """Memories added inside carry `metadata` too (the agent step that wrote them)."""
        previous = self._stamp
        self._stamp = {**previous, **metadata}
        try:
            yield self
        finally:
            self._stamp = previous

    def _collection(self, kind: MemoryKind):
        if kind not in MEMORY_KINDS:
            raise ValueError(f"unknown memory kind {kind!r}; expected one of {MEMORY_KINDS}")
        if kind not in self._collections:
            name = f"{self.namespace}-{kind}" if self.namespace else kind
            self._collections[kind] = self.client.get_or_create_collection(
                name,
                embedding_function=self.embedding_function,
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._collections[kind]

    def add(
        self,
        kind: MemoryKind,
        text: str,
        metadata: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> str:
        """Store one text (upsert by id) and return its id."""
        return self.add_many(kind, [text], [metadata or {}], [id] if id else None)[0]

    def add_many(
        self,
        kind: MemoryKind,
        texts: list[str],
        metadatas: list[dict[str, Any]] | None = None,
        ids: list[str] | None = None,
    ) -> list[str]:
        """Store many texts at once (one embedding batch); returns their ids."""
        if not texts:
            return []
        ids = ids or [memory_id(kind, text) for text in texts]
        metadatas = metadatas or [{} for _ in texts]
        clean = [_clean_metadata({**self._stamp, **m, "kind": kind}) for m in metadatas]
        self._collection(kind).upsert(ids=ids, documents=texts, metadatas=clean)
        return ids

    def search(
        self,
        query: str,
        kinds: tuple[MemoryKind, ...] | list[MemoryKind] = MEMORY_KINDS,
        k: int = 5,
        where: dict[str, Any] | None = None,
    ) -> list[MemoryHit]:
        """The k memories closest in meaning to `query`, across the given kinds."""
        hits: list[MemoryHit] = []
        if k <= 0:
            return hits
        # One embedding of the query serves every kind (it is most of a search's cost). Chroma
        # answers fewer than k (or none) where a kind holds fewer, so no count() is asked first:
        # a count costs as much as the query itself (benchmarks/memory_scale.py).
        vector = self.embedding_function([query])[0]
        for kind in kinds:
            result = self._collection(kind).query(
                query_embeddings=[vector], n_results=k, where=where or None
            )
            for id_, text, meta, distance in zip(
                result["ids"][0],
                result["documents"][0],
                result["metadatas"][0],
                result["distances"][0],
                strict=True,
            ):
                hits.append(
                    MemoryHit(id=id_, kind=kind, text=text, metadata=meta or {}, distance=distance)
                )
        hits.sort(key=lambda hit: hit.distance)
        return hits[:k]

    def get(
        self, kind: MemoryKind, ids: list[str] | None = None, where: dict[str, Any] | None = None
    ) -> list[MemoryHit]:
        """Memories of one kind: all, by id, or matching a metadata filter."""
        result = self._collection(kind).get(ids=ids, where=where or None)
        return [
            MemoryHit(id=id_, kind=kind, text=text, metadata=meta or {})
            for id_, text, meta in zip(
                result["ids"], result["documents"], result["metadatas"], strict=True
            )
        ]

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of texts in memory's embedding space (rows; cosine = dot product)."""
        if not texts:
            return np.zeros((0, 0), dtype="float32")
        vectors = np.asarray(self.embedding_function(list(texts)), dtype="float32")
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def nearest(self, queries: list[str], candidates: list[str], k: int) -> list[list[int]]:
        """For each query, the indices of the k candidates closest in memory's embedding space."""
        if not queries or not candidates:
            return [[] for _ in queries]
        unit = self.embed(list(queries) + list(candidates))
        similarity = unit[: len(queries)] @ unit[len(queries) :].T
        order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        return [[int(index) for index in row] for row in order]

    def count(self, kind: MemoryKind | None = None) -> int:
        """Number of memories of one kind, or of all kinds."""
        kinds = [kind] if kind else list(MEMORY_KINDS)
        return sum(self._collection(k).count() for k in kinds)


def _make_client(path: Path | None):
    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    url = shared_server()
    if url:
        host, _, port = url.split("://", 1)[-1].partition(":")
        return chromadb.HttpClient(host=host, port=int(port or 8000), settings=settings)
    if path is None:
        return chromadb.EphemeralClient(settings=settings)
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


_open_memories: dict[str, LabMemory] = {}
_open_lock = threading.Lock()


def open_memory(run_dir: str | Path) -> LabMemory:
    """The memory of a run directory, opened once per process and shared by every node."""
    key = str(Path(run_dir).resolve())
    with _open_lock:
        if key not in _open_memories:
            run_id = Path(key).name
            # On a shared server each run's collections carry its id.
            namespace = run_id if shared_server() else ""
            _open_memories[key] = LabMemory(Path(key) / "memory", namespace=namespace)
        return _open_memories[key]


def close_memory(run_dir: str | Path) -> None:
    """Release a run's memory opened in this process (its Chroma files); a later open reopens it."""
    with _open_lock:
        memory = _open_memories.pop(str(Path(run_dir).resolve()), None)
    close = getattr(memory.client, "close", None) if memory is not None else None
    if close is not None:
        # A client that cannot close cleanly holds its files until the process ends, as before.
        with contextlib.suppress(Exception):
            close()
