"""What a run needs to be reproduced: package versions and the source revision of postlab."""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("postlab", "torch", "transformers", "trl", "peft", "datasets", "langgraph", "chromadb")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run's numbers depend on."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _git(*args: str) -> str:
    here = Path(__file__).resolve().parent
    done = subprocess.run(
        ["git", *args], cwd=here, capture_output=True, text=True, timeout=5, check=True
    )
    return done.stdout.strip()


def source_revision() -> str | None:
    """The git commit postlab runs from (with `+dirty` for local changes), when it is a checkout."""
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit
