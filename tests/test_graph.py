"""The whole graph, end to end, on a tiny model: every agent runs, every run finalizes."""

import contextlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from support.task_folders import sums_folder
from typer.testing import CliRunner

from postlab.cli.app import app
from postlab.graph import build_graph
from postlab.graph.experiments import MIN_TRAINING_ROWS
from postlab.graph.runner import run_lab, run_state
from postlab.memory.library import recall_effects, remember_effects
from postlab.memory.store import LabMemory
from postlab.records.outcomes import MeasuredEffect

SMALL = {"train_steps": 2, "train_size": 24, "eval_limit": 6, "batch_size": 4, "max_iterations": 2}


# What an earlier run on this machine measured: the library the finished run reads and adds to.
EARLIER = MeasuredEffect(
    run_id="earlier-run", task="addition_2d", technique="sft_full",
    model_params=5e5, effect=0.2, iterations=3, steps=120,
)  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tiny_model, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "e2e"
    library = run_dir.parent / "library"
    remember_effects(LabMemory(library), [EARLIER])
    events = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POSTLAB_LIBRARY_DIR", str(library))
        output = run_lab(
            {
                "task": "addition_2d",
                "model": str(tiny_model),
                "budget": 40,
                "run_dir": str(run_dir),
                "options": SMALL,
            },
            on_event=events.append,
        )
    return run_dir, output, events


def test_run_visits_every_agent_and_writes_its_artifacts(finished_run):
    run_dir, output, events = finished_run
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in (
        "run_id",
        "task",
        "base_model",
        "baseline_score",
        "best_score",
        "best_checkpoint",
        "steps_used",
        "budget",
        "stop_reason",
        "iterations",
    ):
        assert key in summary
    agents = {e["agent"] for e in events if e["type"] == "agent_finished"}
    assert agents == {"librarian", "data_engineer", "trainer", "evaluator"}
    # Every agent step is in the summary with its wall time, in the order it ran.
    steps = summary["steps"]
    assert {s["agent"] for s in steps} == agents
    assert [s["step"] for s in steps] == sorted(s["step"] for s in steps)
    trained = [s for s in steps if s["agent"] == "trainer" and s["status"] == "ok"]
    assert len(trained) == 2 and all(s["wall_s"] > 0 for s in trained)
    assert output["stop_reason"] == summary["stop_reason"]
    # The best is chosen on validation, so it is never below the baseline there; test may differ.
    assert 0.0 <= summary["baseline_val_score"] <= summary["best_val_score"] <= 1.0
    assert 0.0 <= summary["best_score"] <= 1.0
    assert len(summary["iterations"]) == 2
    # The papers rank full SFT first here, and the earlier run's measured gain agrees.
    assert summary["iterations"][0]["technique"] == "sft_full"
    for iteration in summary["iterations"]:
        assert (
            iteration["technique"] and iteration["reason"] and iteration["spec"]["max_steps"] == 2
        )
        assert iteration["score"] is not None
    assert Path(run_dir, summary["best_checkpoint"], "config.json").is_file()
    report = (run_dir / "report.md").read_text()
    assert "## Iterations" in report and "Techniques from the literature" in report
    assert (run_dir / "scores.png").stat().st_size > 1000
    assert any(d["reason"] for d in summary["decisions"])


