"""Where postlab keeps its machine-wide files (converted models, HTTP cache, rendered help)."""

from __future__ import annotations

import os
from pathlib import Path


def postlab_home() -> Path:
    """Root of postlab's machine-wide cache (converted models, HTTP cache, rendered help)."""
    return Path(os.environ.get("POSTLAB_HOME", Path.home() / ".cache" / "postlab"))
