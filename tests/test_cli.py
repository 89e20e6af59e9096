"""The CLI: clear errors with exit codes, listing and showing runs."""

import json

import pytest
from typer.testing import CliRunner

from postlab.cli.app import app

runner = CliRunner()


def test_tasks_lists_the_bundled_tasks():
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 0
    for name in ("addition_2d", "addition_3d", "unit_conversion", "sort_list", "answer_format"):
        assert name in result.output


def test_bad_input_exits_2_with_a_message(runs_dir, tmp_path):
    result = runner.invoke(app, ["run", "--task", "no_such_task"])
    assert result.exit_code == 2 and "unknown task" in result.output
    result = runner.invoke(app, ["run", "--task", "addition_2d", "--model", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "cannot resolve model" in result.output
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    (tmp_path / "task").mkdir()
    result = runner.invoke(app, ["run", "--task-dir", str(tmp_path / "task")])
    assert result.exit_code == 2 and "train.jsonl" in result.output
    for flag, value in (("--train-steps", "0"), ("--batch-size", "-1"), ("--target", "2")):
        result = runner.invoke(app, ["run", "--task", "addition_2d", flag, value])
        assert result.exit_code == 2 and f"bad option: {flag}" in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_run_then_runs_and_show(runs_dir, tiny_model, monkeypatch):
    from postlab.cli import app as cli_app

    monkeypatch.setattr(cli_app.console, "width", 200)
    result = runner.invoke(
        app, ["run", "--task", "answer_format", "--model", str(tiny_model), "--budget", "2"]
    )
    assert result.exit_code == 3, result.output  # budget spent
    listing = runner.invoke(app, ["runs"])
    assert "answer_format" in listing.output and "budget_steps" in listing.output
    run_id = next(runs_dir.iterdir()).name
    shown = runner.invoke(app, ["show", run_id])
    assert shown.exit_code == 0 and "2 of 2 steps used, 0 left" in shown.output
    as_json = runner.invoke(app, ["show", run_id, "--json"])
    assert '"stop_reason": "budget_steps"' in as_json.output
    assert runner.invoke(app, ["show", "nope"]).exit_code == 2


def test_online_source_commands_are_part_of_the_cli(monkeypatch):
    monkeypatch.setenv("POSTLAB_OFFLINE", "1")
    result = runner.invoke(app, ["papers", "search", "low-rank adaptation", "--limit", "3"])
    assert result.exit_code == 0
    assert "offline: used the bundled corpus" in result.output and "LoRA" in result.output
    result = runner.invoke(app, ["datasets", "search", "sorting lists"])
    assert result.exit_code == 0 and "sort_list" in result.stdout
    result = runner.invoke(app, ["datasets", "search", "grade school math"])
    assert result.exit_code == 1 and "no bundled task matches" in result.stderr


def _write_folder(folder, train, test):
    folder.mkdir(parents=True)
    for name, rows in (("train.jsonl", train), ("eval.jsonl", test)):
        lines = [json.dumps({"prompt": p, "answer": a}) for p, a in rows]
        (folder / name).write_text("\n".join(lines) + ("\n" if lines else ""))
    return folder


TEST_ROWS = [(f"What colour is item {i}?", ["red", "blue"][i % 2]) for i in range(6)]


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        ([], "0 usable training rows"),
        (TEST_ROWS, "0 usable training rows"),
        ([(f"Name thing {i}.", f"thing {i}") for i in range(9)], "6 usable training rows"),
        ([(f"Is {i} a number?", "yes") for i in range(30)], "answer 'yes'"),
    ],
    ids=["empty", "all-copies-of-test", "fewer-than-a-batch", "one-answer"],
)
def test_a_degenerate_task_folder_is_refused_before_any_compute(
    runs_dir, tmp_path, train, expected
):
    folder = _write_folder(tmp_path / "task", train, TEST_ROWS)
    result = runner.invoke(app, ["run", "--task-dir", str(folder), "--model", "no-such-model"])
    # Refused on the data, before the model is even resolved, in one line naming the file.
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: {folder / 'train.jsonl'}: ") and expected in line
    assert not runs_dir.exists() or not any(runs_dir.iterdir())