def test_the_run_folder_travels_with_relative_paths_and_one_file_mode(finished_run, tmp_path):
    run_dir, _, _ = finished_run
    text = (run_dir / "summary.json").read_text() + (run_dir / "run.json").read_text()
    assert str(run_dir) not in text and '"models/iter-1/checkpoint"' in text
    # The logs behind the training curves are found through the relative paths.
    assert "![training curves](training.png)" in (run_dir / "report.md").read_text()
    # The records get the mode the plot (written by a plain open) gets.
    plain = (run_dir / "scores.png").stat().st_mode & 0o777
    assert set(file_modes(run_dir).values()) == {plain}
    # So do checkpoints and training sets, which are staged in private temporary folders and
    # partly written by libraries: a colleague or a serving process can read the best model.
    staged = [*run_dir.glob("models/*/checkpoint"), *run_dir.glob("data/*")]
    assert staged and all(folder.is_dir() for folder in staged)
    for folder in staged:
        assert folder.stat().st_mode & 0o777 == (run_dir / "models").stat().st_mode & 0o777
        assert {f.stat().st_mode & 0o777 for f in folder.rglob("*") if f.is_file()} == {plain}
    # No empty folders of ours (wandb's offline log keeps its own layout).
    ours = [folder for folder in run_dir.rglob("*") if "wandb" not in folder.parts]
    assert not [folder for folder in ours if folder.is_dir() and not any(folder.iterdir())]
    copy = tmp_path / "elsewhere"
    shutil.copytree(run_dir, copy)
    shown = CliRunner().invoke(app, ["show", str(copy), "--json"])
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.stdout)
    # Paths are resolved where the folder now lies.
    latest = summary["iterations"][-1]["checkpoint"]
    assert latest.startswith(str(copy)) and Path(latest, "config.json").is_file()
    assert all(Path(d["path"]).is_relative_to(copy) for d in summary["datasets"])
    raw = CliRunner().invoke(app, ["show", str(copy), "--raw"])
    assert raw.exit_code == 0 and raw.stdout == (copy / "report.md").read_text()


def file_modes(run_dir: Path) -> dict[str, int]:
    """Permission bits of the run's records."""
    names = ("summary.json", "report.md", "run.json")
    return {name: (run_dir / name).stat().st_mode & 0o777 for name in names}


def test_decisions_read_validation_and_test_is_scored_for_baseline_and_best_only(finished_run):
    run_dir, output, events = finished_run
    summary = json.loads((run_dir / "summary.json").read_text())
    evaluator = [
        e["action"] for e in events if e["type"] == "agent_started" and e["agent"] == "evaluator"
    ]
    best_is_trained = summary["best_label"] != "baseline"
    assert evaluator == ["baseline", "evaluate", "evaluate"] + (
        ["test_best"] if best_is_trained else []
    )
    assert summary["baseline_test_n"] == summary["best_test_n"] == 6
    assert summary["baseline_val_n"] == summary["best_val_n"] == 6
    assert output["best_score"] == summary["best_score"]
    for key in ("baseline_stderr", "best_stderr", "baseline_val_stderr", "best_val_stderr"):
        assert summary[key] is not None and 0.0 <= summary[key] <= 0.5
    # No decision cites a test score: reasons speak of validation only.
    assert not any(re.search(r"\btest\b", d["reason"]) for d in summary["decisions"])
    assert all(it["score"] is not None for it in summary["iterations"])
    # Each evaluation keeps the validation prompts it missed: holds compare them item by item.
    for record in summary["evaluations"]:
        assert len(record["missed"]) == round((1 - record["strict"]) * record["n"])
    report = (run_dir / "report.md").read_text()
    assert "| validation strict | test strict | test lenient |" in report
    assert "was scored only for the baseline and the selected best" in report


def test_unattended_gate_follows_its_default_and_says_so(finished_run):
    run_dir, _, _ = finished_run
    decisions = json.loads((run_dir / "summary.json").read_text())["gate_decisions"]
    assert len(decisions) == 2 and all(d["approved"] and d["by"] == "default" for d in decisions)
    assert "no human attached" in (run_dir / "report.md").read_text()


def test_training_progress_and_datasets_are_recorded(finished_run):
    run_dir, _, events = finished_run
    training = [e for e in events if e["type"] == "training" and e.get("event") == "progress"]
    assert training and training[-1]["step"] == 2
    summary = json.loads((run_dir / "summary.json").read_text())
    assert all(d["contaminated_removed"] == 0 for d in summary["datasets"])
    assert (run_dir / "memory").is_dir() and (run_dir / "checkpoints.sqlite").is_file()
    # Iterations hand Adam's moments on while the run lasts; a finished run keeps none.
    assert not list(run_dir.glob("models/*/optimizer.pt"))
    # Nor anything set aside for deletion: the run returned once every removal was done.
    assert not list(run_dir.glob("models/*/.removing-*"))


