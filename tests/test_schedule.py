"""A chain of runs trains on one schedule: the learning rates and optimiser steps of two halves
equal those of one whole run."""

from __future__ import annotations

import pytest

from postlab.tools.training.failures import LOG_FILE
from postlab.tools.training.runner import run_training
from postlab.tools.training.schedule import (
    OPTIMIZER_STATE_FILE,
    WRITING_SUFFIX,
    await_optimizer_state,
    lr_multiplier,
    optimizer_state_failure,
    prefetch_optimizer_state,
    prune_optimizer_states,
    save_optimizer_state,
    take_optimizer_state,
    warmup_steps,
)
from postlab.tools.training.spec import TrainingSpec, check_spec
from postlab.tools.training.worker_end import wait_for_exiting_workers


@pytest.mark.parametrize("shape", ["cosine", "linear", "constant"])
def test_multiplier_matches_transformers_schedules(shape):
    import torch
    from transformers import get_scheduler

    total, warmup = 20, warmup_steps(20, 0.1)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    name = "constant_with_warmup" if shape == "constant" else shape
    reference = get_scheduler(
        name, optimizer, num_warmup_steps=warmup, num_training_steps=total
    ).lr_lambdas[0]
    for step in range(total + 1):
        assert lr_multiplier(step, total, warmup, shape) == pytest.approx(reference(step))


def test_a_stretch_past_its_schedule_is_refused(tmp_path):
    spec = TrainingSpec(
        method="sft",
        base_model=str(tmp_path),
        dataset_path=str(tmp_path),
        output_dir=str(tmp_path / "out"),
        max_steps=10,
        schedule_offset=15,
        schedule_steps=20,
    )
    assert any("run past the schedule's 20 steps" in p for p in check_spec(spec))
    odd = spec.model_copy(update={"schedule_offset": 0, "lr_scheduler": "polynomial"})
    assert any("cannot be resumed part-way" in p for p in check_spec(odd))


@pytest.fixture(scope="module")
def tiny_sft(tmp_path_factory) -> tuple[str, str]:
    import datasets
    from support.tiny_model import make_tiny_model

    model = make_tiny_model(tmp_path_factory.mktemp("tiny"))
    rows = [
        {
            "prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
            "completion": [{"role": "assistant", "content": f"{2 * i}"}],
        }
        for i in range(16)
    ]
    data = tmp_path_factory.mktemp("data") / "sft"
    datasets.Dataset.from_list(rows).save_to_disk(str(data))
    return str(model), str(data)


def _rates(spec: TrainingSpec) -> tuple[list[float], dict]:
    events: list[dict] = []
    result = run_training(spec, on_progress=events.append)
    assert result.status == "ok", result.failure
    rates = [e["learning_rate"] for e in events if e.get("event") == "progress"]
    return rates, result.metrics


def test_two_halves_follow_one_schedule_and_carry_adam(tmp_path, monkeypatch, tiny_sft):
    import torch

    monkeypatch.setenv("WANDB_MODE", "disabled")
    model, data = tiny_sft
    base = dict(
        method="sft",
        dataset_path=data,
        max_steps=4,
        batch_size=4,
        learning_rate=1e-3,
        threads=2,
        timeout_s=300,
    )
    whole, _ = _rates(
        TrainingSpec(**{**base, "max_steps": 8}, base_model=model, output_dir=str(tmp_path / "w"))
    )
    first_spec = TrainingSpec(
        **base,
        base_model=model,
        output_dir=str(tmp_path / "first"),
        schedule_steps=8,
        save_optimizer=True,
    )
    first, first_metrics = _rates(first_spec)
    saved = tmp_path / "first" / OPTIMIZER_STATE_FILE
    # Written by a writer that outlives the worker (and its process group); the continuation
    # below waits for it on its own.
    assert "optimiser state: a background writer" in (tmp_path / "first" / LOG_FILE).read_text()
    assert first_metrics["resumed_optimizer"] == 0.0

    def second_half(name: str, **changes) -> TrainingSpec:
        return TrainingSpec(
            **{**base, **changes},
            base_model=str(tmp_path / "first" / "checkpoint"),
            output_dir=str(tmp_path / name),
            schedule_offset=4,
            schedule_steps=8,
            optimizer_state=str(saved),
        )

    second, metrics = _rates(second_half("second", save_optimizer=True))
    assert first + second == pytest.approx(whole)
    assert metrics["resumed_optimizer"] == 1.0
    # A stretch whose peak was raised (the lab's raise_lr) trains at its own peak from the same
    # moments, not at the one the saved state was made with.
    raised, raised_metrics = _rates(second_half("raised", learning_rate=3e-3))
    assert raised == pytest.approx([3 * rate for rate in second])
    assert raised_metrics["resumed_optimizer"] == 1.0
    assert await_optimizer_state(saved)
    assert not saved.with_name(OPTIMIZER_STATE_FILE + WRITING_SUFFIX).exists()
    # Adam counts its steps: the continuation's moments are the first run's, moved on 4 steps.
    assert await_optimizer_state(tmp_path / "second" / OPTIMIZER_STATE_FILE)
    state = torch.load(tmp_path / "second" / OPTIMIZER_STATE_FILE, weights_only=True)["state"]
    assert {float(entry["step"]) for entry in state.values()} == {8.0}

    removed = prune_optimizer_states(tmp_path, keep={tmp_path / "second"})
    assert removed == ["first"] and not saved.exists()
    assert (tmp_path / "second" / OPTIMIZER_STATE_FILE).is_file()


