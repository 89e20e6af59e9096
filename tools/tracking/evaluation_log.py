"""Logs a finished run's evaluations to its tracker, in a process of its own."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from postlab.tools.tracking.trackers import write_evaluations


def main(argv: list[str]) -> int:
    """Log the rows in the file argv[0] names (a forked warm process calls this directly)."""
    write_evaluations(json.loads(Path(argv[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