def test_memory_holds_what_the_agents_learned(finished_run):
    from postlab.memory.store import open_memory

    run_dir, _, _ = finished_run
    memory = open_memory(run_dir)
    assert memory.count("papers") >= 30
    assert memory.count("findings") >= 3
    assert memory.count("experiments") == 2
    hits = memory.search("baseline evaluation strict accuracy", kinds=("observations",), k=3)
    assert any("baseline" in h.text for h in hits)


def test_memory_search_finds_a_fact_with_the_step_that_wrote_it(finished_run):
    run_dir, output, events = finished_run
    started = {e["step"]: e["action"] for e in events if e["type"] == "agent_started"}
    baseline_step = next(step for step, action in started.items() if action == "baseline")
    query = ["memory", "search", str(run_dir), "baseline evaluation strict accuracy"]
    result = CliRunner().invoke(app, [*query, "--kind", "observations", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    top = next(hit for hit in hits if hit["text"].startswith("Evaluation baseline"))
    assert top["source"]["step"] == baseline_step and top["source"]["agent"] == "evaluator"
    assert 0 < top["score"] <= 1 and top["kind"] == "observations"
    table = CliRunner().invoke(app, query)
    assert table.exit_code == 0 and "e2e: memories closest to" in table.output
    wrong = CliRunner().invoke(app, [*query, "--kind", "dreams"])
    assert wrong.exit_code == 2 and "unknown memory kind 'dreams'" in wrong.output


def test_memory_search_of_the_library_finds_what_earlier_runs_measured(finished_run, monkeypatch):
    run_dir, _, _ = finished_run
    monkeypatch.setenv("POSTLAB_LIBRARY_DIR", str(run_dir.parent / "library"))
    result = CliRunner().invoke(
        app, ["memory", "search", "--library", "sft_full on addition_2d", "--json"]
    )
    assert result.exit_code == 0, result.output
    runs = {hit["source"].get("run_id") for hit in json.loads(result.output)}
    # The earlier run's effect and the one this run filed, each with the run it came from.
    assert {"earlier-run", run_dir.name} <= runs
    monkeypatch.setenv("POSTLAB_LIBRARY_DIR", "off")
    off = CliRunner().invoke(app, ["memory", "search", "--library", "anything"])
    assert off.exit_code == 2 and "no library" in off.output


def test_unresolvable_model_ends_with_an_error_report(tmp_path):
    output = run_lab(
        {
            "task": "addition_2d",
            "model": str(tmp_path / "missing"),
            "budget": 5,
            "run_dir": str(tmp_path / "bad"),
        }
    )
    assert output["stop_reason"] == "error"
    summary = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert "cannot resolve model" in summary["stop_detail"]


def test_graph_declares_its_schemas_and_draws_its_edges():
    graph = build_graph()
    assert set(graph.get_input_jsonschema()["properties"]) >= {
        "goal",
        "task",
        "model",
        "budget",
        "options",
    }
    assert set(graph.get_output_jsonschema()["properties"]) >= {
        "best_checkpoint",
        "best_score",
        "stop_reason",
    }
    edges = {(e.source, e.target) for e in graph.get_graph().edges}
    for agent in ("librarian", "data_engineer", "trainer", "evaluator"):
        assert ("supervisor", agent) in edges and (agent, "supervisor") in edges
    assert ("supervisor", "finalize") in edges


def test_finished_run_leaves_no_checkpoint_connection_open(finished_run):
    run_dir, _, _ = finished_run
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith(str(run_dir / "checkpoints.sqlite")):
                held.append(target)
    assert held == []
    # The last connection's close folds SQLite's write-ahead log back into the file.
    assert not (run_dir / "checkpoints.sqlite-wal").exists()
    with run_state(run_dir) as (_, snapshot, _):
        assert snapshot.values["stop_reason"]


def test_checkpoints_restore_typed_state_in_strict_mode(finished_run):
    import subprocess
    import sys

    run_dir, _, _ = finished_run
    code = (
        "from postlab.graph.runner import run_state; from pathlib import Path\n"
        f"with run_state(Path({str(run_dir)!r})) as (_, snap, _): v = snap.values\n"
        "print(type(v['best']).__name__, type(v['runs'][0].result).__name__, "
        "type(v['trajectory'][0]).__name__, type(v['datasets'][0]).__name__)"
    )
    env = {**__import__("os").environ, "LANGGRAPH_STRICT_MSGPACK": "true"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [
        "BestModel",
        "TrainingResult",
        "TrajectoryRecord",
        "DatasetCard",
    ]
    assert "unregistered" not in result.stderr


@pytest.mark.parametrize(
    "task",
    [
        "addition_2d",
        "addition_3d",
        "unit_conversion",
        "sort_list",
        "answer_format",
        "multiple_choice_arith",
    ],
)
def test_every_bundled_task_runs_and_finalizes(task, tiny_model, tmp_path):
    output = run_lab(
        {
            "task": task,
            "model": str(tiny_model),
            "budget": 3,
            "run_dir": str(tmp_path / task),
            "options": SMALL,
        }
    )
    summary = json.loads((tmp_path / task / "summary.json").read_text())
    assert output["stop_reason"] == "budget_steps" and summary["task"] == task
    # The rows its steps draw (2 × 4), raised to the floor an iteration always builds.
    drawn = SMALL["train_steps"] * SMALL["batch_size"]
    expected = max(MIN_TRAINING_ROWS, min(SMALL["train_size"], drawn))
    assert summary["datasets"][0]["final_size"] == expected == 16
    # The budget stops the run, and it still finalizes: every step counted, a report written.
    assert summary["steps_used"] == 3 and summary["baseline_score"] is not None
    assert (tmp_path / task / "report.md").is_file()
    # Only a label task has a floor, one answer to everything, scored on the baseline's items.
    floor = summary["constant_answer"]
    assert (floor is not None) == (task == "multiple_choice_arith")
    if floor:
        assert floor["answer"] in ("A", "B", "C", "D")
        assert (floor["validation_n"], floor["test_n"]) == (
            summary["baseline_val_n"],
            summary["baseline_test_n"],
        )


def _one_iteration_on(folder: Path, model: Path, run_dir: Path) -> tuple[dict, dict]:
    """The lab's output and summary after one iteration on a task folder."""
    options = {**SMALL, "max_iterations": 1}
    spec = {"task_dir": str(folder), "model": str(model), "budget": 8, "run_dir": str(run_dir)}
    output = run_lab({**spec, "options": options})
    return output, json.loads((run_dir / "summary.json").read_text())


def test_task_folder_run_finalizes(tiny_model, tmp_path):
    folder = tmp_path / "task"
    folder.mkdir()
    words = ("cat", "dog", "sun", "sky", "red", "sea", "owl", "fox", "ant", "bee", "elk", "yak")
    rows = [{"prompt": f"Say {word} in capitals.", "answer": word.upper()} for word in words]
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:8] * 3))
    (folder / "valid.jsonl").write_text("\n".join(json.dumps(r) for r in rows[8:10]))
    (folder / "eval.jsonl").write_text("\n".join(json.dumps(r) for r in rows[10:]))
    output, summary = _one_iteration_on(folder, tiny_model, tmp_path / "dir-run")
    assert output["stop_reason"] == "budget_iterations"
    assert summary["task"] == "task" and summary["task_dir"] == str(folder)
    assert summary["datasets"][0]["duplicates_removed"] == 16
    # valid.jsonl is the validation split; eval.jsonl the test split.
    assert summary["baseline_val_n"] == 2 and summary["baseline_test_n"] == 2
    # Every key the run wrote is explained in the README's table.
    assert set(summary) - _keys_the_readme_explains() == set()


