"""Training failures as data: classification by exit code and log text, normalised messages."""

from __future__ import annotations

import contextlib
import json
import re
import signal
from typing import Any

from postlab.records.artifacts import FailureInfo

# Worker exit codes: the parent classifies failures by these first, by log text second.
EXIT_OK = 0
EXIT_CRASH = 1
EXIT_BAD_CONFIG = 3
EXIT_NAN = 4
EXIT_OOM = 5
# Lines of worker output that start with this marker carry one JSON event each.
EVENT_MARKER = "@@postlab "
# The worker reports how it ended in WORKER_REPORT_FILE; only the parent writes RESULT_FILE, a
# TrainingResult, so result.json has one writer and one schema.
WORKER_REPORT_FILE = "worker.json"
RESULT_FILE = "result.json"
# The worker's output as it ran, and the spec it was given, in each training folder.
LOG_FILE = "train.log"
SPEC_FILE = "spec.json"


def parse_event(line: str) -> dict | None:
    """The JSON event a worker output line carries, or None for any other line."""
    if not line.startswith(EVENT_MARKER):
        return None
    try:
        event = json.loads(line[len(EVENT_MARKER) :])
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`")
_PATH = re.compile(r"(?:[A-Za-z]:\\|~|\.{1,2})?(?:[/\\][^\s'\",:;()\[\]{}]+)+")
_HEX = re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{8,}\b|\b[0-9a-f]{4,}(?:-[0-9a-f]{4,}){2,}\b")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def normalize_error(text: str) -> str:
    """Reduce error text to its shape: no numbers, hex ids, paths or quoted values; lowercase."""
    text = text.lower()
    text = _QUOTED.sub("<str>", text)
    text = _PATH.sub("<path>", text)
    text = _HEX.sub("<hex>", text)
    text = _NUMBER.sub("<n>", text)
    return " ".join(text.split())


_OOM_CLUES = (
    "out of memory",
    "memoryerror",
    "defaultcpuallocator: can't allocate",
    "cublas_status_alloc_failed",
    "cannot allocate memory",
)
# A write the disk refused (ENOSPC, EDQUOT): retrying cannot help until room is made.
_DISK_CLUES = ("no space left on device", "disk quota exceeded")
_NAN_CLUE = re.compile(
    r"\b(loss|grad_norm)['\"]?\s*[:=]\s*['\"]?(nan|-?inf(inity)?)\b|\bdiverged\b"
)
_VALIDATION_CLUE = re.compile(r"validationerror|validation errors? for")
_SETUP_ERROR_CLUE = re.compile(
    r"^(?:[\w.]+\.)?(valueerror|typeerror|keyerror|filenotfounderror|configerror)\b"
)
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception)\b:?")


def _events_in(lines: list[str]) -> list[dict[str, Any]]:
    events = []
    for line in lines:
        if line.startswith(EVENT_MARKER):
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(line[len(EVENT_MARKER) :])
                if isinstance(event, dict):
                    events.append(event)
    return events


def _last_lines(lines: list[str], n: int = 20, limit: int = 3000) -> str:
    text = "\n".join(line for line in lines if line.strip())
    kept = "\n".join(text.splitlines()[-n:])
    return kept[-limit:]


def classify_failure(returncode: int | None, log_tail: str, timed_out: bool) -> FailureInfo:
    """Classify a failed run from its exit code, the end of its log and whether it timed out."""
    lines = log_tail.splitlines()
    plain = [line for line in lines if not line.startswith(EVENT_MARKER)]
    message = _last_lines(plain)
    errors = [e for e in _events_in(lines) if e.get("event") == "error"]
    worker_error = errors[-1] if errors else None
    # The exception line says what ended the run; wandb and atexit chatter may follow it.
    exception_line = next((ln for ln in reversed(plain) if _EXCEPTION_LINE.match(ln.strip())), None)
    key_line = exception_line or next(
        (line for line in reversed(plain) if line.strip()),
        f"worker exited with code {returncode}",
    )
    if worker_error and worker_error.get("message"):
        key_line = str(worker_error["message"]).strip().splitlines()[-1]
        message = _last_lines(plain + [str(worker_error["message"])])

    def info(kind: str, key: str | None = None) -> FailureInfo:
        return FailureInfo(kind=kind, message=message, normalized=normalize_error(key or key_line))

    if timed_out:
        return FailureInfo(
            kind="timeout", message=message or "training timed out", normalized="training timed out"
        )
    if returncode == EXIT_BAD_CONFIG:
        return info("bad_config")
    if returncode == EXIT_NAN:
        return info("nan")
    if returncode == EXIT_OOM:
        return info("oom")
    if worker_error and worker_error.get("kind") in ("oom", "nan", "bad_config"):
        return info(worker_error["kind"])
    lowered = [line.lower() for line in plain]
    for line in reversed(lowered):
        if any(clue in line for clue in _OOM_CLUES):
            return info("oom", line)
    reported = str(worker_error.get("message", "")).splitlines() if worker_error else []
    for line in reversed(plain + reported):
        if any(clue in line.lower() for clue in _DISK_CLUES):
            # The refused write first: the run's stop reason quotes it (agents/trainer.py).
            refused = line.strip()
            rest = "\n".join(kept for kept in message.splitlines() if kept.strip() != refused)
            return FailureInfo(
                kind="disk", message=f"{refused}\n{rest}", normalized=normalize_error(refused)
            )
    for line in reversed(lowered):
        if _NAN_CLUE.search(line):
            return info("nan", line)
    if exception_line is not None:
        last = exception_line.strip().lower()
        if _VALIDATION_CLUE.search(last) or (
            _SETUP_ERROR_CLUE.search(last) and _trainer_setup_in(lowered)
        ):
            return info("bad_config", exception_line)
    if returncode in (-signal.SIGKILL, 128 + signal.SIGKILL):
        # Killed without a word: on Linux that is almost always the kernel's OOM killer.
        return info("oom", "process killed by sigkill (likely out of memory)")
    return info("crash")


def _trainer_setup_in(lowered_lines: list[str]) -> bool:
    # A ValueError raised from trainer/config construction is a configuration problem; the same
    # exception from inside the training loop is not.
    setup_markers = ("__init__", "__post_init__", "validate", "load_from_disk", "from_pretrained")
    in_loop = any(
        "training_step" in line or "_inner_training_loop" in line for line in lowered_lines
    )
    return not in_loop and any(m in line for line in lowered_lines for m in setup_markers)
