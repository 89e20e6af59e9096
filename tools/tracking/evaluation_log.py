"""Logs a finished run's evaluations to its tracker, in a process of its own."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from postlab.tools.tracking.trackers import write_evaluations

if __name__ == "__main__":
    write_evaluations(json.loads(Path(sys.argv[1]).read_text()))
