"""Run a snippet in a fresh interpreter: for what a process does once (imports, exit, the heap)."""

from __future__ import annotations

import subprocess
import sys


def run_python(code: str, env: dict[str, str] | None = None) -> list[str]:
    """The words `code` printed in a new Python process (which must exit 0)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()
