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


def test_every_code_folder_is_declared_for_normal_installs():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(config["packages"])
    # Editable installs find undeclared subfolders anyway; a wheel silently drops them.
    on_disk = {
        "postlab." + ".".join(init.parent.relative_to(root).parts)
        for top in ("graph", "agents", "tools", "memory", "cli")
        for init in (root / top).rglob("__init__.py")
    }
    assert on_disk <= declared, f"undeclared packages: {sorted(on_disk - declared)}"
    for name, folder in config["package-dir"].items():
        assert name in declared and (root / folder).is_dir()
