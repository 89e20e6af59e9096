"""Where postlab keeps its machine-wide files: one root that every layer reads (tools for models,
the HTTP cache and rendered help; memory for the library)."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "POSTLAB_HOME"


def postlab_home() -> Path:
    """Root of postlab's machine-wide cache: $POSTLAB_HOME, else $XDG_CACHE_HOME/postlab, else
    ~/.cache/postlab."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "postlab"
