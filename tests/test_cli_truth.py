"""The CLI tells the truth: version and -h, `latest` and id prefixes, ids that never wrap,
errors on stderr so `--json` stays JSON."""

import json
import os

from typer.testing import CliRunner

from postlab.cli.app import app
from postlab.tools.io.rundir import find_run

runner = CliRunner()


def _fake_run(root, run_id, mtime, **summary):
    folder = root / run_id
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(
        json.dumps({"run_id": run_id, "task": "addition_2d", "model": "/m/smollm2",
                    "created_at": "2026-12-01T10:00:00"})
    )  # fmt: skip
    if summary:
        (folder / "summary.json").write_text(json.dumps(summary))
    os.utime(folder / "run.json", (mtime, mtime))
    return folder


def test_version_and_short_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("postlab ")
    result = runner.invoke(app, ["run", "-h"])
    assert result.exit_code == 0 and "--task-dir" in result.stdout


def test_flags_render_as_flags_and_the_demo_says_what_it_does():
    shown = runner.invoke(app, ["show", "-h"], terminal_width=100)
    assert "--json" in shown.stdout and "<bool>" not in shown.stdout
    demo = runner.invoke(app, ["demo", "-h"], terminal_width=100)
    assert "3 iterations" in demo.stdout and "0.9" in demo.stdout


def test_latest_and_unique_prefixes_find_runs(runs_dir):
    older = _fake_run(runs_dir, "20261201-100000-addition-2d", 1_000)
    newer = _fake_run(runs_dir, "20261201-110000-addition-2d", 2_000)
    assert find_run("latest") == newer
    assert find_run("20261201-10") == older
    shown = runner.invoke(app, ["show", "20261201"])
    assert shown.exit_code == 2 and "matches 2 runs" in shown.stderr and shown.stdout == ""


def test_runs_keeps_every_id_on_one_line_in_80_columns(runs_dir, monkeypatch):
    from postlab.cli import app as cli_app

    run_id = "20261201-120000-a-rather-long-task-name-for-a-run"
    _fake_run(runs_dir, run_id, 3_000, baseline_score=0.1, best_score=0.7, wall_s=600,
              stop_reason="target_met")  # fmt: skip
    monkeypatch.setattr(cli_app.console, "width", 80)
    result = runner.invoke(app, ["runs"])
    assert result.exit_code == 0
    assert any(run_id in line for line in result.stdout.splitlines())
    assert "0.10 → 0.70" in result.stdout and "10 min" in result.stdout
    assert str(runs_dir) in result.stdout


def test_no_runs_says_where_it_looked(runs_dir):
    result = runner.invoke(app, ["runs"])
    assert result.exit_code == 0 and f"no runs in {runs_dir}" in result.stderr


def test_json_output_stays_json_when_the_run_is_unknown(runs_dir):
    result = runner.invoke(app, ["show", "nosuchrun", "--json"])
    assert result.exit_code == 2 and result.stdout == "" and "no run 'nosuchrun'" in result.stderr


def test_offline_flag_skips_the_network(monkeypatch):
    monkeypatch.delenv("POSTLAB_OFFLINE", raising=False)
    result = runner.invoke(app, ["--offline", "papers", "search", "low-rank adaptation"])
    assert result.exit_code == 0 and "POSTLAB_OFFLINE is set (--offline)" in result.stderr
    assert os.environ.get("POSTLAB_OFFLINE") == "1"
    monkeypatch.delenv("POSTLAB_OFFLINE")
