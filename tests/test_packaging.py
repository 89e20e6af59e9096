"""The five folders install as postlab subpackages and nothing installs top-level names."""

import subprocess
import sys


def _python(code: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)


def test_subpackages_import_from_outside_the_repo(tmp_path):
    result = _python(
        "import postlab.graph, postlab.agents, postlab.tools, postlab.memory, postlab.cli; "
        "print(postlab.graph.build_graph.__name__)",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "build_graph"


def test_no_top_level_modules_leak(tmp_path):
    for name in ("graph", "agents", "tools", "memory", "cli"):
        result = _python(f"import {name}", str(tmp_path))
        assert result.returncode != 0, f"top-level module {name!r} is importable"
        assert "ModuleNotFoundError" in result.stderr
