"""Training tools: TrainingSpec runs in a subprocess on a tiny random model, failures as data."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from postlab.records.artifacts import TrainingResult
from postlab.tools.training.failures import (
    EVENT_MARKER,
    EXIT_BAD_CONFIG,
    EXIT_NAN,
    EXIT_OOM,
    LOG_FILE,
    RESULT_FILE,
    WORKER_REPORT_FILE,
    classify_failure,
    normalize_error,
)
from postlab.tools.training.runner import _cached_result, run_training
from postlab.tools.training.spec import TrainingSpec, check_spec
from postlab.tools.training.warm_start import WARM_ENV
from postlab.tools.training.worker_end import wait_for_exiting_workers
from postlab.tools.training.worker_start import WORKER_TMP_PREFIX

# A stand-in for postlab.tools.tasks.catalog, injected into the worker through sitecustomize,
# so the GRPO plumbing is tested on a task the test controls.
STUB_TASKS = textwrap.dedent(
    """
    import sys, types

    module = types.ModuleType("postlab.tools.tasks.catalog")

    class _StubTask:
        name = "stub"

        def reward(self, completion, answer):
            # Values no bundled verifier gives: a run's rewards show whose rule scored it.
            return 0.9 if answer in completion else 0.3

    def load_task(name=None, task_dir=None):
        return _StubTask()

    module.load_task = load_task
    sys.modules["postlab.tools.tasks.catalog"] = module
    """
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from support.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


def _save(rows: list[dict], path: Path) -> str:
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return str(path)


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory) -> str:
    rows = [
        {
            "prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
            "completion": [{"role": "assistant", "content": f"The answer is {2 * i}."}],
        }
        for i in range(16)
    ]
    return _save(rows, tmp_path_factory.mktemp("data") / "sft")


@pytest.fixture(scope="module")
def grpo_data(tmp_path_factory) -> str:
    rows = [
        {"prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}], "answer": str(2 * i)}
        for i in range(8)
    ]
    return _save(rows, tmp_path_factory.mktemp("data") / "grpo")


@pytest.fixture(autouse=True)
def _no_wandb_by_default(monkeypatch):
    # wandb costs a service process per run; sft_full_run keeps it on to cover the offline path.
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("POSTLAB_TEST_INJECT_NAN", raising=False)


def _spec(tiny_model: Path, data: str, out: Path, **overrides) -> TrainingSpec:
    fields = dict(
        method="sft",
        base_model=str(tiny_model),
        dataset_path=data,
        output_dir=str(out),
        max_steps=4,
        batch_size=4,
        learning_rate=1e-3,
        threads=2,
        timeout_s=300,
    )
    fields.update(overrides)
    return TrainingSpec(**fields)


def _run(spec: TrainingSpec) -> tuple[TrainingResult, list[dict], float]:
    events: list[dict] = []
    started = time.monotonic()
    result = run_training(spec, on_progress=events.append)
    wall = time.monotonic() - started
    # A worker that reported its result may still be exiting: its log and files are final after.
    wait_for_exiting_workers()
    return result, events, wall


def _assert_ok_run(result: TrainingResult, events: list[dict], spec: TrainingSpec) -> None:
    assert result.status == "ok", result.failure
    assert result.failure is None
    for key in ("train_loss", "final_loss", "steps", "runtime_s"):
        assert key in result.metrics and math.isfinite(result.metrics[key]), key
    assert result.metrics["steps"] == spec.max_steps
    # The worker's phases account for its time: none negative, together within its whole.
    phases = ("setup_s", "optimizer_load_s", "runtime_s", "checkpoint_save_s")
    assert all(result.metrics[phase] >= 0 for phase in phases)
    assert result.metrics["setup_s"] > 0 and result.metrics["checkpoint_save_s"] > 0
    assert result.metrics["tracker_start_s"] >= 0
    spent = sum(result.metrics[phase] for phase in phases)
    spent += result.metrics.get("optimizer_save_s", 0.0)
    assert spent <= result.metrics["process_s"] + 0.05
    assert ("optimizer_save_s" in result.metrics) == spec.save_optimizer
    steps = [e["step"] for e in events if e.get("event") == "progress"]
    assert steps == sorted(steps) and len(set(steps)) == len(steps) and steps[-1] == spec.max_steps
    assert any(e.get("event") == "done" for e in events)
    log = Path(result.log_path)
    assert log.is_file() and "@@postlab" in log.read_text()
    assert log.read_text().endswith("[postlab] worker exit code 0\n")
    assert result.spec_signature == spec.signature()
    assert not (Path(spec.output_dir) / "worker.pid").exists()


def _assert_plain_checkpoint(checkpoint: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(checkpoint)
    assert not (path / "adapter_config.json").exists()
    assert not list(path.glob("adapter_model*"))
    model = AutoModelForCausalLM.from_pretrained(path)
    assert not any("lora" in name for name in model.state_dict())
    assert AutoTokenizer.from_pretrained(path) is not None


@pytest.fixture(scope="module")
def sft_full_run(tiny_model, sft_data, tmp_path_factory):
    # wandb stays on (offline) for this run: the autouse fixture is function-scoped.
    spec = _spec(tiny_model, sft_data, tmp_path_factory.mktemp("runs") / "sft_full")
    env = {k: os.environ.pop(k) for k in ("WANDB_MODE",) if k in os.environ}
    try:
        result, events, wall = _run(spec)
    finally:
        os.environ.update(env)
    return spec, result, events, wall


def test_sft_full(sft_full_run):
    spec, result, events, wall = sft_full_run
    _assert_ok_run(result, events, spec)
    _assert_plain_checkpoint(result.checkpoint)
    assert events[0]["event"] == "started" and events[0]["pid"] > 0
    # wandb ran offline and kept its files inside the run directory, the history in its
    # .wandb file, without the list of installed packages (the lab's own run keeps that).
    runs = list((Path(spec.output_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    assert (runs[0] / "files").is_dir() and not (runs[0] / "files" / "requirements.txt").exists()
    # Opening its run is timed apart from training: it runs inside the trainer's own clock.
    assert 0 < result.metrics["tracker_start_s"] < result.metrics["runtime_s"]
    print(f"sft full: wall {wall:.1f}s, step {result.metrics['step_time_s']:.3f}s")


def test_rerun_returns_cached_result(sft_full_run):
    spec, first, _, _ = sft_full_run
    log_mtime = Path(first.log_path).stat().st_mtime
    events: list[dict] = []
    started = time.monotonic()
    again = run_training(spec.model_copy(update={"run_name": "renamed"}), on_progress=events.append)
    assert time.monotonic() - started < 2
    assert again.status == "ok" and again.checkpoint == first.checkpoint
    assert again.metrics == first.metrics
    assert events == []
    assert Path(first.log_path).stat().st_mtime == log_mtime


def test_cache_ignores_other_signature(sft_full_run):
    spec, _, _, _ = sft_full_run
    other = spec.model_copy(update={"learning_rate": 2e-3})
    assert other.signature() != spec.signature()
    assert _cached_result(Path(spec.output_dir), other.signature()) is None


def test_a_worker_forked_warm_trains_exactly_as_one_started_cold(
    sft_full_run, tmp_path, monkeypatch
):
    from safetensors.torch import load_file

    spec, warm, events, _ = sft_full_run
    assert events[0]["warm"], "a one-process CPU run was not forked from the warm launcher"
    monkeypatch.setenv(WARM_ENV, "0")
    cold, cold_events, _ = _run(spec.model_copy(update={"output_dir": str(tmp_path / "cold")}))
    assert not cold_events[0]["warm"]
    for key in ("train_loss", "final_loss", "steps"):
        assert cold.metrics[key] == warm.metrics[key]
    warm_weights = load_file(Path(warm.checkpoint) / "model.safetensors")
    cold_weights = load_file(Path(cold.checkpoint) / "model.safetensors")
    assert warm_weights.keys() == cold_weights.keys()
    assert all((warm_weights[name] == cold_weights[name]).all() for name in warm_weights)


def test_a_warm_workers_temporary_files_go_when_it_ends(
    tiny_model, sft_data, tmp_path, monkeypatch
):
    # A forked worker leaves by os._exit: datasets' map caches (hf_datasets-*) once stayed behind
    # in the system's temporary folder, one per iteration.
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    spec = _spec(tiny_model, sft_data, tmp_path / "run", max_steps=1)
    result, events, _ = _run(spec)
    assert result.status == "ok" and events[0]["warm"]
    assert not list(tmp_path.rglob("hf_datasets-*"))
    # Nor in the temporary folder of a launcher (the one the worker was forked from among them).
    assert not list(Path(tempfile.gettempdir()).glob("postlab-launcher-*/tmp/hf_datasets-*"))
    assert not list(Path(spec.output_dir).glob(f"{WORKER_TMP_PREFIX}*"))


def test_a_step_too_large_for_memory_trains_in_passes_to_the_same_loss(sft_full_run, tmp_path):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from postlab.tools.training.devices import STATE_BYTES_PER_TRAINABLE, row_activation_bytes
    from postlab.tools.training.sizing import longest_row

    spec, whole, _, _ = sft_full_run
    assert (whole.metrics["micro_batch"], whole.metrics["accumulation"]) == (4, 1)
    model = AutoModelForCausalLM.from_pretrained(spec.base_model)
    params = sum(parameter.numel() for parameter in model.parameters())
    config = model.config
    tokenizer = AutoTokenizer.from_pretrained(spec.base_model)
    tokens = longest_row(datasets.load_from_disk(spec.dataset_path), tokenizer)
    row = row_activation_bytes(tokens, config.num_hidden_layers, config.hidden_size, 4)
    # Room for the weights, their training state and two and a half rows: 2 rows a pass.
    budget = params * (4 + STATE_BYTES_PER_TRAINABLE) + 2.5 * row
    split = spec.model_copy(update={"output_dir": str(tmp_path / "split"), "memory_bytes": budget})
    result, events, _ = _run(split)
    _assert_ok_run(result, events, split)
    assert (result.metrics["micro_batch"], result.metrics["accumulation"]) == (2, 2)
    assert "2 rows at a time, 2 passes a step" in Path(result.log_path).read_text()
    # The optimiser saw the same rows a step: the same losses, up to summation order.
    for key in ("train_loss", "final_loss"):
        assert result.metrics[key] == pytest.approx(whole.metrics[key], rel=1e-3)


def test_sft_lora_is_merged(tiny_model, sft_data, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    spec = _spec(tiny_model, sft_data, tmp_path / "sft_lora", adapter="lora", lora_r=4)
    result, events, wall = _run(spec)
    _assert_ok_run(result, events, spec)
    _assert_plain_checkpoint(result.checkpoint)
    base = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    tuned = AutoModelForCausalLM.from_pretrained(result.checkpoint).state_dict()
    assert set(base) == set(tuned)
    changed = [k for k in base if "proj" in k and not torch.equal(base[k], tuned[k])]
    assert changed, "merged LoRA weights should differ from the base weights"
    print(f"sft lora: wall {wall:.1f}s, step {result.metrics['step_time_s']:.3f}s")


def _one_and_two_processes(tiny_model, tmp_path, rel=1e-4, atol=1e-5, **two_processes):
    """The same 3 steps by one process × 4 rows and by two processes × 2 rows; both results,
    after checking the two-process run and that both took the same steps to the same weights."""
    import torch
    from transformers import AutoModelForCausalLM

    # One row repeated: every batch holds the same rows however the sampler splits them, so
    # 2 processes × 2 rows must take the very steps 1 process × 4 rows takes.
    row = {
        "prompt": [{"role": "user", "content": "What is 2 plus 3?"}],
        "completion": [{"role": "assistant", "content": "The answer is 5."}],
    }
    data = _save([row] * 16, tmp_path / "same")
    one = _spec(tiny_model, data, tmp_path / "one", max_steps=3, batch_size=4)
    two = _spec(tiny_model, data, tmp_path / "two", max_steps=3, batch_size=2, num_processes=2,
                **two_processes)  # fmt: skip
    single, single_events, _ = _run(one)
    double, double_events, _ = _run(two)
    _assert_ok_run(double, double_events, two)
    # One event stream for the run (rank 0 speaks), not one per process.
    assert [e["step"] for e in double_events if e.get("event") == "progress"] == [1, 2, 3]
    losses = [
        [e["loss"] for e in ev if e.get("event") == "progress"]
        for ev in (single_events, double_events)
    ]
    assert losses[1] == pytest.approx(losses[0], rel=rel)
    first = AutoModelForCausalLM.from_pretrained(single.checkpoint).state_dict()
    second = AutoModelForCausalLM.from_pretrained(double.checkpoint).state_dict()
    assert all(torch.allclose(first[k], second[k], atol=atol) for k in first)
    return single, double


def test_two_processes_train_like_one_with_the_same_global_batch(tiny_model, tmp_path):
    single, double = _one_and_two_processes(tiny_model, tmp_path)
    assert double.metrics["processes"] == 2.0 and single.metrics["processes"] == 1.0


@pytest.mark.slow
def test_fsdp_shards_two_processes_and_saves_one_plain_checkpoint(tiny_model, tmp_path):
    import json

    # Sharded, then gathered from both shards into one plain checkpoint: the same weights.
    # Sharded all-reduces sum in another order: equal to float32 rounding, not bit for bit.
    _one_and_two_processes(tiny_model, tmp_path, rel=1e-3, atol=1e-4, sharding="fsdp")
    config = json.loads((tmp_path / "two" / "fsdp.json").read_text())
    assert config["fsdp"] == "full_shard auto_wrap"
    assert config["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    data = str(tmp_path / "same")
    refused = _spec(tiny_model, data, tmp_path / "bad", adapter="lora", num_processes=2,
                    sharding="fsdp")  # fmt: skip
    assert "fsdp sharding needs full fine-tuning" in " ".join(check_spec(refused))


def test_the_sequence_length_grows_to_hold_the_longest_row(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    long_answer = " ".join(f"step {i} carries the one." for i in range(60))
    rows = [
        {"prompt": [{"role": "user", "content": "Add 17 and 25."}],
         "completion": [{"role": "assistant", "content": answer}]}
        for answer in ("42", long_answer)
    ] * 4  # fmt: skip
    data = _save(rows, tmp_path / "long")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    messages = rows[1]["prompt"] + rows[1]["completion"]
    longest = len(tokenizer.apply_chat_template(messages, tokenize=True)["input_ids"])
    assert longest > 256  # longer than the default: it would be cut short
    result, _, _ = _run(_spec(tiny_model, data, tmp_path / "out", max_steps=1, batch_size=2))
    assert result.status == "ok", result.failure
    assert result.metrics["max_length"] == -(-longest // 64) * 64
    short = _save(rows[:1] * 8, tmp_path / "short")
    kept, _, _ = _run(_spec(tiny_model, short, tmp_path / "short-out", max_steps=1, batch_size=2))
    assert kept.metrics["max_length"] == 256


def test_processes_shard_only_when_a_replica_does_not_fit():
    from postlab.tools.training.devices import sharding_for

    assert sharding_for(1, "full", 70e9, free_bytes=1e9) == ("ddp", "")
    small, why = sharding_for(2, "full", 135e6, free_bytes=20e9)
    assert small == "ddp" and "replica needs ~2.6 GB" in why
    large, why = sharding_for(2, "full", 7e9, free_bytes=100e9)
    assert large == "fsdp" and why.startswith("fsdp full_shard")
    assert sharding_for(2, "lora", 7e9, free_bytes=1e9)[0] == "ddp"


def _grpo_spec(tiny_model, grpo_data, out, **overrides) -> TrainingSpec:
    fields = dict(
        method="grpo",
        adapter="lora",
        max_steps=2,
        batch_size=4,
        num_generations=4,
        max_completion_length=8,
        learning_rate=1e-4,
    )
    fields.update(overrides)
    return _spec(tiny_model, grpo_data, out, **fields)


def test_grpo_with_stub_task(tiny_model, grpo_data, tmp_path, monkeypatch):
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "sitecustomize.py").write_text(STUB_TASKS)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(stub), os.environ.get("PYTHONPATH")]))
    )
    spec = _grpo_spec(tiny_model, grpo_data, tmp_path / "grpo", task="stub", adapter="full")
    result, events, _ = _run(spec)
    _assert_ok_run(result, events, spec)
    _assert_plain_checkpoint(result.checkpoint)
    # Every reward is the stub task's (0.3 or 0.9 a completion), none a real verifier's 0 / 1.
    for key in ("mean_reward", "final_reward"):
        assert 0.3 - 1e-6 <= result.metrics[key] <= 0.9 + 1e-6
    progress = [e for e in events if e.get("event") == "progress"]
    assert progress and all(0.3 - 1e-6 <= e["reward"] <= 0.9 + 1e-6 for e in progress)


def test_grpo_with_real_task(tiny_model, grpo_data, tmp_path):
    from postlab.tools.tasks.catalog import load_task

    task = load_task()
    spec = _grpo_spec(tiny_model, grpo_data, tmp_path / "grpo", task=getattr(task, "name", None))
    result, events, _ = _run(spec)
    _assert_ok_run(result, events, spec)
    assert "mean_reward" in result.metrics


def test_missing_dataset_is_bad_config(tiny_model, tmp_path):
    spec = _spec(tiny_model, str(tmp_path / "nope"), tmp_path / "run")
    result = run_training(spec)
    assert result.status == "failed" and result.failure.kind == "bad_config"
    assert "does not exist" in result.failure.message
    assert result.checkpoint is None
    # The parent is the one writer of result.json, in TrainingResult's schema.
    saved = TrainingResult.model_validate_json((tmp_path / "run" / RESULT_FILE).read_text())
    assert saved.status == "failed" and saved.failure.kind == "bad_config"


def test_grpo_batch_not_divisible_is_bad_config(tiny_model, grpo_data, tmp_path):
    spec = _grpo_spec(tiny_model, grpo_data, tmp_path / "run", batch_size=6, num_generations=4)
    result = run_training(spec)
    assert result.status == "failed" and result.failure.kind == "bad_config"
    assert "divisible by num_generations" in result.failure.message


def test_wrong_columns_fail_in_worker_as_bad_config(tiny_model, tmp_path):
    data = _save([{"question": "q", "reply": "a"}] * 4, tmp_path / "odd")
    result = run_training(_spec(tiny_model, data, tmp_path / "run"))
    assert result.status == "failed" and result.failure.kind == "bad_config"
    assert "needs columns" in result.failure.message
    assert "[postlab] worker exit code 3" in Path(result.log_path).read_text()


def test_worker_rejects_invalid_spec_file(tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"method": "sft", "output_dir": str(tmp_path), "bogus": 1}))
    proc = subprocess.run(
        [sys.executable, "-m", "postlab.tools.training.worker", str(spec_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == EXIT_BAD_CONFIG
    assert "ValidationError" in proc.stdout
    assert classify_failure(proc.returncode, proc.stdout, False).kind == "bad_config"
    # The worker reports to its own file; result.json is left to the parent.
    assert json.loads((tmp_path / WORKER_REPORT_FILE).read_text())["status"] == "failed"
    assert not (tmp_path / RESULT_FILE).exists()


def _live_group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp. Zombies hold no resources.
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_timeout_kills_process_group(tiny_model, sft_data, tmp_path):
    spec = _spec(tiny_model, sft_data, tmp_path / "run", timeout_s=2, max_steps=1000)
    result, events, wall = _run(spec)
    assert result.status == "failed" and result.failure.kind == "timeout"
    assert wall < 15
    pid = events[0]["pid"]
    assert _live_group_members(pid) == []
    assert not (tmp_path / "run" / "worker.pid").exists()


def test_nan_loss_is_classified(tiny_model, sft_data, tmp_path, monkeypatch):
    monkeypatch.setenv("POSTLAB_TEST_INJECT_NAN", "1")
    result, events, _ = _run(_spec(tiny_model, sft_data, tmp_path / "run"))
    assert result.status == "failed" and result.failure.kind == "nan"
    assert "diverged" in result.failure.message
    assert result.failure.normalized == "loss is nan at step <n>: training diverged"


@pytest.mark.slow
def test_sft_lora_on_smollm2(sft_data, tmp_path):
    from postlab.tools.models.resolution import DEFAULT_MODEL, resolve_model

    base = Path(resolve_model(DEFAULT_MODEL).path)
    spec = _spec(base, sft_data, tmp_path / "run", adapter="lora", max_steps=2, learning_rate=1e-4)
    result, events, wall = _run(spec)
    _assert_ok_run(result, events, spec)
    _assert_plain_checkpoint(result.checkpoint)
    print(f"smollm2 lora: wall {wall:.1f}s, step {result.metrics['step_time_s']:.3f}s")


# --- pure functions --------------------------------------------------------------------------


def test_spec_validation_and_signature(tmp_path):
    base = dict(method="sft", base_model="m", dataset_path="d", output_dir=str(tmp_path))
    with pytest.raises(ValidationError):
        TrainingSpec(**base, bogus=1)
    with pytest.raises(ValidationError):
        TrainingSpec(**base, learning_rate=1e6)
    with pytest.raises(ValidationError):
        TrainingSpec(**base, max_steps=0)
    spec = TrainingSpec(**base)
    same = spec.model_copy(
        update={"output_dir": "/elsewhere", "run_name": "x", "timeout_s": 5, "threads": 1}
    )
    assert spec.signature() == same.signature() == TrainingSpec(**base).signature()
    assert spec.signature() != TrainingSpec(**base, learning_rate=1e-4).signature()
    assert spec.signature() != TrainingSpec(**{**base, "method": "grpo"}).signature()


def test_normalize_error_equates_oom_messages():
    a = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.2 GiB total capacity)"
    b = "CUDA out of memory. Tried to allocate 512.50 MiB (GPU 3; 39.4 GiB total capacity)"
    c = "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 1; 14.7 GiB total capacity)"
    assert normalize_error(a) == normalize_error(c)
    assert normalize_error(a).startswith("cuda out of memory. tried to allocate <n> gib")
    assert normalize_error(b) != normalize_error(a)  # GiB vs MiB: the unit stays
    assert normalize_error(
        "FileNotFoundError: [Errno 2] No such file: '/tmp/run-1/data'  at 0x7f3a2b"
    ) == normalize_error(
        "FileNotFoundError: [Errno 2] No such file: '/home/x/other'  at 0xdeadbeef"
    )
    assert normalize_error("ValueError: bad value 'abc' in /a/b/c.py line 12") == (
        "valueerror: bad value <str> in <path> line <n>"
    )


@pytest.mark.parametrize(
    ("returncode", "tail", "timed_out", "kind"),
    [
        (None, "", True, "timeout"),
        (EXIT_NAN, "", False, "nan"),
        (EXIT_BAD_CONFIG, "bad training spec", False, "bad_config"),
        (EXIT_OOM, "", False, "oom"),
        (1, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", False, "oom"),
        (
            1,
            "RuntimeError: [enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: "
            "can't allocate memory: you tried to allocate 123456 bytes.",
            False,
            "oom",
        ),
        (1, "Traceback (most recent call last):\nMemoryError", False, "oom"),
        (-9, "step 3 ok", False, "oom"),
        (137, "", False, "oom"),
        (1, "{'loss': nan, 'grad_norm': nan}", False, "nan"),
        (
            1,
            "pydantic_core._pydantic_core.ValidationError: 1 validation error for X",
            False,
            "bad_config",
        ),
        (
            1,
            'Traceback (most recent call last):\n  File "sft_trainer.py", line 9, in __init__\n'
            "ValueError: max_length must be positive",
            False,
            "bad_config",
        ),
        (
            1,
            'Traceback (most recent call last):\n  File "trainer.py", line 9, in training_step\n'
            "ValueError: something odd",
            False,
            "crash",
        ),
        (1, "Traceback (most recent call last):\nRuntimeError: boom", False, "crash"),
        (-11, "", False, "crash"),
        (
            1,
            'Traceback (most recent call last):\n  File "grpo_config.py", in __post_init__\n'
            "ValueError: generation_batch_size (6) must be divisible by num_generations (4).\n"
            "wandb: Find logs at: /tmp/x/wandb/offline-run/logs",
            False,
            "bad_config",
        ),
        (
            1,
            '@@postlab {"event": "error", "kind": "crash", "phase": "setup", '
            '"message": "RuntimeError: weird"}',
            False,
            "crash",
        ),
    ],
)
def test_classify_failure(returncode, tail, timed_out, kind):
    info = classify_failure(returncode, tail, timed_out)
    assert info.kind == kind
    assert info.normalized and info.normalized == info.normalized.lower()


def test_a_write_the_disk_refused_is_a_disk_failure_that_quotes_it():
    refused = "OSError: [Errno 28] No space left on device: '/runs/x/iter-2/checkpoint'"
    tail = f"Traceback (most recent call last):\n{refused}\nwandb: Find logs at: /tmp/w/logs"
    info = classify_failure(1, tail, False)
    assert info.kind == "disk" and info.message.splitlines()[0] == refused
    assert info.message.count(refused) == 1 and "wandb: Find logs" in info.message
    # Reported by the worker's own error event, which a crash would otherwise be.
    event = {"event": "error", "kind": "crash", "phase": "save", "message": refused}
    info = classify_failure(1, EVENT_MARKER + json.dumps(event), False)
    assert info.kind == "disk" and info.message.startswith(refused)
    # An unrelated error that names a disk is still a crash.
    assert classify_failure(1, "RuntimeError: disk cache miss", False).kind == "crash"


def test_a_run_with_no_room_for_its_checkpoint_fails_before_it_trains(tmp_path, monkeypatch):
    from postlab.tools.training import disk_room, runner

    start = tmp_path / "start"
    start.mkdir()
    (start / "model.safetensors").write_bytes(b"\0" * 4000)  # 1,000 fp32 weights
    (start / "config.json").write_text("{}")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset_info.json").write_text("{}")
    spec = TrainingSpec(
        method="sft",
        base_model=str(start),
        dataset_path=str(tmp_path / "data"),
        output_dir=str(tmp_path / "out"),
        save_optimizer=True,
    )
    # At bf16 sizes, the least any device writes: the checkpoint (2 bytes a weight), the spare
    # and AdamW's two moments (4 bytes a weight); a LoRA adapter's moments are left out.
    assert disk_room.bytes_to_write(spec) == 2000 + disk_room.SPARE_BYTES + 4000
    lora = spec.model_copy(update={"adapter": "lora"})
    assert disk_room.bytes_to_write(lora) == 2000 + disk_room.SPARE_BYTES
    plain = spec.model_copy(update={"save_optimizer": False})
    assert disk_room.bytes_to_write(plain) == 2000 + disk_room.SPARE_BYTES
    # A Hub name's size is not known here: no check.
    assert disk_room.bytes_to_write(spec.model_copy(update={"base_model": "org/model"})) is None

    usage = shutil.disk_usage(tmp_path)
    free = 1_000_000
    monkeypatch.setattr(disk_room.shutil, "disk_usage", lambda path: usage._replace(free=free))

    def no_worker(*args, **kwargs):
        raise AssertionError("a worker started with no room for what it writes")

    monkeypatch.setattr(runner, "start_worker", no_worker)
    result = run_training(spec)
    assert result.status == "failed" and result.failure.kind == "disk"
    assert result.failure.message == (
        f"no room on disk: the run writes at least 67.1 MB under {tmp_path / 'out'} (its "
        "checkpoint and its optimiser state) and 1.0 MB are free there; free some and run "
        "again"
    )
    assert (tmp_path / "out" / LOG_FILE).read_text().startswith("no room on disk")
    # With room for it, no word.
    monkeypatch.setattr(disk_room.shutil, "disk_usage", lambda path: usage._replace(free=10**8))
    assert disk_room.room_shortfall(spec, tmp_path / "out") is None


def test_training_module_does_not_import_torch():
    code = "import sys, postlab.tools.training.runner; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
