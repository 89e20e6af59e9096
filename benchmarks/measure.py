"""Shared by the speed benchmarks: timing, percentiles, and writing a result as JSON + markdown."""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

RESULTS = Path(__file__).with_name("results")


@contextlib.contextmanager
def scratch_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary folder for a benchmark's runs, removed afterwards unless `keep`: each holds
    checkpoints of about 0.5 GB, and repeated benchmarks filled this machine's disk."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def timed(action: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of `repeats` calls of action."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return seconds


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    """The median of the values."""
    return statistics.median(values)


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_result(name: str, rows: list[dict], columns: list[str], notes: str, out: Path) -> str:
    """Write out/<name>.json and out/<name>.md; return the markdown table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"rows": rows, "notes": notes}, indent=2))
    lines = [f"| {' | '.join(columns)} |", f"| {' | '.join('---' for _ in columns)} |"]
    for row in rows:
        cells = [row.get(c) for c in columns]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    table = "\n".join(lines)
    (out / f"{name}.md").write_text(f"{table}\n\n{notes}\n")
    return table