def _adam_with_moments():
    import torch

    weights = torch.nn.Parameter(torch.arange(6.0))
    optimizer = torch.optim.Adam([weights], lr=0.1)
    weights.sum().backward()
    optimizer.step()
    return optimizer


def test_a_background_save_equals_a_plain_one_once_awaited(tmp_path):
    import torch

    optimizer = _adam_with_moments()
    save_optimizer_state(optimizer, tmp_path / "plain")
    save_optimizer_state(optimizer, tmp_path / "background", background=True)
    state = tmp_path / "background" / OPTIMIZER_STATE_FILE
    assert await_optimizer_state(state, timeout_s=60)
    assert not state.with_name(OPTIMIZER_STATE_FILE + WRITING_SUFFIX).exists()
    plain = torch.load(tmp_path / "plain" / OPTIMIZER_STATE_FILE, weights_only=True)
    written = torch.load(state, weights_only=True)
    assert written["param_groups"] == plain["param_groups"]
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(written["state"][0][key], plain["state"][0][key])


def test_a_background_writer_that_fails_says_why_and_a_later_save_clears_it(tmp_path, monkeypatch):
    import errno

    from postlab.tools.training import schedule

    def full_disk(optimizer, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    optimizer = _adam_with_moments()
    # A worker an earlier test ran may still be exiting on a thread, which would keep the save
    # below in the foreground (a fork copies no thread).
    wait_for_exiting_workers()
    monkeypatch.setattr(schedule, "_write_state", full_disk)
    # The writer is a forked process with no output: it fails, and its note is all that is left.
    assert save_optimizer_state(optimizer, tmp_path / "iter-1", background=True)
    state = tmp_path / "iter-1" / OPTIMIZER_STATE_FILE
    assert not await_optimizer_state(state, timeout_s=60)
    assert "No space left on device" in optimizer_state_failure(state)
    assert take_optimizer_state(str(state)) is None
    # A later save in the same folder is no longer that failure.
    monkeypatch.undo()
    save_optimizer_state(optimizer, tmp_path / "iter-1")
    assert state.is_file() and optimizer_state_failure(state) is None
    # A sweep takes a failed writer's note with the folder's other leftovers.
    monkeypatch.setattr(schedule, "_write_state", full_disk)
    save_optimizer_state(optimizer, tmp_path / "iter-2", background=True)
    assert not await_optimizer_state(tmp_path / "iter-2" / OPTIMIZER_STATE_FILE, timeout_s=60)
    prune_optimizer_states(tmp_path, keep={tmp_path / "iter-1"})
    assert not list((tmp_path / "iter-2").iterdir())


def test_readers_wait_for_the_writers_lock_and_prune_waits_too(tmp_path):
    import fcntl
    import os
    import threading

    folder = tmp_path / "iter-1"
    folder.mkdir()
    state = folder / OPTIMIZER_STATE_FILE
    marker = state.with_name(OPTIMIZER_STATE_FILE + WRITING_SUFFIX)
    # A writer at work: it holds the marker's lock, and the state is not in place yet.
    lock = os.open(marker, os.O_CREAT | os.O_WRONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    assert not await_optimizer_state(state, timeout_s=0.3)
    awaited: list[bool] = []
    reader = threading.Thread(target=lambda: awaited.append(await_optimizer_state(state)))
    reader.start()
    reader.join(timeout=0.5)
    assert reader.is_alive()
    # The writer finishes: the state lands, the marker goes, the lock is released.
    state.write_bytes(b"moments")
    marker.unlink()
    os.close(lock)
    reader.join(timeout=10)
    assert awaited == [True]
    # A sweep that would remove a state still being written waits for its writer.
    lock = os.open(marker, os.O_CREAT | os.O_WRONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    swept: list[list[str]] = []
    early = threading.Thread(target=lambda: swept.append(prune_optimizer_states(tmp_path, set())))
    early.start()
    early.join(timeout=0.5)
    assert early.is_alive() and state.exists()
    marker.unlink()
    os.close(lock)
    early.join(timeout=10)
    assert swept == [["iter-1"]] and not state.exists()
    state.write_bytes(b"moments")
    # A writer killed mid-write leaves its marker, unlocked and with no state: nothing to wait for.
    lost = tmp_path / "iter-2" / OPTIMIZER_STATE_FILE
    lost.parent.mkdir()
    lost.with_name(OPTIMIZER_STATE_FILE + WRITING_SUFFIX).touch()
    (lost.parent / f".{OPTIMIZER_STATE_FILE}.partial").write_bytes(b"half")
    gave_up: list[bool] = []
    quick = threading.Thread(target=lambda: gave_up.append(await_optimizer_state(lost)))
    quick.start()
    quick.join(timeout=5)
    assert gave_up == [False]
    # A kept iteration's writer is not waited for: the sweep leaves its state alone anyway.
    kept = tmp_path / "iter-3"
    kept.mkdir()
    busy = os.open(kept / (OPTIMIZER_STATE_FILE + WRITING_SUFFIX), os.O_CREAT | os.O_WRONLY)
    fcntl.flock(busy, fcntl.LOCK_EX)
    removed: list[list[str]] = []
    sweep = threading.Thread(
        target=lambda: removed.append(prune_optimizer_states(tmp_path, keep={kept}))
    )
    sweep.start()
    sweep.join(timeout=10)
    os.close(busy)
    assert removed == [["iter-1"]] and not state.exists()
    # What the killed writer left in a swept folder is gone too.
    assert not list(lost.parent.iterdir())


def test_a_prefetched_state_waits_for_its_writer_and_failures_reach_the_taker(tmp_path):
    import fcntl
    import os
    import pickle

    import torch

    optimizer = _adam_with_moments()
    save_optimizer_state(optimizer, tmp_path / "plain")
    saved = (tmp_path / "plain" / OPTIMIZER_STATE_FILE).read_bytes()
    state = tmp_path / "iter-1" / OPTIMIZER_STATE_FILE
    state.parent.mkdir()
    # The read starts while the parent's writer still holds its lock, before the state lands.
    marker = state.with_name(OPTIMIZER_STATE_FILE + WRITING_SUFFIX)
    lock = os.open(marker, os.O_CREAT | os.O_WRONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    prefetch_optimizer_state(str(state))
    state.write_bytes(saved)
    marker.unlink()
    os.close(lock)
    taken = take_optimizer_state(str(state))
    assert torch.equal(taken["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    # Taken once: a second take reads the file again, and a missing file is no state.
    state.unlink()
    assert take_optimizer_state(str(state)) is None
    prefetch_optimizer_state(str(state))
    assert take_optimizer_state(str(state)) is None
    # A corrupt state fails in the taker (the trainer's setup), as a plain read fails there.
    state.write_bytes(b"not a torch file")
    prefetch_optimizer_state(str(state))
    with pytest.raises((RuntimeError, pickle.UnpicklingError)):
        take_optimizer_state(str(state))
    with pytest.raises((RuntimeError, pickle.UnpicklingError)):
        take_optimizer_state(str(state))
