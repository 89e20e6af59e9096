"""`postlab --help` from its last rendering: the same text, without importing the app."""

import json
import os
import subprocess
import sys
from importlib.metadata import version

from postlab.cli import entry


def _help(home, *extra_env):
    env = {**os.environ, "POSTLAB_HOME": str(home), "COLUMNS": "90", **dict(extra_env)}
    command = [sys.executable, "-X", "importtime", "-m", "postlab.cli", "--help"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    return done.stdout, imported


def test_the_second_help_is_the_first_without_loading_typer(tmp_path):
    first, imported_first = _help(tmp_path)
    second, imported_second = _help(tmp_path)
    assert "Usage:" in first and "demo" in first
    assert second == first
    assert "typer" in imported_first and "typer" not in imported_second
    # Another width renders anew, and is kept beside the first.
    wider, imported_wider = _help(tmp_path, ("COLUMNS", "140"))
    assert "typer" in imported_wider and wider != first
    assert len(list((tmp_path / "help").glob("*.json"))) == 2


def test_a_changed_source_file_renders_anew(tmp_path):
    source = tmp_path / "module.py"
    source.write_text("x = 1\n")
    stat = source.stat()
    kept = tmp_path / "kept.json"
    files = [[str(source), stat.st_mtime_ns, stat.st_size]]
    kept.write_text(json.dumps({"text": "help", "files": files}))
    assert entry.cached_help(kept) == "help"
    source.write_text("x = 22\n")
    assert entry.cached_help(kept) is None
    kept.write_text("not json")
    assert entry.cached_help(kept) is None
    assert entry.cached_help(tmp_path / "missing.json") is None


def test_other_arguments_go_to_the_app(tmp_path):
    env = {**os.environ, "POSTLAB_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "postlab.cli", "--version"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == f"postlab {version('postlab')}"
    assert not (tmp_path / "help").exists()
