"""Tokenizers the warm launcher loads before it forks workers, found again by their files.

Loading SmolLM2's tokenizer takes a forked worker 0.15 s, and every iteration's checkpoint
carries the same tokenizer files as the base model (the worker saves them unchanged). A worker
forked from a launcher that loaded them gets its own copy of the loaded tokenizer for nothing
(the fork copies a page only when one side writes it) and takes it in 0.01 s.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

# The files a tokenizer is loaded from (whichever of them a folder has).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)
_CONFIG_FILE = "tokenizer_config.json"
# Loaded before a fork, by tokenizer_key; a process hands each out once (a worker may change it).
_tokenizers: dict[str, Any] = {}


def tokenizer_key(folder: str | Path) -> str | None:
    """A digest of the tokenizer files in `folder`, or None where they do not settle which
    tokenizer loads (no class named: transformers would ask the model's config, which differs
    from checkpoint to checkpoint)."""
    folder = Path(folder)
    try:
        config = json.loads((folder / _CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or not config.get("tokenizer_class") or "auto_map" in config:
        return None
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        try:
            content = (folder / name).read_bytes()
        except OSError:
            continue
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def preload_tokenizer(folder: str | Path) -> bool:
    """Load the tokenizer in `folder` for the workers this process will fork; whether it was
    (the process itself must not use it: each forked worker changes its own copy)."""
    key = tokenizer_key(folder)
    if key is None:
        return False
    if key not in _tokenizers:
        from transformers import AutoTokenizer

        _tokenizers[key] = AutoTokenizer.from_pretrained(str(folder))
    return True


def load_tokenizer(folder: str | Path) -> Any:
    """The tokenizer in `folder`: one preloaded from the same files (handed out once), or
    loaded now."""
    key = tokenizer_key(folder)
    preloaded = _tokenizers.pop(key, None) if key is not None else None
    if preloaded is not None:
        return preloaded
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))