def _keys_the_readme_explains() -> set[str]:
    """The keys named in the first column of the README's summary.json table."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = text.split("### `summary.json`", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {key for row in rows for key in re.findall(r"`([a-z_]+)`", row)}


def test_a_short_folder_of_sums_is_surveyed_and_opens_on_rows_its_rule_computes(
    tiny_model, tmp_path
):
    # 12 usable sums (and a copy of a test row, which the survey does not count) for a first
    # stretch that builds 16 rows (its schedule reads 8: two steps of 4).
    folder = sums_folder(tmp_path / "sums", 12)
    test_row = (folder / "eval.jsonl").read_text().splitlines()[0]
    with (folder / "train.jsonl").open("a") as train:
        train.write("\n" + test_row)
    _, summary = _one_iteration_on(folder, tiny_model, tmp_path / "sums-run")
    card = summary["datasets"][0]
    assert card["recipe"] == "recombined" and card["final_size"] == 16
    assert card["recipe_stats"]["number_rule_rows"] == 12
    reason = summary["iterations"][0]["reason"]
    assert "its folder holds 12 rows, fewer than the 16 rows its stretch is built of" in reason


def test_a_run_weighs_earlier_runs_measurements_and_files_its_own(finished_run):
    run_dir, _, _ = finished_run
    summary = json.loads((run_dir / "summary.json").read_text())
    full = next(card for card in summary["findings"] if card["key"] == "sft_full")
    cited = "measured here: run earlier-run +0.20 over 3 iteration(s)"
    assert any(cited in note for note in full["fit_notes"])
    # The opening card's reason says what this machine measured of it, and the report shows it.
    assert cited in summary["iterations"][0]["reason"]
    assert "measured here: run earlier-run" in (run_dir / "report.md").read_text()
    filed = recall_effects(LabMemory(run_dir.parent / "library"), "addition_2d")
    assert [e.run_id for e in filed] == ["e2e", "earlier-run"]
    assert summary["lessons_filed"][0]["iterations"] >= 1


def test_evaluator_reports_progress_on_earlier_misses_from_memory(finished_run):
    _, _, events = finished_run
    evaluations = [e for e in events if e["type"] == "agent_finished" and e["agent"] == "evaluator"]
    # Every evaluation after the baseline compares itself with the misses memory holds.
    assert all(
        "items baseline missed" in e["summary"] or "items iter-" in e["summary"]
        for e in evaluations[1:]
    )
    assert "fixed" not in evaluations[0]["summary"]


def test_a_task_folder_without_usable_training_rows_stops_before_the_baseline(tiny_model, tmp_path):
    folder = tmp_path / "copies"
    folder.mkdir()
    rows = [{"prompt": f"Say {w} in capitals.", "answer": w.upper()} for w in ("cat", "dog")]
    text = "\n".join(json.dumps(r) for r in rows)
    (folder / "train.jsonl").write_text(text)
    (folder / "eval.jsonl").write_text(text)
    output = run_lab(
        {
            "task_dir": str(folder),
            "model": str(tiny_model),
            "run_dir": str(tmp_path / "copies-run"),
            "options": SMALL,
        }
    )
    summary = json.loads((tmp_path / "copies-run" / "summary.json").read_text())
    assert output["stop_reason"] == "error"
    assert summary["stop_detail"].startswith(f"cannot start: {folder / 'train.jsonl'}: 0 usable")
    assert summary["baseline_score"] is None and summary["iterations"] == []
    assert (tmp_path / "copies-run" / "report.md").is_file()


def test_input_from_a_server_is_confined_to_the_runs_root(tiny_model, tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setenv("POSTLAB_RUNS_DIR", str(root))
    graph = build_graph()  # as Studio and embedding hosts get it: input not trusted
    outside = tmp_path / "elsewhere"
    inputs = {"task": "addition_2d", "model": str(tiny_model)}
    output = graph.invoke({**inputs, "run_dir": str(outside)})
    assert output["stop_reason"] == "error" and not outside.exists()
    [summary_path] = root.glob("*/summary.json")
    detail = json.loads(summary_path.read_text())["stop_detail"]
    assert detail.startswith(f"cannot start: input refused: run_dir {outside}")

    hostile = tmp_path / "mcp.json"
    hostile.write_text('{"servers": [{"name": "x", "command": "touch", "args": ["/tmp/owned"]}]}')
    output = graph.invoke(
        {**inputs, "run_dir": str(root / "mcp"), "options": {"mcp_config": str(hostile)}}
    )
    summary = json.loads((root / "mcp" / "summary.json").read_text())
    assert output["stop_reason"] == "error" and "POSTLAB_MCP_CONFIG" in summary["stop_detail"]
    assert summary["iterations"] == [] and summary["baseline_score"] is None


def test_a_full_disk_stops_the_run_naming_the_path(tiny_model, tmp_path, monkeypatch):
    import errno

    from postlab.agents import data_engineer

    target = tmp_path / "full" / "data" / "sft-n16-seed1001"

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(data_engineer, "build_training_set", no_space)
    output = run_lab(
        {
            "task": "addition_2d",
            "model": str(tiny_model),
            "run_dir": str(tmp_path / "full"),
            "options": SMALL,
        }
    )
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert output["stop_reason"] == "error"
    assert (
        summary["stop_detail"] == f"build_dataset could not write {target}: No space left on device"
    )
    # Stopped at once: one failed data step, no retry, no training.
    routes = [decision["next"] for decision in summary["decisions"]]
    assert routes.count("data_engineer") == 1 and routes[-1] == "finalize"
    assert "trainer" not in routes


def test_no_room_for_a_checkpoint_stops_the_run_before_it_trains(tiny_model, tmp_path, monkeypatch):
    import shutil

    from postlab.tools.training import disk_room

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(disk_room.shutil, "disk_usage", lambda path: usage._replace(free=10**6))
    run_dir = tmp_path / "full"
    output = run_lab(
        {"task": "addition_2d", "model": str(tiny_model), "run_dir": str(run_dir), "options": SMALL}
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert output["stop_reason"] == "error"
    detail = summary["stop_detail"]
    assert "failed: disk (no room on disk: the run writes at least" in detail
    assert "and 1.0 MB are free there; free some and run again)" in detail
    # Stopped at once: one training step, no retry; the baseline it scored is kept.
    routes = [decision["next"] for decision in summary["decisions"]]
    assert routes.count("trainer") == 1 and routes[-1] == "finalize"
    assert summary["baseline_val_score"] is not None


def test_a_run_directory_that_cannot_be_written_still_returns_its_result(
    tiny_model, tmp_path, monkeypatch
):
    import errno

    from postlab.graph import finalize as finalize_module

    def read_only(run_dir, name, data):
        raise OSError(errno.EROFS, "Read-only file system", str(run_dir / name))

    monkeypatch.setattr(finalize_module, "write_run_json", read_only)
    output = run_lab(
        {
            "task": "addition_2d",
            "model": str(tiny_model),
            "budget": 1,
            "run_dir": str(tmp_path / "ro"),
            "options": SMALL,
        }
    )
    assert output["stop_reason"] == "error" and output["summary_path"] is None
    assert f"could not write {tmp_path / 'ro' / 'summary.json'}" in output["stop_detail"]
    assert output["stop_detail"].startswith("step budget of 1 spent")


def test_the_report_sets_each_claim_beside_what_the_run_measured(finished_run):
    run_dir, _, _ = finished_run
    report = (run_dir / "report.md").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    section = report.split("## What the literature says, and what this run measured")[1]
    ran = summary["iterations"][0]
    finding = next(f for f in summary["findings"] if f["key"] == ran["technique"])
    # The question, each claim with its paper, and the run's own change on validation.
    assert f"**Does {finding['name']} help" in section
    claim = finding["claims"][0]
    assert claim["paper"]["id"] in section and claim["stance"] in section
    parent = next(e for e in summary["evaluations"] if e["iteration"] == ran["parent"])
    assert f"iteration 1 {ran['score'] - parent['strict']:+.2f}" in section
