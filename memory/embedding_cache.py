"""Vectors an embedding model already computed, kept per machine so a text is embedded once."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from pathlib import Path

import numpy as np

from postlab.records.home import postlab_home

# "off" computes every vector afresh (nothing read from or written to the cache).
EMBEDDING_CACHE_ENV = "POSTLAB_EMBEDDING_CACHE"
# A writer holding the cache's lock is waited for this long before the cache is skipped.
_CACHE_TIMEOUT_S = 5.0
# At 384 dimensions about 100 MB: every paper, query and miss of a few hundred runs.
MAX_CACHED_VECTORS = 60_000
# Keys per SQL statement: under SQLite's limit on bound parameters.
_SQL_BATCH = 500


class EmbeddingCache:
    """Vectors a model already computed, by text, in one SQLite file under postlab's home: a text
    seen before (the paper corpus every run indexes, a repeated query) is not embedded again."""

    def __init__(self, path: Path, max_vectors: int = MAX_CACHED_VECTORS) -> None:
        self.path = path
        self.max_vectors = max_vectors

    @classmethod
    def for_model(cls, model_dir: Path) -> EmbeddingCache | None:
        """The cache of the model in `model_dir` (its weights' size and time name it), or None
        when caching is off ($POSTLAB_EMBEDDING_CACHE=off) or the weights are unreadable."""
        if os.environ.get(EMBEDDING_CACHE_ENV, "").lower() == "off":
            return None
        try:
            weights = (model_dir / "model.safetensors").stat()
        except OSError:
            return None
        identity = f"{model_dir.resolve()}:{weights.st_size}:{weights.st_mtime_ns}"
        name = hashlib.sha256(identity.encode()).hexdigest()[:16]
        return cls(postlab_home() / "embeddings" / f"{name}.sqlite")

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=_CACHE_TIMEOUT_S)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)"
        )
        return connection

    def get_many(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The cached vector of each text that has one; an unreadable cache has none."""
        keys = {_text_key(text): text for text in texts}
        ordered = list(keys)
        found: dict[str, np.ndarray] = {}
        try:
            with contextlib.closing(self._connect()) as connection:
                for start in range(0, len(ordered), _SQL_BATCH):
                    chunk = ordered[start : start + _SQL_BATCH]
                    marks = ",".join("?" * len(chunk))
                    rows = connection.execute(
                        f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk
                    )
                    for key, blob in rows:
                        found[keys[key]] = np.frombuffer(blob, dtype="float32").copy()
        except (sqlite3.Error, OSError):
            return {}
        return found

    def put_many(self, vectors: dict[str, np.ndarray]) -> None:
        """Keep these vectors; a cache that cannot be written is skipped, never an error."""
        rows = [
            (_text_key(text), np.asarray(vector, dtype="float32").tobytes())
            for text, vector in vectors.items()
        ]
        with (
            contextlib.suppress(sqlite3.Error, OSError),
            contextlib.closing(self._connect()) as connection,
            connection,
        ):
            connection.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?)", rows)
            # The oldest go first: what recurs (the corpus, queries) is written again when next
            # embedded, and a machine's cache never grows past the bound.
            connection.execute(
                "DELETE FROM vectors WHERE rowid <= (SELECT MAX(rowid) FROM vectors) - ?",
                (self.max_vectors,),
            )


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
