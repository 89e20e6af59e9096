"""What memory holds and where: its kinds, and the shared server when one is configured.

Kept apart from the store so the CLI can name them without loading Chroma.
"""

from __future__ import annotations

import os
from typing import Literal

MemoryKind = Literal["papers", "findings", "experiments", "failures", "observations"]
MEMORY_KINDS: tuple[MemoryKind, ...] = (
    "papers",
    "findings",
    "experiments",
    "failures",
    "observations",
)
# A Chroma server every run's memory goes to (a team's shared memory), instead of run folders.
CHROMA_URL_ENV = "POSTLAB_CHROMA_URL"


def shared_server() -> str | None:
    """The Chroma server memories are kept in, when one is configured."""
    return os.environ.get(CHROMA_URL_ENV) or None
