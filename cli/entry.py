"""The `postlab` command's entry point: `postlab --help` answered from its last rendering while
nothing it was rendered from has changed; everything else goes to the typer app.

Rendering the top-level help imports typer, rich, pydantic and the app's modules (0.4 to 0.6 s
on 2 cores, over ten times a bare interpreter's start); reading it back costs one file read
and a stat of each file the rendering loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path

from postlab.records.home import postlab_home
from postlab.tools.io.atomic import write_json_atomic
from postlab.tools.io.heap import settle_heap

HELP_ARGV = (["--help"], ["-h"])
# Environment by which typer and rich render differently (width, colour, rich on or off).
RENDER_ENV = (
    "COLUMNS",
    "LINES",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "FORCE_COLOR",
    "PY_COLORS",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "TERMINAL_WIDTH",
    "GITHUB_ACTIONS",
    "TYPER_USE_RICH",
    "_TYPER_FORCE_DISABLE_TERMINAL",
)


class _Tee:
    """A stream as it is, with a copy of what was written to it (text, or bytes to its binary
    buffer, where click writes): rich still sees the real stream's terminal, colours, width."""

    def __init__(self, stream, kept: list[str], encoding: str = "utf-8") -> None:
        self.stream = stream
        self.kept = kept
        self._encoding = getattr(stream, "encoding", None) or encoding

    def write(self, data):
        text = data.decode(self._encoding, "replace") if isinstance(data, bytes) else data
        self.kept.append(text)
        return self.stream.write(data)

    @property
    def buffer(self):
        """The binary buffer beneath, kept from too."""
        return _Tee(self.stream.buffer, self.kept, self._encoding)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def help_cache_path(argv: list[str]) -> Path:
    """Where the help for these arguments, printed here and now, is kept."""
    try:
        width = os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (OSError, ValueError, AttributeError):
        width = None
    env = [os.environ.get(name) for name in RENDER_ENV]
    # The program name shows in the usage line: `postlab` or `python -m postlab.cli`.
    key = [sys.argv[0], argv, width, sys.stdout.isatty(), sys.executable, env]
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:20]
    return postlab_home() / "help" / f"{digest}.json"


def files_unchanged(files: list[list]) -> bool:
    """Whether every (path, mtime in ns, size) still describes its file."""
    for path, mtime, size in files:
        try:
            stat = os.stat(path)
        except OSError:
            return False
        if stat.st_mtime_ns != mtime or stat.st_size != size:
            return False
    return True


def cached_help(path: Path) -> str | None:
    """The kept help text, or None when there is none or a file it came from has changed."""
    try:
        entry = json.loads(path.read_text())
        text, files = entry["text"], entry["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return text if isinstance(text, str) and files_unchanged(files) else None


def _loaded_files() -> list[list]:
    files = []
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not name:
            continue
        try:
            stat = os.stat(name)
        except OSError:
            continue
        files.append([name, stat.st_mtime_ns, stat.st_size])
    return files


def _run_app() -> None:
    from postlab.cli.app import main as app_main

    app_main()


def _render_and_keep(path: Path) -> None:
    tee = _Tee(sys.stdout, [])
    sys.stdout = tee
    try:
        _run_app()
    except SystemExit as done:
        if done.code in (None, 0):
            # A home that cannot be written only costs the next --help its speed.
            with contextlib.suppress(OSError):
                write_json_atomic(path, {"text": "".join(tee.kept), "files": _loaded_files()})
        raise
    finally:
        sys.stdout = tee.stream


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    if argv not in HELP_ARGV:
        try:
            _run_app()
        finally:
            # Everything is written and closed by now: the interpreter's final collections
            # would only walk the finished command's heap (1.5 s after a run, measured).
            settle_heap()
        return
    path = help_cache_path(argv)
    text = cached_help(path)
    if text is None:
        _render_and_keep(path)
        return
    sys.stdout.write(text)
    sys.stdout.flush()
